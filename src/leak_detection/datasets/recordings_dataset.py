"""``RecordingsDataset`` reads a folder of labelled pipe recordings lazily.

A folder of field recordings can hold hours of audio, so loading returns a
``RecordingCollection``: a table of what is there (file, label, group, size, mtime)
and a ``read`` method that decodes one file on demand, in the spirit of
``PartitionedDataset``'s lazy loaders. Nodes decide what to read and never touch
paths themselves.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from leak_detection.audio.recordings import (
    RecordingCollection,
    audio_extensions,
    not_regular_reason,
    resolve_inside,
)
from leak_detection.audio.remote import (
    filesystem,
    inside,
    is_remote,
    join_url,
    kind,
    list_remote,
    location,
    remote_info,
)

logger = logging.getLogger(__name__)

MANIFEST_COLUMNS = ("path", "label", "group")
DEFAULT_MANIFEST_NAME = "manifest.csv"


class RecordingsDataset(AbstractDataset[None, RecordingCollection]):
    """A read-only folder of recordings laid out ``<path>/<LABEL>/**/<file>``.

    Any format soundfile reads is accepted (WAV, FLAC, OGG, ...; extensions in any
    case). The top-level folder name is the raw label. An optional manifest CSV with
    columns ``path,label,group`` (``label`` and ``group`` may be blank or absent)
    overrides folder labels and gives groups (site, sensor, source recording); a
    recording without a group is its own group. Without an explicit ``manifest``,
    ``<path>/manifest.csv`` is used when present. Manifest paths that leave the folder
    are refused. Only regular files inside the folder are read: links out of it or to
    nothing, FIFOs and devices are listed in ``unusable`` with the reason, and so is a
    file the manifest lists twice with different labels (each entry).

    Examples:
        ```yaml
        recordings:
          type: leak_detection.datasets.RecordingsDataset
          path: ${runtime_params:recordings_dir, data/01_raw/demo}
          manifest: ${runtime_params:recordings_manifest, null}
        ```

        >>> from leak_detection.datasets import RecordingsDataset
        >>> recordings = RecordingsDataset(path="data/01_raw/demo").load()
        >>> samples, rate = recordings.read(recordings.table.file_id[0])
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike,
        manifest: str | os.PathLike | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """``path`` (and ``manifest``) may be fsspec URLs (``s3://bucket/pipes``, with the ``s3`` extra);
        ``credentials`` and ``fs_args`` are then fsspec's options for that store, as in kedro-datasets."""
        self._path: Path | str = location(path)
        self._remote = isinstance(self._path, str)
        self._manifest: Path | str | None = location(manifest) if manifest else None
        self._storage_options = {**(credentials or {}), **(fs_args or {})}
        self.metadata = metadata

    @property
    def path(self) -> Path | str:
        return self._path

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "manifest": str(self._manifest) if self._manifest else None}

    def _exists(self) -> bool:
        if self._remote:
            return kind(self._path, self._storage_options) == "directory"
        return self._path.is_dir()

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: recordings at {self._path} are never written")

    def load(self) -> RecordingCollection:
        folder = _RemoteFolder(self._path, self._storage_options) if self._remote else _LocalFolder(self._path)
        found, unusable = folder.scan()
        rows = {fid: {"file_id": fid, "raw_label": label, "group": ""} for fid, label in found}
        manifest = self._manifest if self._manifest is not None else folder.default_manifest()
        if manifest is not None:
            refused = {fid for fid, _ in unusable}
            entries = _read_manifest(manifest, self._storage_options)
            unusable += _apply_manifest(_name(manifest), entries, rows, refused, folder.locate)
        for fid in [fid for fid, row in rows.items() if not row["raw_label"]]:
            unusable.append((fid, "no label: not inside a label folder and no label in the manifest"))
            del rows[fid]
        stats = {}
        for fid in sorted(rows):
            try:
                stats[fid] = folder.stat(fid)
            except OSError as exc:  # removed or replaced since the scan
                unusable.append((fid, f"cannot be inspected: {exc.strerror}"))
        table = pd.DataFrame([rows[fid] for fid in stats], columns=["file_id", "raw_label", "group"])
        table["group"] = table["group"].where(table["group"] != "", table["file_id"])
        table["size_bytes"] = np.array([size for size, _ in stats.values()], dtype=np.int64)
        table["mtime_ns"] = np.array([mtime for _, mtime in stats.values()], dtype=np.int64)
        logger.debug(
            "Found %d recordings in %s%s", len(table), self._path, f" (manifest {manifest})" if manifest else ""
        )
        return RecordingCollection(
            root=self._path, table=table, unusable=unusable, storage_options=dict(self._storage_options)
        )


class _LocalFolder:
    """A recordings folder on local disk: links out of it, FIFOs and devices are never read."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise DatasetError(
                f"recordings folder {root} does not exist or is not a folder; give another "
                "one with `--params recordings_dir=PATH`"
            )
        self.root = root

    def default_manifest(self) -> Path | None:
        default = self.root / DEFAULT_MANIFEST_NAME
        return default if default.is_file() else None

    def scan(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        return _scan(self.root)

    def locate(self, listed_path: str) -> tuple[str, str | None]:
        """``(file_id, why it cannot be read or None)`` of a manifest path."""
        fid, resolved = _manifest_file(self.root, listed_path)
        if resolved is None:
            return fid, ": a link outside the recordings folder"
        reason = not_regular_reason(resolved)
        if reason is None:
            return fid, None
        return fid, " but missing on disk" if reason == "missing on disk" else f": {reason}"

    def stat(self, file_id: str) -> tuple[int, int]:
        info = (self.root / file_id).stat()
        return info.st_size, info.st_mtime_ns


class _RemoteFolder:
    """A recordings folder in object storage: objects only, so no links or FIFOs to refuse."""

    def __init__(self, url: str, storage_options: dict[str, Any]) -> None:
        self.url = url
        self.storage_options = storage_options
        self.files = {f.file_id: f for f in list_remote(url, storage_options, audio_extensions())}
        # How a manifest may spell the folder itself: its URL, or its absolute path in the store.
        folder = filesystem(url, storage_options)[1].strip("/")
        self._spellings = (join_url(url, ""), f"/{folder}/" if folder else "/")

    def default_manifest(self) -> str | None:
        default = join_url(self.url, DEFAULT_MANIFEST_NAME)
        return default if remote_info(default, self.storage_options) is not None else None

    def scan(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        labels = [(fid, fid.split("/")[0] if "/" in fid else "") for fid in self.files]
        return labels, []

    def locate(self, listed_path: str) -> tuple[str, str | None]:
        relative = next(
            (listed_path[len(s) :] for s in self._spellings if listed_path.startswith(s)),
            listed_path,
        )
        fid = None if is_remote(relative) else inside(relative)
        if fid is None:
            raise DatasetError(
                f"path {listed_path!r} is outside the recordings folder {self.url}: refused; "
                "list recordings by their path inside it"
            )
        return fid, None if fid in self.files else f" but missing in {self.url}"

    def stat(self, file_id: str) -> tuple[int, int]:
        return self.files[file_id].size_bytes, self.files[file_id].mtime_ns


def _scan(root: Path) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(file_id, folder label)`` of every audio file, and ``(file_id, reason)`` of files
    that must not be read (links out of the folder or to nothing, FIFOs, devices).

    Links to folders are not followed.
    """
    extensions = audio_extensions()
    found, refused = [], []
    root_resolved = root.resolve()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if Path(name).suffix.lower() not in extensions:
                continue
            full = Path(dirpath) / name
            rel = PurePosixPath(full.relative_to(root).as_posix())
            target = full.resolve()
            if not target.is_relative_to(root_resolved):
                refused.append((str(rel), f"a link to {target}, outside the recordings folder: not read"))
            elif (reason := not_regular_reason(full)) is not None:
                refused.append((str(rel), reason))
            else:
                found.append((str(rel), rel.parts[0] if len(rel.parts) > 1 else ""))
    return found, refused


def _apply_manifest(
    manifest_name: str,
    entries: list[dict[str, str]],
    rows: dict[str, dict[str, str]],
    refused: set[str],
    locate: Callable[[str], tuple[str, str | None]],
) -> list[tuple[str, str]]:
    """Apply the manifest's labels and groups to ``rows``; return the entries it makes unusable.

    ``refused`` files (already rejected by the scan) are left as they are; ``locate`` gives
    a listed path's file id and why it cannot be read (None when it can).
    """
    unusable: list[tuple[str, str]] = []
    listed: dict[str, list[tuple[int, str, str]]] = {}
    for line, entry in enumerate(entries, start=2):
        try:
            fid, problem = locate(entry["path"].strip())
        except DatasetError as exc:
            raise DatasetError(f"recordings manifest {manifest_name} line {line}: {exc}") from exc
        if fid in refused:
            continue
        if problem is not None:
            unusable.append((fid, f"listed in {manifest_name} line {line}{problem}"))
            rows.pop(fid, None)
            continue
        listed.setdefault(fid, []).append((line, entry.get("label", "").strip(), entry.get("group", "").strip()))
    for fid, lines in listed.items():
        conflicts = _label_conflicts(manifest_name, lines)
        if conflicts:
            unusable += [(fid, reason) for reason in conflicts]
            rows.pop(fid, None)
            continue
        row = rows.setdefault(fid, {"file_id": fid, "raw_label": "", "group": ""})
        row["raw_label"] = next((label for _, label, _ in lines if label), row["raw_label"])
        row["group"] = next((group for _, _, group in lines if group), row["group"])
        if len({group for _, _, group in lines if group}) > 1:
            logger.warning("%s is listed in %s with several groups; using %s", fid, manifest_name, row["group"])
    return unusable


def _name(manifest: Path | str) -> str:
    return manifest.name if isinstance(manifest, Path) else manifest.rstrip("/").rsplit("/", 1)[-1]


def _read_manifest(manifest: Path | str, storage_options: dict[str, Any]) -> list[dict[str, str]]:
    exists = manifest.is_file() if isinstance(manifest, Path) else remote_info(manifest, storage_options) is not None
    if not exists:
        raise DatasetError(f"recordings manifest {manifest} does not exist")
    remote = {"storage_options": storage_options} if isinstance(manifest, str) else {}
    try:
        entries = pd.read_csv(manifest, dtype=str, keep_default_na=False, **remote)
    except Exception as exc:  # noqa: BLE001 - any parse failure is the same user problem
        raise DatasetError(f"recordings manifest {manifest} cannot be read: {exc}") from exc
    if "path" not in entries.columns:
        raise DatasetError(
            f"recordings manifest {manifest} has columns {list(entries.columns)}; "
            f"expected {list(MANIFEST_COLUMNS)} (label and group optional)"
        )
    return entries.to_dict("records")


def _manifest_file(root: Path, listed_path: str) -> tuple[str, Path | None]:
    """``(file_id, resolved path)`` of a manifest path; the path is None for a link that leaves
    the folder (rejected as a recording); a path that is written to leave it is an error."""
    resolved = (root / listed_path).resolve()
    if resolved.is_relative_to(root.resolve()):
        return resolved.relative_to(root.resolve()).as_posix(), resolved
    lexical = Path(os.path.normpath(root.absolute() / listed_path))
    if not lexical.is_relative_to(Path(os.path.normpath(root.absolute()))):
        resolve_inside(root, listed_path)  # raises, naming the path
    return lexical.relative_to(os.path.normpath(root.absolute())).as_posix(), None


def _label_conflicts(manifest_name: str, lines: list[tuple[int, str, str]]) -> list[str]:
    """One reason per labelled entry when a file is listed with different labels, else none.

    Which of two labels is right cannot be told, so neither is applied; the same label
    listed twice is simply kept once.
    """
    labelled = [(line, label) for line, label, _ in lines if label]
    if len({label.upper() for _, label in labelled}) < 2:
        return []
    return [
        f"conflict: listed in {manifest_name} line {line} as {label}; also as "
        + ", ".join(f"{other} (line {other_line})" for other_line, other in labelled if other_line != line)
        for line, label in labelled
    ]
