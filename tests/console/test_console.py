"""`leak-detect` as a shell user meets it: results on stdout, one clear line and exit 2 for a mistake."""

import importlib
import json

import pandas as pd
from click.testing import CliRunner

from leak_detection import console
from leak_detection.console.models import model_table

VERSION = "2026-01-01T00.00.00.000Z"


def invoke(*args):
    return CliRunner().invoke(console.main, [str(a) for a in args])


def test_predict_before_any_training_says_to_train_first_in_one_line(project, make_wav, tmp_path):
    result = invoke("predict", make_wav(tmp_path / "a.wav"), "--project", project)
    assert result.exit_code == 2
    assert "kedro run --pipelines train_both" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""


def test_verbose_adds_the_traceback_to_an_unexpected_failure(project, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(importlib.import_module("leak_detection.console.predict"), "_run_predict", broken)
    (tmp_path / "a.wav").write_bytes(b"")
    quiet = invoke("predict", tmp_path / "a.wav", "--project", project)
    loud = invoke("--verbose", "predict", tmp_path / "a.wav", "--project", project)
    assert quiet.exit_code == loud.exit_code == 1
    assert "RuntimeError: disk on fire" in quiet.stderr and "Traceback" not in quiet.stderr
    assert "Traceback" in loud.stderr


def test_an_empty_folder_is_a_mistake_named_in_one_line(project, tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("predict", tmp_path / "empty", "--project", project)
    assert result.exit_code == 2 and "no audio files" in result.stderr and "Traceback" not in result.output


def test_a_threshold_outside_zero_and_one_is_refused_before_any_work(project, make_wav, tmp_path):
    result = invoke("predict", make_wav(tmp_path / "a.wav"), "--threshold", "1.5", "--project", project)
    assert result.exit_code == 2 and "--threshold" in result.output


def write_version(project, mode, version, meta, metrics=None):
    folder = project / f"data/06_models/{mode}"
    (folder / "model_meta.json" / version).mkdir(parents=True)
    (folder / "model_meta.json" / version / "model_meta.json").write_text(json.dumps(meta))
    (folder / "best.pth" / version).mkdir(parents=True)
    (folder / "best.pth" / version / "best.pth").write_bytes(b"PK" + b"\0" * 64)
    if metrics is not None:
        reports = project / f"data/08_reporting/{mode}/metrics.json/{version}"
        reports.mkdir(parents=True)
        (reports / "metrics.json").write_text(json.dumps(metrics))


def test_models_lists_versions_newest_first_with_origin_and_test_f1(tmp_path):
    later = "2026-02-01T00.00.00.000Z"
    metrics = {"test": {"f1": 0.8, "roc_auc": 0.9, "intervals": {"f1": [0.7, 0.9]}}}
    write_version(tmp_path, "binary", VERSION, {"threshold": 0.5}, metrics)
    write_version(tmp_path, "binary", later, {"threshold": 0.4, "adaptation": {"base_model_version": VERSION}})
    table = model_table(tmp_path, ("binary",))
    assert list(table["version"]) == [later, VERSION]
    assert list(table["origin"]) == [f"adapted from {VERSION}", "trained"]
    assert table.loc[1, "test_f1"] == 0.8 and table.loc[1, "test_f1_interval"] == "[0.70, 0.90]"
    assert pd.isna(table.loc[0, "test_f1"])


def test_models_on_a_project_without_models_says_to_train_first(project):
    result = invoke("models", "--project", project)
    assert result.exit_code == 0 and "kedro run --pipelines train_both" in result.stderr and result.stdout == ""
