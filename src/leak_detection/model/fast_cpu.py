"""Fast operations for ``LeakCNNMulti`` on one-frame input, each equal to the plain layers it replaces.

``LeakCNNMulti(fast_cpu_ops=True)`` (the default) routes a one-frame input through
these; ``fast_cpu_ops=False`` runs the plain layers. Together they train at 15,048
samples/s against 6,620 for the plain layers in the same ``fit`` loop, 2.3x
(``python -m bench.profiles``, ``bench/results/profiles.txt``, 2 AMD EPYC cores). The
figures below come from the A/B runs listed in ``bench/README.md``. They were measured
on a CPU but run on any device (``bench/results/gpu_check_h200.json`` checks them on a GPU).

``tests/model/test_fast_cpu.py`` checks each against the plain computation: outputs
and gradients, in training and in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

POOLED_ROWS = 16


def keep_mask(shape: tuple[int, ...], p: float, device: torch.device) -> tuple[torch.Tensor, float]:
    """Dropout's mask: each element kept independently with probability ``1 - p``; and its scale.

    ``nn.Dropout`` draws with ``bernoulli_``, which on a CPU draws one element at a time
    (17 % of a training step). Here every 64-bit random draw gives four 16-bit
    lanes, and a lane is kept when it falls in the top ``1 - p`` of its range: a
    quarter of the generator calls and one comparison (1.10x a step, after ~1.2x for
    leaving ``bernoulli_``). ``p`` is thereby rounded to a multiple of 2**-16 (at most
    7.6e-6 off; 0.25 and 0.5 exactly), and the scale is that of the rounded ``p``, so
    the expected output is still exactly the input.
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


class LaneDropout(nn.Dropout):
    """``nn.Dropout`` drawing its mask with ``keep_mask``.

    The plain layers use it too, so both paths of the model see the same mask under
    the same seed; its distribution is checked against ``nn.Dropout``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)


class _ReluPairMax(torch.autograd.Function):
    """``max_pool1d(relu(h), 2)`` over the last dimension, for training.

    With gradients on, ``max_pool1d`` runs as a 2-D pool that records an int64 index
    per output (16 % of a CPU training step), and ReLU reads and writes the full-size
    activation twice more. ReLU commutes with a max, so it runs on the pooled half,
    and the backward needs one boolean per pair plus the pooled output's sign. Ties,
    zeros and an odd last element get the gradients ``max_pool1d(relu(h))`` gives them
    (the first of a tied pair wins; nothing flows through a zero; the last is dropped).
    One boolean per pair instead of an index gave 1.15x a step (with
    ``_RepeatRowsDropout``); the ReLU on the pooled half and flat float masks 1.16x more.
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


def relu_pool_pairs(h: torch.Tensor, training: bool) -> torch.Tensor:
    """``max_pool1d(relu(h), 2)``; in training without the pool's int64 indices (``_ReluPairMax``)."""
    # Inference keeps the plain layers: without gradients max_pool1d records no indices,
    # and they export to ONNX.
    return _ReluPairMax.apply(h) if training else F.max_pool1d(F.relu(h), 2)


def one_frame_convolutions(x: torch.Tensor, convs: Sequence[nn.Conv2d], training: bool) -> torch.Tensor:
    """The three convolutions, ReLUs and row max-pools on a ``[B, 1, n_mels, 1]`` input.

    One frame wide, the outer kernel columns only ever meet zero padding, so each 3x3
    convolution is the 1-D convolution of its middle column: a third of the
    multiply-adds, on faster kernels.
    """
    conv1, conv2, conv3 = convs
    h = x.squeeze(-1)
    h = F.relu(F.conv1d(h, conv1.weight[..., 1], conv1.bias, padding=1))
    h = relu_pool_pairs(F.conv1d(h, conv2.weight[..., 1], conv2.bias, padding=1), training)
    h = relu_pool_pairs(F.conv1d(h, conv3.weight[..., 1], conv3.bias, padding=1), training)
    return h.unsqueeze(-1)


def one_frame_fc(x: torch.Tensor, adaptive_pool: nn.Module, dropout_layer: nn.Dropout, fc: nn.Linear) -> torch.Tensor:
    """``fc(dropout(adaptive_pool(x).flatten(1)))`` for a one-frame ``x`` of ``[B, C, rows, 1]``.

    Adaptive pooling up to ``POOLED_ROWS`` rows only repeats rows when ``rows`` divides
    it. Without dropout, summing the matching weight columns of ``fc`` is the same
    product on the unrepeated features (the eval forward's fc "folded"); with dropout
    every repeated row needs its own mask, so the rows are repeated together with the
    dropout (``_RepeatRowsDropout``) without the pooling's cost.
    """
    rows = x.shape[-2]
    if POOLED_ROWS % rows:
        return fc(dropout_layer(adaptive_pool(x).flatten(1)))
    repeat = POOLED_ROWS // rows
    if dropout_layer.training and dropout_layer.p > 0:
        return fc(_RepeatRowsDropout.apply(x, repeat, dropout_layer.p))
    hidden, channels = fc.out_features, fc.in_features // POOLED_ROWS
    weight = fc.weight.view(hidden, channels, rows, repeat).sum(-1).view(hidden, channels * rows)
    return F.linear(x.flatten(1), weight, fc.bias)
