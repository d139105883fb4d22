"""The ragged HDF5 layout of the mel feature store (``format_version`` 2), and its save and load options.

One file holds the ``MelFeatureStore`` as it is in memory:

- ``/segments_mel`` ``[total_long_segments, n_short, n_mels, n_frames]`` float16 or float32,
  chunked along the first axis; ``/file_offsets`` ``[n_files + 1]`` int64 (CSR style);
- ``/labels`` int64, ``/file_ids`` and ``/groups`` UTF-8 strings, ``/durations_s`` float64 and
  ``/sample_rates`` int64, one entry a file (the last two are absent from older files);
- attributes ``label_names`` and ``feature_config`` (JSON), ``created_at_utc``,
  ``source_fingerprint`` and ``format_version``.

The replaced system's fixed-shape layout (version 1) is read by ``legacy_layout``; the
file as a whole (opening, the atomic save) is ``store_file``'s. Problems with a file are
raised as Kedro's ``DatasetError`` naming its path.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from kedro.io.core import DatasetError

from leak_detection.features.lazy_rows import H5Rows, file_signature
from leak_detection.features.store import MelFeatureStore

FORMAT_VERSION = 2
"""Version 1 is the replaced system's fixed-shape layout; 2 is the ragged layout."""

BUILD_HINT = "it is built by `kedro run --pipelines data_indexing`"
SEGMENT_DTYPES = ("float16", "float32")
COMPRESSIONS = (None, "gzip", "lzf")
# HDF5 refuses chunks of 4 GiB or more.
_MAX_CHUNK_BYTES = 2**32 - 1

_RAGGED_DATASETS = ("segments_mel", "file_offsets", "labels", "file_ids", "groups")
_RAGGED_ATTRS = ("label_names", "feature_config", "created_at_utc", "source_fingerprint", "format_version")


@dataclass
class SaveOptions:
    """How the segments are written: ``dtype``, ``compression`` (with gzip's level in
    ``compression_opts``) and ``chunk_long_segments``, the rows per HDF5 chunk, which is
    also the number of rows converted and written at a time."""

    dtype: str = "float16"
    compression: str | None = None
    compression_opts: int | None = None
    chunk_long_segments: int = 4096

    def __post_init__(self) -> None:
        self.dtype = segment_dtype(self.dtype)
        chunk = self.chunk_long_segments
        if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
            raise ValueError(f"'chunk_long_segments' must be a positive integer; got {chunk!r}.")
        if self.compression not in COMPRESSIONS:
            raise ValueError(f"'compression' must be one of {list(COMPRESSIONS)}; got {self.compression!r}.")


@dataclass
class LoadOptions:
    """How the segments are read: converted to ``dtype``, and into memory or, with
    ``lazy``, left on disk behind an ``H5Rows``."""

    dtype: str = "float32"
    lazy: bool = False

    def __post_init__(self) -> None:
        self.dtype = segment_dtype(self.dtype)
        if not isinstance(self.lazy, bool):
            raise ValueError(f"'lazy' must be true or false; got {self.lazy!r}.")


def segment_dtype(value: Any) -> str:
    """The name of a dtype the segments may be stored or loaded as; ``ValueError`` for another."""
    try:
        name = np.dtype(value).name
    except TypeError:
        name = None
    if name not in SEGMENT_DTYPES:
        raise ValueError(f"'dtype' must be one of {list(SEGMENT_DTYPES)}; got {value!r}.")
    return name


def write_ragged(h5: h5py.File, store: MelFeatureStore, options: SaveOptions) -> None:
    """Write ``store`` into the empty, open file ``h5``."""
    dtype = np.dtype(options.dtype)
    segments = store.segments_mel
    total = segments.shape[0]
    if segments.size == 0:
        # HDF5 chunks must be non-empty; an empty store needs no chunking.
        ds = h5.create_dataset("segments_mel", shape=segments.shape, dtype=dtype)
        rows = 1
    else:
        row_bytes = dtype.itemsize * int(np.prod(segments.shape[1:]))
        rows = min(options.chunk_long_segments, total, max(1, _MAX_CHUNK_BYTES // row_bytes))
        ds = h5.create_dataset(
            "segments_mel",
            shape=segments.shape,
            dtype=dtype,
            chunks=(rows, *segments.shape[1:]),
            compression=options.compression,
            compression_opts=options.compression_opts,
        )
    # Slab by slab, so the dtype conversion never holds a second full copy.
    for start in range(0, total, rows):
        ds[start : start + rows] = np.asarray(segments[start : start + rows], dtype=dtype)

    h5.create_dataset("file_offsets", data=np.asarray(store.file_offsets, dtype=np.int64))
    h5.create_dataset("labels", data=np.asarray(store.labels, dtype=np.int64))
    write_strings(h5, "file_ids", store.file_ids)
    write_strings(h5, "groups", store.groups)
    h5.create_dataset("durations_s", data=np.asarray(store.durations_s, dtype=np.float64))
    h5.create_dataset("sample_rates", data=np.asarray(store.sample_rates, dtype=np.int64))

    h5.attrs["label_names"] = json.dumps(list(store.label_names), ensure_ascii=False)
    h5.attrs["feature_config"] = json.dumps(store.feature_config, ensure_ascii=False, default=_json_default)
    h5.attrs["created_at_utc"] = str(store.created_at_utc)
    h5.attrs["source_fingerprint"] = str(store.source_fingerprint)
    h5.attrs["format_version"] = int(FORMAT_VERSION)


def read_ragged(h5: h5py.File, path: Path, options: LoadOptions) -> dict[str, Any]:
    """The ``MelFeatureStore`` fields held by the open file ``h5`` at ``path``."""
    missing = [f"/{name}" for name in _RAGGED_DATASETS if name not in h5]
    missing += [f"attribute '{name}'" for name in _RAGGED_ATTRS if name not in h5.attrs]
    if missing:
        raise DatasetError(
            f"The mel feature store at {path} is missing {', '.join(missing)}; rebuild it ({BUILD_HINT})."
        )
    segments_ds = h5["segments_mel"]
    if options.lazy:
        segments: np.ndarray | H5Rows = H5Rows(
            path,
            "segments_mel",
            shape=segments_ds.shape,
            dtype=options.dtype,
            file_signature=file_signature(h5, path),
        )
    else:
        segments = read_segments(segments_ds, options.dtype)
    return {
        "segments_mel": segments,
        "file_offsets": h5["file_offsets"][...],
        "labels": h5["labels"][...],
        "file_ids": read_strings(h5["file_ids"]),
        "groups": read_strings(h5["groups"]),
        # Per-file source facts; stores written before they existed derive them.
        "durations_s": h5["durations_s"][...] if "durations_s" in h5 else None,
        "sample_rates": h5["sample_rates"][...] if "sample_rates" in h5 else None,
        "label_names": json_attr(h5, "label_names", path, list),
        "feature_config": json_attr(h5, "feature_config", path, dict),
        "source_fingerprint": str_attr(h5.attrs["source_fingerprint"]),
        "created_at_utc": str_attr(h5.attrs["created_at_utc"]),
    }


def read_segments(ds: h5py.Dataset, dtype: str) -> np.ndarray:
    """All of ``ds`` in memory as ``dtype``."""
    # One read, converted by HDF5 on the way in: no per-row loop and no
    # intermediate float16 copy.
    return ds.astype(np.dtype(dtype))[...]


def write_strings(h5: h5py.File, name: str, values: list[str]) -> None:
    h5.create_dataset(
        name,
        data=np.array([str(v) for v in values], dtype=object),
        dtype=h5py.string_dtype(encoding="utf-8"),
    )


def read_strings(ds: h5py.Dataset) -> list[str]:
    return [str_attr(v) for v in ds[...].tolist()]


def str_attr(value: Any) -> str:
    """A string as h5py returns it (``str``, or ``bytes`` from other writers) as ``str``."""
    if isinstance(value, (bytes, np.bytes_)):
        return bytes(value).decode("utf-8")
    return str(value)


def json_attr(h5: h5py.File, name: str, path: Path, expected: type) -> Any:
    """Attribute ``name`` of ``h5``, a JSON list or object (or an array of names), checked to be ``expected``."""
    raw = h5.attrs[name]
    if isinstance(raw, np.ndarray):  # a list of names stored as an array attribute
        value: Any = [str_attr(v) for v in raw.tolist()]
    else:
        try:
            value = json.loads(str_attr(raw))
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
