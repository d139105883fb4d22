"""``MelFeatureStoreDataset`` loads/saves a ``MelFeatureStore`` from/to one HDF5 file
on the local filesystem, using h5py.

The file holds the ragged layout (``format_version`` 2): one flat array of long
segments plus CSR-style ``file_offsets``. Stores of the replaced system's fixed-shape
layout (``/segments_mel`` ``[N, L, S, M, T]`` + ``labels_json``) are read too and
converted to the ragged form, so existing stores train without re-extraction.

With ``load_args: {lazy: true}`` the segments stay on disk: the loaded store's
``segments_mel`` is an ``H5Rows`` that reads rows from the file when they are asked for.
"""

from __future__ import annotations

import errno
import json
import logging
import operator
import os
from copy import deepcopy
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from kedro.io.core import AbstractDataset, DatasetError, get_protocol_and_path

from leak_detection.features.store import FORMAT_VERSION, MelFeatureStore, non_finite_in
from leak_detection.runs.atomic_files import atomic_path

logger = logging.getLogger(__name__)

_BUILD_HINT = "it is built by `kedro run --pipelines data_indexing`"
_SEGMENT_DTYPES = ("float16", "float32")
_COMPRESSIONS = (None, "gzip", "lzf")
# HDF5 refuses chunks of 4 GiB or more.
_MAX_CHUNK_BYTES = 2**32 - 1

_RAGGED_DATASETS = ("segments_mel", "file_offsets", "labels", "file_ids", "groups")
_RAGGED_ATTRS = (
    "label_names",
    "feature_config",
    "created_at_utc",
    "source_fingerprint",
    "format_version",
)


class MelFeatureStoreDataset(AbstractDataset[MelFeatureStore, MelFeatureStore]):
    """``MelFeatureStoreDataset`` loads/saves a ``MelFeatureStore`` from/to an HDF5
    file on the local filesystem (h5py needs a real file, so no remote protocols).

    Saving writes a temporary file next to the target and renames it into place, so a
    failed or interrupted save never leaves a half-written store behind and never
    touches a store already at the target. Loading checks that the parts of the store
    agree (offsets, labels, ids) and that every feature is finite, and refuses an
    inconsistent file or one holding NaN or infinity, naming the files concerned.

    With ``load_args: {lazy: true}`` the segments are not read at load time: the
    store's ``segments_mel`` is an ``H5Rows``, an array-like that reads rows from the
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
        _check_keys(
            "save_args",
            self._save_args,
            (*self.DEFAULT_SAVE_ARGS, *self._OPTIONAL_SAVE_ARGS),
        )
        _check_keys("load_args", self._load_args, tuple(self.DEFAULT_LOAD_ARGS))
        self._save_args["dtype"] = _check_dtype("save_args", self._save_args["dtype"])
        self._load_args["dtype"] = _check_dtype("load_args", self._load_args["dtype"])
        if not isinstance(self._load_args["lazy"], bool):
            raise DatasetError(f"load_args 'lazy' must be true or false; got {self._load_args['lazy']!r}.")

        chunk = self._save_args["chunk_long_segments"]
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise DatasetError(f"save_args 'chunk_long_segments' must be a positive integer; got {chunk!r}.")
        if self._save_args["compression"] not in _COMPRESSIONS:
            raise DatasetError(
                f"save_args 'compression' must be one of {list(_COMPRESSIONS)}; got {self._save_args['compression']!r}."
            )

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": str(self._filepath),
            "protocol": self._protocol,
            "save_args": self._save_args,
            "load_args": self._load_args,
        }

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def load(self) -> MelFeatureStore:
        path = self._filepath
        if not path.is_file():
            raise DatasetError(f"The mel feature store does not exist at {path}; {_BUILD_HINT}.")
        try:
            h5 = h5py.File(path, "r")
        except OSError as exc:
            raise DatasetError(f"Could not open the mel feature store at {path} as HDF5: {exc}") from exc
        with h5:
            version = h5.attrs.get("format_version")
            if version is not None and int(version) > FORMAT_VERSION:
                raise DatasetError(
                    f"The mel feature store at {path} has format_version {int(version)}, "
                    f"newer than this code reads ({FORMAT_VERSION}); update the code "
                    f"or rebuild the store ({_BUILD_HINT})."
                )
            if "file_offsets" in h5 or (version is not None and int(version) >= 2):
                parts = self._read_ragged(h5)
            elif "segments_mel" in h5 and h5["segments_mel"].ndim == 5:
                parts = self._read_legacy(h5)
            else:
                raise DatasetError(
                    f"The mel feature store at {path} has neither the ragged layout "
                    f"(/file_offsets with a 4-axis /segments_mel) nor the legacy layout "
                    f"(a 5-axis /segments_mel); datasets present: {sorted(h5)}."
                )
        try:
            return MelFeatureStore(**parts)
        except ValueError as exc:
            raise DatasetError(f"The mel feature store at {path} cannot be used: {exc}") from exc

    def save(self, data: MelFeatureStore) -> None:
        path = self._filepath
        if not isinstance(data, MelFeatureStore):
            raise DatasetError(
                f"MelFeatureStoreDataset at {path} can only save a MelFeatureStore; got {type(data).__name__}."
            )
        try:
            # The dataclass checks itself on construction; check again in case it was
            # modified since, so a store that would be refused on load is never written.
            data.validate()
        except ValueError as exc:
            raise DatasetError(f"Refusing to save to {path}: {exc}") from exc

        try:
            # "x": never clobber another writer's temporary file.
            with atomic_path(path) as tmp_path, open(tmp_path, "xb+", buffering=0) as raw:
                _reserve(raw, _size_bound(data, self._save_args))
                disk = _FirstWriteError(raw)
                with h5py.File(disk, "w") as h5:
                    self._write(h5, data)
                disk.finish()
        except Exception as exc:
            raise DatasetError(_save_failure(path, exc)) from exc

    def _write(self, h5: h5py.File, data: MelFeatureStore) -> None:
        dtype = np.dtype(self._save_args["dtype"])
        segments = data.segments_mel
        total = segments.shape[0]
        if segments.size == 0:
            # HDF5 chunks must be non-empty; an empty store needs no chunking.
            ds = h5.create_dataset("segments_mel", shape=segments.shape, dtype=dtype)
            rows = 1
        else:
            row_bytes = dtype.itemsize * int(np.prod(segments.shape[1:]))
            rows = min(
                self._save_args["chunk_long_segments"],
                total,
                max(1, _MAX_CHUNK_BYTES // row_bytes),
            )
            ds = h5.create_dataset(
                "segments_mel",
                shape=segments.shape,
                dtype=dtype,
                chunks=(rows, *segments.shape[1:]),
                compression=self._save_args["compression"],
                compression_opts=self._save_args.get("compression_opts"),
            )
        # Slab by slab, so the dtype conversion never holds a second full copy.
        for start in range(0, total, rows):
            ds[start : start + rows] = np.asarray(segments[start : start + rows], dtype=dtype)

        h5.create_dataset("file_offsets", data=np.asarray(data.file_offsets, dtype=np.int64))
        h5.create_dataset("labels", data=np.asarray(data.labels, dtype=np.int64))
        _write_strings(h5, "file_ids", data.file_ids)
        _write_strings(h5, "groups", data.groups)
        h5.create_dataset("durations_s", data=np.asarray(data.durations_s, dtype=np.float64))
        h5.create_dataset("sample_rates", data=np.asarray(data.sample_rates, dtype=np.int64))

        h5.attrs["label_names"] = json.dumps(list(data.label_names), ensure_ascii=False)
        h5.attrs["feature_config"] = json.dumps(data.feature_config, ensure_ascii=False, default=_json_default)
        h5.attrs["created_at_utc"] = str(data.created_at_utc)
        h5.attrs["source_fingerprint"] = str(data.source_fingerprint)
        h5.attrs["format_version"] = int(FORMAT_VERSION)

    def _read_ragged(self, h5: h5py.File) -> dict[str, Any]:
        path = self._filepath
        missing = [f"/{name}" for name in _RAGGED_DATASETS if name not in h5]
        missing += [f"attribute '{name}'" for name in _RAGGED_ATTRS if name not in h5.attrs]
        if missing:
            raise DatasetError(
                f"The mel feature store at {path} is missing {', '.join(missing)}; rebuild it ({_BUILD_HINT})."
            )
        segments_ds = h5["segments_mel"]
        if self._load_args["lazy"]:
            segments: np.ndarray | H5Rows = H5Rows(
                path,
                "segments_mel",
                shape=segments_ds.shape,
                dtype=self._load_args["dtype"],
                file_signature=_file_signature(h5, path),
            )
        else:
            segments = self._read_segments(segments_ds)
        return {
            "segments_mel": segments,
            "file_offsets": h5["file_offsets"][...],
            "labels": h5["labels"][...],
            "file_ids": _read_strings(h5["file_ids"]),
            "groups": _read_strings(h5["groups"]),
            # Per-file source facts; stores written before they existed derive them.
            "durations_s": h5["durations_s"][...] if "durations_s" in h5 else None,
            "sample_rates": h5["sample_rates"][...] if "sample_rates" in h5 else None,
            "label_names": _json_attr(h5, "label_names", path, list),
            "feature_config": _json_attr(h5, "feature_config", path, dict),
            "source_fingerprint": _str_attr(h5.attrs["source_fingerprint"]),
            "created_at_utc": _str_attr(h5.attrs["created_at_utc"]),
        }

    def _read_legacy(self, h5: h5py.File) -> dict[str, Any]:
        path = self._filepath
        names_attr = next((a for a in ("labels_json", "label_names") if a in h5.attrs), None)
        missing = [] if "labels" in h5 else ["/labels"]
        if names_attr is None:
            missing.append("attribute 'labels_json'")
        if missing:
            raise DatasetError(f"The legacy (fixed-shape) mel feature store at {path} is missing {', '.join(missing)}.")
        seg_ds = h5["segments_mel"]
        n_files, per_file = seg_ds.shape[:2]
        segments = self._read_segments(seg_ds).reshape(n_files * per_file, *seg_ds.shape[2:])
        file_ids = _read_strings(h5["file_ids"]) if "file_ids" in h5 else [f"file_{i:05d}" for i in range(n_files)]
        groups = _read_strings(h5["groups"]) if "groups" in h5 else list(file_ids)
        feature_config = _json_attr(h5, "feature_config", path, dict) if "feature_config" in h5.attrs else {}
        logger.info(
            "Read a legacy fixed-shape mel feature store at %s (%d files x %d long "
            "segments); converted it to the ragged layout in memory.",
            path,
            n_files,
            per_file,
        )
        if self._load_args["lazy"]:
            logger.info(
                "load_args lazy=True does not apply to the legacy layout; the segments of %s were read into memory.",
                path,
            )
        return {
            "segments_mel": segments,
            "file_offsets": np.arange(n_files + 1, dtype=np.int64) * per_file,
            "labels": h5["labels"][...],
            "file_ids": file_ids,
            "groups": groups,
            "label_names": _json_attr(h5, names_attr, path, list),
            "feature_config": feature_config,
            "source_fingerprint": _str_attr(h5.attrs.get("source_fingerprint", "")),
            "created_at_utc": _str_attr(h5.attrs.get("created_at_utc", "")),
        }

    def _read_segments(self, ds: h5py.Dataset) -> np.ndarray:
        # One read, converted by HDF5 on the way in: no per-row loop and no
        # intermediate float16 copy.
        return ds.astype(np.dtype(self._load_args["dtype"]))[...]


class _FirstWriteError:
    """The temporary store file as h5py's file object, keeping the first write error.

    HDF5 whose write fails (a full disk) keeps the file open and flushes it again when
    the process exits, and that second failure is a segmentation fault. Here HDF5 sees
    every write succeed; the first error is raised once the file is closed. The file's
    end is where HDF5 wrote up to, not the blocks reserved beyond it (``_reserve``).
    """

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self._end = 0
        self.error: OSError | None = None

    def _guarded(self, operation: str, *args: Any) -> Any:
        if self.error is None:
            try:
                return getattr(self._raw, operation)(*args)
            except OSError as exc:
                self.error = exc
        return None

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        if whence == os.SEEK_END:
            return self._raw.seek(self._end + offset)
        return self._raw.seek(offset, whence)

    def write(self, data: Any) -> int:
        n_bytes = memoryview(data).nbytes
        self._end = max(self._end, self._raw.tell() + n_bytes)
        self._guarded("write", data)
        return n_bytes

    def truncate(self, size: int | None = None) -> int:
        self._end = self._raw.tell() if size is None else size
        self._guarded("truncate", self._end)
        return self._end

    def flush(self) -> None:
        self._guarded("flush")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)

    def finish(self) -> None:
        """Give back the reserved blocks HDF5 did not use; raise the first write error."""
        self._guarded("truncate", self._end)
        if self.error is not None:
            raise self.error


def _size_bound(data: MelFeatureStore, save_args: dict[str, Any]) -> int:
    """Bytes the HDF5 file may take: uncompressed arrays, ids, and room for HDF5's own structures."""
    segments = data.segments_mel.shape[0] * int(np.prod(data.segments_mel.shape[1:]))
    ids = sum(len(str(s).encode()) + 16 for s in (*data.file_ids, *data.groups))
    arrays = 8 * (len(data.file_offsets) + 4 * len(data.file_ids))
    raw = segments * np.dtype(save_args["dtype"]).itemsize + ids + arrays
    return int(raw * 1.05) + (1 << 18)


def _reserve(raw: Any, nbytes: int) -> None:
    # Claiming the blocks first turns a full disk into an ordinary OSError here,
    # before HDF5 writes anything; HDF5 truncates the file to its real size on close.
    try:
        os.posix_fallocate(raw.fileno(), 0, nbytes)
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise
        # A filesystem without fallocate (EOPNOTSUPP): the write errors are still caught.


def _save_failure(path: Path, exc: BaseException) -> str:
    cause: BaseException | None = exc
    while cause is not None and getattr(cause, "errno", None) != errno.ENOSPC:
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return (
            f"Failed to save the mel feature store to {path}: no space left on device. Nothing was "
            f"written there (a store already at that path is untouched); free some space on that disk "
            f"or write the store elsewhere (--params feature_store=PATH)."
        )
    return f"Failed to save the mel feature store to {path}: {type(exc).__name__}: {exc}"


class H5Rows:
    """Rows of an HDF5 dataset read on demand: the lazy ``segments_mel`` of a
    ``MelFeatureStore``.

    Looks like the array it stands for (``shape``, ``ndim``, ``dtype``, ``size``,
    ``len``) and reads along the first axis: ``rows[i]`` and ``rows[a:b]`` (step 1)
    are one HDF5 read each, ``read_rows(starts, stops)`` one read per range, all
    converted to ``dtype`` and returned as numpy arrays; ``np.asarray(rows)`` reads
    everything.

    The file is opened for each read and closed after it, so an ``H5Rows`` holds no
    handle: it pickles and deep-copies as its path and shape, and works in worker
    processes. Each read first checks that the file is the one that was loaded
    (same inode, size and modification time); a replaced, modified or deleted file
    is refused with a ``DatasetError`` rather than read silently.
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        dataset: str,
        *,
        shape: tuple[int, ...],
        dtype: str | np.dtype,
        file_signature: tuple[int, ...],
    ) -> None:
        self.filepath = Path(filepath)
        self.dataset = dataset
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self._file_signature = tuple(file_signature)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"H5Rows('{self.filepath}', '/{self.dataset}', shape={self.shape}, dtype={self.dtype.name})"

    def __getitem__(self, key: int | slice) -> np.ndarray:
        n = self.shape[0]
        if isinstance(key, slice):
            start, stop, step = key.indices(n)
            if step != 1:
                raise IndexError(f"H5Rows reads contiguous rows only (slice step 1); got step {step}.")
            return self.read_rows([start], [max(start, stop)])
        if isinstance(key, (bool, np.bool_)):
            raise TypeError("H5Rows takes an integer or a slice, not a boolean.")
        try:
            index = operator.index(key)
        except TypeError:
            raise TypeError(f"H5Rows takes an integer or a slice along axis 0; got {type(key).__name__}.") from None
        if not -n <= index < n:
            raise IndexError(f"row {index} is out of range for {n} rows of {self!r}.")
        index %= n
        return self.read_rows([index], [index + 1])[0]

    def read_rows(self, starts: Any, stops: Any) -> np.ndarray:
        """Rows ``starts[k]:stops[k]`` for every ``k``, concatenated in that order;
        one HDF5 read per non-empty range, all in one opening of the file."""
        starts = np.asarray(starts, dtype=np.int64)
        stops = np.asarray(stops, dtype=np.int64)
        if starts.ndim != 1 or starts.shape != stops.shape:
            raise ValueError(
                f"starts and stops must be 1-D and of equal length; got shapes {starts.shape} and {stops.shape}."
            )
        bad = np.flatnonzero((starts < 0) | (stops < starts) | (stops > self.shape[0]))
        if bad.size:
            k = int(bad[0])
            raise IndexError(f"row range {int(starts[k])}:{int(stops[k])} is not within 0:{self.shape[0]} of {self!r}.")
        lengths = stops - starts
        out = np.empty((int(lengths.sum()), *self.shape[1:]), dtype=self.dtype)
        if out.shape[0] == 0:
            return out
        with self._open() as h5:
            ds = h5[self.dataset]
            pos = 0
            for start, stop, length in zip(starts, stops, lengths, strict=True):
                if length:
                    # HDF5 converts to the output dtype during the read.
                    ds.read_direct(out, source_sel=np.s_[start:stop], dest_sel=np.s_[pos : pos + length])
                    pos += length
        return out

    def non_finite_rows(self, block_rows: int) -> np.ndarray:
        """Indices of the rows holding a NaN or an infinity, read ``block_rows`` at a time.

        Blocks are read as stored and checked by numpy: HDF5's own float16 to float32
        conversion took 520 ms of a 580 ms check of 500,000 rows; this takes about 70.
        """
        found = []
        with self._open() as h5:
            ds = h5[self.dataset]
            # A float32 store read as float16 turns values beyond 65504 into infinities.
            narrowed = np.dtype(ds.dtype).itemsize > self.dtype.itemsize
            for start in range(0, self.shape[0], block_rows):
                block = ds[start : start + block_rows]
                if narrowed:
                    with np.errstate(over="ignore"):  # the overflow is what is looked for
                        block = block.astype(self.dtype)
                found.append(start + np.flatnonzero(non_finite_in(block)))
        return np.concatenate(found) if found else np.empty(0, dtype=np.int64)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if copy is False:
            raise ValueError("H5Rows cannot give an array without reading (copying) it.")
        rows = self[:]
        return rows if dtype is None else rows.astype(dtype, copy=False)

    def _open(self) -> h5py.File:
        path = self.filepath
        try:
            h5 = h5py.File(path, "r")
        except OSError as exc:
            raise DatasetError(
                f"Cannot read the lazily loaded mel feature store at {path}: {exc}. "
                f"A store loaded with lazy=True reads its file while in use; keep the "
                f"file in place or load it again."
            ) from exc
        if _file_signature(h5, path) != self._file_signature:
            h5.close()
            raise DatasetError(
                f"The mel feature store at {path} was replaced or modified since it was "
                f"loaded with lazy=True; refusing to mix rows of two different files. "
                f"Load it again."
            )
        return h5


def _file_signature(h5: h5py.File, path: Path) -> tuple[int, ...]:
    """Identity of the file ``h5`` has open: device, inode, size, mtime (ns)."""
    try:
        # The open file itself, so a rename in between cannot mislead.
        st = os.fstat(h5.id.get_vfd_handle())
    except (OSError, TypeError, ValueError):  # pragma: no cover - non-default drivers
        st = os.stat(path)
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _check_keys(kind: str, args: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(args) - set(allowed))
    if unknown:
        raise DatasetError(f"Unknown {kind} key(s) {unknown} for MelFeatureStoreDataset; allowed: {list(allowed)}.")


def _check_dtype(kind: str, value: Any) -> str:
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in _SEGMENT_DTYPES:
        raise DatasetError(f"{kind} 'dtype' must be one of {list(_SEGMENT_DTYPES)}; got {value!r}.")
    return name


def _write_strings(h5: h5py.File, name: str, values: list[str]) -> None:
    h5.create_dataset(
        name,
        data=np.array([str(v) for v in values], dtype=object),
        dtype=h5py.string_dtype(encoding="utf-8"),
    )


def _read_strings(ds: h5py.Dataset) -> list[str]:
    return [_str_attr(v) for v in ds[...].tolist()]


def _str_attr(value: Any) -> str:
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return str(value)


def _json_attr(h5: h5py.File, name: str, path: Path, expected: type) -> Any:
    raw = h5.attrs[name]
    if isinstance(raw, np.ndarray):  # a list of names stored as an array attribute
        value: Any = [_str_attr(v) for v in raw.tolist()]
    else:
        try:
            value = json.loads(_str_attr(raw))
        except json.JSONDecodeError as exc:
            raise DatasetError(
                f"Attribute '{name}' of the mel feature store at {path} is not valid JSON: {exc}"
            ) from exc
    if not isinstance(value, expected):
        raise DatasetError(
            f"Attribute '{name}' of the mel feature store at {path} should hold a JSON "
            f"{'list' if expected is list else 'object'}; got {type(value).__name__}."
        )
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"feature_config value {value!r} is not JSON serialisable")
