"""What adaptation fine-tunes on: pseudo-labelled segments beside a rehearsal sample of training."""

import numpy as np

from leak_detection.adaptation.fine_tune import LabelledSegments, rehearsal_sample
from leak_detection.pipelines.data_indexing.nodes import file_targets
from tests.conftest import synthetic_store


def train_targets():
    store, index = synthetic_store()
    targets = file_targets(index.assign(store_fingerprint="x"), "binary")
    return store, targets[targets["split"] == "train"]


def test_rehearsal_draws_training_segments_with_their_own_files_targets():
    store, train = train_targets()
    sample = rehearsal_sample(store, train, 25, leak_output_idx=1, seed=0)
    assert len(sample) == 25
    owners = {}
    for fid, target in zip(train["file_id"], train["target"], strict=True):
        i = store.file_ids.index(fid)
        for row in range(store.file_offsets[i], store.file_offsets[i + 1]):
            owners[store.segments_mel[row].tobytes()] = target
    assert [owners[s.tobytes()] for s in sample.segments] == list(sample.targets)
    assert (sample.is_leak == (sample.targets == 1)).all()


def test_rehearsal_is_the_same_for_a_seed_and_takes_everything_when_asked_for_more():
    store, train = train_targets()
    first, again = (rehearsal_sample(store, train, 10, 1, seed=3) for _ in range(2))
    np.testing.assert_array_equal(first.segments, again.segments)
    everything = rehearsal_sample(store, train, 10**6, 1, seed=3)
    assert len(everything) == int(train["n_long_segments"].sum())


def test_every_long_segment_is_its_own_entry_so_one_recording_may_carry_two_labels():
    segments = np.zeros((4, 3, 32, 1), dtype=np.float16)
    mix = LabelledSegments(segments, np.array([1, 0, 1, 0]), np.array([True, False, True, False]))
    source = (mix + mix).source(["NOLEAK", "LEAK"], 2**20)
    assert source.n_samples == 8 * 3
    assert list(source.file_targets) == [1, 0, 1, 0, 1, 0, 1, 0]


def test_loss_weights_follow_trainings_formula_and_ignore_absent_classes():
    mix = LabelledSegments(np.zeros((4, 3, 32, 1)), np.array([0, 0, 0, 1]), np.array([False, False, False, True]))
    weights, pos_weight = mix.class_weights(3)
    assert weights == [4 / (3 * 3), 4 / (3 * 1), 1.0]
    assert pos_weight == 3.0
