"""`leak-detect` as a shell user meets it: results on stdout, one clear line and exit 2 for a mistake."""

import importlib
import io
import json

import fsspec
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from kedro.io import DataCatalog
from kedro.io.core import DatasetError, VersionNotFoundError

from leak_detection import console
from leak_detection.console.catalog import default_version, load_version, saved_versions
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


def write_version(root, mode, version, meta, metrics=None):
    """A model version as training leaves it, under ``root`` (a folder or a URL)."""
    fs, base = fsspec.core.url_to_fs(str(root))
    folder = f"{base}/data/06_models/{mode}"
    weights = io.BytesIO()
    torch.save({"w": torch.zeros(1)}, weights)
    files = {
        f"{folder}/model_meta.json/{version}/model_meta.json": json.dumps(meta).encode(),
        f"{folder}/best.pth/{version}/best.pth": weights.getvalue(),
    }
    if metrics is not None:
        files[f"{base}/data/08_reporting/{mode}/metrics.json/{version}/metrics.json"] = json.dumps(metrics).encode()
    for path, data in files.items():
        fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        fs.pipe(path, data)


def catalog_at(root):
    """The catalog's model entries, rooted at ``root``, as conf/local/catalog.yml would move them."""
    entry = {"versioned": True}
    return DataCatalog.from_config(
        {
            "{mode}.model": {
                **entry,
                "type": "leak_detection.datasets.TorchModelDataset",
                "filepath": f"{root}/data/06_models/{{mode}}/best.pth",
                "paired_with": ["model_meta.json"],
            },
            "{mode}.model_meta": {
                **entry,
                "type": "leak_detection.datasets.AtomicJSONDataset",
                "filepath": f"{root}/data/06_models/{{mode}}/model_meta.json",
                "paired_with": ["best.pth"],
            },
            "{mode}.evaluation_metrics": {
                **entry,
                "type": "leak_detection.datasets.AtomicJSONDataset",
                "filepath": f"{root}/data/08_reporting/{{mode}}/metrics.json",
            },
        }
    )


@pytest.mark.parametrize("where", ["local", "bucket"])
def test_models_lists_versions_newest_first_with_origin_and_test_f1(tmp_path, where):
    root = tmp_path.as_posix() if where == "local" else f"memory:///models-{tmp_path.name}"
    later = "2026-02-01T00.00.00.000Z"
    metrics = {"test": {"f1": 0.8, "roc_auc": 0.9, "intervals": {"f1": [0.7, 0.9]}}}
    write_version(root, "binary", VERSION, {"threshold": 0.5}, metrics)
    write_version(root, "binary", later, {"threshold": 0.4, "adaptation": {"base_model_version": VERSION}})
    table = model_table(catalog_at(root), ("binary",))
    assert list(table["version"]) == [later, VERSION]
    assert list(table["origin"]) == [f"adapted from {VERSION}", "trained"]
    assert list(table["default"]) == ["yes", ""]
    assert table.loc[1, "test_f1"] == 0.8 and table.loc[1, "test_f1_interval"] == "[0.70, 0.90]"
    assert pd.isna(table.loc[0, "test_f1"])


def test_models_on_a_project_without_models_says_to_train_first(project):
    result = invoke("models", "--project", project)
    assert result.exit_code == 0 and "kedro run --pipelines train_both" in result.stderr and result.stdout == ""


def test_a_model_store_out_of_reach_is_a_failure_not_no_model_yet(tmp_path, monkeypatch):
    root = f"memory:///unreachable-{tmp_path.name}"
    write_version(root, "binary", VERSION, {"threshold": 0.5})
    catalog = catalog_at(root)

    def refused(*args, **kwargs):
        raise ConnectionError("connection refused")

    monkeypatch.setattr(catalog.get("binary.model"), "_glob_function", refused)
    with pytest.raises(DatasetError, match="Cannot reach the version folders of memory:///.*ConnectionError"):
        default_version(catalog, "binary")


def refuse(monkeypatch, *methods):
    """The memory filesystem (the bucket in these tests) refusing ``methods`` as a store out of reach does."""

    def refused(*args, **kwargs):
        raise ConnectionError("connection refused")

    memory = fsspec.filesystem("memory")
    for method in methods:
        monkeypatch.setattr(memory, method, refused)


def test_a_bucket_out_of_reach_is_never_no_model_or_no_version(tmp_path, monkeypatch):
    root = f"memory:///outage-{tmp_path.name}"
    write_version(root, "binary", VERSION, {"threshold": 0.5})
    catalog = catalog_at(root)
    # What an outage does: every call fails, and fsspec's own find (under glob) and exists
    # swallow the failure, answering nothing found.
    refuse(monkeypatch, "info", "ls", "_open")
    memory = fsspec.filesystem("memory")
    monkeypatch.setattr(memory, "find", lambda *args, detail=False, **kwargs: {} if detail else [])
    monkeypatch.setattr(memory, "exists", lambda *args, **kwargs: False)
    listing = f"Cannot reach the version folders of {root}/data/06_models/binary/"
    for ask in (lambda: default_version(catalog, "binary"), lambda: model_table(catalog, ("binary",))):
        with pytest.raises(DatasetError, match=listing):
            ask()
    with pytest.raises(DatasetError, match=f"{listing}model_meta.json: ConnectionError"):
        saved_versions(catalog, "binary")
    meta = f"{root}/data/06_models/binary/model_meta.json/{VERSION}/model_meta.json"
    with pytest.raises(DatasetError) as caught:
        load_version(catalog, "binary.model_meta", VERSION)
    assert str(caught.value).startswith(f"Cannot reach {meta}: ConnectionError: connection refused; check the network")


@pytest.mark.parametrize(("method", "failing"), [("info", "best.pth"), ("_open", "best.pth")])
def test_a_model_file_that_cannot_be_looked_up_or_read_is_a_failure_naming_it(tmp_path, monkeypatch, method, failing):
    root = f"memory:///flaky-{tmp_path.name}"
    write_version(root, "binary", VERSION, {"threshold": 0.5})
    catalog = catalog_at(root)
    refuse(monkeypatch, method)
    # The listing still answers: the version is there, never "no model yet" nor a version skipped as broken.
    assert saved_versions(catalog, "binary") == [VERSION]
    url = f"{root}/data/06_models/binary/{failing}/{VERSION}/{failing}"
    for ask in (lambda: default_version(catalog, "binary"), lambda: model_table(catalog, ("binary",))):
        with pytest.raises(DatasetError, match=f"^Cannot reach {url}: ConnectionError"):
            ask()


def test_a_meta_that_cannot_be_read_is_a_failure_not_a_missing_version(tmp_path, monkeypatch):
    root = f"memory:///unreadable-{tmp_path.name}"
    write_version(root, "binary", VERSION, {"threshold": 0.5})
    catalog = catalog_at(root)
    refuse(monkeypatch, "_open")
    with pytest.raises(DatasetError, match=f"^Cannot reach {root}/data/06_models/binary/model_meta.json/{VERSION}/"):
        load_version(catalog, "binary.model_meta", VERSION)


def test_listing_does_not_take_fsspec_exists_at_its_word(tmp_path, monkeypatch):
    root = f"memory:///listed-{tmp_path.name}"
    write_version(root, "binary", VERSION, {"threshold": 0.5})
    catalog = catalog_at(root)
    # fsspec's exists answers False on any failure: the versions a glob found are there all the same.
    monkeypatch.setattr(fsspec.filesystem("memory"), "exists", lambda *args, **kwargs: False)
    assert saved_versions(catalog, "binary") == [VERSION]
    assert default_version(catalog, "binary") == VERSION


@pytest.mark.parametrize("where", ["local", "bucket"])
@pytest.mark.parametrize("content", [b"", b'{"threshold": 0.'])
def test_an_empty_or_corrupt_meta_is_listed_as_unreadable_and_not_the_default(tmp_path, where, content, caplog):
    root = tmp_path.as_posix() if where == "local" else f"memory:///corrupt-{tmp_path.name}"
    later = "2026-02-01T00.00.00.000Z"
    write_version(root, "binary", VERSION, {"threshold": 0.5})
    write_version(root, "binary", later, {"threshold": 0.4})
    fs, base = fsspec.core.url_to_fs(root)
    fs.pipe(f"{base}/data/06_models/binary/model_meta.json/{later}/model_meta.json", content)
    catalog = catalog_at(root)
    assert load_version(catalog, "binary.model_meta", later) is None
    assert default_version(catalog, "binary") == VERSION
    table = model_table(catalog, ("binary",))
    assert list(table["version"]) == [later, VERSION]
    assert list(table["origin"]) == ["unreadable meta", "trained"]
    assert list(table["default"]) == ["", "yes"]
    assert f"Skipping version {later}" in caplog.text


def test_a_mode_with_no_version_says_none_has_been_saved(tmp_path):
    catalog = catalog_at(tmp_path.as_posix())
    with pytest.raises(VersionNotFoundError, match="No version of .* has been saved yet"):
        catalog.get("binary.model_meta").resolve_load_version()
    assert default_version(catalog, "binary") is None and model_table(catalog, ("binary",)).empty
