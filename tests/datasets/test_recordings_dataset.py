import os

import numpy as np
import pytest
from kedro.io import DatasetError

from leak_detection.datasets import RecordingsDataset


def test_labels_come_from_folders_and_each_file_is_its_own_group(tmp_path, make_wav):
    make_wav(tmp_path / "LEAK" / "site1" / "a.wav")
    make_wav(tmp_path / "NORMAL" / "b.WAV")
    make_wav(tmp_path / "QUIET" / "deep" / "er" / "c d é.flac")
    (tmp_path / "QUIET" / "notes.txt").write_text("not audio")
    recordings = RecordingsDataset(path=tmp_path).load()
    table = recordings.table.set_index("file_id")
    assert table.loc["LEAK/site1/a.wav", "raw_label"] == "LEAK"
    assert table.loc["NORMAL/b.WAV", "raw_label"] == "NORMAL"
    assert table.loc["QUIET/deep/er/c d é.flac", "raw_label"] == "QUIET"
    assert list(table["group"]) == list(table.index)
    assert len(table) == 3
    samples, rate = recordings.read("NORMAL/b.WAV")
    assert rate == 4096 and samples.shape == (4096,) and samples.dtype == np.float32


def test_manifest_overrides_folder_labels_and_gives_groups(tmp_path, make_wav):
    make_wav(tmp_path / "LEAK" / "a.wav")
    make_wav(tmp_path / "LEAK" / "b.wav")
    make_wav(tmp_path / "unsorted.wav")
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "path,label,group\nLEAK/a.wav,CRACK,site1\nunsorted.wav,NORMAL,site2\nLEAK/gone.wav,LEAK,site3\n"
    )
    recordings = RecordingsDataset(path=tmp_path).load()
    table = recordings.table.set_index("file_id")
    assert table.loc["LEAK/a.wav", ["raw_label", "group"]].tolist() == ["CRACK", "site1"]
    assert table.loc["LEAK/b.wav", ["raw_label", "group"]].tolist() == ["LEAK", "LEAK/b.wav"]
    assert table.loc["unsorted.wav", ["raw_label", "group"]].tolist() == ["NORMAL", "site2"]
    assert recordings.unusable == [("LEAK/gone.wav", "listed in manifest.csv line 4 but missing on disk")]


def test_a_file_with_no_label_is_reported_not_dropped(tmp_path, make_wav):
    make_wav(tmp_path / "LEAK" / "a.wav")
    make_wav(tmp_path / "loose.wav")
    recordings = RecordingsDataset(path=tmp_path).load()
    assert [fid for fid, _ in recordings.unusable] == ["loose.wav"]


@pytest.mark.parametrize("escape", ["../outside.wav", "/etc/passwd", "LEAK/../../outside.wav"])
def test_manifest_paths_that_leave_the_folder_are_refused(tmp_path, make_wav, escape):
    root = tmp_path / "recordings"
    make_wav(root / "LEAK" / "a.wav")
    make_wav(tmp_path / "outside.wav")
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,label,group\n{escape},LEAK,x\n")
    with pytest.raises(DatasetError, match="outside the recordings folder"):
        RecordingsDataset(path=root, manifest=manifest).load()


def test_links_out_of_the_folder_and_link_loops_are_not_followed(tmp_path, make_wav):
    root = tmp_path / "recordings"
    make_wav(root / "LEAK" / "a.wav")
    make_wav(tmp_path / "secret.wav")
    os.symlink(tmp_path / "secret.wav", root / "LEAK" / "secret.wav")
    os.symlink(root / "LEAK", root / "LEAK" / "loop")
    recordings = RecordingsDataset(path=root).load()
    assert list(recordings.table["file_id"]) == ["LEAK/a.wav"]
    assert recordings.unusable == [
        ("LEAK/secret.wav", f"a link to {tmp_path / 'secret.wav'}, outside the recordings folder: not read")
    ]


def test_a_manifest_listing_a_file_twice_with_one_label_keeps_it_once(tmp_path, make_wav):
    make_wav(tmp_path / "LEAK" / "a.wav")
    (tmp_path / "manifest.csv").write_text("path,label,group\nLEAK/a.wav,CRACK,site1\nLEAK/./a.wav,crack,\n")
    recordings = RecordingsDataset(path=tmp_path).load()
    assert recordings.table[["file_id", "raw_label", "group"]].values.tolist() == [["LEAK/a.wav", "CRACK", "site1"]]
    assert recordings.unusable == []


def test_a_manifest_row_naming_a_link_out_of_the_folder_is_rejected_not_read(tmp_path, make_wav):
    root = tmp_path / "recordings"
    make_wav(root / "LEAK" / "a.wav")
    (tmp_path / "notes.txt").write_text("not a recording")
    os.symlink(tmp_path / "notes.txt", root / "LEAK" / "notes.dat")
    (root / "manifest.csv").write_text("path,label\nLEAK/notes.dat,LEAK\n")
    recordings = RecordingsDataset(path=root).load()
    assert list(recordings.table["file_id"]) == ["LEAK/a.wav"]
    assert recordings.unusable == [
        ("LEAK/notes.dat", "listed in manifest.csv line 2: a link outside the recordings folder")
    ]


def test_missing_folder_names_the_override(tmp_path):
    with pytest.raises(DatasetError, match="recordings_dir"):
        RecordingsDataset(path=tmp_path / "nope").load()


def test_a_file_url_is_the_local_folder(tmp_path, make_wav):
    make_wav(tmp_path / "LEAK" / "a.wav")
    recordings = RecordingsDataset(path=f"file://{tmp_path}/").load()
    assert recordings.root == tmp_path and list(recordings.table["file_id"]) == ["LEAK/a.wav"]
    assert RecordingsDataset(path=f"local://{tmp_path}").exists()
