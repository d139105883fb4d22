"""Where and how the training loop runs: device, precision, memory layout, compilation.

Built once per run from ``RuntimeConfig`` and the trajectory's ``amp``; the loop asks it
to move a batch or open an autocast region and stays the same on a CPU, where every
switch is off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from leak_detection.decisions.inference import autocast_context
from leak_detection.training.config import RuntimeConfig


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"training.device = {name!r} but CUDA is not available here; use 'auto' or 'cpu'")
    return device


def resolve_amp(amp: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype: bf16 where the GPU has it, else fp16 (with a GradScaler); none on CPU."""
    if device.type != "cuda" or amp == "off":
        return None
    if amp == "fp16" or (amp == "auto" and not torch.cuda.is_bf16_supported()):
        return torch.float16
    return torch.bfloat16


@dataclass
class TrainingRuntime:
    """The device, the autocast dtype (None: full precision), the speed switches and the GradScaler."""

    device: torch.device
    amp_dtype: torch.dtype | None
    channels_last: bool
    compile: bool
    eval_batch_size: int
    scaler: torch.amp.GradScaler

    @classmethod
    def build(cls, runtime: RuntimeConfig, amp: str) -> TrainingRuntime:
        device = resolve_device(runtime.device)
        amp_dtype = resolve_amp(amp, device)
        return cls(
            device=device,
            amp_dtype=amp_dtype,
            channels_last=runtime.channels_last and device.type == "cuda",
            compile=runtime.compile,
            eval_batch_size=runtime.eval_batch_size,
            # Only fp16 needs its gradients scaled; a disabled scaler passes them through.
            scaler=torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16),
        )

    def prepare(self, model: nn.Module, loss_fn: nn.Module) -> nn.Module:
        """Move the model and the loss to the device; the module that takes the training steps."""
        model.to(self.device)
        loss_fn.to(self.device)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        return torch.compile(model) if self.compile else model

    def batch(self, x: torch.Tensor, y: torch.Tensor, leak: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x, y, leak = x.to(self.device, non_blocking=True), y.to(self.device), leak.to(self.device)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, y, leak

    def autocast(self):
        return autocast_context(self.device, self.amp_dtype)

    def synchronize(self) -> None:
        """Wait for queued GPU work, so that a timing covers it."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def predict_kwargs(self) -> dict[str, Any]:
        """The same device, precision and layout for validation (``predict_segments``)."""
        return {
            "batch_size": self.eval_batch_size,
            "device": self.device,
            "amp_dtype": self.amp_dtype,
            "channels_last": self.channels_last,
        }
