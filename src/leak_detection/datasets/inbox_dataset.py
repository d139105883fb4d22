"""``InboxDataset`` reads new, unlabelled recordings to be classified.

An operator points it at this week's folder, or at a few files; nothing is known
about them but that they should be audio. Every path given is reported, so that a
file that cannot be read still gets a row (with its error) in the predictions.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from leak_detection.audio.recordings import RecordingCollection, audio_extensions
from leak_detection.audio.remote import join_url, kind, list_remote, location, remote_info


class InboxDataset(AbstractDataset[None, RecordingCollection]):
    """Audio files from one or more folders (searched recursively) or single files, local or
    in object storage (fsspec URLs such as ``s3://bucket/week48``).

    Only regular files are decoded (``RecordingCollection.open_blocks``): a FIFO named
    ``*.wav`` or a dangling link gets a row with its error instead of hanging or
    stopping the run.

    Examples:
        ```yaml
        inbox:
          type: leak_detection.datasets.InboxDataset
          path: ${runtime_params:inbox_dir, data/01_raw/inbox}
        ```

        >>> from leak_detection.datasets import InboxDataset
        >>> inbox = InboxDataset(path=["site7/monday", "extra.wav"]).load()
        >>> inbox.table.file_id.tolist()  # doctest: +SKIP
        ['site7/monday/a.wav', 'extra.wav']
    """

    def __init__(
        self,
        *,
        path: str | os.PathLike | list[str | os.PathLike],
        labels: str | os.PathLike | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ):
        """``labels``: an optional CSV (``path,label``) naming the class of some of the recordings; its paths are
        relative to the first folder given, and each must be one of the recordings found. Paths and ``labels``
        may be fsspec URLs (``s3://bucket/week48``); ``credentials`` and ``fs_args`` are then fsspec's options."""
        paths = path if isinstance(path, list | tuple) else [path]
        if not paths:
            raise DatasetError("InboxDataset needs at least one file or folder")
        self._paths = [location(p) for p in paths]
        self._labels = location(labels) if labels else None
        self._storage_options = {**(credentials or {}), **(fs_args or {})}
        self.metadata = metadata

    @property
    def storage_options(self) -> dict[str, Any]:
        """fsspec's options (``credentials`` and ``fs_args``) for the URLs read; ``leak-detect explain`` uses them."""
        return dict(self._storage_options)

    def _describe(self) -> dict[str, Any]:
        return {"path": [str(p) for p in self._paths], "labels": str(self._labels) if self._labels else None}

    def _exists(self) -> bool:
        return all(self._is_dir(p) or self._is_file(p) for p in self._paths)

    def save(self, data: None) -> None:
        raise DatasetError("InboxDataset is read-only: recordings to classify are never written")

    def load(self) -> RecordingCollection:
        extensions = audio_extensions()
        locations: dict[str, Path | str] = {}
        stats: dict[str, tuple[int, int]] = {}
        for given in self._paths:
            if isinstance(given, str):
                found = self._remote_files(given, extensions)
                stats.update(found)
                locations.update({url: url for url in found})
            elif given.is_dir():
                for dirpath, dirnames, filenames in os.walk(given, followlinks=False):
                    dirnames.sort()
                    for name in sorted(filenames):
                        if Path(name).suffix.lower() in extensions:
                            full = Path(dirpath) / name
                            locations[full.as_posix()] = full
            elif given.exists() or given.is_symlink():
                # A file named explicitly is tried whatever its extension: the operator asked for it.
                locations[given.as_posix()] = given
            else:
                raise DatasetError(f"recordings to classify: {given} does not exist")
        if not locations:
            raise DatasetError(
                f"no audio files in {', '.join(str(p) for p in self._paths)} "
                f"(looked for {', '.join(sorted(extensions))})"
            )
        table = pd.DataFrame({"file_id": list(locations)})
        sizes_times = [stats[fid] if fid in stats else _stat(path) for fid, path in locations.items()]
        table["size_bytes"] = [size for size, _ in sizes_times]
        table["mtime_ns"] = [mtime for _, mtime in sizes_times]
        labels = self._read_labels(locations)
        table["raw_label"] = [labels.get(file_id, "") for file_id in table["file_id"]]
        return RecordingCollection(
            root=Path("."), table=table, locations=locations, storage_options=dict(self._storage_options)
        )

    def _remote_files(self, url: str, extensions: frozenset[str]) -> dict[str, tuple[int, int]]:
        """``URL -> (size, mtime)`` of the audio objects under a remote folder, or of the one object named."""
        if self._is_dir(url):
            return {
                join_url(url, f.file_id): (f.size_bytes, f.mtime_ns)
                for f in list_remote(url, self._storage_options, extensions)
            }
        single = remote_info(url, self._storage_options)
        if single is None:
            raise DatasetError(f"recordings to classify: {url} does not exist")
        return {url: (single.size_bytes, single.mtime_ns)}

    def _is_dir(self, location: Path | str) -> bool:
        if isinstance(location, Path):
            return location.is_dir()
        return kind(location, self._storage_options) == "directory"

    def _is_file(self, location: Path | str) -> bool:
        if isinstance(location, Path):
            return location.exists()
        return remote_info(location, self._storage_options) is not None

    def _read_labels(self, locations: dict[str, Path | str]) -> dict[str, str]:
        """``file_id -> raw label`` from the labels CSV; a row naming no recording found is an error."""
        if self._labels is None:
            return {}
        remote = {"storage_options": self._storage_options} if isinstance(self._labels, str) else {}
        try:
            listed = pd.read_csv(self._labels, dtype=str, keep_default_na=False, **remote)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"labels {self._labels}: cannot be read as CSV ({exc})") from exc
        if not {"path", "label"} <= set(listed.columns):
            raise DatasetError(f"labels {self._labels}: needs the columns path and label, has {list(listed.columns)}")
        first = self._paths[0]
        folder = first if self._is_dir(first) else _parent(first)
        by_path = {_key(path): file_id for file_id, path in locations.items()}
        labels = {}
        for line, row in enumerate(listed.itertuples(index=False), start=2):
            file_id = by_path.get(_key(_child(folder, row.path)))
            if file_id is None:
                raise DatasetError(
                    f"labels {self._labels}, line {line}: {row.path} is not one of the recordings in {folder}"
                )
            labels[file_id] = row.label.strip()
        return labels


def _parent(location: Path | str) -> Path | str:
    return location.parent if isinstance(location, Path) else location.rsplit("/", 1)[0]


def _child(folder: Path | str, relative: str) -> Path | str:
    return folder / relative if isinstance(folder, Path) else join_url(folder, relative)


def _key(location: Path | str) -> Path | str:
    """What two spellings of the same recording have in common."""
    if isinstance(location, Path):
        return location.resolve()
    protocol, _, rest = location.partition("://")
    return f"{protocol}://{posixpath.normpath(rest)}"


def _stat(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return -1, -1
    return info.st_size, info.st_mtime_ns
