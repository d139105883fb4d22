"""``MelFeatureStoreDataset`` loads/saves a ``MelFeatureStore`` from/to one HDF5 file
on the local filesystem or any filesystem fsspec reaches (e.g.: S3, GCS), using h5py.

This is the Kedro adapter only: the file's layouts (the ragged one it writes, the
replaced system's fixed-shape one it still reads), the lazy rows and the atomic save
live in ``leak_detection.features`` (``hdf5_layout``, ``legacy_layout``, ``lazy_rows``,
``store_file``).
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
import weakref
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path

from leak_detection.features.hdf5_layout import BUILD_HINT, LoadOptions, SaveOptions
from leak_detection.features.lazy_rows import H5Rows
from leak_detection.features.store import MelFeatureStore
from leak_detection.features.store_file import load_store_file, save_store_file

TEMP_PREFIX = "leak-detection-store-"


class MelFeatureStoreDataset(AbstractDataset[MelFeatureStore, MelFeatureStore]):
    """``MelFeatureStoreDataset`` loads/saves a ``MelFeatureStore`` from/to an HDF5
    file on the local filesystem or on any filesystem fsspec supports (e.g.: S3, GCS).

    Saving writes a temporary file next to the target and renames it into place, so a
    failed or interrupted save never leaves a half-written store behind and never
    touches a store already at the target. Loading checks that the parts of the store
    agree (offsets, labels, ids) and that every feature is finite, and refuses an
    inconsistent file or one holding NaN or infinity, naming the files concerned.

    h5py needs a real file, so a remote store (``s3://...``, which needs the ``s3fs``
    package) goes through a local copy in a fresh temporary folder (under ``TMPDIR``):
    loading downloads the object there, saving writes and checks the store there as
    above, then uploads it. An object store publishes an object only once its upload
    completes, so a failed upload leaves the store already there untouched. The local
    copy of a loaded store is deleted once it is read, or with ``lazy: true`` once the
    store's ``segments_mel`` is garbage-collected (at the latest when Python exits), so
    ``TMPDIR`` needs room for a copy of every lazily loaded store in use.

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
                temporary local copy on load and uploaded from one on save, in a
                fresh folder under ``TMPDIR``.
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
        if protocol == "file":
            self._filepath: Path | str = Path(path)
        else:
            # Messages (and StoreContractHook, which reads _filepath) name the store by
            # its URL, not by the path fsspec uses without the protocol.
            self._remote_path = path
            self._filepath = f"{protocol}://{path}"
            try:
                self._fs = fsspec.filesystem(protocol, **deepcopy(credentials or {}), **deepcopy(fs_args or {}))
            except (ImportError, ValueError) as exc:
                # fsspec says which package a protocol needs ("Install s3fs to access S3").
                raise DatasetError(f"MelFeatureStoreDataset cannot reach {self._filepath}: {exc}") from exc
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
        if self._fs is None:
            return self._filepath.is_file()
        return self._fs.isfile(self._remote_path)

    def _load(self) -> MelFeatureStore:
        if self._fs is None:
            return load_store_file(self._filepath, self._load_options)
        if not self._fs.isfile(self._remote_path):
            raise DatasetError(f"The mel feature store does not exist at {self._filepath}; {BUILD_HINT}.")
        tmpdir = tempfile.mkdtemp(prefix=TEMP_PREFIX)
        local = Path(tmpdir) / PurePosixPath(self._remote_path).name
        try:
            self._download(local)
            store = load_store_file(local, self._load_options)
        except DatasetError as exc:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise DatasetError(str(exc).replace(str(local), self._filepath)) from exc
        except BaseException:
            shutil.rmtree(tmpdir, ignore_errors=True)
            raise
        if isinstance(store.segments_mel, H5Rows):
            # The rows read the local copy on demand: it must outlive them, and only them.
            weakref.finalize(store.segments_mel, _remove_local_copy, tmpdir, os.getpid())
        else:
            shutil.rmtree(tmpdir, ignore_errors=True)
        return store

    def _save(self, data: MelFeatureStore) -> None:
        if not isinstance(data, MelFeatureStore):
            raise DatasetError(
                f"MelFeatureStoreDataset at {self._filepath} can only save a MelFeatureStore; "
                f"got {type(data).__name__}."
            )
        if self._fs is None:
            save_store_file(self._filepath, data, self._save_options)
            return
        tmpdir = tempfile.mkdtemp(prefix=TEMP_PREFIX)
        local = Path(tmpdir) / PurePosixPath(self._remote_path).name
        try:
            try:
                save_store_file(local, data, self._save_options)
            except DatasetError as exc:
                raise DatasetError(_remote_save_failure(str(exc).replace(str(local), self._filepath), exc)) from exc
            self._upload(local)
        finally:
            shutil.rmtree(tmpdir, ignore_errors=True)

    def _download(self, local: Path) -> None:
        try:
            self._fs.get_file(self._remote_path, str(local))
        except Exception as exc:
            raise DatasetError(
                f"Could not download the mel feature store from {self._filepath} to a temporary "
                f"local copy in {local.parent} (TMPDIR): {type(exc).__name__}: {exc}"
            ) from exc

    def _upload(self, local: Path) -> None:
        try:
            self._fs.put_file(str(local), self._remote_path)
        except Exception as exc:
            raise DatasetError(
                f"Failed to upload the mel feature store to {self._filepath}: {type(exc).__name__}: {exc}. "
                f"An object store publishes an object only once its upload completes, so a store "
                f"already there is untouched."
            ) from exc
        finally:
            # A listing cached before the upload would hide the new object from _exists.
            self._fs.invalidate_cache(self._remote_path)


def _remove_local_copy(tmpdir: str, owner_pid: int) -> None:
    # A forked worker inherits the finalizer; only the process that downloaded the
    # copy removes it, or a worker ending would pull the file from under its parent.
    if os.getpid() == owner_pid:
        shutil.rmtree(tmpdir, ignore_errors=True)


def _remote_save_failure(message: str, exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None and getattr(cause, "errno", None) != errno.ENOSPC:
        cause = cause.__cause__ or cause.__context__
    if cause is None:
        return message
    return (
        f"{message} The store is written to a temporary local copy in {tempfile.gettempdir()} "
        f"before its upload: point TMPDIR at a disk with room for it."
    )


def _check_keys(kind: str, args: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise DatasetError(f"Unknown {kind} key(s) {unknown} for MelFeatureStoreDataset; allowed: {list(allowed)}.")


def _options(kind: str, options_type: type[SaveOptions | LoadOptions], args: dict[str, Any]) -> Any:
    try:
        return options_type(**args)
    except ValueError as exc:
        raise DatasetError(f"{kind} {exc}") from exc
