"""Where predictions may be written: never over a model, a recording or any other file.

``--output`` (and ``--params predictions_output=...``) used to overwrite whatever it
named: the recording being scored, or a version's only ``model_meta.json``. The
check here runs before a session starts, in ``leak-detect predict`` and in a hook
for ``kedro run --pipelines predict``, so nothing is read or written first.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

MODELS_FOLDER = "data/06_models"
PREDICTIONS_COLUMNS = frozenset({"file", "mode", "model_version", "decision", "error"})
"""Header columns that mark a CSV as one written by the predict pipeline."""
FORCE_PARAM = "predictions_output_force"
"""Runtime parameter that allows replacing a file that is not a predictions CSV."""


class PredictionsOutputError(ValueError):
    """The predictions output names a place the tool must not write."""


def is_predictions_csv(path: Path) -> bool:
    """Whether ``path`` starts with the header of a predictions CSV (read: its first line only)."""
    try:
        with path.open("rb") as handle:
            first_line = handle.readline(1 << 16).decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    header = next(csv.reader([first_line]), [])
    return PREDICTIONS_COLUMNS <= {column.strip() for column in header}


def check_predictions_output(
    output: str | os.PathLike,
    project_path: str | os.PathLike,
    *,
    force: bool = False,
    recordings: Iterable[str | os.PathLike] = (),
) -> Path:
    """The resolved output path, or ``PredictionsOutputError`` saying why it may not be written.

    Never inside the project's ``data/06_models`` or over a recording being scored
    (not even with ``force``); only into an existing folder; over an existing file
    only when it is a predictions CSV, unless ``force``.
    """
    if "://" in str(output):
        raise PredictionsOutputError(
            f"predictions output {output}: predictions are written to a local file; give a local path "
            "and copy the CSV to object storage afterwards"
        )
    target = Path(output).resolve()
    models = (Path(project_path) / MODELS_FOLDER).resolve()
    if target.is_relative_to(models):
        raise PredictionsOutputError(
            f"predictions output {output} is inside the model store {models}; models are never overwritten. "
            "Choose a path outside data/06_models."
        )
    if not target.parent.is_dir():
        raise PredictionsOutputError(
            f"predictions output {output}: the folder {target.parent} does not exist; create it first "
            "or choose another path"
        )
    if target in {Path(r).resolve() for r in recordings}:
        raise PredictionsOutputError(f"predictions output {output} is one of the recordings to classify")
    if not target.exists():
        return target
    if not target.is_file():
        raise PredictionsOutputError(f"predictions output {output} exists and is not a regular file")
    if not force and not is_predictions_csv(target):
        raise PredictionsOutputError(
            f"predictions output {output} exists and is not a predictions CSV written by this tool (its header "
            f"lacks {sorted(PREDICTIONS_COLUMNS)}); choose another path, or replace it with --force "
            f"(kedro run: --params {FORCE_PARAM}=true)"
        )
    return target


def is_forced(value: object) -> bool:
    """A force flag given on the command line: ``true``/``1``/``yes`` (any case) or a boolean."""
    return value is True or str(value).strip().lower() in {"true", "1", "yes"}
