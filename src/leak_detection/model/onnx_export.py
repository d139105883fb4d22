"""ONNX export of a trained model, normalisation included, and its parity check.

A deployment that runs the ONNX file must see the numbers evaluation saw, so every
export is compared with PyTorch on real feature batches before it is kept.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

INPUT_NAME = "log_mel"
OUTPUT_NAMES = ("logits", "leak_aux_logit")
OPSET = 17


def export_onnx(model: nn.Module, n_mels: int, n_frames: int) -> bytes:
    """The model (in eval mode) as ONNX bytes with a dynamic batch axis."""
    model = model.eval()
    has_aux = getattr(model, "leak_aux", None) is not None
    outputs = list(OUTPUT_NAMES if has_aux else OUTPUT_NAMES[:1])
    example = torch.zeros(2, 1, n_mels, n_frames)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # The trace fixes the input's mel and frame sizes, which the model's shape
        # checks depend on; only the batch axis varies, and it is declared dynamic.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _TupleOutputs(model, has_aux).eval(),
            (example,),
            buffer,
            input_names=[INPUT_NAME],
            output_names=outputs,
            dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *outputs]},
            opset_version=OPSET,
            dynamo=False,
        )
    return buffer.getvalue()


class _TupleOutputs(nn.Module):
    """ONNX has no ``None`` output: the binary model exports its logits alone."""

    def __init__(self, model: nn.Module, has_aux: bool) -> None:
        super().__init__()
        self.model = model
        self.has_aux = has_aux

    def forward(self, x: torch.Tensor):
        logits, aux = self.model(x)
        return (logits, aux) if self.has_aux else logits


def onnx_session(onnx_bytes: bytes) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(onnx_bytes, options, providers=["CPUExecutionProvider"])


@torch.inference_mode()
def parity(onnx_bytes: bytes, model: nn.Module, features: np.ndarray, batch_size: int = 4096) -> dict[str, float]:
    """Largest absolute differences between ONNX Runtime and PyTorch outputs on ``features``."""
    session = onnx_session(onnx_bytes)
    model = model.eval()
    worst = {"max_abs_diff_logits": 0.0, "max_abs_diff_leak_aux": 0.0}
    x_all = np.ascontiguousarray(features, dtype=np.float32)
    for s in range(0, x_all.shape[0], batch_size):
        x = x_all[s : s + batch_size]
        onnx_outputs = session.run(None, {INPUT_NAME: x})
        logits, aux = model(torch.from_numpy(x))
        worst["max_abs_diff_logits"] = max(
            worst["max_abs_diff_logits"], float(np.abs(onnx_outputs[0] - logits.numpy()).max())
        )
        if aux is not None:
            worst["max_abs_diff_leak_aux"] = max(
                worst["max_abs_diff_leak_aux"], float(np.abs(onnx_outputs[1] - aux.numpy()).max())
            )
    worst["samples_compared"] = int(x_all.shape[0])
    return worst
