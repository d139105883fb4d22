"""Where a study lives, how it samples, and the check that its trials can be compared.

The embedded store is Optuna's journal file: an append-only log of the study's operations,
written under a file lock, so a re-run replays it and carries on, and several processes
on one machine add trials to it at once. Machines share a study through a database
(Optuna's RDB storage, ``tuning.storage``), with a heartbeat so that a trial whose process
died is marked failed instead of running forever.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import optuna
from optuna.samplers import BaseSampler, TPESampler
from optuna.storages.journal import JournalFileBackend, JournalStorage

from leak_detection.training.config import RuntimeConfig, TrainerConfig
from leak_detection.tuning.settings import TuningSettings

logger = logging.getLogger(__name__)

OBJECTIVE_ATTR = "objective"
"""The study's user attribute recording what its trials were scored on."""

DEFAULT_SETTINGS_ATTR = "default_settings"
"""The user attribute of the trial that runs the mode's own training settings."""

HEARTBEAT_S, GRACE_S = 60, 300
"""A database trial is alive while its process writes a heartbeat each minute; after five silent minutes
(a killed process) another process marks it failed."""

NOT_COMPARED = {"checkpoint_dir", "fresh_start", "keep_checkpoints", *RuntimeConfig.__dataclass_fields__}
"""Settings that change where or how fast a trial runs, not the F1 it reaches."""


def journal_storage(path: Path) -> optuna.storages.BaseStorage:
    """The study file at ``path``: a journal that processes on this machine share under a file lock."""
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def database_storage(url: str) -> optuna.storages.BaseStorage:
    """A study in a database that trials on several machines share (postgresql://, mysql://, sqlite:///)."""
    with warnings.catch_warnings():
        # Heartbeats have been "experimental" since Optuna 2.9; they are what retires a dead process's trial.
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)


class TrialSeededSampler(BaseSampler):
    """TPE whose random numbers come from the study's seed and the trial's number only.

    A TPE sampler seeded once per process repeats itself: a resumed study drew its first trials'
    values again, and two processes on one study drew the same values side by side. A sampler
    made afresh for each trial, seeded from (seed, trial number), keeps a study reproducible and
    its trials distinct. ``constant_liar`` lets TPE steer away from trials still running elsewhere.
    """

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._tpe = self._for_trial(0)

    def _for_trial(self, number: int) -> TPESampler:
        return TPESampler(seed=(self._seed * 1_000_003 + number) % 2**32, constant_liar=True)

    def before_trial(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self._tpe = self._for_trial(trial.number)
        self._tpe.before_trial(study, trial)

    def infer_relative_search_space(self, study, trial):  # noqa: ANN001, ANN201 - BaseSampler's signature
        return self._tpe.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space):  # noqa: ANN001, ANN201
        return self._tpe.sample_relative(study, trial, search_space)

    def sample_independent(self, study, trial, param_name, param_distribution):  # noqa: ANN001, ANN201
        return self._tpe.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(self, study, trial, state, values) -> None:  # noqa: ANN001
        self._tpe.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._tpe.reseed_rng()


def objective_record(mode: str, data_fingerprint: str, settings: TuningSettings, training: dict[str, Any]) -> dict:
    """What a trial's F1 depends on besides the searched values: the mode, the data, the fixed settings."""
    fixed = TrainerConfig.from_params({**training, **settings.training}).to_dict()
    ignored = NOT_COMPARED | set(settings.search_space.names)
    return {
        "mode": mode,
        "score": "validation file-level leak F1 (best epoch)",
        "data_fingerprint": data_fingerprint,
        "fixed_training": {key: value for key, value in fixed.items() if key not in ignored},
    }


def _check_comparable(study: optuna.Study, record: dict[str, Any], where: str) -> None:
    recorded = study.user_attrs.get(OBJECTIVE_ATTR)
    if recorded is None:
        study.set_user_attr(OBJECTIVE_ATTR, record)
        return
    changed = sorted(k for k in record if k != "fixed_training" and recorded.get(k) != record[k])
    old, new = recorded.get("fixed_training", {}), record["fixed_training"]
    changed += sorted(f"training.{k}" for k in set(old) | set(new) if old.get(k) != new.get(k))
    if changed:
        raise ValueError(
            f"study {study.study_name!r} in {where} scored its trials with other {', '.join(changed)} than this run "
            f"would, so new trials could not be compared with them. Start a new study "
            f"(--params {record['mode']}.tuning.study_name=NEW_NAME) or put the settings back"
        )


def open_study(
    storage: optuna.storages.BaseStorage, settings: TuningSettings, record: dict[str, Any], training: dict[str, Any]
) -> optuna.Study:
    """The mode's study, created or resumed; a new one runs the mode's own settings first, to compare against."""
    name = settings.study_name_for(record["mode"])
    study = optuna.create_study(
        storage=storage,
        study_name=name,
        direction="maximize",
        sampler=TrialSeededSampler(settings.sampler_seed),
        pruner=settings.pruner.build(),
        load_if_exists=True,
    )
    _check_comparable(study, record, describe_storage(storage))
    if study.trials:
        logger.info("%s: resuming study %r with %d trials", record["mode"], name, len(study.trials))
    elif settings.enqueue_defaults:
        # Every setting, defaults included: the comparison is with what training would run.
        defaults = settings.search_space.values_inside(
            TrainerConfig.from_params({**training, **settings.training}).to_dict()
        )
        study.enqueue_trial(defaults, user_attrs={DEFAULT_SETTINGS_ATTR: True}, skip_if_exists=True)
    return study


def describe_storage(storage: optuna.storages.BaseStorage) -> str:
    """Where the study lives, without a database password."""
    if isinstance(storage, JournalStorage):
        path = Path(getattr(storage._backend, "_file_path", "journal"))  # noqa: SLF001 - Optuna keeps no public path
        return str(path.relative_to(Path.cwd())) if path.is_relative_to(Path.cwd()) else str(path)
    url = getattr(storage, "url", None)
    if url is None:
        return type(storage).__name__
    from sqlalchemy.engine import make_url  # Optuna's own dependency, needed only for a database

    return make_url(url).render_as_string(hide_password=True)
