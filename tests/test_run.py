"""Whole-project runs through a KedroSession, in throw-away copies of the project.

The copies keep the user's own data/ untouched: catalog paths resolve inside them. Each test starts from a
fixture that says what it needs (an indexed project, a trained one) and changes only its own copy, so the tests
pass in any order and one at a time.
"""

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from click.testing import CliRunner
from kedro.framework.session import KedroSession

from leak_detection import console
from leak_detection.datasets import MelFeatureStoreDataset
from leak_detection.demo.recordings import generate_demo_recordings
from leak_detection.model.network import LeakCNNMulti, state_dict_sha256
from leak_detection.pipeline_registry import register_pipelines

QUICK_TRAINING = {"epochs": 2, "batch_size": 256, "patience": 2, "fresh_start": True}
QUICK_RUNTIME = {mode: {"training": QUICK_TRAINING} for mode in ("binary", "multiclass")}


def run(project, pipeline, namespaces=None, load_versions=None, **runtime_params):
    # Catalog paths are relative, so a run must happen from its project's root, as `kedro run` does.
    with contextlib.chdir(project), KedroSession.create(project_path=project, runtime_params=runtime_params) as session:
        return session.run(pipeline_names=[pipeline], namespaces=namespaces, load_versions=load_versions)


def copy_of(project, tmp_path):
    copy = tmp_path / "project"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns("build"))
    return copy


@pytest.fixture(scope="module")
def indexed_project(project, tiny_recordings):
    run(project, "data_indexing", recordings_dir=str(tiny_recordings))
    return project


@pytest.fixture(scope="module")
def trained_project(indexed_project, tiny_recordings, tmp_path_factory):
    trained = copy_of(indexed_project, tmp_path_factory.mktemp("trained"))
    run(trained, "train_both", recordings_dir=str(tiny_recordings), **QUICK_RUNTIME)
    return trained


@pytest.fixture
def trained_copy(trained_project, tmp_path, monkeypatch):
    copy = copy_of(trained_project, tmp_path)
    monkeypatch.chdir(copy)
    return copy


def test_data_indexing_builds_the_store_and_both_modes_indexes(indexed_project, tiny_recordings):
    project = indexed_project
    store = MelFeatureStoreDataset(filepath=str(project / "data/04_feature/mel_features.h5")).load()
    index = pd.read_csv(project / "data/03_primary/recordings_index.csv")
    rejected = pd.read_csv(project / "data/08_reporting/rejected_recordings.csv")
    manifest = pd.read_csv(tiny_recordings / "manifest.csv")
    assert store.n_files == len(index) == len(manifest) - len(rejected)
    assert store.segments_mel.shape[1:] == (3, 32, 1)
    assert (index.groupby("group")["split"].nunique() == 1).all()
    for mode, n_classes in (("binary", 2), ("multiclass", 5)):
        summary = json.loads((project / f"data/05_model_input/{mode}/class_summary.json").read_text())
        assert len(summary["class_names"]) == n_classes
        targets = pd.read_csv(project / f"data/05_model_input/{mode}/file_targets.csv")
        assert len(targets) == len(index)


def versions(folder):
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_a_named_existing_store_is_never_overwritten_by_extraction(indexed_project, tiny_recordings, tmp_path):
    project = copy_of(indexed_project, tmp_path)
    store = project / "data/04_feature/mel_features.h5"
    before = store.read_bytes()
    with pytest.raises(ValueError, match="train_from_store"):
        run(project, "data_indexing", recordings_dir=str(tiny_recordings), feature_store=str(store))
    assert store.read_bytes() == before


def test_training_data_can_come_from_a_store_built_elsewhere(indexed_project, tmp_path):
    project = copy_of(indexed_project, tmp_path)
    elsewhere = tmp_path / "built elsewhere.h5"
    shutil.copy(project / "data/04_feature/mel_features.h5", elsewhere)
    (project / "data/03_primary/recordings_index.csv").unlink()
    run(project, "train_from_store", feature_store=str(elsewhere), **QUICK_RUNTIME)
    index = pd.read_csv(project / "data/03_primary/recordings_index.csv")
    assert list(index["file_id"]) == MelFeatureStoreDataset(filepath=str(elsewhere)).load().file_ids


def test_train_both_leaves_a_versioned_model_and_meta_per_mode(trained_project):
    project = trained_project
    new_versions = {mode: versions(project / f"data/06_models/{mode}/best.pth") for mode in ("binary", "multiclass")}
    assert new_versions["binary"] == new_versions["multiclass"]  # one version for the whole run
    for mode, n_classes in (("binary", 2), ("multiclass", 5)):
        (version,) = new_versions[mode]
        models = project / f"data/06_models/{mode}"
        assert version in versions(models / "model_meta.json")
        meta = json.loads((models / "model_meta.json" / version / "model_meta.json").read_text())
        assert meta["num_classes"] == n_classes and meta["epochs_run"] == 2
        model = LeakCNNMulti(n_classes=n_classes)
        model.load_state_dict(torch.load(models / "best.pth" / version / "best.pth", weights_only=True))
        assert state_dict_sha256(model.state_dict()) == meta["state_dict_sha256"]
        assert (models / "checkpoints" / "last.pth").exists()
        reports = project / f"data/08_reporting/{mode}"
        assert (reports / "training_history.csv").exists()
        metrics = json.loads((reports / "metrics.json" / version / "metrics.json").read_text())
        assert metrics["threshold"] == meta["threshold"]
        assert metrics["model_version"] == version and metrics["evaluated_on"]["agrees"]
        ranked = {"f1", "precision", "recall", "specificity", "roc_auc", "average_precision"}
        assert ranked | {"long_segment_leak_f1"} <= set(metrics["test"]) and ranked <= set(metrics["test"]["intervals"])
        predictions = pd.read_csv(reports / "file_predictions.csv")
        assert set(predictions["split"]) == {"validation", "test"}
        for split in ("validation", "test"):
            assert sorted(predictions.loc[predictions["split"] == split, "file_id"]) == meta["split_file_ids"][split]
        assert ((predictions["decision"] == "LEAK") == (predictions["predicted_class"] == "LEAK")).all()
        assert len(pd.read_csv(reports / "threshold_curve.csv")) == 17 * (1 if mode == "binary" else 2)
        assert {p.name for p in (reports / "plots").iterdir()} == {
            "confusion_matrix.png",
            "roc_pr_curves.png",
            "threshold_curve.png",
            "learning_curves.png",
            "file_timelines.png",
        }
        assert version in versions(models / "model.onnx")
        card = (models / "model_card.md" / version / "model_card.md").read_text()
        assert f"Version: `{version}`" in card and "## Known limits" in card
        assert json.loads((reports / "onnx_parity.json").read_text())["passed"] is True
    comparison = json.loads((project / "data/08_reporting/mode_comparison.json").read_text())
    assert set(comparison["modes"]) == {"binary", "multiclass"}
    assert {comparison["modes"][m]["model_version"] for m in comparison["modes"]} == new_versions["binary"]
    assert comparison["difference_binary_minus_multiclass"]["f1"]["interval"] is not None
    assert "| f1 |" in (project / "data/08_reporting/mode_comparison.md").read_text()


def test_predict_gives_exactly_the_decisions_evaluation_gave(trained_project, tiny_recordings, tmp_path):
    project = trained_project
    for mode in ("binary", "multiclass"):
        evaluated = pd.read_csv(project / f"data/08_reporting/{mode}/file_predictions.csv")
        test = evaluated[evaluated["split"] == "test"].set_index("file_id")
        files = [str(tiny_recordings / f) for f in test.index]
        output = tmp_path / f"predicted_{mode}.csv"
        run(project, "predict", namespaces=[mode], inbox_dir=files, predictions_output=str(output))
        predicted = pd.read_csv(output, keep_default_na=False)
        predicted["file_id"] = [str(Path(f).relative_to(tiny_recordings)) for f in predicted["file"]]
        predicted = predicted.set_index("file_id").loc[test.index]
        assert (predicted["decision"] == test["decision"]).all()
        assert (predicted["predicted_class"] == test["predicted_class"]).all()
        np.testing.assert_allclose(predicted["fraction_over_threshold"], test["fraction_over_threshold"])
        np.testing.assert_allclose(predicted["mean_leak_score"], test["mean_leak_score"], atol=1e-6)
        assert (predicted["error"] == "").all()
        # Recordings like the training data are mostly familiar (the threshold flags about 1 % of
        # validation files; with 5 test files of unseen sensors, one may be flagged).
        np.testing.assert_allclose(predicted["unfamiliarity"], test["unfamiliarity"], rtol=1e-5)
        assert (predicted["unfamiliar"].astype(str) == "True").mean() < 0.5


def test_decisions_do_not_move_when_recordings_are_scaled_by_0_05_or_20(
    trained_project, tiny_recordings, tmp_path, monkeypatch
):
    project = trained_project
    monkeypatch.chdir(project)
    evaluated = pd.read_csv(project / "data/08_reporting/binary/file_predictions.csv")
    files = sorted(evaluated.loc[evaluated["split"] == "test", "file_id"])
    scores = {}
    for scale in (1.0, 0.05, 20.0):
        folder = tmp_path / f"x{scale}"
        for f in files:
            samples, rate = sf.read(tiny_recordings / f)
            (folder / f).parent.mkdir(parents=True, exist_ok=True)
            sf.write(folder / f, samples * scale, rate, subtype="FLOAT")  # float: x20 must not clip
        output = tmp_path / f"x{scale}.csv"
        result = CliRunner().invoke(console.main, ["predict", str(folder), "--output", str(output)])
        assert result.exit_code == 0, result.output
        scores[scale] = pd.read_csv(output, keep_default_na=False).sort_values("file").reset_index(drop=True)
    for scale in (0.05, 20.0):
        assert (scores[scale]["decision"] == scores[1.0]["decision"]).all()
        np.testing.assert_allclose(scores[scale]["mean_leak_score"], scores[1.0]["mean_leak_score"], atol=0.02)


def test_a_recording_unlike_the_training_data_is_flagged_unfamiliar(trained_project, tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(trained_project)
    rate = 8000
    t = np.arange(rate * 4) / rate
    sf.write(tmp_path / "whistle.wav", 0.5 * np.sin(2 * np.pi * 1000 * t), rate)
    output = tmp_path / "out.csv"
    result = CliRunner().invoke(console.main, ["predict", str(tmp_path / "whistle.wav"), "--output", str(output)])
    assert result.exit_code == 0, result.output
    predicted = pd.read_csv(output, keep_default_na=False)
    assert str(predicted.loc[0, "unfamiliar"]) == "True"
    # Said once, by the predict pipeline's warning (on stderr), not again by the command.
    advice = [r for r in caplog.records if "recordings sound unlike the model's training data" in r.getMessage()]
    assert len(advice) == 1 and "1 of 1 recordings" in advice[0].getMessage()
    assert "sound unlike" not in result.output


def test_the_console_command_scores_good_files_and_reports_broken_ones(trained_project, tmp_path):
    project = trained_project
    inbox = tmp_path / "this week"
    inbox.mkdir()
    rng = np.random.default_rng(0)
    # 44.1 kHz: a rate the demo training set never had; it must be resampled and scored.
    sf.write(inbox / "hydrant 7.wav", 0.05 * rng.normal(size=44100 * 3), 44100)
    (inbox / "broken.wav").write_bytes(rng.bytes(500))
    output = tmp_path / "out.csv"
    result = CliRunner().invoke(
        console.main,
        ["predict", str(inbox), "--mode", "multiclass", "--output", str(output), "--project", str(project)],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(output).fillna({"decision": "", "error": ""}).set_index("file")
    good, broken = table.loc[str(inbox / "hydrant 7.wav")], table.loc[str(inbox / "broken.wav")]
    assert good["decision"] in {"LEAK", "NOLEAK"} and good["error"] == ""
    assert good["sample_rate"] == 44100 and good["long_segments"] == 23
    assert good["p_LEAK"] + good["p_NORMAL"] + good["p_QUIET"] + good["p_RANDOM"] + good[
        "p_MECHANICAL"
    ] == pytest.approx(1)
    assert broken["decision"] == "" and broken["error"].startswith("unreadable")
    assert "broken.wav" in result.output and "1 not readable" in result.output


def test_from_another_folder_stdout_holds_only_the_results_and_stderr_no_warning(
    trained_project, tiny_recordings, tmp_path
):
    """Kedro reads conf/logging.yml from the current folder only; elsewhere its default logs to stdout."""
    recording = next(tiny_recordings.rglob("*.wav"))
    env = {k: v for k, v in os.environ.items() if k != "KEDRO_LOGGING_CONFIG"}
    command = [sys.executable, "-c", "from leak_detection.console import main; main()", "predict", str(recording)]
    command += ["--format", "csv", "--output", str(tmp_path / "calls.csv"), "--project", str(trained_project)]
    result = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    printed = pd.read_csv(io.StringIO(result.stdout), keep_default_na=False)
    assert printed.equals(pd.read_csv(tmp_path / "calls.csv", keep_default_na=False)) and len(printed) == 1
    assert "WARNING" not in result.stderr and "written to" in result.stderr


def test_console_help_explains_every_option():
    result = CliRunner().invoke(console.main, ["predict", "--help"])
    assert result.exit_code == 0
    for option in ("--mode", "--model-version", "--output", "--project"):
        assert option in result.output


def test_evaluation_scores_a_pinned_model_version(trained_copy):
    project = trained_copy
    models = project / "data/06_models/binary"
    run(project, "training", namespaces=["binary"], binary={"training": {**QUICK_TRAINING, "seed": 7}})
    oldest = sorted(versions(models / "best.pth"))[0]
    newest = sorted(versions(models / "best.pth"))[-1]
    assert oldest != newest
    pinned = {"binary.model": oldest, "binary.model_meta": oldest}
    run(project, "evaluation", namespaces=["binary"], load_versions=pinned)
    reports = project / "data/08_reporting/binary/metrics.json"
    latest_metrics = json.loads((reports / sorted(versions(reports))[-1] / "metrics.json").read_text())
    old_meta = json.loads((models / "model_meta.json" / oldest / "model_meta.json").read_text())
    assert latest_metrics["model_state_dict_sha256"] == old_meta["state_dict_sha256"]

    mismatched = {"binary.model": oldest, "binary.model_meta": newest}
    with pytest.raises(ValueError, match="different versions"):
        run(project, "evaluation", namespaces=["binary"], load_versions=mismatched)


def test_one_branch_runs_alone_from_the_existing_store(trained_copy):
    project = trained_copy
    binary, multiclass = (project / f"data/06_models/{mode}/best.pth" for mode in ("binary", "multiclass"))
    before = (versions(binary), versions(multiclass))
    run(project, "train_both", namespaces=["binary"], **QUICK_RUNTIME)
    (new_binary,) = versions(binary) - before[0]
    assert versions(multiclass) == before[1]
    # The comparison node is outside the branch; it is made again from both modes' latest results.
    comparison = json.loads((project / "data/08_reporting/mode_comparison.json").read_text())
    assert comparison["modes"]["binary"]["model_version"] == new_binary
    assert comparison["modes"]["multiclass"]["model_version"] == sorted(before[1])[-1]


def test_a_re_split_index_never_scores_a_model_on_files_it_trained_on(trained_copy, tiny_recordings):
    project = trained_copy
    models = project / "data/06_models/binary"
    newest = sorted(versions(models / "model_meta.json"))[-1]
    meta = json.loads((models / "model_meta.json" / newest / "model_meta.json").read_text())
    resplit = {"ratios": {"train": 0.6, "validation": 0.2, "test": 0.2}, "seed": 1}
    run(project, "data_indexing", recordings_dir=str(tiny_recordings), splits=resplit)
    index = pd.read_csv(project / "data/03_primary/recordings_index.csv")
    assert set(index.loc[index["split"] == "test", "file_id"]) & set(meta["split_file_ids"]["train"])
    run(project, "evaluation", namespaces=["binary"])
    predictions = pd.read_csv(project / "data/08_reporting/binary/file_predictions.csv")
    assert sorted(predictions.loc[predictions["split"] == "test", "file_id"]) == meta["split_file_ids"]["test"]
    reports = project / "data/08_reporting/binary/metrics.json"
    metrics = json.loads((reports / sorted(versions(reports))[-1] / "metrics.json").read_text())
    assert metrics["model_version"] == newest and not metrics["evaluated_on"]["agrees"]
    assert metrics["evaluated_on"]["trained_on_in_current_test"] > 0

    stop = {"binary": {"evaluation": {"on_split_mismatch": "stop"}}}
    with pytest.raises(ValueError, match="differs from the split model"):
        run(project, "evaluation", namespaces=["binary"], **stop)


def test_both_modes_are_branches_of_one_definition():
    pipelines = register_pipelines()
    namespaces = {n.namespace for n in pipelines["data_indexing"].nodes}
    assert namespaces == {"feature_extraction", "binary.data_indexing", "multiclass.data_indexing"}
    binary = {n.name.removeprefix("binary.") for n in pipelines["binary"].nodes if n.namespace.startswith("binary")}
    multi = {
        n.name.removeprefix("multiclass.")
        for n in pipelines["multiclass"].nodes
        if n.namespace.startswith("multiclass")
    }
    assert binary == multi
    assert "feature_extraction.extract_features_node" not in {n.name for n in pipelines["train_from_store"].nodes}


def test_viz_shows_layers_tags_the_modes_templates_and_previews_of_the_results(trained_copy):
    project = trained_copy
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "1"}
    command = ["kedro", "viz", "build", "--include-previews"]
    subprocess.run(command, cwd=project, env=env, check=True, capture_output=True, timeout=300)
    api = json.loads((project / "build" / "api" / "main").read_text())
    modular = api["modular_pipelines"]
    for mode in ("binary", "multiclass"):
        children = {child["id"] for child in modular[mode]["children"] if child["type"] == "modularPipeline"}
        assert children == {f"{mode}.{t}" for t in ("data_indexing", "training", "evaluation", "deployment")}
    assert "feature_extraction" in modular
    layers = api["layers"]
    assert layers.index("feature") < layers.index("models") < layers.index("reporting") < layers.index("deployment")
    assert {"train", "evaluate", "deploy", "predict"} <= {tag["id"] for tag in api["tags"]}
    previews = {}
    for node in api["nodes"]:
        details = project / "build" / "api" / "nodes" / node["id"]
        if node["type"] == "data" and details.exists():
            previews[node["name"]] = json.loads(details.read_text())
    expected = {
        "binary.evaluation_plots": "ImagePreview",
        "binary.model_card": "HTMLPreview",
        "mode_comparison_report": "HTMLPreview",
        "binary.model": "JSONPreview",
        "binary.onnx_model": "JSONPreview",
        "binary.evaluation_metrics": "JSONPreview",
        "binary.file_predictions": "TablePreview",
    }
    for name, kind in expected.items():
        assert previews[name]["preview_type"] == kind and previews[name]["preview"], name


ADAPT_QUICK = {
    "binary": {
        "adaptation": {"pseudo_labels": {"min_segments_per_class": 5}, "fine_tuning": {"epochs": 2, "patience": 2}}
    }
}
FORGETTING_MARGIN = 0.15
"""How far the original test F1 may fall on the tiny case: about one test file's call out of the dozen there."""


def test_adapt_saves_a_version_naming_its_base_evaluates_it_and_keeps_the_original_test_f1(trained_copy, tmp_path):
    project = trained_copy
    site = tmp_path / "new site"
    generate_demo_recordings(site, n_recordings=24, n_sites=1, sensors_per_site=2, max_duration_s=6.0, seed=11)
    models = project / "data/06_models/binary"
    (base,) = versions(models / "best.pth")
    labels = {"adaptation_manifest": str(site / "manifest.csv")}
    run(project, "adapt", namespaces=["binary"], adaptation_dir=str(site), **labels, **ADAPT_QUICK)
    (adapted,) = versions(models / "best.pth") - {base}
    meta = json.loads((models / "model_meta.json" / adapted / "model_meta.json").read_text())
    assert meta["model_version"] == adapted and meta["adaptation"]["base_model_version"] == base
    assert (
        meta["split_file_ids"]
        == json.loads((models / f"model_meta.json/{base}/model_meta.json").read_text())["split_file_ids"]
    )
    reports = project / "data/08_reporting/binary"
    report = json.loads((reports / "adaptation/adaptation.json" / adapted / "adaptation.json").read_text())
    assert report["base_model_version"] == base and report["new_site_labelled"]["files"] == 24
    assert report["original_test"]["metrics"]["f1"]["change"] >= -FORGETTING_MARGIN
    kept = {row["class"]: row["kept"] for row in meta["adaptation"]["rounds"][0]["pseudo_labels"]}
    assert sum(kept.values()) > 0
    metrics = json.loads((reports / "metrics.json" / adapted / "metrics.json").read_text())
    assert metrics["model_version"] == adapted
    card = (models / "model_card.md" / adapted / "model_card.md").read_text()
    assert f"adapted to a new site from model `{base}`" in card


def test_explain_draws_why_a_demo_recording_was_called_what_it_was(trained_project, tiny_recordings, tmp_path):
    evaluated = pd.read_csv(trained_project / "data/08_reporting/multiclass/file_predictions.csv")
    row = evaluated[evaluated["split"] == "test"].iloc[0]
    output = tmp_path / "why.png"
    args = ["explain", str(tiny_recordings / row["file_id"]), "--mode", "multiclass", "--output", str(output)]
    result = CliRunner().invoke(console.main, [*args, "--project", str(trained_project)])
    assert result.exit_code == 0, result.output
    assert result.stdout.split("\t")[1:] == [row["decision"], f"{row['predicted_class']}\n"]
    assert output.read_bytes().startswith(b"\x89PNG") and output.stat().st_size > 20_000


def test_the_exploration_notebook_runs_headless_on_the_demo_outputs(trained_project, tiny_recordings, monkeypatch):
    nbclient, nbformat = pytest.importorskip("nbclient"), pytest.importorskip("nbformat")
    monkeypatch.setenv("LEAK_DETECTION_PROJECT", str(trained_project))
    monkeypatch.setenv("LEAK_DETECTION_RECORDINGS", str(tiny_recordings))
    notebook = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks/exploration.ipynb", as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3").execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs)
    assert any("| f1 |" in o.get("data", {}).get("text/markdown", "") for o in outputs)
