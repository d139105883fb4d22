"""The predict template: its node called directly, and the pipeline run on an in-memory catalog."""

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from leak_detection.audio.front_end import FrontEndConfig, recording_features
from leak_detection.datasets import InboxDataset
from leak_detection.decisions.inference import predict_segments
from leak_detection.decisions.rules import DecisionRule, decide_files
from leak_detection.decisions.split_scores import SplitScores
from leak_detection.labels import CLASS_NAMES, LEAK, NOLEAK
from leak_detection.model.network import LeakCNNMulti, model_from_state, state_dict_sha256
from leak_detection.pipelines.predict.nodes import predict_recordings
from leak_detection.pipelines.predict.pipeline import create_pipeline
from tests.conftest import noise_wav

PREDICT = {"batch_size": 256, "workers": 1, "threshold": None}


def model_and_meta(n_classes=2, threshold=0.5):
    """An untrained model and a valid meta for this project's front end: predict's glue does not need skill."""
    torch.manual_seed(n_classes)
    model = LeakCNNMulti(n_classes=n_classes)
    model.set_normalisation(torch.full((32,), -38.0), torch.full((32,), 4.0))
    state = model.state_dict()
    names = [NOLEAK, LEAK] if n_classes == 2 else list(CLASS_NAMES)
    meta = {
        "model_type": "LeakCNNMulti",
        "state_dict_sha256": state_dict_sha256(state),
        "mode": "binary" if n_classes == 2 else "multiclass",
        "num_classes": n_classes,
        "class_names": names,
        "leak_output_idx": names.index(LEAK),
        "threshold": threshold,
        "decision_score": "leak_probability",
        "feature_config": FrontEndConfig().to_dict(),
        "front_end_problem": None,
        "model_version": "V1",
    }
    return state, meta


@pytest.fixture
def inbox(tmp_path):
    for i, (seconds, rate) in enumerate([(2.0, 4096), (3.5, 8000), (1.2, 16000)]):
        noise_wav(tmp_path / "site" / f"rec{i}.wav", seconds=seconds, rate=rate, seed=i)
    (tmp_path / "site" / "broken.wav").write_text("not audio")
    return InboxDataset(path=str(tmp_path)).load()


def test_every_recording_gets_a_row_and_an_unreadable_one_its_error(inbox):
    state, meta = model_and_meta()
    table = predict_recordings(inbox, state, meta, PREDICT)
    assert len(table) == 4 and list(table.columns)[-1] == "error"
    broken = table[table["file"].str.endswith("broken.wav")].iloc[0]
    assert broken["error"] and broken["decision"] == "" and broken["long_segments"] == 0
    readable = table[table["error"] == ""]
    assert set(readable["decision"]) <= {LEAK, NOLEAK} and (readable["model_version"] == "V1").all()
    assert (readable["threshold"] == 0.5).all()
    # The paper's vote: LEAK when at least half of the long segments reach the threshold.
    assert ((readable["fraction_over_threshold"] >= 0.5) == (readable["decision"] == LEAK)).all()


def test_predict_decides_with_decide_files_on_the_front_ends_features(inbox):
    state, meta = model_and_meta(n_classes=5)
    rule = DecisionRule("leak_probability", 0.45)
    table = predict_recordings(inbox, state, meta, {**PREDICT, "threshold": rule.threshold})
    readable = table[table["error"] == ""].reset_index(drop=True)
    config = FrontEndConfig()
    features = [recording_features(*sf.read(inbox.path(f), dtype="float32"), config) for f in readable["file"]]
    segments = torch.from_numpy(np.concatenate(features)).reshape(-1, 1, config.n_mels, config.n_frames)
    predictions = predict_segments(model_from_state(state, meta), [(segments, None, None)], 0)
    offsets = np.concatenate([[0], np.cumsum([f.shape[0] for f in features])])
    scores = SplitScores.from_predictions(predictions, offsets, config.n_short, readable["file"], CLASS_NAMES)
    decided = decide_files(scores, rule)
    assert readable["decision"].tolist() == decided.decision.tolist()
    assert readable["predicted_class"].tolist() == decided.predicted_class
    np.testing.assert_allclose(readable["mean_leak_score"], decided.votes.mean_leak_score)
    for column, values in decided.class_probability_columns().items():
        np.testing.assert_allclose(readable[column], values)
    assert ((readable["predicted_class"] == LEAK) == (readable["decision"] == LEAK)).all()


def test_a_model_whose_features_this_project_cannot_compute_is_refused(inbox):
    state, meta = model_and_meta()
    meta["front_end_problem"] = "its front end is not this project's"
    with pytest.raises(ValueError, match="cannot reproduce from audio"):
        predict_recordings(inbox, state, meta, PREDICT)


def test_the_pipeline_writes_the_nodes_table_from_an_in_memory_catalog(inbox):
    state, meta = model_and_meta()
    catalog = DataCatalog(
        {
            "inbox": MemoryDataset(inbox, copy_mode="assign"),
            "model": MemoryDataset(state),
            "model_meta": MemoryDataset(meta),
            "params:predict": MemoryDataset(PREDICT),
        }
    )
    outputs = SequentialRunner().run(create_pipeline(), catalog)
    table = outputs["inbox_predictions"].load()
    expected = predict_recordings(inbox, state, meta, PREDICT)
    pd.testing.assert_frame_equal(table, expected)
