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
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = Path(path)
        self._manifest = Path(manifest) if manifest else None
        self.metadata = metadata

    @property
    def path(self) -> Path:
        return self._path

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "manifest": str(self._manifest) if self._manifest else None}

    def _exists(self) -> bool:
        return self._path.is_dir()

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: recordings at {self._path} are never written")

    def load(self) -> RecordingCollection:
        root = self._path
        if not root.is_dir():
            raise DatasetError(
                f"recordings folder {root} does not exist or is not a folder; give another "
                "one with `--params recordings_dir=PATH`"
            )
        found, unusable = self._scan(root)
        rows = {fid: {"file_id": fid, "raw_label": label, "group": ""} for fid, label in found}
        manifest = self._manifest_path(root)
        if manifest is not None:
            refused = {fid for fid, _ in unusable}
            unusable += self._apply_manifest(root, manifest, rows, refused)
        for fid in [fid for fid, row in rows.items() if not row["raw_label"]]:
            unusable.append((fid, "no label: not inside a label folder and no label in the manifest"))
            del rows[fid]
        stats = {}
        for fid in sorted(rows):
            try:
                stats[fid] = (root / fid).stat()
            except OSError as exc:  # removed or replaced since the scan
                unusable.append((fid, f"cannot be inspected: {exc.strerror}"))
        table = pd.DataFrame([rows[fid] for fid in stats], columns=["file_id", "raw_label", "group"])
        table["group"] = table["group"].where(table["group"] != "", table["file_id"])
        table["size_bytes"] = np.array([s.st_size for s in stats.values()], dtype=np.int64)
        table["mtime_ns"] = np.array([s.st_mtime_ns for s in stats.values()], dtype=np.int64)
        logger.debug(
            "Found %d recordings in %s%s",
            len(table),
            root,
            f" (manifest {manifest})" if manifest else "",
        )
        return RecordingCollection(root=root, table=table, unusable=unusable)

    def _manifest_path(self, root: Path) -> Path | None:
        if self._manifest is not None:
            if not self._manifest.is_file():
                raise DatasetError(f"recordings manifest {self._manifest} does not exist")
            return self._manifest
        default = root / DEFAULT_MANIFEST_NAME
        return default if default.is_file() else None

    @staticmethod
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

    @staticmethod
    def _apply_manifest(
        root: Path, manifest: Path, rows: dict[str, dict[str, str]], refused: set[str]
    ) -> list[tuple[str, str]]:
        """Apply the manifest's labels and groups to ``rows``; return the entries it makes unusable.

        ``refused`` files (already rejected by the scan) are left as they are.
        """
        unusable: list[tuple[str, str]] = []
        listed: dict[str, list[tuple[int, str, str]]] = {}
        for line, entry in enumerate(_read_manifest(manifest), start=2):
            fid, resolved = _manifest_file(root, entry["path"].strip())
            if fid in refused:
                continue
            if resolved is None:
                unusable.append((fid, f"listed in {manifest.name} line {line}: a link outside the recordings folder"))
            elif (reason := not_regular_reason(resolved)) is not None:
                detail = " but missing on disk" if reason == "missing on disk" else f": {reason}"
                unusable.append((fid, f"listed in {manifest.name} line {line}{detail}"))
            else:
                listed.setdefault(fid, []).append(
                    (line, entry.get("label", "").strip(), entry.get("group", "").strip())
                )
                continue
            rows.pop(fid, None)
        for fid, lines in listed.items():
            conflicts = _label_conflicts(manifest.name, lines)
            if conflicts:
                unusable += [(fid, reason) for reason in conflicts]
                rows.pop(fid, None)
                continue
            row = rows.setdefault(fid, {"file_id": fid, "raw_label": "", "group": ""})
            row["raw_label"] = next((label for _, label, _ in lines if label), row["raw_label"])
            row["group"] = next((group for _, _, group in lines if group), row["group"])
            if len({group for _, _, group in lines if group}) > 1:
                logger.warning("%s is listed in %s with several groups; using %s", fid, manifest, row["group"])
        return unusable


def _read_manifest(manifest: Path) -> list[dict[str, str]]:
    try:
        entries = pd.read_csv(manifest, dtype=str, keep_default_na=False)
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
