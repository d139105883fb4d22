"""The ``training`` parameters, split by what each one changes.

Users write one flat ``training`` block (``conf/base/parameters.yml``) and
``model_meta.json`` records it flat as ``trainer_cfg``; inside, the block is three
parts:

- ``TrajectoryConfig``: everything that changes the path the weights take. A checkpoint
  made under other values cannot be continued, so the checkpoint fingerprint is this
  part, whole (``leak_detection.training.checkpoints.checkpoint_compatibility``).
- ``RuntimeConfig``: where and how fast the same path is computed.
- ``StoppingConfig``: how long the run lasts and where it keeps its checkpoints; a
  resumed run may change these (more epochs, more patience).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar, Self

import torch

from leak_detection.params_config import ParamsConfig

AMP_CHOICES = ("auto", "off", "bf16", "fp16")

COUNTS = ("epochs", "batch_size", "eval_batch_size", "keep_checkpoints", "patience")
"""The integers that must be at least 1."""

NUMBER_RANGES: dict[str, tuple[float, float, bool]] = {
    # AdamW multiplies the weights by (1 - learning_rate * weight_decay) every step: past
    # 1 it flips their sign. Rates and decays in use are 1e-5..1e-2 and 1e-4..0.1.
    "learning_rate": (0.0, 1.0, False),
    "weight_decay": (0.0, 1.0, True),
    "memory_budget_mb": (0.0, 1e9, False),
    "warmup_epochs": (0.0, 1e6, True),
    "grad_clip": (0.0, 1e6, True),
    "leak_aux_weight": (0.0, 1e3, True),
    # Beyond 60 dB the augmented levels leave the range any recording has.
    "augment_gain_db": (0.0, 60.0, True),
    "augment_tilt_db": (0.0, 60.0, True),
}
"""Lowest and highest allowed value of each number, and whether the lowest itself is allowed.
Infinities and NaN are never allowed."""

FRACTIONS = {"min_lr_ratio": True, "dropout": False, "label_smoothing": False}
"""Numbers from 0 up to 1, and whether 1 itself is allowed."""


def _problem(key: str, value: Any) -> str | None:
    """What ``value`` must be instead, or None when ``key`` has no rule or the value keeps it."""
    if key in COUNTS and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        return "an integer >= 1"
    if key in NUMBER_RANGES:
        low, high, low_allowed = NUMBER_RANGES[key]
        number = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not (number and (low <= value if low_allowed else low < value) and value <= high):
            return f"a finite number in {'[' if low_allowed else '('}{low:g}, {high:g}]"
    if key in FRACTIONS and not (0 <= value <= 1 if FRACTIONS[key] else 0 <= value < 1):
        return f"in [0, 1{']' if FRACTIONS[key] else ')'}"
    if key == "amp" and value not in AMP_CHOICES:
        return f"one of {list(AMP_CHOICES)}"
    if key == "device" and value != "auto":
        try:
            torch.device(value)
        except RuntimeError:
            return "'auto', 'cpu', 'cuda' or 'cuda:N'"
    return None


class _TrainingPart(ParamsConfig):
    """Checks every field of a part of the ``training`` block against the rules above."""

    SECTION = "training"

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            allowed = _problem(item.name, value)
            if allowed is not None:
                raise ValueError(f"training.{item.name} = {value!r}: must be {allowed}")


@dataclass(frozen=True)
class TrajectoryConfig(_TrainingPart):
    """The settings that shape the optimisation path, precision included."""

    batch_size: int = 1024
    learning_rate: float = 1e-3
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0
    min_lr_ratio: float = 0.01
    grad_clip: float = 1.0
    leak_aux_weight: float = 0.5
    dropout: float = 0.25
    seed: int = 42
    amp: str = "auto"
    augment_gain_db: float = 0.0
    augment_tilt_db: float = 0.0
    label_smoothing: float = 0.0


@dataclass(frozen=True)
class RuntimeConfig(_TrainingPart):
    """Where the loop runs and the speed switches that leave its numbers alone."""

    device: str = "auto"
    channels_last: bool = True
    compile: bool = False
    memory_budget_mb: float = 2048
    eval_batch_size: int = 8192


@dataclass(frozen=True)
class StoppingConfig(_TrainingPart):
    """How long the run lasts, and where its checkpoints live."""

    epochs: int = 30
    patience: int = 6
    checkpoint_dir: str = "data/06_models/checkpoints"
    keep_checkpoints: int = 3
    fresh_start: bool = False


@dataclass(frozen=True)
class TrainerConfig(ParamsConfig):
    """The ``training`` block: one flat mapping of parameters, held as its three concerns."""

    SECTION = "training"
    PARTS: ClassVar[dict[str, type[_TrainingPart]]] = {
        "trajectory": TrajectoryConfig,
        "runtime": RuntimeConfig,
        "stopping": StoppingConfig,
    }

    trajectory: TrajectoryConfig = field(default_factory=TrajectoryConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)
    stopping: StoppingConfig = field(default_factory=StoppingConfig)

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> Self:
        params = dict(params or {})
        owner = {item.name: part for part in cls.PARTS.values() for item in fields(part)}
        unknown = sorted(set(params) - set(owner))
        if unknown:
            raise ValueError(f"unknown {cls.SECTION} parameters {unknown}; allowed keys are {sorted(owner)}")
        return cls(
            **{
                name: part(**{key: value for key, value in params.items() if owner[key] is part})
                for name, part in cls.PARTS.items()
            }
        )

    def to_dict(self) -> dict[str, Any]:
        """The flat block, as users write it and ``model_meta.json`` records it."""
        return {key: value for name in self.PARTS for key, value in asdict(getattr(self, name)).items()}
