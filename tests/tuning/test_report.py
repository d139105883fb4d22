import json

import optuna
import pytest
import yaml

from leak_detection.tuning.report import (
    history_figure,
    importance_figure,
    report_markdown,
    study_report,
    tuned_parameters_text,
)
from leak_detection.tuning.settings import TuningSettings
from leak_detection.tuning.study import DEFAULT_SETTINGS_ATTR
from tests.tuning.conftest import SPACE, make_objective

SETTINGS = TuningSettings.from_params({"search_space": SPACE, "training": {"epochs": 3}})


def finished_study(tmp_path, fake_training, *dropouts, prune_after=2) -> optuna.Study:
    pruner = optuna.pruners.MedianPruner(n_startup_trials=prune_after, n_warmup_steps=0)
    study = optuna.create_study(study_name="binary", direction="maximize", pruner=pruner)
    study.enqueue_trial({"dropout": 0.25}, user_attrs={DEFAULT_SETTINGS_ATTR: True})
    for dropout in dropouts:
        study.enqueue_trial({"dropout": dropout})
    study.optimize(make_objective(tmp_path, fake_training), n_trials=1 + len(dropouts))
    return study


def test_the_report_sets_the_best_trial_beside_the_default_settings(tmp_path, fake_training):
    study = finished_study(tmp_path, fake_training, 0.1, 0.45, 0.05)
    report = study_report(study, SETTINGS, "binary")
    assert report["trials"] == {"COMPLETE": 3, "PRUNED": 1}
    assert report["best_trial"]["number"] == 3 and report["best_trial"]["params"] == {"dropout": 0.05}
    assert report["default_settings_trial"]["number"] == 0
    assert report["gain_over_default_settings"] == pytest.approx(0.95 - 0.75)
    assert [t["number"] for t in report["ranking"]] == [3, 1, 0]
    assert report["seconds_per_trial"]["finished"] > 0 and report["seconds_per_trial"]["pruned"] > 0
    assert report["search_space"] == {"dropout": {"low": 0.0, "high": 0.5}}
    assert report["fixed_training"] == {"epochs": 3}
    json.dumps(report)  # what the JSON dataset saves


def test_parameter_importance_waits_for_enough_finished_trials(tmp_path, fake_training):
    few = study_report(finished_study(tmp_path, fake_training, 0.1), SETTINGS, "binary")
    assert few["parameter_importance"] == {}
    assert few["parameter_importance_note"] == "needs at least 5 finished trials (2 so far)"
    study = finished_study(tmp_path / "more", fake_training, 0.1, 0.2, 0.3, 0.05, prune_after=9)
    enough = study_report(study, SETTINGS, "binary")
    assert enough["parameter_importance"] == {"dropout": pytest.approx(1.0)}


def test_the_markdown_names_the_best_and_default_scores_and_the_command_that_trains_with_them(tmp_path, fake_training):
    markdown = report_markdown(study_report(finished_study(tmp_path, fake_training, 0.1), SETTINGS, "binary"))
    assert "**Best: trial 1, validation F1 0.900** against 0.750 for the default settings (trial 0)" in markdown
    assert "| dropout | 0.1 | 0.25 | 0 to 0.5 | – |" in markdown
    assert "`kedro run --pipelines train_both --env tuned` (reads `conf/tuned/parameters_tuned_binary.yml`)" in markdown


def test_the_tuned_parameters_file_holds_the_best_trials_settings_under_its_mode(tmp_path, fake_training):
    report = study_report(finished_study(tmp_path, fake_training, 0.1), SETTINGS, "multiclass")
    text = tuned_parameters_text(report)
    assert yaml.safe_load(text) == {"multiclass": {"training": {"dropout": 0.1}}}
    assert text.startswith("# Tuned training settings of multiclass: trial 1 of study 'binary'")


def test_the_figures_draw_finished_and_pruned_trials(tmp_path, fake_training):
    study = finished_study(tmp_path, fake_training, 0.1, 0.45)
    history = history_figure(study)
    finished, pruned = (c.get_offsets() for c in history.axes[0].collections)
    assert len(finished) == 2 and len(pruned) == 1
    empty = importance_figure(study_report(study, SETTINGS, "binary"))
    assert "needs at least 5 finished trials" in empty.axes[0].texts[0].get_text()


def test_a_study_without_a_finished_trial_has_no_report():
    study = optuna.create_study(study_name="binary")
    with pytest.raises(ValueError, match="study 'binary' has no finished trial yet"):
        study_report(study, SETTINGS, "binary")
