"""LeakCNNMulti: the small CNN that scores one short segment's log-mel column.

The layers are those of the replaced system, so its users' code
(``LeakCNNMulti(n_classes=2)``, ``load_state_dict``, ``logits, _ = model(x)``) keeps
working. Unlike it, the input normalisation (per-mel mean and standard deviation of
the training split) lives in the model as buffers, so a saved state_dict is all a
deployment needs.

One switch, ``fast_cpu_ops`` (on by default), runs a one-frame input through the
operations of ``leak_detection.model.fast_cpu``: the outputs and gradients of the
layers in ``forward`` (to float rounding; the same dropout mask under the same seed),
2.3x faster to train on a CPU. Other inputs always take the layers.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from leak_detection.model import fast_cpu
from leak_detection.model.fast_cpu import POOLED_ROWS, LaneDropout


class LeakCNNMulti(nn.Module):
    """``[B, 1, n_mels, n_frames]`` log-mel input to ``(logits, aux_logit_or_None)``.

    Args:
        n_classes: 2 (binary: ``[NOLEAK, LEAK]``) or 5 (multiclass).
        n_mels: mel bands of the input (32 by default).
        leak_aux_head: add the leak-vs-rest head ``Linear(256, 1)``; by default only
            the multiclass model has it.
        dropout: dropout before the hidden layer.
        fast_cpu_ops: run one-frame inputs through ``leak_detection.model.fast_cpu``;
            False runs the layers as written. An attribute too, so a built model can
            be switched; it is not part of the state_dict.
    """

    def __init__(
        self,
        n_classes: int = 5,
        n_mels: int = 32,
        leak_aux_head: bool | None = None,
        dropout: float = 0.25,
        fast_cpu_ops: bool = True,
    ) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        self.n_classes = n_classes
        self.fast_cpu_ops = fast_cpu_ops
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=(2, 1))
        self.adaptive_pool = nn.AdaptiveAvgPool2d((POOLED_ROWS, 1))
        self.dropout = LaneDropout(dropout)
        self.fc = nn.Linear(128 * POOLED_ROWS, 256)
        self.head = nn.Linear(256, n_classes)
        use_aux = n_classes > 2 if leak_aux_head is None else leak_aux_head
        self.leak_aux = nn.Linear(256, 1) if use_aux else None
        self.register_buffer("input_mean", torch.zeros(1, 1, n_mels, 1))
        self.register_buffer("input_std", torch.ones(1, 1, n_mels, 1))

    def set_normalisation(self, mean: torch.Tensor | np.ndarray, std: torch.Tensor | np.ndarray) -> None:
        """Per-mel statistics of the training split; std is floored to avoid dividing by ~0."""
        mean = torch.as_tensor(mean, dtype=torch.float32).reshape(self.input_mean.shape)
        std = torch.as_tensor(std, dtype=torch.float32).reshape(self.input_std.shape)
        self.input_mean.copy_(mean)
        self.input_std.copy_(std.clamp_min(1e-3))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = (x - self.input_mean) / self.input_std
        if self.fast_cpu_ops and x.shape[-1] == 1:
            x = fast_cpu.one_frame_convolutions(x, (self.conv1, self.conv2, self.conv3), self.training)
            hidden = F.relu(fast_cpu.one_frame_fc(x, self.adaptive_pool, self.dropout, self.fc))
        else:
            x = F.relu(self.conv1(x))
            x = self.pool(F.relu(self.conv2(x)))
            x = self.pool(F.relu(self.conv3(x)))
            x = self.adaptive_pool(x).flatten(1)
            hidden = F.relu(self.fc(self.dropout(x)))
        logits = self.head(hidden)
        aux = self.leak_aux(hidden).squeeze(-1) if self.leak_aux is not None else None
        return logits, aux


def param_count(model: nn.Module) -> int:
    """Trainable parameters (the normalisation buffers are not parameters)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def state_dict_sha256(state_dict: dict[str, torch.Tensor]) -> str:
    """A hash of the weights themselves, so a model and its meta can be matched."""
    digest = hashlib.sha256()
    for key in sorted(state_dict):
        tensor = state_dict[key].detach().cpu().contiguous()
        digest.update(key.encode())
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def non_finite_tensors(state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity."""
    return [
        key
        for key, tensor in state_dict.items()
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all())
    ]


def model_from_state(state_dict: dict[str, torch.Tensor], meta: dict) -> LeakCNNMulti:
    """Rebuild a saved model in eval mode, refusing a meta that does not describe these weights.

    The meta is checked field by field (``leak_detection.model.meta``): a model and a
    ``model_meta.json`` of different versions, or a hand-edited threshold or class
    order, would otherwise decide with numbers the weights were not made for. Weights
    holding a NaN or an infinity are refused: every score they give is NaN.
    """
    # Imported here: model_meta needs state_dict_sha256 from this module.
    from leak_detection.model.meta import check_model_meta

    check_model_meta(meta, state_dict)
    bad = non_finite_tensors(state_dict)
    if bad:
        raise ValueError(
            f"the model weights hold NaN or infinite values (in {', '.join(bad[:5])}); "
            "this model cannot score anything: retrain it (see 'When things go wrong' in the README)"
        )
    model = LeakCNNMulti(n_classes=int(meta["num_classes"]), n_mels=int(meta["feature_config"].get("n_mels", 32)))
    model.load_state_dict(state_dict)  # strict: a mismatched checkpoint is an error, never a partial load
    return model.eval()
