"""A run killed at any moment loses nothing already written and resumes to the same result."""

import logging
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from leak_detection.datasets import MelFeatureStoreDataset
from leak_detection.pipelines.data_indexing.nodes import file_targets, summarise_classes
from leak_detection.pipelines.training.nodes import train_model
from tests.conftest import PROJECT, synthetic_store

TRAINING = {"epochs": 6, "batch_size": 64, "patience": 10, "eval_batch_size": 512}

TRAIN_SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {project!r})
    from tests.conftest import synthetic_store
    from leak_detection.pipelines.data_indexing.nodes import file_targets, summarise_classes
    from leak_detection.pipelines.training.nodes import train_model
    store, index = synthetic_store(files_per_class=16, n_long=40)
    targets = file_targets(index, "multiclass")
    train_model(store, targets, summarise_classes(targets, "multiclass"),
                {{**{training!r}, "checkpoint_dir": {folder!r}}}, "multiclass")
""")


def train_in_process(folder):
    store, index = synthetic_store(files_per_class=16, n_long=40)
    targets = file_targets(index, "multiclass")
    return train_model(
        store,
        targets,
        summarise_classes(targets, "multiclass"),
        {**TRAINING, "checkpoint_dir": str(folder)},
        "multiclass",
    )


def test_training_killed_at_a_random_moment_resumes_to_the_same_weights(tmp_path):
    reference_state, reference_meta, _ = train_in_process(tmp_path / "uninterrupted")

    folder = tmp_path / "killed"
    script = TRAIN_SCRIPT.format(project=str(PROJECT), training=TRAINING, folder=str(folder))
    log = tmp_path / "killed.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=stderr)
    # Wait for progress, not for a time: a 120 s deadline once expired on a busy machine
    # after epoch 1 only, and the kill then looked like a resume that lost an epoch.
    while not (folder / "epoch_002.pth").exists():
        assert process.poll() is None, f"training ended before epoch 2: {log.read_text()}"
        time.sleep(0.01)
    time.sleep(np.random.default_rng().uniform(0, 0.5))  # somewhere inside a later epoch, or a write
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert process.returncode == -signal.SIGKILL
    newest_epoch = torch.load(folder / "last.pth", weights_only=True)["epoch"]

    resumed_state, resumed_meta, history = train_in_process(folder)
    assert resumed_meta["resumed_from_epoch"] == newest_epoch >= 2
    assert resumed_meta["best_file_leak_f1"] == reference_meta["best_file_leak_f1"]
    assert resumed_meta["best_epoch"] == reference_meta["best_epoch"]
    assert list(history["epoch"]) == list(range(1, 7))
    for key, value in reference_state.items():
        assert torch.equal(value, resumed_state[key]), key


def test_a_corrupted_last_checkpoint_is_named_and_the_newest_intact_epoch_is_used(tmp_path, caplog):
    train_in_process(tmp_path)  # 6 epochs, keeps epoch_004..006
    (tmp_path / "last.pth").write_bytes(b"\x00not a checkpoint")
    (tmp_path / "epoch_006.pth").write_bytes((tmp_path / "epoch_006.pth").read_bytes()[:1000])
    with caplog.at_level(logging.INFO):
        _, meta, _ = train_in_process(tmp_path)
    assert f"Checkpoint {tmp_path / 'last.pth'} is unreadable" in caplog.text
    assert f"Checkpoint {tmp_path / 'epoch_006.pth'} is unreadable" in caplog.text
    assert f"Resuming from {tmp_path / 'epoch_005.pth'}" in caplog.text
    assert meta["resumed_from_epoch"] == 5


WRITE_SCRIPT = textwrap.dedent("""
    import numpy as np
    from leak_detection.datasets import MelFeatureStoreDataset
    from leak_detection.features.store import MelFeatureStore
    n_files, per_file = 400, 500
    store = MelFeatureStore(
        segments_mel=np.random.default_rng(1).normal(size=(n_files * per_file, 3, 32, 1)).astype(np.float32),
        file_offsets=np.arange(n_files + 1) * per_file, labels=np.zeros(n_files, int),
        file_ids=[f"f{{i}}.wav" for i in range(n_files)], groups=[f"f{{i}}" for i in range(n_files)],
        label_names=["LEAK", "NORMAL", "QUIET", "RANDOM", "MECHANICAL"])
    print("writing", flush=True)
    MelFeatureStoreDataset(filepath={path!r}, save_args={{"chunk_long_segments": 256}}).save(store)
    print("done", flush=True)
""")


def test_feature_extraction_killed_mid_write_leaves_the_previous_store_intact(tmp_path):
    path = tmp_path / "mel_features.h5"
    previous, _ = synthetic_store()
    MelFeatureStoreDataset(filepath=str(path), save_args={"dtype": "float32"}).save(previous)
    before = path.read_bytes()
    process = subprocess.Popen(
        [sys.executable, "-c", WRITE_SCRIPT.format(path=str(path))], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout.readline().strip() == "writing"
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".mel_features.h5.tmp-*")) and time.monotonic() < deadline:
        time.sleep(0.005)
    time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    if process.returncode != -signal.SIGKILL:
        pytest.skip("the write finished before it could be killed")
    assert path.read_bytes() == before
    reloaded = MelFeatureStoreDataset(filepath=str(path)).load()
    np.testing.assert_array_equal(reloaded.segments_mel, previous.segments_mel)
    assert os.path.exists(path)
