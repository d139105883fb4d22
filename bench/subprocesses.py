"""Run a bench module in a fresh Python process and read the JSON it prints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def quiet_env() -> dict[str, str]:
    """The environment of every child: no telemetry, no progress bars in the captured output."""
    env = dict(os.environ)
    env["KEDRO_DISABLE_TELEMETRY"] = "1"
    env["TQDM_DISABLE"] = "1"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(PROJECT_ROOT), env.get("PYTHONPATH")]))
    return env


def run_module_json(module: str, args: list[str], timeout_s: float) -> dict:
    """``python -m module args`` in the project root; its last stdout line is a JSON object."""
    completed = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=PROJECT_ROOT,
        env=quiet_env(),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{module} exited with {completed.returncode}:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def train_epoch_in_child(
    store: Path,
    validation_files: int,
    budget_mb: float,
    batch_size: int,
    checkpoint_dir: Path,
    max_batches: int | None = None,
    timeout_s: float = 1800,
) -> dict:
    """One epoch of ``fit`` on ``store`` in a fresh process (see ``bench.train_child``)."""
    args = [
        "--store",
        str(store),
        "--validation-files",
        str(validation_files),
        "--budget-mb",
        str(budget_mb),
        "--batch-size",
        str(batch_size),
        "--checkpoint-dir",
        str(checkpoint_dir),
    ]
    if max_batches:
        args += ["--max-batches", str(max_batches)]
    return run_module_json("bench.train_child", args, timeout_s)
