"""LeakCNNMulti: the small CNN that scores one short segment's log-mel column.

The layers are those of the replaced system, so its users' code
(``LeakCNNMulti(n_classes=2)``, ``load_state_dict``, ``logits, _ = model(x)``) keeps
working. Unlike it, the input normalisation (per-mel mean and standard deviation of
the training split) lives in the model as buffers, so a saved state_dict is all a
deployment needs.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

POOLED_ROWS = 16


def keep_mask(shape: tuple[int, ...], p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """Dropout's mask: each element kept independently with probability ``1 - p``; and its scale.

    ``nn.Dropout`` draws with ``bernoulli_``, which on a CPU draws one element at a time
    (17 % of a training step). Here every 64-bit random draw gives four 16-bit
    lanes, and a lane is kept when it falls in the top ``1 - p`` of its range: a
    quarter of the generator calls and one comparison. ``p`` is thereby rounded to a
    multiple of 2**-16 (at most 7.6e-6 off; 0.25 and 0.5 exactly), and the scale is
    that of the rounded ``p``, so the expected output is still exactly the input.
    """
    n = math.prod(shape)
    kept_lanes = max(1, round((1.0 - p) * 65536))
    bits = torch.empty(-(-n // 4), dtype=torch.int64, device=device).random_(-(2**63), None)
    lanes = bits.view(torch.int16)[:n].view(shape)  # uniform over -32768 .. 32767
    return lanes >= 32768 - kept_lanes, 65536 / kept_lanes


def dropout(x: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """Inverted dropout, as ``nn.Dropout``, with the mask of ``keep_mask``."""
    if not training or p == 0:
        return x
    keep, scale = keep_mask(tuple(x.shape), p, x.device)
    return x * scale * keep


class _ReluPairMax(torch.autograd.Function):
    """``max_pool1d(relu(h), 2)`` over the last dimension, for training.

    With gradients on, ``max_pool1d`` runs as a 2-D pool that records an int64 index
    per output (16 % of a CPU training step), and ReLU reads and writes the full-size
    activation twice more. ReLU commutes with a max, so it runs on the pooled half,
    and the backward needs one boolean per pair plus the pooled output's sign. Ties,
    zeros and an odd last element get the gradients ``max_pool1d(relu(h))`` gives them
    (the first of a tied pair wins; nothing flows through a zero; the last is dropped).
    """

    @staticmethod
    def forward(ctx, h: torch.Tensor) -> torch.Tensor:
        length = h.shape[-1]
        first, second = h[..., 0 : length - 1 : 2], h[..., 1:length:2]
        out = torch.maximum(first, second).clamp_min_(0)
        ctx.save_for_backward(second > first, out)
        ctx.length = length
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        take_second, out = ctx.saved_tensors
        grad = grad * (out > 0).to(grad.dtype)
        shape = (*grad.shape[:-1], ctx.length)
        # Every element is written below except an odd last one, which max_pool1d ignores.
        grad_in = grad.new_zeros(shape) if ctx.length % 2 else grad.new_empty(shape)
        to_second = torch.mul(grad, take_second.to(grad.dtype), out=grad_in[..., 1 : ctx.length : 2])
        torch.sub(grad, to_second, out=grad_in[..., 0 : ctx.length - 1 : 2])
        return grad_in


class _RepeatRowsDropout(torch.autograd.Function):
    """``dropout(x.repeat_interleave(repeat, dim=-2).flatten(1))`` in one pass.

    Each repeated row needs its own mask, so the repeat is real, but neither autograd's
    repeat nor a bool mask is: the masked gradient is summed back over the repeats
    with strided adds (a ``sum`` over an innermost dimension of 2 took 15x longer). The
    mask is drawn as ``dropout`` draws it, over the same flattened positions, so the
    numbers are those of repeating and then calling ``dropout``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, repeat: int, p: float) -> torch.Tensor:
        batch, channels, rows = x.shape[:3]
        keep, scale = keep_mask((batch, channels * rows * repeat), p, x.device)
        # Every operand is flat and float: CPU kernels that mix a bool operand or
        # broadcast over an innermost dimension of 2 ran 3-10x slower on these tensors.
        mask = keep.to(x.dtype)
        ctx.save_for_backward(mask)
        ctx.scale, ctx.repeat, ctx.x_shape = scale, repeat, x.shape
        repeated = x.reshape(batch, channels * rows, 1).repeat_interleave(repeat, dim=-1).view(batch, -1)
        return repeated.mul_(scale).mul_(mask)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (mask,) = ctx.saved_tensors
        masked = (grad * mask).view(grad.shape[0], -1, ctx.repeat)
        grad_x = masked[..., 0].clone() if ctx.repeat == 1 else masked[..., 0] + masked[..., 1]
        for k in range(2, ctx.repeat):
            grad_x += masked[..., k]
        return grad_x.mul_(ctx.scale).view(ctx.x_shape), None, None


def _relu_pool_pairs(h: torch.Tensor, training: bool) -> torch.Tensor:
    # Inference keeps the plain layers: without gradients max_pool1d records no indices,
    # and they export to ONNX.
    return _ReluPairMax.apply(h) if training else F.max_pool1d(F.relu(h), 2)


class LeakCNNMulti(nn.Module):
    """``[B, 1, n_mels, n_frames]`` log-mel input to ``(logits, aux_logit_or_None)``.

    Args:
        n_classes: 2 (binary: ``[NOLEAK, LEAK]``) or 5 (multiclass).
        n_mels: mel bands of the input (32 by default).
        leak_aux_head: add the leak-vs-rest head ``Linear(256, 1)``; by default only
            the multiclass model has it.
        dropout: dropout before the hidden layer.
    """

    def __init__(
        self,
        n_classes: int = 5,
        n_mels: int = 32,
        leak_aux_head: bool | None = None,
        dropout: float = 0.25,
    ) -> None:
        super().__init__()
        if n_classes < 2:
            raise ValueError(f"n_classes must be at least 2, got {n_classes}")
        self.n_classes = n_classes
        self.conv1 = nn.Conv2d(1, 32, kernel_size=3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3, padding=1)
        self.conv3 = nn.Conv2d(64, 128, kernel_size=3, padding=1)
        self.pool = nn.MaxPool2d(kernel_size=(2, 1))
        self.adaptive_pool = nn.AdaptiveAvgPool2d((POOLED_ROWS, 1))
        self.dropout = nn.Dropout(dropout)
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

    def _dropout(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.dropout.p, self.training)

    def _single_frame_features(self, x: torch.Tensor) -> torch.Tensor:
        # One frame wide: the outer kernel columns only ever meet zero padding, so
        # each 3x3 convolution is the 1-D convolution of its middle column, at a
        # third of the work and on faster kernels.
        h = x.squeeze(-1)
        h = F.relu(F.conv1d(h, self.conv1.weight[..., 1], self.conv1.bias, padding=1))
        h = _relu_pool_pairs(F.conv1d(h, self.conv2.weight[..., 1], self.conv2.bias, padding=1), self.training)
        h = _relu_pool_pairs(F.conv1d(h, self.conv3.weight[..., 1], self.conv3.bias, padding=1), self.training)
        return h.unsqueeze(-1)

    def _hidden_input(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = x.shape[-2:]
        dropout_active = self.training and self.dropout.p > 0
        if cols == 1 and POOLED_ROWS % rows == 0 and not dropout_active:
            # Adaptive pooling up to 16 rows only repeats rows; summing the matching
            # weight columns of fc is the same product on the unrepeated features.
            repeat = POOLED_ROWS // rows
            weight = self.fc.weight.view(256, 128, rows, repeat).sum(-1).view(256, 128 * rows)
            return F.linear(x.flatten(1), weight, self.fc.bias)
        if cols == 1 and POOLED_ROWS % rows == 0:
            # With dropout active every repeated row needs its own mask: repeat the rows
            # (what the adaptive pooling computes here) without the pooling's cost.
            return self.fc(_RepeatRowsDropout.apply(x, POOLED_ROWS // rows, self.dropout.p))
        return self.fc(self._dropout(self.adaptive_pool(x).flatten(1)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = (x - self.input_mean) / self.input_std
        if x.shape[-1] == 1:
            x = self._single_frame_features(x)
        else:
            x = F.relu(self.conv1(x))
            x = self.pool(F.relu(self.conv2(x)))
            x = self.pool(F.relu(self.conv3(x)))
        hidden = F.relu(self._hidden_input(x))
        logits = self.head(hidden)
        aux = self.leak_aux(hidden).squeeze(-1) if self.leak_aux is not None else None
        return logits, aux

    def forward_reference(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The layers written out plainly, for checking the fast path.

        Dropout draws its mask as the fast path does (``dropout``), so both see the
        same mask under the same seed; ``dropout`` itself is checked against ``nn.Dropout``.
        """
        x = (x - self.input_mean) / self.input_std
        x = F.relu(self.conv1(x))
        x = self.pool(F.relu(self.conv2(x)))
        x = self.pool(F.relu(self.conv3(x)))
        x = self.adaptive_pool(x).flatten(1)
        hidden = F.relu(self.fc(self._dropout(x)))
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
