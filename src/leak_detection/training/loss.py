"""The training objective: class-weighted cross-entropy, plus the leak-vs-rest term."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class LeakLoss(nn.Module):
    """Class-weighted cross-entropy, plus the leak-vs-rest BCE when the model has that head.

    The auxiliary target is "this segment's recording is a LEAK", taken from the
    class name; the replaced system compared labels with LEAK's 5-class index, which
    in binary mode was never true (docs/architecture.md, D1).
    """

    def __init__(
        self,
        class_weights: list[float],
        leak_aux_weight: float = 0.5,
        leak_pos_weight: float = 1.0,
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.label_smoothing = label_smoothing
        self.register_buffer("class_weights", torch.tensor(class_weights, dtype=torch.float32))
        self.register_buffer("leak_pos_weight", torch.tensor([leak_pos_weight], dtype=torch.float32))
        self.leak_aux_weight = leak_aux_weight

    def forward(self, logits, aux, targets, is_leak) -> torch.Tensor:
        loss = F.cross_entropy(logits.float(), targets, weight=self.class_weights, label_smoothing=self.label_smoothing)
        if aux is not None:
            loss = loss + self.leak_aux_weight * F.binary_cross_entropy_with_logits(
                aux.float(), is_leak.float(), pos_weight=self.leak_pos_weight
            )
        return loss
