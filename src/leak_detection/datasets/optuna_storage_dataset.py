"""``OptunaStorageDataset``: where a mode's Optuna studies live, as a journal file on local disk."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path

if TYPE_CHECKING:
    import optuna


class OptunaStorageDataset(AbstractDataset[None, "optuna.storages.BaseStorage"]):
    """Loads an Optuna storage backed by an append-only journal file (``JournalFileStorage``).

    The study writes to it as its trials run, under a file lock, so the dataset is only loaded:
    a re-run resumes the studies in it, and several processes on one machine work on one at once.
    A database shared by machines is a parameter instead (``<mode>.tuning.storage``).

    Examples:
        ```yaml
        "{mode}.tuning_storage":
          type: leak_detection.datasets.OptunaStorageDataset
          filepath: data/06_models/{mode}/tuning/study.journal
        ```

        >>> import optuna
        >>> storage = OptunaStorageDataset(filepath=tmp_path / "study.journal").load()
        >>> study = optuna.create_study(storage=storage, study_name="binary")
        >>> study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=1)
        >>> reloaded = OptunaStorageDataset(filepath=tmp_path / "study.journal").load()
        >>> assert len(optuna.load_study(storage=reloaded, study_name="binary").trials) == 1
    """

    def __init__(self, *, filepath: str | os.PathLike, metadata: dict[str, Any] | None = None) -> None:
        protocol, path = get_protocol_and_path(str(filepath))
        if protocol != "file":
            raise DatasetError(
                f"OptunaStorageDataset keeps a local journal file (it needs a file lock); got {filepath}"
            )
        self._filepath = PurePosixPath(path)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath}

    def load(self) -> optuna.storages.BaseStorage:
        # Imported here: every run loads the catalog's dataset classes, and only tuning needs Optuna.
        from leak_detection.tuning.study import journal_storage

        try:
            return journal_storage(Path(self._filepath))
        except OSError as exc:
            raise DatasetError(f"cannot open the study file {self._filepath}: {exc}") from exc

    def save(self, data: None) -> None:
        raise DatasetError(f"{self._filepath} is written by the study as its trials run; it is never saved whole")

    def _exists(self) -> bool:
        return Path(self._filepath).exists()
