"""One writing run at a time per project folder: a lock file naming its holder.

Two training runs started seconds apart in one project used to interleave their
saves, so one model version held one run's weights and the other's metrics, card
and ONNX. A run that writes now takes ``data/.run.lock`` first; a second run stops
before any node, naming the holder. A lock left by a process that no longer exists
(killed, machine restarted) is taken over with a warning, so a crash never needs a
person to clean up.

The record is a small JSON object: ``pid``, ``host``, ``started`` (UTC), ``command``,
``pid_start`` (the kernel's start tick of that pid, where readable, so a pid reused by
an unrelated process is not mistaken for the holder) and a random ``token`` that tells
this run's lock from a later one.

Examples:
    >>> lock = acquire_run_lock(Path("data/.run.lock"))  # doctest: +SKIP
    >>> lock.release()  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import secrets
import shlex
import socket
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

LOCK_NAME = "data/.run.lock"
"""Where the lock lives, relative to the project folder."""


class ProjectBusyError(RuntimeError):
    """Another live run holds the project's run lock."""


def lock_path(project_path: str | os.PathLike) -> Path:
    return Path(project_path) / LOCK_NAME


def _pid_start(pid: int) -> str | None:
    """The kernel's start time of ``pid`` in clock ticks (Linux), None where unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after it do not.
    fields = stat[stat.rindex(")") + 2 :].split()
    return fields[19]


def _command_line() -> str:
    # `python -c` leaves only "-c" in argv[0]; name the interpreter so the holder can be found.
    argv = sys.argv if sys.argv and sys.argv[0] not in ("", "-c") else [sys.executable, *sys.argv]
    return shlex.join(argv)


def _own_record() -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": _command_line(),
        "pid_start": _pid_start(os.getpid()),
        "token": secrets.token_hex(8),
    }


def read_holder(path: Path) -> dict[str, Any] | None:
    """The lock's record; None when there is no lock; ``{}`` when it cannot be parsed."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return {}
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else {}


def holder_is_alive(record: dict[str, Any]) -> bool:
    """Whether the process that wrote ``record`` may still be running.

    A holder on another machine cannot be checked and counts as alive.
    """
    if record.get("host") != socket.gethostname():
        return True
    pid = record["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process: alive
    started = record.get("pid_start")
    now = _pid_start(pid)
    return started is None or now is None or started == now


def describe_holder(record: dict[str, Any]) -> str:
    return (
        f"pid {record.get('pid')} on {record.get('host')}, started {record.get('started')} UTC, "
        f"command `{record.get('command')}`"
    )


def _create_exclusive(path: Path, record: dict[str, Any]) -> bool:
    """Create ``path`` holding ``record`` only if it does not exist; True when created.

    The record is written to a private file and hard-linked into place, so a reader
    never sees a half-written lock; where links are not supported, ``O_EXCL`` is used.
    """
    payload = json.dumps(record, indent=1).encode()
    draft = path.with_name(f"{path.name}.{record['pid']}.{record['token']}")
    draft.write_bytes(payload)
    try:
        os.link(draft, path)
        return True
    except FileExistsError:
        return False
    except OSError:
        return _create_with_o_excl(path, payload)
    finally:
        draft.unlink(missing_ok=True)


def _create_with_o_excl(path: Path, payload: bytes) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as handle:
        handle.write(payload)
    return True


def _remove_stale(path: Path, stale: dict[str, Any], own_token: str) -> None:
    """Remove the lock if it still is the ``stale`` one.

    Two runs may find the same stale lock; moving it aside is atomic, so if the other
    run already replaced it with its own live lock, that lock is put back untouched.
    """
    aside = path.with_name(f"{path.name}.stale.{own_token}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return
    moved = read_holder(aside)
    if moved == stale:
        logger.warning("Taking over the run lock %s left by a run that has ended (%s)", path, describe_holder(stale))
    else:
        try:
            os.link(aside, path)
        except FileExistsError:
            pass
    aside.unlink(missing_ok=True)


@dataclass
class RunLock:
    """A held run lock; ``release`` removes it only while it is still this run's."""

    path: Path
    record: dict[str, Any]

    def release(self) -> None:
        atexit.unregister(self.release)
        if os.getpid() != self.record["pid"]:
            return  # a forked worker inherits the object, not the lock
        holder = read_holder(self.path)
        if holder and holder.get("token") == self.record["token"]:
            self.path.unlink(missing_ok=True)
        elif holder is not None:
            logger.warning(
                "Run lock %s is no longer this run's (%s); left in place", self.path, describe_holder(holder)
            )


def acquire_run_lock(path: Path) -> RunLock:
    """Take the run lock at ``path``, or raise ``ProjectBusyError`` naming its holder.

    A lock whose holder is gone, or was this very process (a run interrupted in a
    notebook), is taken over with a warning. The lock is also released when the
    interpreter exits, so Ctrl-C does not leave it behind.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    record = _own_record()
    for _ in range(5):
        if _create_exclusive(path, record):
            lock = RunLock(path, record)
            atexit.register(lock.release)
            return lock
        holder = read_holder(path)
        if holder is None:
            continue  # released between our attempt and the read
        if not holder:
            raise ProjectBusyError(
                f"the run lock {path} cannot be read (not written by this project?). If no other "
                f"run is going in {path.parents[1]}, delete {path} and start again."
            )
        if holder["pid"] != os.getpid() and holder_is_alive(holder):
            raise ProjectBusyError(
                f"another run is writing to this project: {describe_holder(holder)} holds the run lock "
                f"{path}. Wait for it to finish (predictions with `leak-detect predict` work meanwhile). "
                f"If that process is gone for good, delete {path}."
            )
        _remove_stale(path, holder, record["token"])
    raise ProjectBusyError(f"could not take the run lock {path}: other runs keep taking it; try again")
