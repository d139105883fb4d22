"""The CUDA paths of the model and the training loop, checked and timed: ``python -m bench.gpu_check``.

The 2-core CPU machines never run autocast, channels_last or a compiled model on a
GPU, so a GPU session runs this once: it checks that each path computes what the
fp32 eager model computes (within the tolerance its precision allows) and that a
short ``fit`` under each setting learns, and it times them. It needs only torch,
numpy, pandas, scikit-learn and tqdm (not kedro or soundfile), so a bare GPU image
runs it with ``PYTHONPATH=src``:

    PYTHONPATH=src:. python -m bench.gpu_check --output gpu_check.json
    python -m bench.gpu_check --device cpu --quick     # the same checks, small, on a CPU

Prints one JSON object; the exit status is 1 when a parity check fails.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from bench.stores import train_and_validation  # noqa: E402
from leak_detection.audio.front_end import FrontEndConfig  # noqa: E402
from leak_detection.decisions.inference import predict_segments  # noqa: E402
from leak_detection.features.store import MelFeatureStore  # noqa: E402
from leak_detection.labels import CLASS_NAMES, LEAK, leak_output_idx  # noqa: E402
from leak_detection.model.network import LeakCNNMulti  # noqa: E402
from leak_detection.training.config import TrainerConfig  # noqa: E402
from leak_detection.training.loop import fit  # noqa: E402
from leak_detection.training.loss import LeakLoss  # noqa: E402

# Largest acceptable max |difference| of logits against fp32 eager (logits are O(1-10)).
TOLERANCE = {"fp32": 1e-4, "channels_last": 1e-4, "compile": 1e-4, "bf16": 0.15, "fp16": 0.02}

FIT_VARIANTS = {
    "fp32": {"amp": "off", "channels_last": False},
    "bf16": {"amp": "bf16", "channels_last": False},
    "bf16+channels_last": {"amp": "bf16", "channels_last": True},
    "fp16+channels_last": {"amp": "fp16", "channels_last": True},
    "bf16+channels_last+compile": {"amp": "bf16", "channels_last": True, "compile": True},
}


def separable_store(n_files: int, long_per_file: int, seed: int) -> MelFeatureStore:
    """Alternately LEAK and NORMAL files; a leak raises some mel bands, so a model can learn it."""
    config = FrontEndConfig()
    rng = np.random.default_rng(seed)
    shape = (n_files * long_per_file, config.n_short, config.n_mels, config.n_frames)
    segments = rng.normal(-60.0, 6.0, size=shape).astype(np.float32)
    is_leak = np.arange(n_files) % 2 == 0
    rows = np.repeat(is_leak, long_per_file)
    segments[rows, :, 8:16] += 4.0
    ids = [f"synthetic/{i:06d}.wav" for i in range(n_files)]
    return MelFeatureStore(
        segments_mel=segments,
        file_offsets=np.arange(n_files + 1, dtype=np.int64) * long_per_file,
        labels=np.array([CLASS_NAMES.index(LEAK if leak else "NORMAL") for leak in is_leak]),
        file_ids=ids,
        groups=ids,
        label_names=list(CLASS_NAMES),
        feature_config=config.to_dict(),
        source_fingerprint=f"gpu-check-{seed}-{n_files}x{long_per_file}",
    )


def plain_layers(model: LeakCNNMulti, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The model's layers as written (``fast_cpu_ops`` off) on ``x``."""
    model.fast_cpu_ops = False
    try:
        return model(x)
    finally:
        model.fast_cpu_ops = True


def parity(device: torch.device, n: int) -> dict:
    """Max |logit difference| of each fast or low-precision path against fp32 eager on the CPU."""
    torch.manual_seed(0)
    model = LeakCNNMulti(n_classes=5)
    model.set_normalisation(torch.full((32,), -60.0), torch.full((32,), 6.0))
    model.eval()
    x = torch.randn(n, 1, 32, 1) * 6.0 - 60.0
    with torch.inference_mode():
        reference, _ = plain_layers(model, x)
        model.to(device)
        xd = x.to(device)
        results = {"fp32": model(xd)[0]}
        results["plain_layers_on_device"] = plain_layers(model, xd)[0]
        if device.type == "cuda":
            for name, dtype in (("bf16", torch.bfloat16), ("fp16", torch.float16)):
                with torch.autocast("cuda", dtype=dtype):
                    results[name] = model(xd)[0].float()
            model.to(memory_format=torch.channels_last)
            results["channels_last"] = model(xd.contiguous(memory_format=torch.channels_last))[0]
            model.to(memory_format=torch.contiguous_format)
        compiled = torch.compile(model)
        results["compile"] = compiled(xd)[0]
    report = {}
    for name, logits in results.items():
        diff = float((logits.float().cpu() - reference).abs().max())
        bound = TOLERANCE.get(name, TOLERANCE["fp32"])
        report[name] = {"max_abs_diff": diff, "tolerance": bound, "ok": diff <= bound}
    return report


def training_gradients_match(device: torch.device) -> dict:
    """Fast path against the plain layers in training mode on the device: same loss, same gradients."""
    torch.manual_seed(0)
    model = LeakCNNMulti(n_classes=5).to(device).train()
    x = (torch.randn(256, 1, 32, 1) * 6.0 - 60.0).to(device)
    grads = []
    for forward in (model, functools.partial(plain_layers, model)):
        model.zero_grad()
        torch.manual_seed(1)
        logits, aux = forward(x)
        (logits.square().mean() + aux.square().mean()).backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    diff = float((grads[0] - grads[1]).abs().max() / grads[1].abs().max())
    return {"max_relative_grad_diff": diff, "tolerance": 1e-4, "ok": diff <= 1e-4}


def timed_fit(variant: dict, train, validation, device: torch.device, epochs: int, batch: int) -> dict:
    torch.manual_seed(0)
    model = LeakCNNMulti(n_classes=2)
    with tempfile.TemporaryDirectory() as checkpoints:
        config = TrainerConfig.from_params(
            {
                "epochs": epochs,
                "batch_size": batch,
                "device": str(device),
                "checkpoint_dir": checkpoints,
                "fresh_start": True,
                "patience": epochs,
                **variant,
            }
        )
        started = time.perf_counter()
        result = fit(model, train, validation, LeakLoss([1.0, 1.0]), leak_output_idx("binary"), config, "gpu-check")
    last = result.history[-1]
    return {
        "settings": {"batch_size": batch, **variant},
        "samples_per_second_by_epoch": [round(h["samples_per_second"]) for h in result.history],
        "train_loss_by_epoch": [round(h["train_loss"], 4) for h in result.history],
        "val_file_leak_f1": last["val_file_leak_f1"],
        "finite": bool(np.isfinite([h["train_loss"] for h in result.history]).all()),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }


def peak_matmul_tflops(device: torch.device, dtype: torch.dtype, size: int = 8192) -> float:
    a, b = torch.randn(size, size, device=device, dtype=dtype), torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(10):
        a @ b
    torch.cuda.synchronize(device)
    return 10 * 2 * size**3 / (time.perf_counter() - started) / 1e12


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks that the script works")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    n_files, long_per_file, epochs = (40, 20, 1) if args.quick else (1000, 100, 3)
    # The parity checks compare arithmetic, so they run in true fp32: cuDNN's convolutions
    # otherwise use TF32 on Ampere and later (about 1e-3 relative).
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    report: dict = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or "cpu",
        "parity": parity(device, 512 if args.quick else 8192),
        "training_gradients": training_gradients_match(device),
    }
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's default for convolutions, as training runs
    if device.type == "cuda":
        report["peak_matmul_tflops"] = {
            "fp32": peak_matmul_tflops(device, torch.float32),
            "bf16": peak_matmul_tflops(device, torch.bfloat16),
        }
    store = separable_store(n_files, long_per_file, seed=0)
    train, validation = train_and_validation(store, max(4, n_files // 10), memory_budget_bytes=8 * 2**30)
    report["train_short_segments"] = train.n_samples
    variants = FIT_VARIANTS if device.type == "cuda" else {"fp32": FIT_VARIANTS["fp32"]}
    batches = (1024,) if args.quick else (1024, 8192)
    report["fit"] = {}
    for batch in batches:
        for name, variant in variants.items():
            print(f"fit {name} batch {batch}", file=sys.stderr, flush=True)
            report["fit"][f"{name}@{batch}"] = timed_fit(variant, train, validation, device, epochs, batch)
    segments = torch.from_numpy(store.segments_mel[: 4096 if args.quick else 262_144]).reshape(-1, 1, 32, 1)
    model = LeakCNNMulti(n_classes=2).to(device).eval()
    predict_segments(model, [(segments[:8192], None, None)], 1, batch_size=8192, device=device)
    started = time.perf_counter()
    predict_segments(model, [(segments, None, None)], 1, batch_size=65536, device=device)
    report["predict_segments_per_second"] = segments.shape[0] / (time.perf_counter() - started)
    failed = [
        k for k, v in {**report["parity"], "training_gradients": report["training_gradients"]}.items() if not v["ok"]
    ]
    report["failed_checks"] = failed
    text = json.dumps(report, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
