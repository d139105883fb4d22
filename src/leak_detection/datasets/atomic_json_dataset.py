"""``AtomicJSONDataset``: kedro-datasets' ``json.JSONDataset`` whose saves are atomic on
local disk and whose "latest" version is the newest intact one."""

from __future__ import annotations

import json
import os
from typing import Any

from kedro.io.core import Version, get_filepath_str
from kedro_datasets.json import JSONDataset

from leak_detection.datasets.intact_versions import IntactVersionsMixin, paired_filepaths
from leak_detection.runs.atomic_files import open_for_saving


class AtomicJSONDataset(IntactVersionsMixin, JSONDataset):
    """``json.JSONDataset`` with the same options, plus:

    - on the local filesystem the file is written beside the target, flushed to disk
      and renamed into place (``atomic_files``): a full disk or a crash leaves the
      previous file or none, never a 0-byte or half-written one;
    - an unpinned load of a versioned dataset skips versions whose file, or a
      ``paired_with`` file of the same version, is missing or unreadable, with a warning
      naming the version (``IntactVersionsMixin``).

    Examples:
        Using the [YAML API](https://docs.kedro.org/en/stable/catalog-data/data_catalog_yaml_examples/):

        ```yaml
        "{mode}.model_meta":
          type: leak_detection.datasets.AtomicJSONDataset
          filepath: data/06_models/{mode}/model_meta.json
          versioned: true
          paired_with: ["best.pth"]  # beside this file
        ```

        Using the [Python API](https://docs.kedro.org/en/stable/catalog-data/advanced_data_catalog_usage/):

        >>> from leak_detection.datasets import AtomicJSONDataset
        >>>
        >>> dataset = AtomicJSONDataset(filepath=tmp_path / "metrics.json")
        >>> dataset.save({"f1": 0.9})
        >>> assert dataset.load() == {"f1": 0.9}

    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str | os.PathLike,
        save_args: dict[str, Any] | None = None,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        paired_with: list[str] | None = None,
    ) -> None:
        """As ``json.JSONDataset``; ``paired_with``: filepaths of versioned datasets saved
        in the same run that must be intact in a version for "latest" to pick it."""
        super().__init__(
            filepath=filepath,
            save_args=save_args,
            version=version,
            credentials=credentials,
            fs_args=fs_args,
            metadata=metadata,
        )
        self._paired_with = paired_filepaths(paired_with)

    def save(self, data: Any) -> None:
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        with open_for_saving(self._fs, self._protocol, save_path, self._fs_open_args_save) as fs_file:
            json.dump(data, fs_file, **self._save_args)
        self._invalidate_cache()
