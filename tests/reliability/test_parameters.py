"""Wrong parameters stop the run before any work, naming the key and the allowed values."""

import pytest
from kedro.config import OmegaConfigLoader
from kedro.framework.session import KedroSession

from leak_detection.parameters import ParameterError, parameter_problems
from tests.conftest import PROJECT


@pytest.fixture(scope="module")
def shipped_params():
    loader = OmegaConfigLoader(
        str(PROJECT / "conf"), base_env="base", default_run_env="local", merge_strategy={"parameters": "soft"}
    )
    return loader["parameters"]


def with_value(params, dotted, value):
    import copy

    params = copy.deepcopy(params)
    *parents, last = dotted.split(".")
    node = params
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return params


def test_the_shipped_parameters_are_valid(shipped_params):
    assert parameter_problems(shipped_params) == []


@pytest.mark.parametrize(
    "dotted, value, expected",
    [
        ("binary.training.epochs", -3, "training.epochs = -3: must be an integer >= 1"),
        ("multiclass.training.batch_size", 0, "training.batch_size = 0: must be an integer >= 1"),
        ("binary.predict.threshold", 1.5, "binary.predict.threshold = 1.5: must be null"),
        ("binary.mode", "ternary", "binary.mode = 'ternary': must be 'binary'"),
        ("front_end.n_mels", 0, "front_end.n_mels must be a positive integer, got 0"),
        ("splits.ratios.test", 0.3, "split ratios must sum to 1"),
        ("binary.training.amp", "fp8", "training.amp = 'fp8': must be one of ['auto', 'off', 'bf16', 'fp16']"),
        ("multiclass.training.learnig_rate", 0.1, "unknown training parameters ['learnig_rate']"),
        ("extraction.strict", "yes", "extraction.strict = 'yes': must be true or false"),
        ("extraction.workers", 0, "extraction.workers = 0: must be 'auto' (one process per available core)"),
        ("binary.predict.workers", "all", "binary.predict.workers = 'all': must be 'auto'"),
        ("multiclass.evaluation.batch_size", 0, "multiclass.evaluation.batch_size = 0: must be an integer >= 1"),
        ("label_mapping.CRACK", "BANG", "map to names that are not classes"),
        ("splits.holdout_sites", "site03*", "holdout_sites must be a list of group patterns"),
        ("multiclass.classes", ["LEAK"], "multiclass.classes: must hold LEAK and at least one other class"),
        ("binary.training.label_smoothing", 1.0, "training.label_smoothing = 1.0: must be in [0, 1)"),
        ("front_end.level_normalisation", "loud", "front_end.level_normalisation must be one of"),
        ("binary.evaluation.on_split_mismatch", "ignore", "must be one of ['use_model_split', 'stop']"),
        ("multiclass.evaluation.bootstrap.resamples", 100, "bootstrap.resamples must be an integer >= 1000, got 100"),
        ("mode_comparison.bootstrap.confidence", 1.5, "bootstrap.confidence must be in [0.5, 1), got 1.5"),
    ],
)
def test_each_bad_value_is_named_with_what_is_allowed(shipped_params, dotted, value, expected):
    problems = parameter_problems(with_value(shipped_params, dotted, value))
    assert any(expected in p for p in problems), problems


def test_a_run_with_bad_parameters_stops_before_any_work(project):
    before = {p for p in project.rglob("*") if p.is_file()}
    with pytest.raises(ParameterError) as err:
        with KedroSession.create(
            project_path=project,
            runtime_params={"binary": {"training": {"epochs": -1}}, "front_end": {"n_mels": 0}},
        ) as session:
            session.run(pipeline_names=["train_both"])
    message = str(err.value)
    assert "binary.training" in message and "front_end" in message  # every problem, not just the first
    created = {p for p in project.rglob("*") if p.is_file()} - before
    assert not [p for p in created if "data" in p.parts], created
