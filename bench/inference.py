"""Inference throughput: the model on batches of segments (PyTorch and ONNX Runtime), and whole files.

Segment throughput is what evaluation and a deployment pay per short segment;
files per second through ``predict_recordings`` is what an operator waits for,
reading, resampling and featurising included.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from bench.settings import BenchSettings
from bench.training import peak_matmul_gflops
from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.datasets import InboxDataset
from leak_detection.decisions.inference import predict_segments
from leak_detection.demo.recordings import generate_demo_recordings
from leak_detection.labels import LEAK, NOLEAK
from leak_detection.model.network import LeakCNNMulti, state_dict_sha256
from leak_detection.model.onnx_export import INPUT_NAME, export_onnx, onnx_session
from leak_detection.pipelines.predict.nodes import predict_recordings
from leak_detection.runs.process_settings import apply_process_settings


def random_segments(n: int, seed: int) -> torch.Tensor:
    """``[n, 1, 32, 1]`` log-mel-like values (dB around -60)."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 32, 1, generator=generator) * 6.0 - 60.0


def _batches_per_second(run_batch, batches: list) -> float:
    """Batches per second over ``batches``, after one untimed warm-up batch."""
    run_batch(batches[0])
    started = time.perf_counter()
    for batch in batches:
        run_batch(batch)
    return len(batches) / (time.perf_counter() - started)


def torch_segments_per_second(model: LeakCNNMulti, segments: torch.Tensor, batch_size: int) -> float:
    """The bare model, eval mode, ``torch.inference_mode``."""
    batches = list(segments.split(batch_size))

    @torch.inference_mode()
    def run(x):
        model(x)

    return _batches_per_second(run, batches) * batch_size


def predict_segments_per_second(model: LeakCNNMulti, segments: torch.Tensor, batch_size: int) -> float:
    """The project's ``predict_segments`` (softmax and leak probability included) over all segments."""
    predict_segments(model, [(segments[:batch_size], None, None)], 1, batch_size=batch_size)  # warm-up
    started = time.perf_counter()
    predict_segments(model, [(segments, None, None)], 1, batch_size=batch_size)
    return segments.shape[0] / (time.perf_counter() - started)


def onnx_segments_per_second(model: LeakCNNMulti, segments: torch.Tensor, batch_size: int) -> dict:
    """The project's ONNX export run by ONNX Runtime (CPU provider, default threads)."""
    started = time.perf_counter()
    session = onnx_session(export_onnx(model, n_mels=32, n_frames=1))
    export_s = time.perf_counter() - started
    batches = [np.ascontiguousarray(b.numpy()) for b in segments.split(batch_size)]
    per_s = _batches_per_second(lambda x: session.run(None, {INPUT_NAME: x}), batches) * batch_size
    return {"segments_per_second": per_s, "export_and_session_seconds": export_s}


def binary_model_and_meta(seed: int) -> tuple[dict[str, torch.Tensor], dict]:
    """An untrained binary model's state_dict and the meta ``predict_recordings`` needs: speed
    does not depend on the weights."""
    torch.manual_seed(seed)
    state = LeakCNNMulti(n_classes=2).state_dict()
    meta = {
        "model_type": "LeakCNNMulti",
        "num_classes": 2,
        "class_names": [NOLEAK, LEAK],
        "leak_output_idx": 1,
        "threshold": 0.5,
        "mode": "binary",
        "feature_config": FrontEndConfig().to_dict(),
        "state_dict_sha256": state_dict_sha256(state),
    }
    return state, meta


def files_per_second(settings: BenchSettings, inbox_dir: Path) -> dict:
    """``predict_recordings`` over generated recordings of ``predict_file_s`` seconds (mixed rates)."""
    generate_demo_recordings(
        inbox_dir,
        n_recordings=settings.predict_files,
        seed=settings.seed + 1,
        min_duration_s=settings.predict_file_s,
        max_duration_s=settings.predict_file_s,
    )
    state, meta = binary_model_and_meta(settings.seed)
    started = time.perf_counter()
    inbox = InboxDataset(path=inbox_dir).load()
    table = predict_recordings(inbox, state, meta, {"batch_size": settings.inference_batch_size})
    elapsed = time.perf_counter() - started
    errors = int((table["error"] != "").sum())
    return {
        "what": "InboxDataset + predict_recordings (read, resample, features, model, vote)",
        "files": len(table),
        "file_seconds": settings.predict_file_s,
        "files_with_errors": errors,
        "seconds": elapsed,
        "files_per_second": len(table) / elapsed,
        "audio_realtime_factor": len(table) * settings.predict_file_s / elapsed,
    }


def eval_flops_per_segment(model: LeakCNNMulti, n_mels: int = 32, batch: int = 8) -> float:
    """Multiply-add FLOPs of one eval-mode forward (fc folded), as ``torch.utils.flop_counter`` counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model.eval()(torch.randn(batch, 1, n_mels, 1))
    return counter.get_total_flops() / batch


def measure_inference(settings: BenchSettings, workdir: Path) -> dict:
    torch.manual_seed(settings.seed)
    model = LeakCNNMulti(n_classes=2).eval()
    size = settings.inference_batch_size
    segments = random_segments(settings.inference_batches * size, settings.seed)
    onnx_segments = segments[: settings.onnx_batches * size]
    torch_sps = torch_segments_per_second(model, segments, size)
    onnx = onnx_segments_per_second(model, onnx_segments, size)
    # The project's paths are timed as its entry points run them; the bare model and ONNX
    # Runtime above, as a user's own script would (the allocator setting cannot be undone).
    apply_process_settings()
    project_sps = predict_segments_per_second(model, segments, size)
    peak = peak_matmul_gflops(settings.matmul_sizes, settings.matmul_repeats)
    flops = eval_flops_per_segment(model)
    ceiling = peak["peak_gflops"] * 1e9 / flops
    return {
        "batch_size": size,
        "segments_timed": int(segments.shape[0]),
        "torch_segments_per_second": torch_sps,
        "predict_segments_per_second": project_sps,
        # What the machine could do at all: every FLOP at the best matmul rate.
        "compute_ceiling": {
            **peak,
            "eval_flops_per_segment": flops,
            "ceiling_segments_per_second": ceiling,
            "project_fraction_of_ceiling": project_sps / ceiling,
        },
        "onnx": {"segments_timed": int(onnx_segments.shape[0]), **onnx},
        "onnx_vs_torch": onnx["segments_per_second"] / torch_sps,
        "predict_recordings": files_per_second(settings, workdir / "inbox"),
    }
