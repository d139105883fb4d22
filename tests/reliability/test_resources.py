"""Odd inputs and full disks end in a reason, not in exhausted memory or a half-written file."""

import contextlib
import json
import logging
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
from collections import OrderedDict
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
import yaml
from kedro.io import DataCatalog

from leak_detection.audio.front_end import FrontEndConfig, analyse_recording

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PROJECT = Path(__file__).resolve().parents[2]
CONFIG = FrontEndConfig()
V1, V2, V3 = "2026-01-01T00.00.00.000Z", "2026-02-01T00.00.00.000Z", "2026-03-01T00.00.00.000Z"


def peak_rss_mb(script: str) -> dict:
    """Run ``script`` in a fresh interpreter; its last line of output is JSON, plus its peak RSS."""
    footer = textwrap.dedent("""
        import json as _json
        _hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM"))
        print(_json.dumps({**result, "peak_mb": _hwm / 1024}))
    """)
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script) + footer], capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---- 1. Sample rates --------------------------------------------------------------


def test_six_files_at_odd_sample_rates_are_extracted_in_bounded_memory(tmp_path):
    for i, rate in enumerate(range(48001, 48012, 2)):
        label = tmp_path / ("LEAK" if i % 2 else "NORMAL")
        label.mkdir(exist_ok=True)
        sf.write(label / f"{rate}.wav", 0.1 * np.random.default_rng(i).normal(size=2 * rate), rate)
    measured = peak_rss_mb(f"""
        from leak_detection.datasets import RecordingsDataset
        from leak_detection.audio.front_end import FrontEndConfig
        from leak_detection.pipelines.feature_extraction.nodes import extract_features, label_recordings
        recordings = RecordingsDataset(path={str(tmp_path)!r}).load()
        labelled = label_recordings(recordings, {{}})
        store, rejected = extract_features(recordings, labelled, FrontEndConfig().to_dict(), {{"workers": 1}})
        result = {{"files": store.n_files, "rejected": len(rejected)}}
    """)
    assert measured["files"] == 6 and measured["rejected"] == 0
    # Each odd rate built a 790 MB polyphase matrix and 16 were cached: 5 GB measured.
    assert measured["peak_mb"] < 1500, measured


@pytest.mark.parametrize("rate", [1_000_000, 500])
def test_a_rate_outside_the_supported_range_is_rejected_with_its_reason(rate):
    analysed = analyse_recording([0.1 * np.random.default_rng(0).normal(size=20_000)], rate, CONFIG)
    assert analysed.features is None
    assert analysed.reason.startswith(f"unsupported sample rate {rate} Hz:")


def test_a_megahertz_file_is_reported_and_the_others_are_kept(tmp_path):
    from leak_detection.datasets import RecordingsDataset
    from leak_detection.pipelines.feature_extraction.nodes import extract_features, label_recordings

    for label in ("LEAK", "NORMAL"):
        (tmp_path / label).mkdir()
    mhz = 0.1 * np.random.default_rng(1).normal(size=400_000)
    sf.write(tmp_path / "LEAK" / "header says 1 MHz.wav", mhz, 1_000_000)
    sf.write(tmp_path / "NORMAL" / "good.wav", 0.1 * np.random.default_rng(2).normal(size=16_000), 8000)
    recordings = RecordingsDataset(path=tmp_path).load()
    store, rejected = extract_features(recordings, label_recordings(recordings, {}), CONFIG.to_dict(), {"workers": 1})
    assert store.file_ids == ["NORMAL/good.wav"]
    assert rejected["reason"].str.startswith("unsupported sample rate 1000000 Hz").tolist() == [True]


def test_the_resamplers_kept_between_files_are_bounded_by_bytes(monkeypatch):
    import leak_detection.audio.front_end as front_end

    monkeypatch.setattr(front_end, "RESAMPLER_CACHE_BYTES", 20 << 20)
    monkeypatch.setattr(front_end, "_resamplers", OrderedDict())
    for rate in range(48001, 48021, 2):  # ten filters of 7.7 MB each
        front_end._polyphase(4096, rate)
    held = sum(r.nbytes for r in front_end._resamplers.values())
    assert 0 < held <= 20 << 20
    assert (4096, 48019) in front_end._resamplers  # the latest is kept


# ---- 2. Atomic outputs ------------------------------------------------------------


@contextlib.contextmanager
def disk_full_after(n_bytes: int):
    """Writes past ``n_bytes`` of any file fail (EFBIG), as on a disk that is full."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (n_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def project_catalog(tmp_path, names, **versions):
    """The project's own catalog entries ``names``, with their files under ``tmp_path``."""
    entries = yaml.safe_load((PROJECT / "conf" / "base" / "catalog.yml").read_text())
    config = {}
    for name in names:
        entry = json.loads(json.dumps(entries[name]))
        entry["filepath"] = str(tmp_path / entry["filepath"])
        config[name] = entry
    return DataCatalog.from_config(config, **versions)


MODEL_ENTRIES = ("{mode}.model", "{mode}.model_meta")


def save_model(tmp_path, version, seed, meta_fails=False):
    torch.manual_seed(seed)
    state = torch.nn.Linear(4, 2).state_dict()
    meta = {"seed": seed, "padding": "x" * 4096}
    catalog = project_catalog(tmp_path, MODEL_ENTRIES, save_version=version)
    catalog.save("binary.model", state)
    with disk_full_after(1024) if meta_fails else contextlib.nullcontext():
        catalog.save("binary.model_meta", meta)
    return state


def load_latest(tmp_path):
    catalog = project_catalog(tmp_path, MODEL_ENTRIES)
    return catalog.load("binary.model"), catalog.load("binary.model_meta")


def test_a_disk_full_while_writing_the_meta_leaves_the_previous_model_in_use(tmp_path, caplog):
    first = save_model(tmp_path, V1, seed=1)
    with pytest.raises(Exception):  # noqa: B017 - whatever the disk says; what matters is what is left
        save_model(tmp_path, V2, seed=2, meta_fails=True)
    meta_v2 = tmp_path / "data/06_models/binary/model_meta.json" / V2 / "model_meta.json"
    assert not meta_v2.exists()  # never a 0-byte or half-written meta
    with caplog.at_level(logging.WARNING):
        state, meta = load_latest(tmp_path)
    assert meta["seed"] == 1 and all(torch.equal(state[k], first[k]) for k in first)
    assert V2 in caplog.text


@pytest.mark.parametrize(
    "damage",
    [
        lambda meta, model: meta.write_bytes(b""),
        lambda meta, model: meta.write_text('{"seed": 3, "truncat'),
        lambda meta, model: meta.unlink(),
        lambda meta, model: model.write_bytes(model.read_bytes()[:100]),
    ],
    ids=["0-byte meta", "invalid JSON meta", "model without meta", "truncated model"],
)
def test_latest_skips_an_incomplete_version_with_a_warning_naming_it(tmp_path, caplog, damage):
    save_model(tmp_path, V1, seed=1)
    save_model(tmp_path, V2, seed=2)
    save_model(tmp_path, V3, seed=3)
    models = tmp_path / "data/06_models/binary"
    damage(models / "model_meta.json" / V3 / "model_meta.json", models / "best.pth" / V3 / "best.pth")
    with caplog.at_level(logging.WARNING):
        state, meta = load_latest(tmp_path)
    assert meta["seed"] == 2
    torch.manual_seed(2)
    assert torch.equal(state["weight"], torch.nn.Linear(4, 2).state_dict()["weight"])
    assert V3 in caplog.text and V2 not in caplog.text


def test_a_pinned_version_is_loaded_as_asked_even_when_a_newer_one_is_broken(tmp_path):
    save_model(tmp_path, V1, seed=1)
    save_model(tmp_path, V2, seed=2)
    (tmp_path / "data/06_models/binary/model_meta.json" / V2 / "model_meta.json").write_bytes(b"")
    catalog = project_catalog(tmp_path, MODEL_ENTRIES, load_versions={"binary.model_meta": V1})
    assert catalog.load("binary.model_meta")["seed"] == 1


def figure():
    fig = plt.figure()
    plt.plot(np.random.default_rng(0).normal(size=1000))
    return fig


OUTPUTS = {
    "mode_comparison": lambda: {"values": list(range(2000))},
    "{mode}.file_predictions": lambda: pd.DataFrame({"file_id": [f"f{i}.wav" for i in range(500)]}),
    "mode_comparison_report": lambda: "# Report\n" + "line\n" * 1000,
    "{mode}.evaluation_plots": lambda: {"roc.png": figure()},
}


@pytest.mark.parametrize("name", list(OUTPUTS))
def test_an_output_whose_write_fails_keeps_the_previous_file_whole(tmp_path, name):
    catalog = project_catalog(tmp_path, [name])
    dataset_name = name.replace("{mode}", "binary")
    entry = yaml.safe_load((PROJECT / "conf/base/catalog.yml").read_text())[name]
    target = tmp_path / entry["filepath"].replace("{mode}", "binary")
    if name.endswith("plots"):
        target = target / "roc.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"previous")
    with pytest.raises(Exception), disk_full_after(512):  # noqa: B017
        catalog.save(dataset_name, OUTPUTS[name]())
    assert target.read_bytes() == b"previous"
    assert [p.name for p in target.parent.iterdir()] == [target.name]  # no temporary file left


def test_the_saved_outputs_read_back_through_the_catalog(tmp_path):
    catalog = project_catalog(tmp_path, list(OUTPUTS))
    for name, make in OUTPUTS.items():
        catalog.save(name.replace("{mode}", "binary"), make())
    assert catalog.load("mode_comparison") == OUTPUTS["mode_comparison"]()
    assert catalog.load("binary.file_predictions").equals(OUTPUTS["{mode}.file_predictions"]())
    assert catalog.load("mode_comparison_report") == OUTPUTS["mode_comparison_report"]()
    assert (tmp_path / "data/08_reporting/binary/plots/roc.png").read_bytes()[:4] == b"\x89PNG"


# ---- 2b. Feature store on a full disk ---------------------------------------------

STORE_SCRIPT = """
    import sys
    import numpy as np
    from leak_detection.datasets import MelFeatureStoreDataset
    from leak_detection.features.store import MelFeatureStore
    n = 10_000
    store = MelFeatureStore(
        segments_mel=np.random.default_rng(0).random((n * 10, 3, 32, 1), dtype=np.float32),
        file_offsets=np.arange(n + 1) * 10, labels=np.zeros(n, int),
        file_ids=[f"f{i}" for i in range(n)], groups=[f"f{i}" for i in range(n)], label_names=["NORMAL", "LEAK"],
    )
    try:
        MelFeatureStoreDataset(filepath=sys.argv[1], save_args={"dtype": "float32"}).save(store)
    except Exception as exc:
        print(exc)
        sys.exit(3)
"""


@pytest.fixture
def full_disk(tmp_path):
    """A 2 MB tmpfs (needs root; skipped elsewhere)."""
    mount_point = tmp_path / "full"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_a_full_disk_while_writing_the_feature_store_exits_cleanly_naming_the_path(full_disk):
    target = full_disk / "mel_features.h5"
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(STORE_SCRIPT), str(target)], capture_output=True, text=True, timeout=300
    )
    # HDF5 left the failed file open and crashed flushing it again at exit (-11, SIGSEGV).
    assert done.returncode == 3, (done.returncode, done.stderr[-2000:])
    assert str(target) in done.stdout and "no space left" in done.stdout.lower()
    assert list(full_disk.iterdir()) == []
