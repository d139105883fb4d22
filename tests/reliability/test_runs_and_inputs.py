"""Runs that cannot mix versions, predictions that cannot overwrite what they should not,
and recordings folders whose odd entries are rejected with a reason instead of stopping or
hanging the run.

Every wait here is on an event (a line from a child process, its exit, a FIFO being
opened), never on a duration, so the tests hold on a machine that is busy elsewhere.
"""

import os
import signal
import subprocess
import sys
import threading

import pandas as pd
import pytest
from click.testing import CliRunner
from kedro.framework.project import pipelines
from kedro.framework.session import KedroSession
from kedro.runner import SequentialRunner

from leak_detection import console
from leak_detection.audio.analysis_pool import analyse_file
from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.datasets import InboxDataset, RecordingsDataset
from leak_detection.labels import LabelError, resolve_label_mapping
from leak_detection.run_lock_hook import writes_only_predictions
from leak_detection.runs.predictions_output import PredictionsOutputError, check_predictions_output
from leak_detection.runs.run_lock import LOCK_NAME, ProjectBusyError
from tests.conftest import PROJECT

LOCK_HOLDER = """
import sys
from pathlib import Path
from leak_detection.runs.run_lock import acquire_run_lock
acquire_run_lock(Path(sys.argv[1]))
print("holding", flush=True)
sys.stdin.read()
"""

WAITING_RUN = """
import sys
from pathlib import Path
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.runner import SequentialRunner


class WaitingRunner(SequentialRunner):
    def run(self, *args, **kwargs):
        print("running", flush=True)
        sys.stdin.read()
        return {}


class InterruptedRunner(SequentialRunner):
    def run(self, *args, **kwargs):
        print("lock held:", Path("data/.run.lock").exists(), flush=True)
        raise KeyboardInterrupt


bootstrap_project(".")
runner = WaitingRunner() if sys.argv[1] == "wait" else InterruptedRunner()
with KedroSession.create(project_path=".", runtime_params={"recordings_dir": sys.argv[2]}) as session:
    session.run(pipeline_names=["feature_extraction"], runner=runner)
"""


class RecordingRunner(SequentialRunner):
    """Runs nothing; says whether the session got as far as running nodes."""

    def __init__(self):
        super().__init__()
        self.reached = False

    def run(self, *args, **kwargs):
        self.reached = True
        return {}


def run_session(project, pipeline, runtime_params=None, runner=None, **kwargs):
    with KedroSession.create(project_path=project, runtime_params=runtime_params or {}) as session:
        return session.run(pipeline_names=[pipeline], runner=runner, **kwargs)


def start_child(tmp_path, name, source, *args, cwd):
    script = tmp_path / name
    script.write_text(source)
    stderr = (tmp_path / f"{name}.stderr").open("w")
    process = subprocess.Popen(
        [sys.executable, str(script), *map(str, args)],
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    return process


def wait_for_line(process, expected, tmp_path):
    """Block until the child prints ``expected`` (its log lines are skipped)."""
    for line in process.stdout:
        if line.strip() == expected:
            return
    process.wait()
    stderr = "".join(p.read_text() for p in tmp_path.glob("*.stderr"))
    pytest.fail(f"child exited ({process.returncode}) before printing {expected!r}:\n{stderr}")


@pytest.fixture
def small_folder(tmp_path, make_wav):
    folder = tmp_path / "recordings"
    for i, label in enumerate(["LEAK", "LEAK", "NORMAL", "NORMAL"]):
        make_wav(folder / label / f"{i}.wav", seconds=4.0, seed=i)
    return folder


@pytest.fixture
def held_by_child(project, tmp_path):
    """A live child process holding the project's run lock; yields it, then lets it go."""
    process = start_child(tmp_path, "lock_holder.py", LOCK_HOLDER, project / LOCK_NAME, cwd=project)
    wait_for_line(process, "holding", tmp_path)
    yield process
    if process.poll() is None:
        process.communicate()


# 1. One writing run at a time per project folder.


def test_a_second_writing_run_stops_before_any_node_naming_the_holder(project, tmp_path, small_folder):
    first = start_child(tmp_path, "waiting_run.py", WAITING_RUN, "wait", small_folder, cwd=project)
    wait_for_line(first, "running", tmp_path)
    second = RecordingRunner()
    with pytest.raises(ProjectBusyError) as refused:
        run_session(project, "feature_extraction", {"recordings_dir": str(small_folder)}, runner=second)
    message = str(refused.value)
    assert f"pid {first.pid}" in message and "waiting_run.py wait" in message
    assert str(project / LOCK_NAME) in message
    assert not second.reached
    first.communicate()
    assert first.returncode == 0
    assert not (project / LOCK_NAME).exists(), "the first run's lock outlived it"


@pytest.mark.parametrize(
    "failure, runtime_params",
    [
        ("a node", {"recordings_dir": "no/such/folder"}),
        # An existing file named as the store to extract into: FeatureStoreGuardHook refuses it.
        ("another hook", {"recordings_dir": "no/such/folder", "feature_store": "conf/base/catalog.yml"}),
    ],
)
def test_a_lock_left_by_a_killed_run_is_taken_over_and_released_when_the_run_fails(
    project, tmp_path, caplog, held_by_child, failure, runtime_params
):
    held_by_child.send_signal(signal.SIGKILL)
    held_by_child.wait()
    assert (project / LOCK_NAME).exists()
    with pytest.raises(Exception) as failed:
        run_session(project, "feature_extraction", runtime_params)
    assert not isinstance(failed.value, ProjectBusyError), f"{failure} should have failed the run"
    assert f"Taking over the run lock {project / LOCK_NAME}" in caplog.text
    assert f"pid {held_by_child.pid}" in caplog.text
    assert not (project / LOCK_NAME).exists()


def test_an_interrupted_run_releases_the_lock_on_exit(project, tmp_path, small_folder):
    script = tmp_path / "interrupted_run.py"
    script.write_text(WAITING_RUN)
    done = subprocess.run(
        [sys.executable, str(script), "interrupt", str(small_folder)], cwd=project, capture_output=True, text=True
    )
    assert "lock held: True" in done.stdout
    assert done.returncode != 0 and "KeyboardInterrupt" in done.stderr
    assert not (project / LOCK_NAME).exists()


def test_predict_runs_while_another_run_holds_the_lock(project, held_by_child):
    runner = RecordingRunner()
    run_session(project, "predict", runner=runner, namespaces=["binary"])
    assert runner.reached
    assert (project / LOCK_NAME).exists(), "predict must leave the training run's lock alone"


def test_only_the_predict_pipeline_runs_without_the_lock():
    unlocked = sorted(name for name, pipeline in pipelines.items() if writes_only_predictions(pipeline))
    assert unlocked == ["predict"]


# 2. Predictions never overwrite a recording, a model or a foreign file.


@pytest.fixture
def sessions_started(monkeypatch):
    """Replace the Kedro session by a recorder: the console's checks must come before it."""
    started = []

    def create(cls, **kwargs):
        started.append(kwargs["runtime_params"])
        raise RuntimeError("session started")

    monkeypatch.setattr(KedroSession, "create", classmethod(create))
    return started


def predict_cli(project, *args):
    return CliRunner().invoke(console.main, ["predict", *map(str, args), "--project", str(project)])


def test_predict_refuses_to_write_over_the_recording_it_scores(project, tmp_path, make_wav, sessions_started):
    recording = make_wav(tmp_path / "a.wav")
    before = recording.read_bytes()
    for force in ([], ["--force"]):
        result = predict_cli(project, recording, "--output", recording, *force)
        assert result.exit_code == 2 and "one of the recordings to classify" in result.output
    assert recording.read_bytes() == before and sessions_started == []


def test_predict_never_writes_into_the_model_store_even_with_force(project, tmp_path, make_wav, sessions_started):
    meta = project / "data/06_models/binary/model_meta.json/2026-01-01T00.00.00.000Z/model_meta.json"
    meta.parent.mkdir(parents=True)
    meta.write_text('{"mode": "binary"}')
    recording = make_wav(tmp_path / "a.wav")
    for output in (meta, meta.parent / "new.csv"):
        result = predict_cli(project, recording, "--output", output, "--force")
        assert result.exit_code == 2 and "data/06_models" in result.output
    assert meta.read_text() == '{"mode": "binary"}' and sessions_started == []
    assert not (meta.parent / "new.csv").exists()


def test_predict_replaces_a_foreign_file_only_with_force(project, tmp_path, make_wav, sessions_started):
    recording = make_wav(tmp_path / "a.wav")
    notes = tmp_path / "notes.csv"
    notes.write_text("site,comment\n7,hydrant leaks\n")
    refused = predict_cli(project, recording, "--output", notes)
    assert refused.exit_code == 2 and "not a predictions CSV" in refused.output and "--force" in refused.output
    assert sessions_started == []
    predict_cli(project, recording, "--output", notes, "--force")
    assert sessions_started[-1]["predictions_output"] == str(notes) and sessions_started[-1]["predictions_output_force"]


def test_predict_replaces_its_own_earlier_predictions_without_force(project, tmp_path, make_wav, sessions_started):
    recording = make_wav(tmp_path / "a.wav")
    earlier = tmp_path / "predictions.csv"
    earlier.write_text("file,mode,model_version,duration_s,decision,threshold,error\nx.wav,binary,v,1.0,LEAK,0.5,\n")
    predict_cli(project, recording, "--output", earlier)
    assert [p["predictions_output"] for p in sessions_started] == [str(earlier)]


def test_a_missing_output_folder_is_an_error_naming_it(project, tmp_path, make_wav, sessions_started):
    recording = make_wav(tmp_path / "a.wav")
    result = predict_cli(project, recording, "--output", tmp_path / "typo" / "out.csv")
    assert result.exit_code == 2 and str(tmp_path / "typo") in result.output
    assert not (tmp_path / "typo").exists() and sessions_started == []


@pytest.mark.parametrize("force", [None, "true"])
def test_kedro_run_predict_checks_predictions_output_before_any_node(project, tmp_path, make_wav, force):
    recording = make_wav(tmp_path / "a.wav")
    before = recording.read_bytes()
    params = {"inbox_dir": str(recording), "predictions_output": str(recording)}
    if force:
        params["predictions_output_force"] = force
    runner = RecordingRunner()
    with pytest.raises(PredictionsOutputError, match="one of the recordings to classify"):
        run_session(project, "predict", params, runner=runner, namespaces=["binary"])
    assert not runner.reached and recording.read_bytes() == before


def test_kedro_run_predict_with_force_may_replace_a_foreign_file(project, tmp_path, make_wav):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n")
    params = {"inbox_dir": str(make_wav(tmp_path / "a.wav")), "predictions_output": str(notes)}
    with pytest.raises(PredictionsOutputError, match="predictions_output_force=true"):
        run_session(project, "predict", params, runner=RecordingRunner(), namespaces=["binary"])
    runner = RecordingRunner()
    run_session(
        project, "predict", {**params, "predictions_output_force": "true"}, runner=runner, namespaces=["binary"]
    )
    assert runner.reached


@pytest.mark.parametrize("url", ["s3://utility-data/calls.csv", "memory:///calls.csv"])
def test_a_predictions_output_in_object_storage_is_refused_saying_it_is_written_locally(project, url):
    with pytest.raises(PredictionsOutputError, match=f"predictions output {url}: .*local path"):
        check_predictions_output(url, project)


def test_a_binary_file_is_never_taken_for_a_predictions_csv(project, tmp_path, make_wav):
    with pytest.raises(PredictionsOutputError, match="not a predictions CSV"):
        check_predictions_output(make_wav(tmp_path / "a.wav"), project)


# 3. Odd entries in a recordings folder or manifest are rejected with a reason.


@pytest.fixture
def fifo(tmp_path):
    """Make FIFOs; a reader that opens one by mistake gets an empty stream instead of hanging.

    A writer thread per FIFO waits for a reader. At the end the test holds each FIFO open
    for reading until its writer is done, so a writer still waiting, or not yet waiting,
    is let go.
    """
    made = []

    def make(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        os.mkfifo(path)
        writer = threading.Thread(target=lambda: open(path, "wb").close(), daemon=True)
        writer.start()
        made.append((path, writer))
        return path

    yield make
    for path, writer in made:
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        writer.join()
        os.close(reader)


def test_manifest_listing_a_file_with_two_labels_rejects_both_entries(tmp_path, make_wav):
    make_wav(tmp_path / "LEAK" / "a.wav", seed=1)
    make_wav(tmp_path / "LEAK" / "b.wav", seed=2)
    (tmp_path / "manifest.csv").write_text(
        "path,label,group\nLEAK/a.wav,LEAK,s1\nLEAK/b.wav,NORMAL,s2\nLEAK/a.wav,NORMAL,s1\nLEAK/b.wav,normal,s2\n"
    )
    recordings = RecordingsDataset(path=tmp_path).load()
    assert recordings.table[["file_id", "raw_label", "group"]].values.tolist() == [["LEAK/b.wav", "NORMAL", "s2"]]
    assert recordings.unusable == [
        ("LEAK/a.wav", "conflict: listed in manifest.csv line 2 as LEAK; also as NORMAL (line 4)"),
        ("LEAK/a.wav", "conflict: listed in manifest.csv line 4 as NORMAL; also as LEAK (line 2)"),
    ]


def test_feature_extraction_reports_links_fifos_and_manifest_conflicts(project, tmp_path, make_wav, fifo):
    root = tmp_path / "recordings"
    for i, name in enumerate(["LEAK/a.wav", "LEAK/b.wav", "NORMAL/c.wav", "NORMAL/d.wav"]):
        make_wav(root / name, seconds=4.0, seed=10 + i)
    make_wav(tmp_path / "secret.wav", seconds=4.0, seed=20)
    os.symlink(tmp_path / "secret.wav", root / "LEAK" / "outside.wav")
    os.symlink(root / "LEAK" / "gone.wav", root / "LEAK" / "dangling.wav")
    fifo(root / "NORMAL" / "pipe.wav")
    (root / "manifest.csv").write_text("path,label\nLEAK/a.wav,LEAK\nLEAK/a.wav,QUIET\nNORMAL/c.wav,NORMAL\n")
    run_session(project, "feature_extraction", {"recordings_dir": str(root)}, to_outputs=["rejected_recordings"])
    rejected = pd.read_csv(project / "data/08_reporting/rejected_recordings.csv", keep_default_na=False)
    reasons = rejected.groupby("file_id")["reason"].apply(list).to_dict()
    assert sorted(reasons) == ["LEAK/a.wav", "LEAK/dangling.wav", "LEAK/outside.wav", "NORMAL/pipe.wav"]
    assert [r.split(";")[0] for r in reasons["LEAK/a.wav"]] == [
        "conflict: listed in manifest.csv line 2 as LEAK",
        "conflict: listed in manifest.csv line 3 as QUIET",
    ]
    assert reasons["LEAK/dangling.wav"] == [f"a link to {root / 'LEAK' / 'gone.wav'}, which does not exist"]
    assert reasons["LEAK/outside.wav"] == [
        f"a link to {tmp_path / 'secret.wav'}, outside the recordings folder: not read"
    ]
    assert reasons["NORMAL/pipe.wav"] == ["not a regular file (a FIFO): only regular files are read"]


def test_a_fifo_among_recordings_to_classify_gets_an_error_row_instead_of_a_hang(tmp_path, make_wav, fifo):
    make_wav(tmp_path / "inbox" / "a.wav")
    fifo(tmp_path / "inbox" / "pipe.wav")
    inbox = InboxDataset(path=str(tmp_path / "inbox")).load()
    pipe = str(tmp_path / "inbox" / "pipe.wav")
    assert pipe in list(inbox.table["file_id"])
    result = analyse_file(inbox, pipe, FrontEndConfig.from_params({}))
    assert result.analysed is None and "not a regular file (a FIFO)" in result.reason


def test_the_label_error_names_the_parameters_file_that_holds_the_mapping():
    with pytest.raises(LabelError) as error:
        resolve_label_mapping(["CRAKC"], {})
    named = [word for word in str(error.value).split() if word.startswith("conf/")]
    assert named and all((PROJECT / path).is_file() for path in named)
    assert "label_mapping:" in (PROJECT / named[0]).read_text()
