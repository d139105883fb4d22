"""Recordings and recordings to classify in object storage, through fsspec's in-memory filesystem."""

import importlib
import time
from datetime import UTC, datetime
from pathlib import Path

import fsspec
import numpy as np
import pytest
from click.testing import CliRunner
from kedro.io import DatasetError

from leak_detection.audio.analysis_pool import analyse_files
from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.audio.remote import (
    ListedObject,
    inside,
    is_remote,
    list_remote,
    location,
    modified_ns,
    remote_info,
)
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


def test_a_manifest_may_list_full_urls_or_absolute_paths_inside_the_bucket_folder(local_and_remote, bucket):
    bucket.pipe(
        "/field-bucket/pipes/manifest.csv",
        f"path,label,group\n{BUCKET}/LEAK/b.flac,CRACK,\n/field-bucket/pipes/NORMAL/c.WAV,,site8\n"
        f"{BUCKET}/LEAK/gone.wav,LEAK,\n".encode(),
    )
    recordings = RecordingsDataset(path=BUCKET).load()
    table = recordings.table.set_index("file_id")
    assert table.loc["LEAK/b.flac", "raw_label"] == "CRACK"
    assert table.loc["NORMAL/c.WAV", "group"] == "site8"
    assert recordings.unusable == [("LEAK/gone.wav", f"listed in manifest.csv line 4 but missing in {BUCKET}")]


@pytest.mark.parametrize(
    "escape",
    [
        "../outside.wav",
        "/etc/passwd",
        "LEAK/../../outside.wav",
        "memory://field-bucket/other/a.wav",
        "s3://field-bucket/pipes/LEAK/a.wav",
        "/field-bucket/pipes-2/a.wav",
    ],
)
def test_manifest_paths_that_leave_the_bucket_folder_are_refused(local_and_remote, bucket, escape):
    bucket.pipe("/field-bucket/manifest-elsewhere.csv", f"path,label\nLEAK/b.flac,LEAK\n{escape},LEAK\n".encode())
    with pytest.raises(DatasetError, match="manifest-elsewhere.csv line 3: .*outside the recordings folder"):
        RecordingsDataset(path=BUCKET, manifest="memory://field-bucket/manifest-elsewhere.csv").load()


def test_a_missing_bucket_folder_or_manifest_and_an_unknown_protocol_are_named(bucket):
    with pytest.raises(DatasetError, match="memory://field-bucket/none does not exist.*--params recordings_dir="):
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
    (tmp_path / "here.wav").write_bytes(b"")
    for local in [str(tmp_path / "nothing.wav"), f"file://{tmp_path}/nothing.wav"]:
        missing = runner.invoke(main, ["predict", local, "--project", str(tmp_path)])
        assert missing.exit_code == 2 and "does not exist" in missing.output
    for given in ["memory://x/y.wav", f"file://{tmp_path}/here.wav"]:
        accepted = runner.invoke(main, ["predict", given, "--project", str(tmp_path)])
        # The location got past argument checking, to the project check.
        assert accepted.exit_code == 2 and "is not the leak-detection project" in accepted.output


def test_an_inbox_reads_file_urls_and_local_names_with_double_colons_locally(tmp_path, make_wav):
    odd = make_wav(tmp_path / "LEAK" / "site::07.wav")
    inbox = InboxDataset(path=[str(odd), f"file://{tmp_path}/LEAK/"]).load()
    assert inbox.table["file_id"].tolist() == [odd.as_posix()]
    assert inbox.read(odd.as_posix())[1] == 4096


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


@pytest.fixture
def machine_in_new_york(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("naive", [datetime(2026, 1, 1), "2026-01-01T00:00:00"])
def test_a_time_without_a_zone_is_utc_whatever_the_machines_zone(machine_in_new_york, naive):
    assert modified_ns({"LastModified": naive}) == int(datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1e9)


def test_a_store_keeping_no_time_still_tells_a_replaced_object_by_its_etag_or_generation():
    tagged = [modified_ns({"size": 3, key: value}) for key, value in [("ETag", '"abc"'), ("generation", 17)]]
    assert all(0 < value < 2**63 for value in tagged) and len(set(tagged)) == 2
    assert modified_ns({"ETag": '"abc"'}) == modified_ns({"etag": '"abc"'}) != modified_ns({"ETag": '"abd"'})


def test_urls_and_relative_paths():
    assert is_remote("s3://b/k") and is_remote("memory://x") and not is_remote("file:///x") and not is_remote("/x")
    assert is_remote("simplecache::s3://b/k") and not is_remote("local:///x")
    assert not is_remote("/tmp/LEAK/site::07.wav") and not is_remote("/tmp/odd://name.wav")
    assert location("file:///tmp/x/") == Path("/tmp/x") and location("memory://b/p/") == "memory://b/p"
    assert location("memory://") == "memory://"
    assert inside("a/./b/../c.wav") == "a/c.wav" and inside("../a") is None and inside("/a") is None


def test_a_bare_protocol_lists_the_whole_store(local_and_remote):
    recordings = RecordingsDataset(path="memory://").load()
    assert "field-bucket/pipes/LEAK/b.flac" in set(recordings.table["file_id"])
    assert recordings.path("field-bucket/pipes/LEAK/b.flac") == f"{BUCKET}/LEAK/b.flac"
    assert recordings.read("field-bucket/pipes/LEAK/b.flac")[1] == 4096


def test_one_look_up_per_object_and_listing_failures_are_unreachable_too(local_and_remote, bucket, monkeypatch):
    asked = []
    info = bucket.info
    monkeypatch.setattr(bucket, "info", lambda path, **kw: asked.append(path) or info(path, **kw))
    found = remote_info(f"{BUCKET}/LEAK/b.flac", {})
    assert isinstance(found, ListedObject) and found.size_bytes > 0 and len(asked) == 1
    assert remote_info(f"{BUCKET}/LEAK", {}) is None

    def refused(*args, **kwargs):
        raise ConnectionError("connection reset")

    monkeypatch.setattr(bucket, "find", refused)
    with pytest.raises(DatasetError, match=f"^Cannot reach {BUCKET}: ConnectionError: connection reset;"):
        list_remote(BUCKET, {}, [".wav"])


def test_credentials_never_show_in_the_collections_repr(local_and_remote):
    recordings = RecordingsDataset(path=BUCKET, credentials={"secret": "hunter2"}).load()
    assert recordings.storage_options == {"secret": "hunter2"} and "hunter2" not in repr(recordings)


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


INBOX_WITH_KEYS = """
inbox:
  type: leak_detection.datasets.InboxDataset
  path: memory://field-bucket/inbox
  credentials: field_bucket
  fs_args:
    endpoint_url: https://store.example
"""


@pytest.fixture
def inbox_with_keys(project):
    """The project's ``inbox`` entry with credentials, as ``conf/local`` would give it."""
    local = project / "conf" / "local"
    (local / "catalog.yml").write_text(INBOX_WITH_KEYS)
    (local / "credentials.yml").write_text("field_bucket:\n  key: AKIA\n  secret: hunter2\n")
    yield {"key": "AKIA", "secret": "hunter2", "endpoint_url": "https://store.example"}
    (local / "catalog.yml").unlink()
    (local / "credentials.yml").unlink()


def test_explain_reads_a_url_with_the_inbox_entrys_credentials(local_and_remote, project, inbox_with_keys, monkeypatch):
    # ``leak_detection.console.explain`` as an attribute is the click command of that name.
    console_explain = importlib.import_module("leak_detection.console.explain")
    decisions_explain = importlib.import_module("leak_detection.decisions.explain")
    asked = {}
    monkeypatch.setattr(console_explain, "load_model", lambda *args: ({}, {}, "v1"))

    def explain_recording(path, state, meta, storage_options):
        asked.update(path=path, storage_options=storage_options)
        raise ValueError("stopped before the model")

    monkeypatch.setattr(decisions_explain, "explain_recording", explain_recording)
    url = f"{BUCKET}/LEAK/b.flac"
    result = CliRunner().invoke(main, ["explain", url, "--project", str(project)])
    assert result.exit_code == 2 and f"{url}: stopped before the model" in result.output
    assert asked == {"path": url, "storage_options": inbox_with_keys}


def test_explain_says_a_folder_url_is_a_folder(local_and_remote, project):
    result = CliRunner().invoke(main, ["explain", f"{BUCKET}/LEAK", "--project", str(project)])
    assert result.exit_code == 2 and f"{BUCKET}/LEAK is a folder: explain takes one recording" in result.output
