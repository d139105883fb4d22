"""Every model carries the split it was trained with; evaluation scores only that model's own files.

A re-split (another ``splits.seed``), added recordings or a rebuilt index change which
files the current index calls "test". Scored against that index, a model is graded on
files it trained on: re-split with seed 7, the demo binary model read test F1 1.000 where
its own test files give 0.815. So ``model_meta.json`` records the file ids of each split,
and evaluation takes the model's validation and test files from there, labels from the
current index, and says in one line what differs.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from leak_detection.features.splits import SPLITS
from leak_detection.features.store import MelFeatureStore
from leak_detection.model.meta import ModelMeta

logger = logging.getLogger(__name__)

EVALUATED_SPLITS = ("validation", "test")
ON_MISMATCH = ("use_model_split", "stop")


class SplitMismatchError(ValueError):
    """The current index cannot tell which files a model never trained on."""


def dataset_fingerprint(mel_features: MelFeatureStore, file_targets: pd.DataFrame) -> str:
    """Changes when the features, the split or the targets do."""
    digest = hashlib.sha256()
    digest.update(mel_features.source_fingerprint.encode())
    digest.update(json.dumps(mel_features.feature_config, sort_keys=True).encode())
    for row in file_targets.sort_values("file_id").itertuples(index=False):
        digest.update(f"{row.file_id}\0{row.split}\0{row.target}\n".encode())
    return digest.hexdigest()


def split_file_ids(file_targets: pd.DataFrame) -> dict[str, list[str]]:
    """The file ids of each split, sorted: what ``model_meta.json`` records."""
    return {s: sorted(map(str, file_targets.loc[file_targets["split"] == s, "file_id"])) for s in SPLITS}


def split_sha256(split_ids: dict[str, list[str]]) -> str:
    return hashlib.sha256(json.dumps(split_ids, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class SplitCheck:
    """How the current index compares with the split a model was trained with."""

    model_version: str | None
    source: str  # "model_meta" or "dataset_fingerprint" (models saved before splits were recorded)
    files_scored: dict[str, int]
    moved: dict[str, int]  # current split -> files the model had in another split
    trained_on_in_current_test: int
    gone: dict[str, int]  # the model's validation/test files no longer in the index
    new_files: int  # files of the index in none of the model's splits: never scored

    @property
    def agrees(self) -> bool:
        return not (any(self.moved.values()) or any(self.gone.values()) or self.new_files)

    def summary(self, mode: str) -> str:
        version = self.model_version or "(unversioned)"
        if self.agrees:
            return f"{mode}: the current index holds model {version}'s own split"
        moved = sum(self.moved.values())
        return (
            f"{mode}: the current index differs from the split model {version} was trained with: "
            f"{moved} files changed split ({self.trained_on_in_current_test} of the index's test files were in "
            f"its training split), {sum(self.gone.values())} of its validation/test files are gone, "
            f"{self.new_files} files are new"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "agrees": self.agrees}


def _check_recorded(model_meta: ModelMeta, file_targets: pd.DataFrame) -> tuple[pd.DataFrame, SplitCheck]:
    split_of = {fid: split for split, ids in model_meta.split_file_ids.items() for fid in ids}
    current = file_targets.assign(model_split=file_targets["file_id"].astype(str).map(split_of))
    known = current[current["model_split"].notna()]
    changed = known[known["split"] != known["model_split"]]
    present = set(current["file_id"].astype(str))
    check = SplitCheck(
        model_version=model_meta.model_version,
        source="model_meta",
        files_scored={s: int((known["model_split"] == s).sum()) for s in EVALUATED_SPLITS},
        moved={s: int((changed["split"] == s).sum()) for s in SPLITS},
        trained_on_in_current_test=int(((changed["split"] == "test") & (changed["model_split"] == "train")).sum()),
        gone={s: sum(f not in present for f in model_meta.split_file_ids.get(s, [])) for s in EVALUATED_SPLITS},
        new_files=int(current["model_split"].isna().sum()),
    )
    own = known[known["model_split"].isin(EVALUATED_SPLITS)]
    return own.assign(split=own["model_split"]).drop(columns="model_split").reset_index(drop=True), check


def _check_fingerprint(
    model_meta: ModelMeta, mel_features: MelFeatureStore, file_targets: pd.DataFrame
) -> tuple[pd.DataFrame, SplitCheck]:
    version = model_meta.model_version or "(unversioned)"
    if dataset_fingerprint(mel_features, file_targets) != model_meta.dataset_fingerprint:
        raise SplitMismatchError(
            f"{model_meta.mode}: model {version} was saved before models recorded their split, and the "
            "features, split or labels have changed since it was trained (its dataset_fingerprint differs), so "
            "its training files cannot be told apart from its test files. Retrain it on the current index: "
            "`kedro run --pipelines training` then `kedro run --pipelines evaluation`"
        )
    own = file_targets[file_targets["split"].isin(EVALUATED_SPLITS)].reset_index(drop=True)
    counts = {s: int((own["split"] == s).sum()) for s in EVALUATED_SPLITS}
    zero = dict.fromkeys(SPLITS, 0)
    return own, SplitCheck(model_meta.model_version, "dataset_fingerprint", counts, zero, 0, {}, 0)


def model_split_targets(
    model_meta: ModelMeta, mel_features: MelFeatureStore, file_targets: pd.DataFrame, on_mismatch: str
) -> tuple[pd.DataFrame, SplitCheck]:
    """The model's own validation and test files (labels from the current index), and how the index differs.

    Raises:
        SplitMismatchError: the index differs and ``on_mismatch`` is ``stop``; or the model's
            own validation or test files are all gone; or an older model's data changed.
    """
    mode = model_meta.mode
    if model_meta.split_file_ids is None:
        own, check = _check_fingerprint(model_meta, mel_features, file_targets)
    else:
        own, check = _check_recorded(model_meta, file_targets)
    if not check.agrees:
        if on_mismatch == "stop":
            raise SplitMismatchError(
                f"{check.summary(mode)}. evaluation.on_split_mismatch is 'stop'. Either score the model's own "
                f"files with `--params {mode}.evaluation.on_split_mismatch=use_model_split`, or retrain on the "
                "current index with `kedro run --pipelines training` before evaluating"
            )
        logger.warning("%s; scoring only its own files still in the index: %s", check.summary(mode), check.files_scored)
    else:
        logger.info("%s: %s", check.summary(mode), check.files_scored)
    empty = [s for s in EVALUATED_SPLITS if check.files_scored[s] == 0]
    if empty:
        raise SplitMismatchError(
            f"{mode}: none of model {check.model_version}'s own {' and '.join(empty)} files are in the current "
            "index, so it cannot be scored on files it never trained on; retrain it on the current index with "
            "`kedro run --pipelines training`"
        )
    return own, check
