"""The benchmark suite runs end to end in quick mode and reports every section.

Only the shape of the results is checked: timed assertions would fail on a busy
machine without anything being wrong.
"""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MEASURED_SECTIONS = ("training", "memory", "extraction", "inference")


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    output = tmp_path_factory.mktemp("bench") / "results.json"
    completed = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--skip-demo-run", "--output", str(output)],
        cwd=PROJECT_ROOT,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(output.read_text()), completed.stdout


def _positive(value) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def test_every_section_is_reported_without_errors(quick_run):
    results, _ = quick_run
    for name in MEASURED_SECTIONS:
        assert name in results, name
        assert "error" not in results[name], results[name].get("traceback")
        assert "conditions" in results[name]
    assert results["demo_run"] == {"skipped": True, "reason": "--quick"}


def test_machine_is_described(quick_run):
    machine = quick_run[0]["machine"]
    for key in ("cpu_model", "logical_cores", "torch_threads", "torch_version", "numpy_version", "date_utc"):
        assert machine[key], key
    assert len(machine["load_average_at_start"]) == 3


def test_ratios_are_computed(quick_run):
    results, _ = quick_run
    ratios = [
        results["training"]["speedup_vs_baseline"],
        results["training"]["roofline_fraction"],
        results["extraction"]["speedup_vs_baseline"],
        results["extraction"]["project"]["realtime_factor"],
        results["inference"]["torch_segments_per_second"],
        results["inference"]["onnx_vs_torch"],
        results["inference"]["predict_recordings"]["files_per_second"],
        results["memory"]["peak_ratio"],
    ]
    assert all(_positive(r) for r in ratios), ratios


def test_memory_cases_are_in_memory_and_streamed(quick_run):
    cases = quick_run[0]["memory"]["cases"]
    assert cases["1x"]["streamed"] is False
    assert cases["10x"]["streamed"] is True


def test_baseline_features_match_the_project(quick_run):
    extraction = quick_run[0]["extraction"]
    assert extraction["parity_one_file"]["ok"]
    assert extraction["parity_all_files"]["ok"]


def test_every_target_has_a_verdict(quick_run):
    results, stdout = quick_run
    statuses = {t["target"]: t["status"] for t in results["targets"]}
    assert len(statuses) == 7
    assert statuses.pop("demo: kedro run --pipelines train_both") == "SKIPPED"
    assert set(statuses.values()) <= {"PASS", "FAIL"}
    assert "| target | measured | goal | result | detail |" in stdout
