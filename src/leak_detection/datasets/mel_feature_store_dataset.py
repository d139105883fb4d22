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
import threading
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
# Where filesystems say that an object changed: S3 (ETag, VersionId, LastModified), GCS
# (generation, updated), Azure (etag, last_modified), local and SFTP (mtime), memory (created).
_CHANGE_KEYS = (
    "ETag",
    "etag",
    "VersionId",
    "generation",
    "LastModified",
    "last_modified",
    "updated",
    "mtime",
    "created",
)


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
        self._local: _LocalCopy | None = None
        self._lock = threading.Lock()
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

    def __getstate__(self) -> dict[str, Any]:
        # A pickled or deep-copied dataset (a ParallelRunner worker, Kedro's _copy) keeps
        # no share of this one's local copy: what it downloads is its own to remove.
        state = self.__dict__.copy()
        state["_local"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _release(self) -> None:
        # Kedro releases the dataset after the last node that loads it in a run: its
        # copy's room in TMPDIR is freed then (a lazy store still in use keeps it).
        with self._lock:
            self._local = None

    def _exists(self) -> bool:
        if self._fs is None:
            return self._filepath.is_file()
        info = self._remote_info()
        return info is not None and info.get("type") == "file"

    def _load(self) -> MelFeatureStore:
        if self._fs is None:
            return load_store_file(self._filepath, self._load_options)
        local = self._local_copy()
        try:
            store = load_store_file(local.path, self._load_options)
        except DatasetError as exc:
            # A copy that does not load is not kept for the next load.
            with self._lock:
                if self._local is local:
                    self._local = None
            path = local.path
            # The traceback keeps this frame: without the name, the folder goes at once
            # (unless a lazy store loaded from it earlier still reads it).
            del local
            raise DatasetError(str(exc).replace(str(path), self._filepath)) from exc
        if isinstance(store.segments_mel, H5Rows):
            # The rows read the copy on demand: it must outlive them, even once the
            # dataset has let go of it (object replaced, dataset released or collected).
            weakref.finalize(store.segments_mel, _hold, local)
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
        local = _LocalCopy(PurePosixPath(self._remote_path).name)
        try:
            try:
                save_store_file(local.path, data, self._save_options)
            except DatasetError as exc:
                message = str(exc).replace(str(local.path), self._filepath)
                raise DatasetError(_remote_save_failure(message, exc)) from exc
            self._upload(local.path)
        except BaseException:
            local.remove()
            raise
        # The file just uploaded is the remote object now: the nodes that load the store
        # after the one that saved it read this file instead of downloading it again.
        local.signature = self._uploaded_signature(local.path)
        with self._lock:
            self._local = local if local.signature is not None else None

    def _remote_info(self) -> dict[str, Any] | None:
        """The remote object's fsspec ``info``, None when there is none; a failed look-up
        (network, endpoint, credentials) is a ``DatasetError``, never None."""
        # A listing cached earlier would hide an object replaced or removed since.
        self._fs.invalidate_cache(self._remote_path)
        try:
            return self._fs.info(self._remote_path)
        except FileNotFoundError:
            return None
        except Exception as exc:
            detail = " ".join(f"{type(exc).__name__}: {exc}".split())
            raise DatasetError(
                f"Cannot reach the mel feature store at {self._filepath}: {detail}; "
                f"check the network, the endpoint and the credentials."
            ) from exc

    def _local_copy(self) -> _LocalCopy:
        """A local copy of the remote store: the dataset's own while the object is
        unchanged since it was made, else a new download."""
        info = self._remote_info()
        if info is None:
            raise DatasetError(f"The mel feature store does not exist at {self._filepath}; {BUILD_HINT}.")
        kind = info.get("type")
        if kind != "file":
            what = "a folder" if kind == "directory" else f"not a file (fsspec type {kind!r})"
            raise DatasetError(
                f"{self._filepath} is {what}, not a mel feature store file; give the URL of "
                f"the store's HDF5 file (e.g. .../mel_features.h5)."
            )
        signature = _signature(info)
        # One download for threads loading the store at the same time (ThreadRunner).
        with self._lock:
            local = self._local
            if local is None or local.signature is None or local.signature != signature or not local.path.is_file():
                local = self._download(signature)
                self._local = local
            return local

    def _download(self, signature: tuple[Any, ...] | None) -> _LocalCopy:
        local = _LocalCopy(PurePosixPath(self._remote_path).name, signature)
        try:
            self._fs.get_file(self._remote_path, str(local.path))
        except Exception as exc:
            local.remove()
            raise DatasetError(
                f"Could not download the mel feature store from {self._filepath} to a temporary "
                f"local copy in {local.path.parent} (TMPDIR): {type(exc).__name__}: {exc}"
            ) from exc
        except BaseException:
            local.remove()
            raise
        return local

    def _uploaded_signature(self, local: Path) -> tuple[Any, ...] | None:
        try:
            info = self._fs.info(self._remote_path)
        except Exception:
            # The store is saved; without the object's signature the next load downloads it.
            return None
        # An object another writer uploaded in between must not pass for this file.
        if info.get("size") != local.stat().st_size:
            return None
        return _signature(info)

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


class _LocalCopy:
    """A remote store's file in a temporary folder of its own, with the remote object's
    ``signature`` when they were the same (None: not to be reused). The folder is
    removed when the copy is garbage-collected, at the latest when Python exits."""

    def __init__(self, name: str, signature: tuple[Any, ...] | None = None) -> None:
        folder = tempfile.mkdtemp(prefix=TEMP_PREFIX)
        self.path = Path(folder) / name
        self.signature = signature
        self.remove = weakref.finalize(self, _remove_local_copy, folder, os.getpid())


def _hold(local: _LocalCopy) -> None:
    """Nothing to do: a finalizer holding ``local`` keeps it until its referent is collected."""


def _signature(info: dict[str, Any]) -> tuple[Any, ...] | None:
    """What tells this version of a remote object from another; None when its filesystem
    reports nothing that changes with the object (the size alone proves nothing)."""
    changes = tuple((key, info[key]) for key in _CHANGE_KEYS if info.get(key) is not None)
    return (info.get("size"), *changes) if changes else None


def _remove_local_copy(tmpdir: str, owner_pid: int) -> None:
    # A forked worker inherits the finalizer; only the process that made the copy
    # removes it, or a worker ending would pull the file from under its parent.
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
