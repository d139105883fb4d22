import optuna
import pytest

from leak_detection.tuning.search_space import SEARCHABLE, SearchSpace

GOOD = {
    "learning_rate": {"low": 1e-4, "high": 1e-2, "log": True},
    "batch_size": {"choices": [256, 512, 1024]},
    "dropout": {"low": 0.0, "high": 0.5, "step": 0.05},
    "warmup_epochs": {"low": 0, "high": 3},
}


def refusal(spec) -> str:
    with pytest.raises(ValueError) as raised:
        SearchSpace.from_params(spec)
    return str(raised.value)


def test_the_space_of_the_project_parameters_is_read_in_order():
    space = SearchSpace.from_params(GOOD)
    assert space.names == list(GOOD)
    assert [d.describe() for d in space.dimensions] == [
        "0.0001 to 0.01, log scale",
        "one of [256, 512, 1024]",
        "0 to 0.5, step 0.05",
        "0 to 3",
    ]


def test_suggested_values_lie_in_the_space_and_an_integer_setting_stays_an_integer():
    space = SearchSpace.from_params({**GOOD, "batch_size": {"low": 64, "high": 512, "log": True}})
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        values = space.suggest(study.ask())
        assert 1e-4 <= values["learning_rate"] <= 1e-2 and 0 <= values["dropout"] <= 0.5
        assert isinstance(values["batch_size"], int) and 64 <= values["batch_size"] <= 512


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"learnig_rate": {"low": 1e-4, "high": 1e-2}}, "search_space.learnig_rate: no training setting"),
        ({"epochs": {"low": 2, "high": 9}}, "search_space.epochs: a training setting a study does not search"),
        ({"seed": {"choices": [1, 2]}}, "search_space.seed: a training setting a study does not search"),
        ({"dropout": 0.3}, "must be a mapping {low: L, high: H}"),
        ({"dropout": {"low": 0.0, "high": 0.5, "choices": [0.1]}}, "give either a range or choices"),
        ({"dropout": {"low": 0.0}}, "low and high must be finite numbers with low < high"),
        ({"dropout": {"low": 0.5, "high": 0.1}}, "low < high, got low = 0.5, high = 0.1"),
        ({"dropout": {"low": 0.0, "high": 0.5, "scale": "log"}}, "unknown keys ['scale']"),
        ({"weight_decay": {"low": 0.0, "high": 0.1, "log": True}}, "a log scale needs low > 0"),
        ({"weight_decay": {"low": 1e-4, "high": 0.1, "log": True, "step": 0.01}}, "step and log cannot be used"),
        ({"batch_size": {"low": 64.0, "high": 512}}, "batch_size is an integer setting"),
        ({"batch_size": {"choices": []}}, "choices must be a non-empty list"),
        ({"batch_size": {"choices": [256, 256]}}, "repeat a value"),
        ({"batch_size": {"choices": [0, 256]}}, "training.batch_size = 0: must be an integer >= 1"),
        ({"learning_rate": {"low": 1e-4, "high": 2.0}}, "training.learning_rate = 2.0: must be a finite number"),
        ({"dropout": {"low": 0.0, "high": 1.0}}, "training.dropout = 1.0: must be in [0, 1)"),
    ],
)
def test_a_bad_entry_is_refused_with_the_key_and_what_is_wrong(spec, message):
    assert message in refusal(spec)


def test_every_bad_entry_is_named_at_once():
    message = refusal({"dropout": 0.3, "epochs": {"low": 1, "high": 2}, "learning_rate": {"low": 1e-4, "high": 1e-2}})
    assert "search_space.dropout" in message and "search_space.epochs" in message
    assert "search_space.learning_rate" not in message


@pytest.mark.parametrize("spec", [None, {}, [("dropout", {"low": 0, "high": 1})]])
def test_an_empty_or_shapeless_space_is_refused(spec):
    assert "search_space must be a non-empty mapping" in refusal(spec)


def test_the_searchable_settings_are_the_trajectorys_but_its_seed_and_precision():
    assert {"learning_rate", "batch_size", "augment_gain_db", "leak_aux_weight", "label_smoothing"} <= SEARCHABLE
    assert not {"seed", "amp", "epochs", "device", "checkpoint_dir"} & SEARCHABLE


def test_only_the_settings_inside_the_space_make_the_default_trial():
    space = SearchSpace.from_params(GOOD)
    inside = space.values_inside({"learning_rate": 1e-3, "batch_size": 2048, "dropout": 0.25, "epochs": 12})
    assert inside == {"learning_rate": 1e-3, "dropout": 0.25}
