"""Table of contents of the project's pipelines.

Shared, mode-independent work (read, check, resample, featurise, split) runs once;
each template is instantiated under the ``binary`` and ``multiclass`` namespaces,
and the namespace is the only difference between the two branches.
"""

from __future__ import annotations

from kedro.pipeline import Pipeline

from leak_detection.pipelines import data_indexing, feature_extraction

MODES = ("binary", "multiclass")
SHARED_DATASETS = {"recordings_index", "mel_features"}
"""Outputs of the shared part that every mode reads under their own (unprefixed) name."""


def _for_mode(template: Pipeline, mode: str) -> Pipeline:
    return Pipeline(template, namespace=mode, inputs=SHARED_DATASETS & template.inputs())


def register_pipelines() -> dict[str, Pipeline]:
    shared = feature_extraction.create_pipeline()
    templates = [data_indexing.create_pipeline()]
    branch = {mode: sum((_for_mode(t, mode) for t in templates), Pipeline([])) for mode in MODES}
    train_both = shared + branch["binary"] + branch["multiclass"]
    return {
        "feature_extraction": shared,
        "data_indexing": shared + sum(
            (_for_mode(data_indexing.create_pipeline(), mode) for mode in MODES), Pipeline([])
        ),
        "binary": shared + branch["binary"],
        "multiclass": shared + branch["multiclass"],
        "train_both": train_both,
        "train_from_store": train_both.filter(
            from_nodes=["feature_extraction.index_recordings_node"]
        ),
        "__default__": train_both,
    }
