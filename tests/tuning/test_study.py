import subprocess
import sys
from types import SimpleNamespace

import optuna
import pytest

from leak_detection.tuning.settings import TuningSettings
from leak_detection.tuning.study import (
    DEFAULT_SETTINGS_ATTR,
    database_storage,
    describe_storage,
    journal_storage,
    objective_record,
    open_study,
)
from tests.conftest import PROJECT

SPACE = {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "dropout": {"low": 0.0, "high": 0.5}}
TRAINING = {"epochs": 3, "learning_rate": 1e-3, "dropout": 0.25, "checkpoint_dir": "ck/binary/checkpoints"}


def tuning(**overrides) -> TuningSettings:
    return TuningSettings.from_params({"search_space": SPACE, "enqueue_defaults": False, **overrides})


def study_in(storage, settings=None, fingerprint="data-1", training=TRAINING) -> optuna.Study:
    settings = settings or tuning()
    return open_study(storage, settings, objective_record("binary", fingerprint, settings, training), training)


def add_trials(study: optuna.Study, n: int) -> None:
    space = tuning().search_space
    study.optimize(lambda trial: space.suggest(trial)["dropout"], n_trials=n)


def test_a_study_resumes_from_its_file_with_the_trials_it_had(tmp_path):
    add_trials(study_in(journal_storage(tmp_path / "study.journal")), 2)
    resumed = study_in(journal_storage(tmp_path / "study.journal"))
    assert len(resumed.trials) == 2
    add_trials(resumed, 1)
    assert [t.number for t in study_in(journal_storage(tmp_path / "study.journal")).trials] == [0, 1, 2]


def test_a_resumed_study_draws_new_values_and_a_new_study_repeats_the_first_ones(tmp_path):
    # A TPE sampler seeded once per process would draw trial 0's values again as trial 2.
    first = study_in(journal_storage(tmp_path / "a.journal"))
    add_trials(first, 2)
    resumed = study_in(journal_storage(tmp_path / "a.journal"))
    add_trials(resumed, 2)
    values = [t.params["dropout"] for t in resumed.trials]
    assert len(set(values)) == 4
    again = study_in(journal_storage(tmp_path / "b.journal"))
    add_trials(again, 4)
    assert [t.params["dropout"] for t in again.trials] == values


WORKER = """
import sys
from pathlib import Path
from leak_detection.tuning.study import journal_storage
from tests.tuning.test_study import add_trials, study_in
add_trials(study_in(journal_storage(Path(sys.argv[1]))), 3)
"""


def test_two_processes_add_their_trials_to_one_study_file_at_once(tmp_path):
    path = tmp_path / "shared.journal"
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, str(path)], cwd=PROJECT) for _ in range(2)]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    trials = study_in(journal_storage(path)).trials
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.params["dropout"] for t in trials}) == 6


def test_a_new_study_first_runs_the_modes_own_settings_once(tmp_path):
    storage = journal_storage(tmp_path / "study.journal")
    study = study_in(storage, tuning(enqueue_defaults=True))
    add_trials(study, 2)
    first = study.trials[0]
    assert first.params == {"learning_rate": 1e-3, "dropout": 0.25}
    assert first.user_attrs[DEFAULT_SETTINGS_ATTR] is True
    resumed = study_in(storage, tuning(enqueue_defaults=True))
    add_trials(resumed, 1)
    assert sum(DEFAULT_SETTINGS_ATTR in t.user_attrs for t in resumed.trials) == 1


@pytest.mark.parametrize(
    ("fingerprint", "training", "named"),
    [
        ("data-2", TRAINING, "other data_fingerprint"),
        ("data-1", {**TRAINING, "epochs": 5}, "other training.epochs"),
    ],
)
def test_a_study_refuses_trials_scored_on_other_data_or_fixed_settings(tmp_path, fingerprint, training, named):
    storage = journal_storage(tmp_path / "study.journal")
    add_trials(study_in(storage), 1)
    with pytest.raises(ValueError, match=named) as raised:
        study_in(storage, fingerprint=fingerprint, training=training)
    assert "binary.tuning.study_name=NEW_NAME" in str(raised.value)


def test_searched_settings_and_where_a_trial_runs_may_change_between_runs(tmp_path):
    storage = journal_storage(tmp_path / "study.journal")
    add_trials(study_in(storage), 1)
    moved = {**TRAINING, "learning_rate": 5e-3, "device": "cpu", "checkpoint_dir": "elsewhere/checkpoints"}
    assert len(study_in(storage, training=moved).trials) == 1


def test_a_database_study_resumes_too(tmp_path):
    url = f"sqlite:///{tmp_path / 'study.db'}"
    add_trials(study_in(database_storage(url)), 1)
    assert len(study_in(database_storage(url)).trials) == 1


def test_a_database_password_never_reaches_a_report(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake = SimpleNamespace(url="postgresql://tuner:s3cret@db.example/optuna")
    assert describe_storage(fake) == "postgresql://tuner:***@db.example/optuna"
    assert describe_storage(journal_storage(tmp_path / "data/study.journal")) == "data/study.journal"
