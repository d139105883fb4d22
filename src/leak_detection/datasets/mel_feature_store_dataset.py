"""``MelFeatureStoreDataset`` loads/saves a ``MelFeatureStore`` from/to one HDF5 file
on the local filesystem, using h5py.

This is the Kedro adapter only: the file's layouts (the ragged one it writes, the
replaced system's fixed-shape one it still reads), the lazy rows and the atomic save
live in ``leak_detection.features`` (``hdf5_layout``, ``legacy_layout``, ``lazy_rows``,
``store_file``).
"""

from __future__ import annotations

import os
from copy import deepcopy
from pathlib import Path
from typing import Any

from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path

from leak_detection.features.hdf5_layout import LoadOptions, SaveOptions
from leak_detection.features.store import MelFeatureStore
from leak_detection.features.store_file import load_store_file, save_store_file


class MelFeatureStoreDataset(AbstractDataset[MelFeatureStore, MelFeatureStore]):
    """``MelFeatureStoreDataset`` loads/saves a ``MelFeatureStore`` from/to an HDF5
    file on the local filesystem (h5py needs a real file, so no remote protocols).

    Saving writes a temporary file next to the target and renames it into place, so a
    failed or interrupted save never leaves a half-written store behind and never
    touches a store already at the target. Loading checks that the parts of the store
    agree (offsets, labels, ids) and that every feature is finite, and refuses an
    inconsistent file or one holding NaN or infinity, naming the files concerned.

    With ``load_args: {lazy: true}`` the segments are not read at load time: the
    store's ``segments_mel`` is an ``H5Rows``, a ``RowReader`` that reads rows from the
    file on demand (everything else is read at once, and the store is checked as
    usual: the finiteness check reads the segments once, block by block). The file
    must stay in place while the store is in use; reading from a file replaced since
    the load is refused.

    Examples:
        Using the [YAML API](https://docs.kedro.org/en/stable/catalog-data/data_catalog_yaml_examples/):

        ```yaml
        mel_features:
          type: leak_detection.datasets.MelFeatureStoreDataset
          filepath: data/04_feature/mel_features.h5
          save_args:
            dtype: float16
            compression: gzip
            chunk_long_segments: 4096
          load_args:
            lazy: true
        ```

        Using the [Python API](https://docs.kedro.org/en/stable/catalog-data/advanced_data_catalog_usage/):

        >>> import numpy as np
        >>> from leak_detection.datasets import MelFeatureStoreDataset
        >>> from leak_detection.features.store import MelFeatureStore
        >>>
        >>> store = MelFeatureStore(
        ...     segments_mel=np.zeros((3, 2, 8, 5), dtype=np.float32),
        ...     file_offsets=[0, 1, 3],
        ...     labels=[0, 1],
        ...     file_ids=["a.wav", "b.wav"],
        ...     groups=["site1", "site2"],
        ...     label_names=["no_leak", "leak"],
        ... )
        >>> dataset = MelFeatureStoreDataset(filepath=tmp_path / "mel_features.h5")
        >>> dataset.save(store)
        >>> reloaded = dataset.load()
        >>> assert reloaded.file_ids == store.file_ids
        >>> assert np.array_equal(reloaded.file_offsets, store.file_offsets)
        >>>
        >>> lazy = MelFeatureStoreDataset(
        ...     filepath=tmp_path / "mel_features.h5", load_args={"lazy": True}
        ... ).load()
        >>> assert np.array_equal(lazy.segments_mel[1:3], reloaded.segments_mel[1:3])

    """

    DEFAULT_SAVE_ARGS: dict[str, Any] = {
        "dtype": "float16",
        "compression": None,
        "chunk_long_segments": 4096,
    }
    DEFAULT_LOAD_ARGS: dict[str, Any] = {"dtype": "float32", "lazy": False}
    _OPTIONAL_SAVE_ARGS = ("compression_opts",)

    def __init__(
        self,
        *,
        filepath: str | os.PathLike,
        save_args: dict[str, Any] | None = None,
        load_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Creates a new instance of ``MelFeatureStoreDataset`` pointing to an HDF5 file.

        Args:
            filepath: Path to the HDF5 file on the local filesystem (optionally
                prefixed with ``file://``). Other protocols are refused.
            save_args: ``dtype`` of the stored segments (``"float16"``, the default,
                or ``"float32"``); ``compression`` (``None``, ``"gzip"`` or ``"lzf"``)
                with optional ``compression_opts`` (gzip level); and
                ``chunk_long_segments``, the rows per HDF5 chunk along the long-segment
                axis, which is also the number of rows converted and written at a time.
            load_args: ``dtype`` of the loaded segments, ``"float32"`` (the default)
                or ``"float16"`` (halves memory, keeps the stored precision); and
                ``lazy`` (default ``False``): when ``True``, ``segments_mel`` is an
                ``H5Rows`` that reads rows from the file on demand instead of an
                array in memory. A store in the legacy fixed-shape layout is always
                read into memory (it is reshaped on load), ``lazy`` or not.
            metadata: Any arbitrary metadata.
                This is ignored by Kedro, but may be consumed by users or external plugins.

        Raises:
            DatasetError: When the protocol is not local or an argument is invalid.
        """
        protocol, path = get_protocol_and_path(filepath)
        if protocol != "file":
            raise DatasetError(
                f"MelFeatureStoreDataset only supports the local filesystem (h5py needs "
                f"a real file); got protocol '{protocol}' for '{filepath}'."
            )
        self._protocol = protocol
        self._filepath = Path(path)
        self.metadata = metadata

        self._save_args = {**self.DEFAULT_SAVE_ARGS, **deepcopy(save_args or {})}
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **deepcopy(load_args or {})}
        _check_keys("save_args", self._save_args, (*self.DEFAULT_SAVE_ARGS, *self._OPTIONAL_SAVE_ARGS))
        _check_keys("load_args", self._load_args, tuple(self.DEFAULT_LOAD_ARGS))
        self._save_options = _options("save_args", SaveOptions, self._save_args)
        self._load_options = _options("load_args", LoadOptions, self._load_args)
        self._save_args["dtype"] = self._save_options.dtype
        self._load_args["dtype"] = self._load_options.dtype

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "protocol": self._protocol,
            "save_args": self._save_args,
            "load_args": self._load_args,
        }

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _load(self) -> MelFeatureStore:
        return load_store_file(self._filepath, self._load_options)

    def _save(self, data: MelFeatureStore) -> None:
        if not isinstance(data, MelFeatureStore):
            raise DatasetError(
                f"MelFeatureStoreDataset at {self._filepath} can only save a MelFeatureStore; "
                f"got {type(data).__name__}."
            )
        save_store_file(self._filepath, data, self._save_options)


def _check_keys(kind: str, args: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise DatasetError(f"Unknown {kind} key(s) {unknown} for MelFeatureStoreDataset; allowed: {list(allowed)}.")


def _options(kind: str, options_type: type[SaveOptions | LoadOptions], args: dict[str, Any]) -> Any:
    try:
        return options_type(**args)
    except ValueError as exc:
        raise DatasetError(f"{kind} {exc}") from exc
