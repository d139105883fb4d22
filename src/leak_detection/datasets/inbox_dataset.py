"""``InboxDataset`` reads new, unlabelled recordings to be classified.

An operator points it at this week's folder, or at a few files; nothing is known
about them but that they should be audio. Every path given is reported, so that a
file that cannot be read still gets a row (with its error) in the predictions.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from leak_detection.audio.recordings import RecordingCollection, audio_extensions


class InboxDataset(AbstractDataset[None, RecordingCollection]):
    """Audio files from one or more folders (searched recursively) or single files.

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
        metadata: dict[str, Any] | None = None,
    ):
        """``labels``: an optional CSV (``path,label``) naming the class of some of the recordings; its paths are
        relative to the first folder given, and each must be one of the recordings found."""
        paths = path if isinstance(path, list | tuple) else [path]
        if not paths:
            raise DatasetError("InboxDataset needs at least one file or folder")
        self._paths = [Path(p) for p in paths]
        self._labels = Path(labels) if labels else None
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": [str(p) for p in self._paths], "labels": str(self._labels) if self._labels else None}

    def _exists(self) -> bool:
        return all(p.exists() for p in self._paths)

    def save(self, data: None) -> None:
        raise DatasetError("InboxDataset is read-only: recordings to classify are never written")

    def load(self) -> RecordingCollection:
        extensions = audio_extensions()
        locations: dict[str, Path] = {}
        for given in self._paths:
            if given.is_dir():
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
        stats = [_stat(path) for path in locations.values()]
        table["size_bytes"] = [size for size, _ in stats]
        table["mtime_ns"] = [mtime for _, mtime in stats]
        labels = self._read_labels(locations)
        table["raw_label"] = [labels.get(file_id, "") for file_id in table["file_id"]]
        return RecordingCollection(root=Path("."), table=table, locations=locations)

    def _read_labels(self, locations: dict[str, Path]) -> dict[str, str]:
        """``file_id -> raw label`` from the labels CSV; a row naming no recording found is an error."""
        if self._labels is None:
            return {}
        try:
            listed = pd.read_csv(self._labels, dtype=str, keep_default_na=False)
        except (OSError, ValueError) as exc:
            raise DatasetError(f"labels {self._labels}: cannot be read as CSV ({exc})") from exc
        if not {"path", "label"} <= set(listed.columns):
            raise DatasetError(f"labels {self._labels}: needs the columns path and label, has {list(listed.columns)}")
        folder = self._paths[0] if self._paths[0].is_dir() else self._paths[0].parent
        by_path = {path.resolve(): file_id for file_id, path in locations.items()}
        labels = {}
        for line, row in enumerate(listed.itertuples(index=False), start=2):
            file_id = by_path.get((folder / row.path).resolve())
            if file_id is None:
                raise DatasetError(
                    f"labels {self._labels}, line {line}: {row.path} is not one of the recordings in {folder}"
                )
            labels[file_id] = row.label.strip()
        return labels


def _stat(path: Path) -> tuple[int, int]:
    try:
        info = path.stat()
    except OSError:
        return -1, -1
    return info.st_size, info.st_mtime_ns
