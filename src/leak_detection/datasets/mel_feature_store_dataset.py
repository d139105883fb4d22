"""``MelFeatureStoreDataset`` loads/saves a ``MelFeatureStore`` from/to one HDF5 file
on the local filesystem or any filesystem fsspec reaches (e.g.: S3, GCS), using h5py.

This is the Kedro adapter only: the file's layouts (the ragged one it writes, the
replaced system's fixed-shape one it still reads), the lazy rows and the atomic save
live in ``leak_detection.features`` (``hdf5_layout``, ``legacy_layout``, ``lazy_rows``,
``store_file``); the local copy that a remote store goes through lives in ``remote_copy``.
"""

from __future__ import annotations

import os
from copy import deepcopy
from pathlib import Path
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path

from leak_detection.datasets.intact_versions import display_url, open_filesystem
from leak_detection.datasets.remote_copy import RemoteFile, with_tmpdir_hint
from leak_detection.features.hdf5_layout import BUILD_HINT, LoadOptions, SaveOptions
from leak_detection.features.lazy_rows import H5Rows
from leak_detection.features.store import MelFeatureStore
from leak_detection.features.store_file import load_store_file, save_store_file


class MelFeatureStoreDataset(AbstractDataset[MelFeatureStore, MelFeatureStore]):
    """``MelFeatureStoreDataset`` loads/saves a ``MelFeatureStore`` from/to an HDF5
    file on the local filesystem or on any filesystem fsspec supports (e.g.: S3, GCS).

    Saving writes a temporary file next to the target and renames it into place, so a
    failed or interrupted save never leaves a half-written store behind and never
    touches a store already at the target. Loading checks that the parts of the store
    agree (offsets, labels, ids) and that every feature is finite, and refuses an
    inconsistent file or one holding NaN or infinity, naming the files concerned.

    h5py needs a real file, so a remote store (``s3://...``, which needs the ``s3fs``
    package) goes through a local copy in a temporary folder (under ``TMPDIR``):
    loading downloads the object there, saving writes and checks the store there as
    above, then uploads it. An object store publishes an object only once its upload
    completes, so a failed upload leaves the store already there untouched.

    The dataset keeps its local copy and every later load reads it again, without a
    download, while the remote object is unchanged (same size and ETag or modification
    time); a replaced object is downloaded again, into a new folder. A successful save
    keeps the file it uploaded as that copy. So ``TMPDIR`` needs room for one copy of
    each remote store a session uses (two for a while when the object changes under a
    lazily loaded store). A copy is removed once neither the dataset (which lets go of
    it when the object changes, when Kedro releases the dataset after the last node
    that loads it, or when it is garbage-collected) nor a lazy store read from it is in
    use; at the latest when Python exits. A store that cannot be reached (network,
    endpoint, credentials) is a ``DatasetError`` saying so, from ``exists`` too: it never
    passes for a missing store.

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

        A store in object storage, with the credentials from ``credentials.yml``:

        ```yaml
        mel_features:
          type: leak_detection.datasets.MelFeatureStoreDataset
          filepath: s3://my-bucket/04_feature/mel_features.h5
          credentials: dev_s3
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
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Creates a new instance of ``MelFeatureStoreDataset`` pointing to an HDF5 file.

        Args:
            filepath: Filepath in POSIX format to the HDF5 file, prefixed with a
                protocol like ``s3://`` (any protocol ``fsspec`` supports; ``s3://``
                needs the ``s3fs`` package). Without a prefix, or with ``file://``, the
                file is on the local filesystem. A remote store is downloaded to a
                temporary local copy under ``TMPDIR``, which later loads reuse while
                the remote object is unchanged, and is uploaded from one on save.
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
            credentials: Credentials required to get access to a remote filesystem.
                E.g. for ``S3FileSystem`` it should look like
                ``{"key": "...", "secret": "..."}``. Ignored for local files.
            fs_args: Extra arguments to pass into the remote filesystem class
                constructor (e.g. ``{"client_kwargs": {"endpoint_url": "..."}}`` for
                ``S3FileSystem``). Ignored for local files.
            metadata: Any arbitrary metadata.
                This is ignored by Kedro, but may be consumed by users or external plugins.

        Raises:
            DatasetError: When an argument is invalid, or the protocol's filesystem
                is unknown or its package (e.g. ``s3fs``) is not installed.
        """
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._fs: fsspec.AbstractFileSystem | None = None
        self._remote: RemoteFile | None = None
        if protocol == "file":
            self._filepath: Path | str = Path(path)
        else:
            # Messages (and StoreContractHook, which reads _filepath) name the store by
            # its URL, not by the path fsspec uses without the protocol.
            self._filepath = display_url(protocol, path)
            # A missing package (s3fs) is "cannot open", saying what to install: not the network's fault.
            self._fs = open_filesystem(protocol, path, **deepcopy(credentials or {}), **deepcopy(fs_args or {}))
            self._remote = RemoteFile(self._fs, path, self._filepath)
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

    def _release(self) -> None:
        # Kedro releases the dataset after the last node that loads it in a run: its
        # copy's room in TMPDIR is freed then (a lazy store still in use keeps it).
        if self._remote is not None:
            self._remote.release()

    def _exists(self) -> bool:
        if self._remote is None:
            return self._filepath.is_file()
        return self._remote.is_file()

    def _load(self) -> MelFeatureStore:
        if self._remote is None:
            return load_store_file(self._filepath, self._load_options)
        local = self._remote.local_copy(f"The mel feature store does not exist at {self._filepath}; {BUILD_HINT}.")
        try:
            store = load_store_file(local.path, self._load_options)
        except DatasetError as exc:
            # A copy that does not load is not kept for the next load.
            self._remote.discard(local)
            path = local.path
            # The traceback keeps this frame: without the name, the folder goes at once
            # (unless a lazy store loaded from it earlier still reads it).
            del local
            raise DatasetError(str(exc).replace(str(path), self._filepath)) from exc
        if isinstance(store.segments_mel, H5Rows):
            # The rows read the copy on demand: it must outlive them, even once the
            # dataset has let go of it (object replaced, dataset released or collected).
            local.outlive(store.segments_mel)
        return store

    def _save(self, data: MelFeatureStore) -> None:
        if not isinstance(data, MelFeatureStore):
            raise DatasetError(
                f"MelFeatureStoreDataset at {self._filepath} can only save a MelFeatureStore; "
                f"got {type(data).__name__}."
            )
        if self._remote is None:
            save_store_file(self._filepath, data, self._save_options)
            return
        local = self._remote.new_copy()
        try:
            try:
                save_store_file(local.path, data, self._save_options)
            except DatasetError as exc:
                message = str(exc).replace(str(local.path), self._filepath)
                raise DatasetError(with_tmpdir_hint(message, exc)) from exc
            self._remote.upload(local)
        except BaseException:
            local.remove()
            raise


def _check_keys(kind: str, args: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise DatasetError(f"Unknown {kind} key(s) {unknown} for MelFeatureStoreDataset; allowed: {list(allowed)}.")


def _options(kind: str, options_type: type[SaveOptions | LoadOptions], args: dict[str, Any]) -> Any:
    try:
        return options_type(**args)
    except ValueError as exc:
        raise DatasetError(f"{kind} {exc}") from exc
