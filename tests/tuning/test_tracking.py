import logging

import pytest
from optuna.trial import TrialState

from leak_detection.tuning.tracking import TrialTracking
from tests.tuning.conftest import make_objective, study_with


class FakeMlflow:
    """Records the tracking calls; ``fail`` names a call that raises, as an unreachable store does."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.calls: list[tuple] = []

    def __getattr__(self, name):
        def call(*args, **kwargs):
            self.calls.append((name, args, kwargs))
            if name == self.fail:
                raise ConnectionError("tracking server unreachable")

        return call

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]


def test_each_trial_is_a_nested_run_with_its_settings_epochs_and_score(tmp_path, fake_training):
    mlflow = FakeMlflow()
    study_with(0.2).optimize(make_objective(tmp_path, fake_training, TrialTracking(mlflow)), n_trials=1)
    assert mlflow.names() == ["start_run", "log_params", *["log_metrics"] * 4, "end_run"]
    start, params, first_epoch, *_, score, end = mlflow.calls
    assert start[2] == {"run_name": "trial 0", "nested": True, "tags": {"tuning_trial": "0"}}
    assert params[1] == ({"dropout": 0.2},)
    assert first_epoch[1][0] == {"val_file_leak_f1": pytest.approx(0.8 / 3)} and first_epoch[2] == {"step": 1}
    assert score[1] == ({"objective_val_file_leak_f1": 0.8},)
    assert end[2] == {"status": "FINISHED"}


def test_a_pruned_trials_run_ends_as_killed(tmp_path, fake_training):
    mlflow = FakeMlflow()
    study = study_with(0.1, 0.1, 0.45)
    study.optimize(make_objective(tmp_path, fake_training, TrialTracking(mlflow)), n_trials=3)
    assert study.trials[2].state == TrialState.PRUNED
    assert [kwargs["status"] for name, _, kwargs in mlflow.calls if name == "end_run"] == ["FINISHED"] * 2 + ["KILLED"]


@pytest.mark.parametrize("fail", ["start_run", "log_params", "log_metrics"])
def test_a_tracking_failure_warns_once_and_every_trial_still_runs(tmp_path, fake_training, caplog, fail):
    mlflow = FakeMlflow(fail=fail)
    study = study_with(0.1, 0.2, 0.3, n_startup_trials=3)
    with caplog.at_level(logging.WARNING, logger="leak_detection.tuning.tracking"):
        study.optimize(make_objective(tmp_path, fake_training, TrialTracking(mlflow)), n_trials=3)
    assert [t.value for t in study.trials] == pytest.approx([0.9, 0.8, 0.7])
    # Optuna's own INFO lines reach the capture too where its logger propagates (a fresh environment).
    warned = [r for r in caplog.records if r.name == "leak_detection.tuning.tracking" and r.levelno >= logging.WARNING]
    assert len(warned) == 1 and "the study goes on untracked" in warned[0].getMessage()
    assert mlflow.names().count(fail) == 1
    # A run that was opened is closed, so the parent run gets its own later logs back.
    assert mlflow.names().count("end_run") == mlflow.names().count("start_run") - (fail == "start_run")


def test_without_an_active_run_nothing_is_tracked(tmp_path, fake_training, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setattr(mlflow, "active_run", lambda: None)
    tracking = TrialTracking()
    assert not tracking.active
    study_with(0.2).optimize(make_objective(tmp_path, fake_training, tracking), n_trials=1)


def test_trials_are_nested_runs_with_learning_curves_in_a_real_mlflow_store(tmp_path, fake_training, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    from mlflow.tracking._tracking_service import utils

    # Through the environment, as a user sets it, and undone after the test (``set_tracking_uri`` would leave
    # MLFLOW_TRACKING_URI set for every later Kedro session of this process).
    monkeypatch.setattr(utils, "_tracking_uri", None)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    with mlflow.start_run(run_name="a tuning run") as parent:
        study_with(0.1, 0.2).optimize(make_objective(tmp_path, fake_training), n_trials=2)
    client = mlflow.MlflowClient()
    trials = client.search_runs(
        [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", order_by=["start_time"]
    )
    assert [run.info.run_name for run in trials] == ["trial 0", "trial 1"]
    assert [run.data.metrics["objective_val_file_leak_f1"] for run in trials] == pytest.approx([0.9, 0.8])
    assert trials[0].data.params == {"dropout": "0.1"}
    curve = client.get_metric_history(trials[0].info.run_id, "val_file_leak_f1")
    assert [m.step for m in curve] == [1, 2, 3]
    assert mlflow.active_run() is None
