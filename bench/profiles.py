"""Where the time goes, and what the obvious fixes would buy.

    python -m bench.profiles                        # training, inference, extraction
    python -m bench.profiles inference --output bench/results/profiles.txt

Each part prints the top operators (``torch.profiler``) or functions (``cProfile``)
of a measured workload, then times a few alternatives side by side in the same
process on the same inputs, to size suggestions for the project's code. Nothing
here changes the project: alternatives are small subclasses of its model, or the
same calls under other settings, and each is checked to compute the same numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from bench.extraction import project_extraction
from bench.inference import random_segments
from bench.machine import load_average
from bench.stores import synthetic_store, train_and_validation
from bench.train_child import FirstBatches
from leak_detection.demo.recordings import generate_demo_recordings
from leak_detection.labels import leak_output_idx
from leak_detection.model.network import LeakCNNMulti
from leak_detection.model.onnx_export import INPUT_NAME, export_onnx, onnx_session
from leak_detection.runs.process_settings import apply_process_settings
from leak_detection.training.config import TrainerConfig
from leak_detection.training.loop import fit
from leak_detection.training.loss import LeakLoss

TOP = 15


# --- the plain layers, for comparison ---------------------------------------------------------


class PlainLayers(LeakCNNMulti):
    """The model with ``fast_cpu_ops`` off (3x3 ``Conv2d``, ``MaxPool2d``, adaptive pooling, dropout):
    the same parameters and numbers as the project's fast path, on the plain kernels."""

    def __init__(self, **kwargs) -> None:
        super().__init__(fast_cpu_ops=False, **kwargs)


# --- training -------------------------------------------------------------------------------


def _fit_batches(model: LeakCNNMulti, batches: int, checkpoint_dir: Path, n_files: int = 200) -> float:
    """``fit`` for ``batches`` batches on an in-memory synthetic split; its own samples/s."""
    store = synthetic_store(n_files, 100, seed=1)
    train, validation = train_and_validation(store, validation_files=4, memory_budget_bytes=2**31)
    config = TrainerConfig.from_params(
        {"epochs": 1, "device": "cpu", "checkpoint_dir": str(checkpoint_dir), "fresh_start": True}
    )
    result = fit(
        model,
        FirstBatches(train, batches),
        validation,
        LeakLoss([1.0, 1.0]),
        leak_output_idx("binary"),
        config,
        "bench-profile",
    )
    return result.history[0]["samples_per_second"]


def profile_training(batches: int = 40, rounds: int = 3) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            _fit_batches(LeakCNNMulti(n_classes=2), 20, Path(tmp) / "profiled")
        lines = [
            f"torch.profiler, fit on 20 batches of 1024 (validation included), top {TOP} by self CPU:",
            prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=TOP),
            f"fit samples/s over {batches} batches, the project's model against the plain layers; "
            f"{rounds} interleaved rounds (load {load_average()}):",
        ]
        variants = (LeakCNNMulti, PlainLayers)
        rates = {v.__name__: [] for v in variants}
        for round_ in range(rounds):
            for model_class in variants:
                torch.manual_seed(0)
                rate = _fit_batches(model_class(n_classes=2), batches, Path(tmp) / f"{model_class.__name__}{round_}")
                rates[model_class.__name__].append(rate)
    project = float(np.median(rates["LeakCNNMulti"]))
    for name, values in rates.items():
        runs = ", ".join(f"{v:,.0f}" for v in values)
        lines.append(
            f"  {name:18s} median {np.median(values):7,.0f} samples/s ({np.median(values) / project:.2f}x)"
            f"  runs: {runs}"
        )
    return "\n".join(lines)


# --- inference ------------------------------------------------------------------------------


def _best_rate(run, chunks: list, repeats: int = 3) -> float:
    """Items per second of ``run`` over ``chunks``, best of ``repeats`` after a warm-up call."""
    run(chunks[0])
    total = sum(len(c) for c in chunks)
    best = 0.0
    for _ in range(repeats):
        started = time.perf_counter()
        for chunk in chunks:
            run(chunk)
        best = max(best, total / (time.perf_counter() - started))
    return best


def _torch_runner(model, bf16: bool = False):
    @torch.inference_mode()
    def run(x):
        if bf16:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return model(x)
        return model(x)

    return run


def profile_inference(n_segments: int = 8 * 8192) -> str:
    model = LeakCNNMulti(n_classes=2).eval()
    segments = random_segments(n_segments, seed=0)
    with torch.inference_mode():
        model(segments[:8192])
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for chunk in segments.split(8192):
                model(chunk)
        x = segments[:8192]
        bf16_diff = float((_torch_runner(model, bf16=True)(x)[0].float() - model(x)[0]).abs().max())
    session = onnx_session(export_onnx(model, n_mels=32, n_frames=1))
    lines = [
        f"torch.profiler, eval forward on {n_segments} segments in batches of 8192, top {TOP} by self CPU:",
        prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=TOP),
        f"segments/s by the batch the model is called on (best of 3, load {load_average()}):",
    ]
    for sub_batch in (256, 512, 1024, 2048, 8192):
        chunks = list(segments.split(sub_batch))
        fp32 = _best_rate(_torch_runner(model), chunks)
        onnx = _best_rate(lambda c: session.run(None, {INPUT_NAME: c}), [c.numpy() for c in chunks])
        lines.append(f"  batch {sub_batch:5d}: PyTorch fp32 {fp32:9,.0f}   ONNX Runtime {onnx:9,.0f}")
    for sub_batch in (512, 8192):
        rate = _best_rate(_torch_runner(model, bf16=True), list(segments.split(sub_batch)))
        lines.append(f"  batch {sub_batch:5d}: PyTorch bf16 autocast {rate:9,.0f}  (max logit error {bf16_diff:.1e})")
    return "\n".join(lines)


# --- extraction -----------------------------------------------------------------------------


@contextlib.contextmanager
def busy_neighbour(active: bool):
    """Another process spinning on one core while the block runs, as on a shared machine."""
    if not active:
        yield
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        yield
    finally:
        spinner.kill()
        spinner.wait()


def profile_extraction(n_recordings: int = 120) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        recordings = Path(tmp) / "demo"
        manifest = generate_demo_recordings(recordings, n_recordings=n_recordings, seed=20251125)
        audio_s = float(manifest["duration_s"].sum())
        profiler = cProfile.Profile()
        profiler.enable()
        project_extraction(recordings, Path(tmp) / "profiled.h5", workers=1)
        profiler.disable()
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(TOP)
        lines = [
            f"cProfile, project extraction of {n_recordings} demo recordings ({audio_s:.0f} s of audio) in one "
            "process (workers 1), "
            f"top {TOP} by own time:",
            _trim_pstats(text.getvalue()),
            "x real time by worker processes (extraction.workers), with and without a process spinning on one core:",
        ]
        for busy in (False, True):
            for round_ in range(2):
                for workers in ("auto", 1):
                    with busy_neighbour(busy):
                        _, seconds = project_extraction(
                            recordings, Path(tmp) / f"w{workers}-{busy}-{round_}.h5", workers=workers
                        )
                    neighbour = "one core busy" if busy else "no spinner"
                    lines.append(
                        f"  {neighbour:13s} workers {workers!s:4s}: {audio_s / seconds:7,.0f}x  (load {load_average()})"
                    )
    return "\n".join(lines)


def _trim_pstats(text: str) -> str:
    """The total line and the table of ``pstats`` output, with site-packages paths shortened."""
    lines = [line for line in text.splitlines() if line.strip()]
    total = [line.strip() for line in lines if "function calls" in line]
    table = lines[next((i for i, line in enumerate(lines) if "ncalls" in line), 0) :]
    return "\n".join(line.replace(str(Path(sys.prefix)), "<py>") for line in total + table)


PARTS = {"training": profile_training, "inference": profile_inference, "extraction": profile_extraction}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profiles", description=__doc__.splitlines()[0])
    parser.add_argument("parts", nargs="*", help=f"any of {', '.join(PARTS)} (default: all)")
    parser.add_argument("--output", type=Path, help="also write the report here")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {list(PARTS)}")
    # Process-wide settings, applied by this entry point as `kedro run` does, so profiles show what runs there.
    apply_process_settings()
    header = f"torch {torch.__version__}, {torch.get_num_threads()} threads, numpy {np.__version__}"
    report = [header] + [f"== {part} ==\n{PARTS[part]()}" for part in args.parts or PARTS]
    text = "\n\n".join(report) + "\n"
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
