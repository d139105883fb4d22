"""The mode comparison never silently describes models that are no longer the latest; the feature
store guard refuses to extract into a store the user named."""

import pytest
from kedro.io import DataCatalog, MemoryDataset

from leak_detection.hooks import ModeComparisonHook
from tests.pipelines.mode_comparison.test_nodes import BOOTSTRAP, metrics, model_scores, predictions


def run_hook(catalog, saved):
    hook = ModeComparisonHook()
    hook.before_pipeline_run()
    for name in saved:
        hook.after_dataset_saved(name)
    hook.after_pipeline_run(catalog)


def test_a_branch_evaluated_alone_has_the_comparison_made_again_from_both_latest_results():
    import numpy as np

    truth = np.repeat([True, False], [20, 40])
    table = predictions(truth, model_scores(truth, 2.0, seed=0))
    catalog = DataCatalog(
        {
            "binary.evaluation_metrics": MemoryDataset(metrics("binary", "B2")),
            "multiclass.evaluation_metrics": MemoryDataset(metrics("multiclass", "M1")),
            "binary.file_predictions": MemoryDataset(table),
            "multiclass.file_predictions": MemoryDataset(table.copy()),
            "params:mode_comparison.bootstrap": MemoryDataset(BOOTSTRAP),
            "mode_comparison": MemoryDataset({"modes": {"binary": {"model_version": "B1"}}}),
            "mode_comparison_report": MemoryDataset("old"),
        }
    )
    run_hook(catalog, ["binary.evaluation_metrics", "binary.file_predictions"])
    assert catalog.load("mode_comparison")["modes"]["binary"]["model_version"] == "B2"
    assert "B2" in catalog.load("mode_comparison_report")


def test_without_the_other_mode_the_old_comparison_is_kept_and_marked_stale():
    catalog = DataCatalog(
        {
            "binary.evaluation_metrics": MemoryDataset(metrics("binary", "B2")),
            "params:mode_comparison.bootstrap": MemoryDataset(BOOTSTRAP),
            "mode_comparison": MemoryDataset({"better_mode": "binary"}),
            "mode_comparison_report": MemoryDataset("# Binary vs multiclass\n\nold table"),
        }
    )
    run_hook(catalog, ["binary.evaluation_metrics"])
    assert "binary was re-evaluated alone" in catalog.load("mode_comparison")["stale"]
    report = catalog.load("mode_comparison_report")
    assert report.startswith("> **Stale**") and report.endswith("old table")


def test_a_run_that_made_the_comparison_itself_is_left_alone():
    catalog = DataCatalog({"mode_comparison": MemoryDataset({"fresh": True})})
    run_hook(catalog, ["binary.evaluation_metrics", "mode_comparison"])
    assert catalog.load("mode_comparison") == {"fresh": True}


def test_every_session_applies_the_process_settings_once_its_context_exists(monkeypatch):
    import leak_detection.hooks as hooks
    from leak_detection.settings import HOOKS

    applied = []
    monkeypatch.setattr(hooks, "apply_process_settings", lambda: applied.append(True))
    registered = [hook for hook in HOOKS if isinstance(hook, hooks.ProcessSettingsHook)]
    assert len(registered) == 1
    registered[0].after_context_created()
    assert applied == [True]


def guard(named, dataset_path):
    """``FeatureStoreGuardHook`` before an extraction run given ``--params feature_store=named``."""
    from kedro.pipeline import node, pipeline

    from leak_detection.datasets import MelFeatureStoreDataset
    from leak_detection.hooks import FeatureStoreGuardHook

    catalog = DataCatalog({"mel_features": MelFeatureStoreDataset(filepath=dataset_path)})
    extraction = pipeline([node(lambda: None, inputs=None, outputs="mel_features")])
    FeatureStoreGuardHook().before_pipeline_run(
        run_params={"runtime_params": {"feature_store": named}}, pipeline=extraction, catalog=catalog
    )


def test_an_existing_local_folder_named_as_the_store_is_refused_before_extraction(tmp_path):
    folder = tmp_path / "my_store"
    folder.mkdir()
    # The dataset answers for a file only: the folder is refused by its name.
    for named in (str(folder), f"file://{folder}"):
        with pytest.raises(ValueError, match=f"feature_store={named} names an existing store"):
            guard(named, folder)


def test_an_existing_store_file_is_refused_and_a_new_path_is_not(tmp_path):
    store = tmp_path / "mel_features.h5"
    store.write_bytes(b"")
    with pytest.raises(ValueError, match="names an existing store"):
        guard(str(store), store)
    guard(str(tmp_path / "new.h5"), tmp_path / "new.h5")
