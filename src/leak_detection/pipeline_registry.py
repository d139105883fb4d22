"""Table of contents of the project's pipelines.

Shared, mode-independent work (read, check, resample, featurise, split) runs once;
each template is instantiated under the ``binary`` and ``multiclass`` namespaces,
and the namespace is the only difference between the two branches.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from leak_detection.pipelines import (
    adaptation,
    data_indexing,
    deployment,
    evaluation,
    feature_extraction,
    mode_comparison,
    predict,
    training,
    tuning,
)

MODES = ("binary", "multiclass")
SHARED_DATASETS = {"recordings_index", "mel_features", "inbox", "adaptation_recordings"}
"""Outputs of the shared part that every mode reads under their own (unprefixed) name."""
SHARED_PARAMETERS = {"params:data_source", "params:label_mapping"}
"""Run-wide parameters that every mode reads under their own (unprefixed) name."""


ADAPTED_MODEL = {"model": "adapted_model", "model_meta": "adapted_model_meta"}
"""Evaluation and deployment of a model adapted in the same run: the same templates, fed the new version."""


def _instantiate(templates: list[Pipeline], modes: tuple[str, ...] = MODES, renamed: dict | None = None) -> Pipeline:
    """Each template once per mode, its datasets and parameters prefixed with the mode."""
    return sum(
        (
            Pipeline(
                t,
                namespace=mode,
                inputs={
                    **{name: name for name in SHARED_DATASETS & t.inputs()},
                    **{old: f"{mode}.{new}" for old, new in (renamed or {}).items() if old in t.inputs()},
                },
                parameters=SHARED_PARAMETERS & t.inputs(),
            )
            for mode in modes
            for t in templates
        ),
        Pipeline([]),
    )


def register_pipelines() -> dict[str, Pipeline]:
    shared = feature_extraction.create_pipeline()
    templates = {
        "data_indexing": data_indexing.create_pipeline(),
        "training": training.create_pipeline(),
        "evaluation": evaluation.create_pipeline(),
        "deployment": deployment.create_pipeline(),
    }
    train_both = shared + _instantiate(list(templates.values())) + mode_comparison.create_pipeline()
    return {
        "feature_extraction": shared,
        "data_indexing": shared + _instantiate([templates["data_indexing"]]),
        "training": _instantiate([templates["training"]]),
        "evaluation": _instantiate([templates["evaluation"]]) + mode_comparison.create_pipeline(),
        "deployment": _instantiate([templates["deployment"]]),
        "predict": _instantiate([predict.create_pipeline()]),
        "tune": _instantiate([tuning.create_pipeline()]),
        "adapt": _instantiate([adaptation.create_pipeline()])
        + _instantiate([templates["evaluation"], templates["deployment"]], renamed=ADAPTED_MODEL),
        **{mode: shared + _instantiate(list(templates.values()), (mode,)) for mode in MODES},
        "train_both": train_both,
        "train_from_store": train_both.filter(from_nodes=["feature_extraction.index_recordings_node"]),
        "__default__": train_both,
    }
