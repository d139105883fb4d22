"""Process-wide settings are applied by the entry points, and library calls leave them alone."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "leak_detection"
PROCESS_WIDE = {"mallopt", "keep_freed_memory", "set_num_threads", "set_num_interop_threads", "torch_threads"}
ENTRY_POINT = "apply_process_settings"


def calls_by_module() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                if name in PROCESS_WIDE | {ENTRY_POINT}:
                    found.setdefault(str(path.relative_to(PACKAGE)), set()).add(name)
    return found


def test_process_wide_settings_change_only_where_the_settings_module_lists_them():
    assert calls_by_module() == {
        "runs/cpu_allocator.py": {"mallopt"},
        "runs/process_settings.py": {"keep_freed_memory", "set_num_threads"},
        "hooks.py": {ENTRY_POINT},
        "console/__init__.py": {ENTRY_POINT},
        # The front end's workers (initializer) and the serial path, restored after it.
        "audio/analysis_pool.py": {"set_num_threads", "torch_threads"},
    }


APPLY = """
import json, torch
from leak_detection.runs.cpu_allocator import keep_freed_memory
from leak_detection.runs.process_settings import apply_process_settings
threads = torch.get_num_threads()
first, again = apply_process_settings(), apply_process_settings()
print(json.dumps({"kept": first.freed_memory_kept, "same": first == again,
                  "threads": [threads, first.torch_threads, torch.get_num_threads()],
                  "allocator_calls": keep_freed_memory.cache_info().misses}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_applying_the_settings_keeps_freed_memory_once_and_leaves_torchs_threads():
    done = subprocess.run([sys.executable, "-c", APPLY], capture_output=True, text=True, check=True)
    applied = json.loads(done.stdout.strip().splitlines()[-1])
    assert applied["kept"] and applied["same"] and applied["allocator_calls"] == 1
    assert len(set(applied["threads"])) == 1  # torch's default, as the process started


def test_torch_threads_are_restored_after_the_work_even_when_it_fails():
    from leak_detection.runs.process_settings import torch_threads

    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), torch_threads(1):
        assert torch.get_num_threads() == 1
        raise RuntimeError("a file failed")
    assert torch.get_num_threads() == before


def test_the_leak_detect_command_applies_the_settings_before_any_subcommand(monkeypatch):
    import leak_detection.console as console

    applied = []
    monkeypatch.setattr(console, "apply_process_settings", lambda: applied.append(True))
    result = CliRunner().invoke(console.main, ["predict", "--help"])
    assert result.exit_code == 0 and applied == [True]
