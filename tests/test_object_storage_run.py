"""A whole run against object storage: recordings in a bucket, the feature store and the models written
there and read back by predict (fsspec's in-memory filesystem stands in for s3://)."""

import json

import fsspec
import pandas as pd
import pytest
from click.testing import CliRunner
from kedro.framework.session import KedroSession

from leak_detection.console import main

BUCKET = "memory:///utility-bucket"
MODES = ("binary", "multiclass")
QUICK = {m: {"training": {"epochs": 2, "batch_size": 64, "patience": 2, "fresh_start": True}} for m in MODES}
REMOTE_MODELS = """
"{mode}.model":
  type: leak_detection.datasets.TorchModelDataset
  filepath: memory:///utility-bucket/models/{mode}/best.pth
  versioned: true
  paired_with: ["model_meta.json"]
"{mode}.model_meta":
  type: leak_detection.datasets.AtomicJSONDataset
  filepath: memory:///utility-bucket/models/{mode}/model_meta.json
  versioned: true
  paired_with: ["best.pth"]
"{mode}.onnx_model":
  type: leak_detection.datasets.OnnxModelDataset
  filepath: memory:///utility-bucket/models/{mode}/model.onnx
  versioned: true
"""


def run(project, pipeline, namespaces=None, **runtime_params):
    with KedroSession.create(project_path=project, runtime_params=runtime_params) as session:
        return session.run(pipeline_names=[pipeline], namespaces=namespaces)


@pytest.fixture(scope="module")
def bucket_run(project, tiny_recordings):
    """Train the binary branch from recordings in the bucket, then classify some of them from there."""
    memory = fsspec.filesystem("memory")
    memory.put(str(tiny_recordings), "/utility-bucket/recordings", recursive=True)
    (project / "conf" / "local" / "catalog.yml").write_text(REMOTE_MODELS)
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("LEAK_DETECTION_TRACKING", "off")
            store = f"{BUCKET}/features/mel.h5"
            run(project, "data_indexing", recordings_dir=f"{BUCKET}/recordings", feature_store=store)
            run(project, "train_both", ["binary"], recordings_dir=f"{BUCKET}/recordings", feature_store=store, **QUICK)
            run(project, "predict", ["binary"], inbox_dir=f"{BUCKET}/recordings/LEAK")
        yield memory
    finally:
        (project / "conf" / "local" / "catalog.yml").unlink()
        memory.rm("/utility-bucket", recursive=True)


def test_the_feature_store_and_the_model_versions_are_written_to_the_bucket(bucket_run, project):
    assert bucket_run.isfile("/utility-bucket/features/mel.h5")
    (version,) = bucket_run.ls("/utility-bucket/models/binary/best.pth", detail=False)
    stamp = version.rsplit("/", 1)[-1]
    meta = json.loads(bucket_run.cat(f"/utility-bucket/models/binary/model_meta.json/{stamp}/model_meta.json"))
    assert meta["model_version"] == stamp
    assert bucket_run.isfile(f"/utility-bucket/models/binary/model.onnx/{stamp}/model.onnx")
    assert not (project / "data" / "06_models" / "binary" / "best.pth").exists()
    assert not (project / "data" / "04_feature" / "mel_features.h5").exists()


def test_evaluation_scored_the_files_listed_in_the_bucket(bucket_run, project, tiny_recordings):
    predictions = pd.read_csv(project / "data" / "08_reporting" / "binary" / "file_predictions.csv")
    listed = {p.relative_to(tiny_recordings).as_posix() for p in tiny_recordings.rglob("*.wav")}
    assert len(predictions) > 0 and set(predictions["file_id"]) <= listed


def test_predict_reads_the_model_and_the_recordings_from_the_bucket(bucket_run, project, tiny_recordings):
    predictions = pd.read_csv(
        project / "data" / "07_model_output" / "binary" / "predictions.csv", keep_default_na=False
    )
    leaks = tiny_recordings / "LEAK"
    expected = sorted(f"{BUCKET}/recordings/LEAK/{p.relative_to(leaks).as_posix()}" for p in leaks.rglob("*.wav"))
    assert sorted(predictions["file"]) == expected
    assert (predictions["error"] == "").all()
    assert set(predictions["decision"]) <= {"LEAK", "NOLEAK"}


def test_leak_detect_lists_and_explains_with_the_model_in_the_bucket(bucket_run, project, tiny_recordings, tmp_path):
    runner = CliRunner()
    listed = runner.invoke(main, ["models", "--mode", "binary", "--format", "json", "--project", str(project)])
    assert listed.exit_code == 0, listed.output
    (row,) = json.loads(listed.stdout)
    assert row["default"] == "yes" and 0 <= row["test_f1"] <= 1 and row["origin"] == "trained"
    leak = next((tiny_recordings / "LEAK").rglob("*.wav")).relative_to(tiny_recordings).as_posix()
    figure = tmp_path / "why.png"
    args = ["explain", f"{BUCKET}/recordings/{leak}", "--project", str(project), "--output", str(figure)]
    explained = runner.invoke(main, args)
    assert explained.exit_code == 0, explained.output
    assert explained.stdout.startswith(f"{BUCKET}/recordings/{leak}\t") and figure.stat().st_size > 10_000
