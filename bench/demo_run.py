"""Wall time of the demo ``kedro run --pipelines train_both``: what a new user waits for first.

Training checkpoints go to a temporary folder: a run that found the project's own
``last.pth`` of a finished run would only re-save the best model and look fast.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.subprocesses import PROJECT_ROOT, quiet_env
from leak_detection.demo.recordings import demo_is_complete

DEMO_DIR = PROJECT_ROOT / "data" / "01_raw" / "demo"


def measure_demo_run(timeout_s: float = 1800) -> dict:
    demo_existed = demo_is_complete(DEMO_DIR)
    with tempfile.TemporaryDirectory(prefix="bench-checkpoints-") as checkpoints:
        params = ",".join(
            f"{mode}.training.checkpoint_dir={Path(checkpoints) / mode}" for mode in ("binary", "multiclass")
        )
        command = [sys.executable, "-m", "kedro", "run", "--pipelines", "train_both", "--params", params]
        started = time.perf_counter()
        completed = subprocess.run(
            command, cwd=PROJECT_ROOT, env=quiet_env(), capture_output=True, text=True, timeout=timeout_s, check=False
        )
        elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(f"kedro run exited with {completed.returncode}:\n{completed.stderr[-3000:]}")
    return {
        "command": "kedro run --pipelines train_both --params " + params.replace(checkpoints, "<tmp>"),
        "seconds": elapsed,
        "demo_recordings_existed": demo_existed,
        "note": "includes generating the demo recordings" if not demo_existed else "demo recordings already on disk",
    }
