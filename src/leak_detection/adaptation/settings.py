"""The adaptation block of parameters (``<mode>.adaptation`` in parameters_adaptation.yml), checked whole."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

from leak_detection.adaptation.pseudo_labels import PseudoLabelSettings
from leak_detection.params_config import ParamsConfig
from leak_detection.training.config import TrainerConfig


@dataclass(frozen=True)
class AdaptationSettings(ParamsConfig):
    """Rounds of pseudo-labelling and fine-tuning, the rehearsal mix and the fine-tuning overrides.

    ``fine_tuning`` holds the keys of the mode's ``training`` block that differ when fine-tuning (fewer
    epochs, a lower learning rate); every other training setting is kept. Checkpoints go to
    ``adaptation_checkpoints/round_N`` beside training's.
    """

    SECTION = "adaptation"

    rounds: int = 1
    pseudo_labels: PseudoLabelSettings = field(default_factory=PseudoLabelSettings)
    rehearsal_ratio: float = 1.0
    seed: int = 0
    fine_tuning: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.pseudo_labels, dict):
            unknown = sorted(set(self.pseudo_labels) - set(PseudoLabelSettings.__dataclass_fields__))
            if unknown:
                raise ValueError(f"unknown adaptation.pseudo_labels keys {unknown}")
            object.__setattr__(self, "pseudo_labels", PseudoLabelSettings(**self.pseudo_labels))
        if isinstance(self.rounds, bool) or not isinstance(self.rounds, int) or not 1 <= self.rounds <= 10:
            raise ValueError(f"adaptation.rounds must be an integer from 1 to 10, got {self.rounds!r}")
        if isinstance(self.rehearsal_ratio, bool) or not 0 <= self.rehearsal_ratio <= 20:
            raise ValueError(f"adaptation.rehearsal_ratio must be a number from 0 to 20, got {self.rehearsal_ratio!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"adaptation.seed must be an integer >= 0, got {self.seed!r}")

    def trainer_config(self, training: dict[str, Any], round_index: int) -> TrainerConfig:
        """The mode's training settings with the fine-tuning overrides; each round checkpoints on its own."""
        folder = self.fine_tuning.get("checkpoint_dir") or str(
            PurePosixPath(training["checkpoint_dir"]).parent / "adaptation_checkpoints"
        )
        merged = {**training, **self.fine_tuning, "checkpoint_dir": f"{folder}/round_{round_index + 1}"}
        return TrainerConfig.from_params(merged)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "pseudo_labels": asdict(self.pseudo_labels)}
