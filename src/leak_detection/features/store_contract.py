"""What a feature store must hold for each use, checked when a run starts.

A store built elsewhere was accepted, trained for minutes, and then failed in the plots
(``KeyError: 'long_hop'``), the model card (``'long_segment'``) and ``predict`` (unknown
front-end keys). The contract below says, per use, what is needed; a run checks its
store before any node runs and either stops naming every missing piece, or goes on
and says which artifacts will be "not available for this store".

- **train and evaluate**: ``/segments_mel [n_long, n_short, n_mels, 1]``, ``/file_offsets``
  with at least one long segment per file, ``/labels`` into ``label_names`` that are
  class names or names in ``label_mapping``, ``/file_ids``, ``/groups`` (what the dataset loader already enforces,
  plus the last three).
- **time axes** (timelines, durations, the card's shortest recording): ``feature_config``
  keys ``sample_rate``, ``long_segment`` and ``long_hop``.
- **predict** (features of new recordings): a ``feature_config`` this project's front end
  accepts whole (``leak_detection.audio.front_end.FrontEndConfig``) and that agrees with the
  store's shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.features.store import MelFeatureStore
from leak_detection.labels import LabelError, resolve_label_mapping

TIME_KEYS = ("sample_rate", "long_segment", "long_hop")
OPTIONAL_FRONT_END_KEYS = {"level_normalisation"}
"""Added after stores were first written; absent means the value those stores were made with ("none")."""


class StoreContractError(ValueError):
    """The store cannot be trained from; the message lists every problem."""


@dataclass(frozen=True)
class StoreUses:
    """What a store can serve, and why not where it cannot."""

    path: str
    training_problems: list[str] = field(default_factory=list)
    missing_time_keys: list[str] = field(default_factory=list)
    front_end_problem: str | None = None

    @property
    def has_time_axis(self) -> bool:
        return not self.missing_time_keys

    @property
    def front_end_reproducible(self) -> bool:
        return self.front_end_problem is None

    def summary(self) -> str:
        time = "yes" if self.has_time_axis else f"not available (feature_config lacks {self.missing_time_keys})"
        served = "yes" if self.front_end_reproducible else f"no: {self.front_end_problem}"
        return (
            f"feature store {self.path}: train and evaluate: yes; time axes: {time}; predict new recordings: {served}"
        )


def front_end_problem(feature_config: dict[str, Any], store_shape: tuple[int, ...] | None = None) -> str | None:
    """Why this project cannot compute these features from audio (None when it can)."""
    try:
        config = FrontEndConfig.from_params(feature_config)
    except (TypeError, ValueError) as exc:
        return f"its front end is not this project's ({exc})"
    missing = sorted(set(FrontEndConfig.__dataclass_fields__) - set(feature_config) - OPTIONAL_FRONT_END_KEYS)
    if missing:
        return f"its feature_config does not record {missing}, so the front end cannot be reproduced exactly"
    expected = (config.n_short, config.n_mels, config.n_frames)
    if store_shape is not None and tuple(store_shape[1:]) != expected:
        return (
            f"its features have shape {tuple(store_shape[1:])} per long segment but its feature_config gives {expected}"
        )
    return None


def check_store(store: MelFeatureStore, path: str, label_mapping: dict[str, str] | None = None) -> StoreUses:
    """Every problem with training from ``store``, and what else it can serve."""
    problems = []
    shape = tuple(store.segments_mel.shape)
    if len(shape) != 4 or shape[3] != 1:
        problems.append(f"/segments_mel has shape {shape}; the model needs [n_long, n_short, n_mels, 1]")
    try:
        resolve_label_mapping(store.label_names, label_mapping or {})
    except LabelError as exc:
        problems.append(f"its label_names: {exc}")
    empty = [store.file_ids[i] for i, n in enumerate(store.long_segments_per_file()) if n == 0]
    if empty:
        problems.append(f"{len(empty)} files have no long segment (first: {empty[:3]})")
    return StoreUses(
        path=path,
        training_problems=problems,
        missing_time_keys=[k for k in TIME_KEYS if k not in store.feature_config],
        front_end_problem=front_end_problem(store.feature_config, shape),
    )


def require_trainable(uses: StoreUses) -> StoreUses:
    if uses.training_problems:
        raise StoreContractError(
            f"the feature store {uses.path} cannot be trained from:\n  - "
            + "\n  - ".join(uses.training_problems)
            + "\nSee 'The feature store' in the README for what a store must hold."
        )
    return uses
