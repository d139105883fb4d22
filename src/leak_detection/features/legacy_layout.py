"""The replaced system's fixed-shape HDF5 layout (``format_version`` 1), read as a ragged store.

Those files hold ``/segments_mel`` ``[n_files, long_per_file, n_short, n_mels, n_frames]``,
``/labels`` and the class names in the ``labels_json`` attribute (optionally ``/file_ids``,
``/groups`` and ``feature_config``). Every file has the same number of long segments, so the
offsets follow from the shape and existing stores train without re-extraction. Nothing
writes this layout any more.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from kedro.io.core import DatasetError

from leak_detection.features.hdf5_layout import LoadOptions, json_attr, read_segments, read_strings, str_attr

logger = logging.getLogger(__name__)


def is_legacy_layout(h5: h5py.File) -> bool:
    """Whether the open file holds the fixed-shape layout (a 5-axis ``/segments_mel``)."""
    return "segments_mel" in h5 and h5["segments_mel"].ndim == 5


def read_legacy(h5: h5py.File, path: Path, options: LoadOptions) -> dict[str, Any]:
    """The ``MelFeatureStore`` fields of the fixed-shape store open as ``h5``, always read into memory
    (it is reshaped on load), ``options.lazy`` or not."""
    names_attr = next((a for a in ("labels_json", "label_names") if a in h5.attrs), None)
    missing = [] if "labels" in h5 else ["/labels"]
    if names_attr is None:
        missing.append("attribute 'labels_json'")
    if missing:
        raise DatasetError(f"The legacy (fixed-shape) mel feature store at {path} is missing {', '.join(missing)}.")
    seg_ds = h5["segments_mel"]
    n_files, per_file = seg_ds.shape[:2]
    segments = read_segments(seg_ds, options.dtype).reshape(n_files * per_file, *seg_ds.shape[2:])
    file_ids = read_strings(h5["file_ids"]) if "file_ids" in h5 else [f"file_{i:05d}" for i in range(n_files)]
    groups = read_strings(h5["groups"]) if "groups" in h5 else list(file_ids)
    feature_config = json_attr(h5, "feature_config", path, dict) if "feature_config" in h5.attrs else {}
    logger.info(
        "Read a legacy fixed-shape mel feature store at %s (%d files x %d long "
        "segments); converted it to the ragged layout in memory.",
        path,
        n_files,
        per_file,
    )
    if options.lazy:
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
        "label_names": json_attr(h5, names_attr, path, list),
        "feature_config": feature_config,
        "source_fingerprint": str_attr(h5.attrs.get("source_fingerprint", "")),
        "created_at_utc": str_attr(h5.attrs.get("created_at_utc", "")),
    }
