from pathlib import Path

import pytest
import yaml

from leak_detection.parameters import parameter_problems
from leak_detection.tuning.settings import TuningSettings
from tests.conftest import PROJECT

SPACE = {"learning_rate": {"low": 1e-4, "high": 1e-2, "log": True}, "dropout": {"low": 0.0, "high": 0.5}}
TRAINING = {"epochs": 12, "checkpoint_dir": "data/06_models/binary/checkpoints"}


def settings(**overrides) -> TuningSettings:
    return TuningSettings.from_params({"search_space": SPACE, **overrides})


def project_tuning() -> dict:
    return yaml.safe_load((PROJECT / "conf/base/parameters_tuning.yml").read_text())


def test_the_projects_tuning_blocks_are_valid_for_their_modes():
    conf = project_tuning()
    for mode in ("binary", "multiclass"):
        TuningSettings.from_params(conf[mode]["tuning"]).check_with(TRAINING, mode)
    assert "leak_aux_weight" in conf["multiclass"]["tuning"]["search_space"]
    assert "leak_aux_weight" not in conf["binary"]["tuning"]["search_space"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_trials": 0}, "tuning.n_trials must be an integer >= 1"),
        ({"timeout_s": -5}, "tuning.timeout_s must be null or a number of seconds > 0"),
        ({"study_name": "my study"}, "tuning.study_name must be null or a name"),
        ({"storage": "data/study.db"}, "tuning.storage must be null (the study file under data/) or a database URL"),
        ({"pruner": {"n_warmup_steps": -1}}, "tuning.pruner.n_warmup_steps must be an integer >= 0"),
        ({"pruner": {"patience": 2}}, "unknown tuning.pruner parameters ['patience']"),
        ({"sampler": "tpe"}, "unknown tuning parameters ['sampler']"),
        ({"enqueue_defaults": "yes"}, "tuning.enqueue_defaults must be true or false"),
        ({"search_space": None}, "search_space must be a non-empty mapping"),
    ],
)
def test_a_bad_tuning_block_is_refused_with_its_key(overrides, message):
    with pytest.raises(ValueError) as raised:
        settings(**overrides)
    assert message in str(raised.value)


def test_a_setting_both_searched_and_fixed_is_refused():
    with pytest.raises(ValueError, match=r"\['dropout'\] are both searched and fixed"):
        settings(training={"dropout": 0.1, "epochs": 4}).check_with(TRAINING, "multiclass")


def test_a_setting_without_effect_in_binary_is_refused_there_only():
    space = {**SPACE, "leak_aux_weight": {"low": 0.1, "high": 2.0}}
    with pytest.raises(ValueError, match="binary model has no leak-vs-rest head"):
        settings(search_space=space).check_with(TRAINING, "binary")
    settings(search_space=space).check_with(TRAINING, "multiclass")


def test_fixed_trial_settings_are_checked_as_training_settings():
    with pytest.raises(ValueError, match="training.epochs = 0"):
        settings(training={"epochs": 0}).check_with(TRAINING, "binary")


def test_a_trial_trains_from_scratch_in_its_own_folder_with_its_values_over_the_fixed_ones():
    tuning = settings(training={"epochs": 4})
    folder = tuning.trials_folder(TRAINING, "binary")
    assert folder.as_posix() == "data/06_models/binary/tuning/binary"
    assert settings(study_name="wide").trials_folder(TRAINING, "binary").name == "wide"
    block = tuning.trial_training({**TRAINING, "dropout": 0.25}, {"dropout": 0.4}, str(folder / "trial_0003"))
    assert block["dropout"] == 0.4 and block["epochs"] == 4 and block["fresh_start"] is True
    assert Path(block["checkpoint_dir"]).name == "trial_0003"


def test_the_parameter_check_names_a_bad_tuning_block_before_the_run_starts():
    params = {"binary": {"mode": "binary", "training": TRAINING, "tuning": {"search_space": {"lr": {"low": 0}}}}}
    problems = parameter_problems(params)
    assert problems == [
        "binary.tuning: search_space.lr: no training setting; searchable: " + problems[0].split("searchable: ")[1]
    ]
    conf = project_tuning()
    good = {mode: {"mode": mode, "training": TRAINING, "tuning": conf[mode]["tuning"]} for mode in ("binary",)}
    assert parameter_problems(good) == []
