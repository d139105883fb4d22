"""Progress off a terminal: whole lines, sparse, nothing for short work."""

import io

from leak_detection.runs import progress as progress_module
from leak_detection.runs.progress import progress


def test_off_a_terminal_each_redraw_is_a_line_of_its_own_and_rare(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(progress_module.sys, "stderr", stream)
    monkeypatch.setattr(progress_module, "LOG_INTERVAL_S", 0.0)
    for _ in progress(range(5), desc="files", miniters=1):
        pass
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines and all(line.startswith("files:") for line in lines)
    assert lines[-1].startswith("files: 100%")


def test_work_shorter_than_the_interval_writes_nothing_to_a_log(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(progress_module.sys, "stderr", stream)
    assert sum(progress(range(1000), desc="segments")) == sum(range(1000))
    assert stream.getvalue() == ""
