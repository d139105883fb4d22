"""Search one mode's training settings with Optuna, and turn the study into a report and a parameters file.

Each trial is a training run of the mode's own ``train_model``, scored on validation file-level
leak F1 (``leak_detection.tuning``); the study lives in the catalog's study file, or in the
database ``tuning.storage`` names, and resumes there.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import optuna
import pandas as pd
from matplotlib.figure import Figure

from leak_detection.features.store import MelFeatureStore
from leak_detection.metrics.model_split import dataset_fingerprint
from leak_detection.pipelines.training.nodes import train_model
from leak_detection.tuning.objective import OnEpoch, TrialObjective
from leak_detection.tuning.report import (
    history_figure,
    importance_figure,
    report_markdown,
    study_report,
    tuned_parameters_text,
)
from leak_detection.tuning.settings import TuningSettings
from leak_detection.tuning.study import database_storage, describe_storage, objective_record, open_study
from leak_detection.tuning.tracking import TrialTracking

logger = logging.getLogger(__name__)

TRIAL_ERRORS = (RuntimeError,)
"""A trial that runs out of memory or diverges is marked failed and the study goes on; a ValueError
(inputs that do not belong together, say) would fail every trial and stops the run."""


def _trained_meta(
    mel_features: MelFeatureStore,
    file_targets: pd.DataFrame,
    class_summary: dict[str, Any],
    mode: str,
    training: dict[str, Any],
    on_epoch: OnEpoch,
) -> dict[str, Any]:
    return train_model(mel_features, file_targets, class_summary, training, mode, on_epoch)[1]


def run_study(  # noqa: PLR0913 - the training inputs, the study's store and three parameter blocks
    mel_features: MelFeatureStore,
    file_targets: pd.DataFrame,
    class_summary: dict[str, Any],
    tuning_storage: optuna.storages.BaseStorage,
    training: dict[str, Any],
    tuning: dict[str, Any],
    mode: str,
) -> optuna.Study:
    """The mode's study after this run's ``n_trials`` more trials (created, or resumed where it stopped)."""
    settings = TuningSettings.from_params(tuning)
    settings.check_with(training, mode)
    storage = database_storage(settings.storage) if settings.storage else tuning_storage
    record = objective_record(mode, dataset_fingerprint(mel_features, file_targets), settings, training)
    study = open_study(storage, settings, record, training)
    objective = TrialObjective(
        train=partial(_trained_meta, mel_features, file_targets, class_summary, mode),
        training=training,
        settings=settings,
        folder=settings.trials_folder(training, mode),
        tracking=TrialTracking(),
    )
    logger.info(
        "%s: %d trials into study %r in %s", mode, settings.n_trials, study.study_name, describe_storage(storage)
    )
    study.optimize(
        objective, n_trials=settings.n_trials, timeout=settings.timeout_s, catch=TRIAL_ERRORS, gc_after_trial=True
    )
    return study


def study_outcome(
    study: optuna.Study, tuning: dict[str, Any], mode: str
) -> tuple[dict[str, Any], str, dict[str, Figure], pd.DataFrame, str]:
    """The report (JSON, Markdown, figures, every trial) and the best trial's settings as a parameters file."""
    report = study_report(study, TuningSettings.from_params(tuning), mode)
    best = report["best_trial"]
    logger.info(
        "%s: best of study %r: trial %d, validation F1 %.3f", mode, study.study_name, best["number"], best["value"]
    )
    figures = {"optimisation_history.png": history_figure(study), "parameter_importance.png": importance_figure(report)}
    trials = study.trials_dataframe(attrs=("number", "state", "value", "duration", "params", "user_attrs"))
    return report, report_markdown(report), figures, trials, tuned_parameters_text(report)
