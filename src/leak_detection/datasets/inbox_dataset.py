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

    def __init__(self, *, path: str | os.PathLike | list[str | os.PathLike], metadata: dict[str, Any] | None = None):
        paths = path if isinstance(path, list | tuple) else [path]
        if not paths:
            raise DatasetError("InboxDataset needs at least one file or folder")
        self._paths = [Path(p) for p in paths]
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": [str(p) for p in self._paths]}

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
        return RecordingCollection(root=Path("."), table=table, locations=locations)
