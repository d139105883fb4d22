"""The tuning block of parameters (``<mode>.tuning`` in parameters_tuning.yml), checked whole."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath
from typing import Any

import optuna

from leak_detection.params_config import ParamsConfig
from leak_detection.training.config import StoppingConfig, TrainerConfig
from leak_detection.tuning.search_space import SearchSpace

NO_EFFECT_IN_BINARY = {"leak_aux_weight": "the binary model has no leak-vs-rest head, so it has no effect"}


def _count(section: str, name: str, value: Any, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{section}.{name} must be an integer >= {minimum}, got {value!r}")


@dataclass(frozen=True)
class PrunerSettings(ParamsConfig):
    """Optuna's median rule: stop a trial whose best validation F1 so far is below the median of earlier
    trials' at the same epoch."""

    SECTION = "tuning.pruner"

    n_startup_trials: int = 4
    n_warmup_steps: int = 2

    def __post_init__(self) -> None:
        _count(self.SECTION, "n_startup_trials", self.n_startup_trials, 0)
        _count(self.SECTION, "n_warmup_steps", self.n_warmup_steps, 0)

    def build(self) -> optuna.pruners.BasePruner:
        return optuna.pruners.MedianPruner(n_startup_trials=self.n_startup_trials, n_warmup_steps=self.n_warmup_steps)


@dataclass(frozen=True)
class TuningSettings(ParamsConfig):
    """How many trials a run adds, where the study lives, how trials are sampled and pruned, and the space.

    ``training`` holds the training settings every trial uses instead of the mode's (fewer epochs, say);
    the searched settings come from ``search_space``; every other setting is the mode's ``training``.
    """

    SECTION = "tuning"

    n_trials: int = 20
    timeout_s: float | None = None
    study_name: str | None = None
    storage: str | None = None
    sampler_seed: int = 42
    enqueue_defaults: bool = True
    keep_trial_checkpoints: bool = False
    pruner: PrunerSettings = field(default_factory=PrunerSettings)
    training: dict[str, Any] = field(default_factory=dict)
    search_space: SearchSpace | dict[str, Any] | None = None

    def __post_init__(self) -> None:
        _count(self.SECTION, "n_trials", self.n_trials, 1)
        _count(self.SECTION, "sampler_seed", self.sampler_seed, 0)
        if self.timeout_s is not None and (isinstance(self.timeout_s, bool) or not self.timeout_s > 0):
            raise ValueError(f"tuning.timeout_s must be null or a number of seconds > 0, got {self.timeout_s!r}")
        if self.study_name is not None and (not isinstance(self.study_name, str) or not self.study_name.isidentifier()):
            raise ValueError(
                f"tuning.study_name must be null or a name of letters, digits and _, got {self.study_name!r}"
            )
        if self.storage is not None and (not isinstance(self.storage, str) or "://" not in self.storage):
            raise ValueError(
                f"tuning.storage must be null (the study file under data/) or a database URL such as "
                f"postgresql://user@host/db or sqlite:///path.db, got {self.storage!r}"
            )
        for name in ("enqueue_defaults", "keep_trial_checkpoints"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"tuning.{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.training, dict):
            raise ValueError(f"tuning.training must be a mapping of training settings, got {self.training!r}")
        if not isinstance(self.pruner, PrunerSettings):
            object.__setattr__(self, "pruner", PrunerSettings.from_params(self.pruner))
        if not isinstance(self.search_space, SearchSpace):
            object.__setattr__(self, "search_space", SearchSpace.from_params(self.search_space))

    def study_name_for(self, mode: str) -> str:
        return self.study_name or mode

    def check_with(self, training: dict[str, Any], mode: str) -> None:
        """Refuse a block that cannot make a trial's training settings for ``mode``'s ``training``."""
        searched_and_fixed = sorted(set(self.search_space.names) & set(self.training))
        if searched_and_fixed:
            raise ValueError(f"tuning: {searched_and_fixed} are both searched and fixed in tuning.training")
        if mode == "binary":
            pointless = {k: why for k, why in NO_EFFECT_IN_BINARY.items() if k in self.search_space.names}
            if pointless:
                raise ValueError(f"tuning.search_space: {pointless}; leave it out of binary's space")
        TrainerConfig.from_params({**training, **self.training})

    def trial_training(self, training: dict[str, Any], searched: dict[str, Any], folder: str) -> dict[str, Any]:
        """One trial's training block: its searched values over the fixed ones, in its own checkpoint folder."""
        return {**training, **self.training, **searched, "checkpoint_dir": folder, "fresh_start": True}

    def trials_folder(self, training: dict[str, Any], mode: str) -> PurePosixPath:
        """Where the study's trials checkpoint: ``tuning/<study>`` beside the mode's own checkpoints, or
        ``<tuning.training.checkpoint_dir>/<study>``."""
        checkpoints = PurePosixPath(training.get("checkpoint_dir") or StoppingConfig.checkpoint_dir)
        parent = self.training.get("checkpoint_dir") or checkpoints.parent / "tuning"
        return PurePosixPath(parent) / self.study_name_for(mode)

    def to_dict(self) -> dict[str, Any]:
        searched = {
            d.name: {k: v for k, v in asdict(d).items() if v is not None and v is not False and k != "name"}
            for d in self.search_space.dimensions
        }
        return {**asdict(self), "search_space": searched}
