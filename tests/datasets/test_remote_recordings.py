"""Recordings and recordings to classify in object storage, through fsspec's in-memory filesystem."""

from datetime import UTC, datetime

import fsspec
import numpy as np
import pytest
from click.testing import CliRunner
from kedro.io import DatasetError

from leak_detection.audio.analysis_pool import analyse_files
from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.audio.remote import inside, is_remote, modified_ns
from leak_detection.console import main
from leak_detection.datasets import InboxDataset, RecordingsDataset

BUCKET = "memory://field-bucket/pipes"


@pytest.fixture
def bucket():
    memory = fsspec.filesystem("memory")
    memory.store.clear()
    memory.pseudo_dirs[:] = [""]
    yield memory
    memory.store.clear()
    memory.pseudo_dirs[:] = [""]


@pytest.fixture
def local_and_remote(tmp_path, make_wav, bucket):
    """The same recordings on local disk and in the bucket."""
    for i, name in enumerate(["LEAK/site1/a.wav", "LEAK/b.flac", "NORMAL/c.WAV", "QUIET/deep/d.wav", "x/notes.txt"]):
        if name.endswith(".txt"):
            (tmp_path / name).parent.mkdir(parents=True)
            (tmp_path / name).write_text("not audio")
        else:
            make_wav(tmp_path / name, seed=i)
    bucket.put(str(tmp_path), "/field-bucket/pipes", recursive=True)
    return tmp_path


def test_a_bucket_lists_and_decodes_the_same_recordings_as_the_local_folder(local_and_remote):
    local = RecordingsDataset(path=local_and_remote).load()
    remote = RecordingsDataset(path=BUCKET + "/").load()
    columns = ["file_id", "raw_label", "group", "size_bytes"]
    assert remote.table[columns].equals(local.table[columns])
    assert (remote.table["mtime_ns"] > 0).all()
    assert remote.path("LEAK/b.flac") == f"{BUCKET}/LEAK/b.flac"
    for file_id in local.table["file_id"]:
        (samples, rate), (expected, expected_rate) = remote.read(file_id), local.read(file_id)
        assert rate == expected_rate and np.array_equal(samples, expected)
    rate, blocks = remote.open_blocks("QUIET/deep/d.wav", block_frames=1000)
    assert rate == 4096 and np.array_equal(np.concatenate(list(blocks))[:, 0], local.read("QUIET/deep/d.wav")[0])


def test_forked_extraction_workers_read_from_the_bucket(local_and_remote, bucket, make_wav, tmp_path):
    for i in range(8):
        make_wav(tmp_path / "more" / "LEAK" / f"{i}.wav", seconds=2.0, seed=10 + i)
    bucket.put(str(tmp_path / "more"), "/field-bucket/more", recursive=True)
    recordings = RecordingsDataset(path="memory://field-bucket/more").load()
    config = FrontEndConfig()
    results = list(analyse_files(recordings, list(recordings.table["file_id"]), config, workers=2))
    assert [r.file_id for r in results] == list(recordings.table["file_id"])
    assert all(r.reason is None and r.analysed is not None for r in results), [r.reason for r in results]


def test_a_manifest_in_the_bucket_gives_labels_and_groups_and_names_missing_objects(local_and_remote, bucket):
    bucket.pipe(
        "/field-bucket/pipes/manifest.csv",
        b"path,label,group\nLEAK/b.flac,CRACK,site7\n./x/../NORMAL/c.WAV,,site8\nLEAK/gone.wav,LEAK,\n",
    )
    recordings = RecordingsDataset(path=BUCKET).load()
    table = recordings.table.set_index("file_id")
    assert table.loc["LEAK/b.flac", ["raw_label", "group"]].tolist() == ["CRACK", "site7"]
    assert table.loc["NORMAL/c.WAV", ["raw_label", "group"]].tolist() == ["NORMAL", "site8"]
    assert recordings.unusable == [("LEAK/gone.wav", f"listed in manifest.csv line 4 but missing in {BUCKET}")]


@pytest.mark.parametrize("escape", ["../outside.wav", "/etc/passwd", "LEAK/../../outside.wav"])
def test_manifest_paths_that_leave_the_bucket_folder_are_refused(local_and_remote, bucket, escape):
    bucket.pipe("/field-bucket/manifest-elsewhere.csv", f"path,label\n{escape},LEAK\n".encode())
    with pytest.raises(DatasetError, match="outside the recordings folder"):
        RecordingsDataset(path=BUCKET, manifest="memory://field-bucket/manifest-elsewhere.csv").load()


def test_a_missing_bucket_folder_or_manifest_and_an_unknown_protocol_are_named(bucket):
    with pytest.raises(DatasetError, match="memory://field-bucket/none does not exist"):
        RecordingsDataset(path="memory://field-bucket/none").load()
    bucket.pipe("/field-bucket/pipes/LEAK/a.wav", b"")
    with pytest.raises(DatasetError, match="manifest memory://field-bucket/m.csv does not exist"):
        RecordingsDataset(path=BUCKET, manifest="memory://field-bucket/m.csv").load()
    with pytest.raises(DatasetError, match="nosuchstore://x/y: fsspec cannot open this protocol.*install"):
        RecordingsDataset(path="nosuchstore://x/y").load()
    assert RecordingsDataset(path=BUCKET).exists() and not RecordingsDataset(path=BUCKET + "2").exists()


def test_an_inbox_mixes_bucket_folders_single_objects_and_local_files(local_and_remote, bucket, make_wav, tmp_path):
    make_wav(tmp_path / "inbox" / "local.wav")
    bucket.pipe("/field-bucket/labels.csv", b"path,label\nsite1/a.wav,LEAK\n")
    inbox = InboxDataset(
        path=[f"{BUCKET}/LEAK", f"{BUCKET}/NORMAL/c.WAV", tmp_path / "inbox" / "local.wav"],
        labels="memory://field-bucket/labels.csv",
    ).load()
    remote = [f"{BUCKET}/LEAK/b.flac", f"{BUCKET}/LEAK/site1/a.wav", f"{BUCKET}/NORMAL/c.WAV"]
    assert inbox.table["file_id"].tolist() == [*remote, (tmp_path / "inbox" / "local.wav").as_posix()]
    assert inbox.table["raw_label"].tolist() == ["", "LEAK", "", ""]
    assert (inbox.table["size_bytes"] > 0).all()
    samples, rate = inbox.read(f"{BUCKET}/LEAK/b.flac")
    assert rate == 4096 and np.array_equal(
        samples, RecordingsDataset(path=local_and_remote).load().read("LEAK/b.flac")[0]
    )
    with pytest.raises(DatasetError, match=f"{BUCKET}/LEAK/none.wav does not exist"):
        InboxDataset(path=f"{BUCKET}/LEAK/none.wav").load()


def test_a_corrupt_object_is_an_error_for_that_file_only(bucket, make_wav, tmp_path):
    make_wav(tmp_path / "good.wav")
    bucket.put(str(tmp_path / "good.wav"), "/field-bucket/inbox/good.wav")
    bucket.pipe("/field-bucket/inbox/broken.wav", b"RIFF....not audio")
    inbox = InboxDataset(path="memory://field-bucket/inbox").load()
    config = FrontEndConfig()
    reasons = {r.file_id: r.reason for r in analyse_files(inbox, list(inbox.table["file_id"]), config, workers=1)}
    assert reasons["memory://field-bucket/inbox/good.wav"] is None
    assert reasons["memory://field-bucket/inbox/broken.wav"].startswith("unreadable:")


def test_the_cli_takes_urls_as_recordings_and_still_checks_local_paths(tmp_path):
    runner = CliRunner()
    missing = runner.invoke(main, ["predict", str(tmp_path / "nothing.wav"), "--project", str(tmp_path)])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    remote = runner.invoke(main, ["predict", "memory://x/y.wav", "--project", str(tmp_path)])
    # The URL got past argument checking, to the project check.
    assert remote.exit_code == 2 and "is not the leak-detection project" in remote.output


@pytest.mark.parametrize(
    ("info", "expected"),
    [
        ({"mtime": 1.5}, 1_500_000_000),
        ({"LastModified": datetime(2026, 1, 1, tzinfo=UTC)}, int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e9)),
        ({"updated": "2026-01-01T00:00:00Z"}, int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e9)),
        ({"size": 3}, 0),
    ],
)
def test_object_times_are_read_from_each_stores_own_key(info, expected):
    assert modified_ns(info) == expected


def test_urls_and_relative_paths():
    assert is_remote("s3://b/k") and is_remote("memory://x") and not is_remote("file:///x") and not is_remote("/x")
    assert inside("a/./b/../c.wav") == "a/c.wav" and inside("../a") is None and inside("/a") is None


def refuse_connections(monkeypatch, memory):
    def refused(*args, **kwargs):
        raise ConnectionError("connection refused")

    monkeypatch.setattr(memory, "info", refused)


def test_a_bucket_out_of_reach_is_an_error_never_an_empty_folder(local_and_remote, bucket, monkeypatch):
    refuse_connections(monkeypatch, bucket)
    for attempt in (
        lambda: RecordingsDataset(path=BUCKET).load(),
        lambda: RecordingsDataset(path=BUCKET).exists(),
        lambda: InboxDataset(path=f"{BUCKET}/LEAK").load(),
    ):
        with pytest.raises(DatasetError, match=f"Cannot reach {BUCKET}.*ConnectionError: connection refused"):
            attempt()


def test_explain_names_a_missing_object_before_looking_for_a_model(project, bucket):
    result = CliRunner().invoke(main, ["explain", f"{BUCKET}/LEAK/none.wav", "--project", str(project)])
    assert result.exit_code == 2 and f"{BUCKET}/LEAK/none.wav does not exist" in result.output
