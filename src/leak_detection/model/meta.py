"""``model_meta.json``: what a trained model is, how it decides and what it was trained on.

``ModelMeta`` reads, checks and writes the file; every node that uses a model reads its
meta through it. The meta is plain JSON beside the weights, and a hand edit ran with
exit 0 and wrong decisions: a threshold of 5 called nothing LEAK, a leak index pointing
at NOLEAK inverted every call, a deleted weights hash paired any weights with any meta.
So ``ModelMeta.from_dict`` (and ``model_from_state``) refuse such a meta, naming every bad
field; given the weights, they also check that the meta describes them.

Required (every meta the training node has written holds them): ``model_type``,
``state_dict_sha256``, ``mode``, ``num_classes``, ``class_names``, ``leak_output_idx``,
``threshold`` and ``feature_config``. Every other key is optional, because older metas
lack some (``binary_mode``, ``decision_score``, ``split_file_ids``, ``familiarity``,
``front_end_problem``, ``feature_config_sha256``, ...): such a meta loads as it always
did, and writes back without them. A meta whose ``front_end_problem`` says the features
came from a front end this project cannot reproduce is valid (evaluation can score its
store); ``predict`` refuses it on its own.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from leak_detection.decisions.rules import SCORES, DecisionRule
from leak_detection.features.familiarity import Familiarity
from leak_detection.features.store_contract import front_end_problem
from leak_detection.labels import CLASS_NAMES, LEAK, MODE_CLASS_NAMES
from leak_detection.model.network import state_dict_sha256

if TYPE_CHECKING:
    from leak_detection.training.loop import FitResult

StateDict = dict[str, torch.Tensor]

MODEL_TYPE = "LeakCNNMulti"
REQUIRED = (
    "model_type",
    "state_dict_sha256",
    "mode",
    "num_classes",
    "class_names",
    "leak_output_idx",
    "threshold",
    "feature_config",
)
TIME_KEYS = ("sample_rate", "long_segment", "long_hop")
"""Read by evaluation's timelines whatever the front end; positive integers when present."""


@dataclass(frozen=True, kw_only=True)
class ModelMeta:
    """One field per key of ``model_meta.json``, in the file's order.

    The training node builds it with every field; ``from_dict`` and ``from_json`` read a
    saved one (checked on the way in), recording in ``absent`` the optional keys an older
    meta lacks so that ``to_dict`` writes it back as it was. Keys this project does not
    know are kept in ``extra``.

    Examples:
        >>> meta = ModelMeta.from_json(f"data/06_models/binary/model_meta.json/{version}/model_meta.json")
        >>> meta.decision_rule()
        DecisionRule(score='leak_probability', threshold=0.55)
        >>> assert ModelMeta.from_dict(meta.to_dict()) == meta
    """

    # The reference system's fields, as its users know them.
    binary_mode: bool | None
    num_classes: int
    class_names: list[str]
    original_class_names: list[str] | None
    leak_class_name: str | None
    leak_idx: int | None
    """LEAK's index in ``original_class_names`` (the reference system's label order), not an output index."""
    best_file_leak_f1: float | None
    best_epoch: int | None
    eval_method: str | None
    model_type: str
    trainer_cfg: dict[str, Any] | None
    # Added: what a deployment needs to reproduce the training-time behaviour.
    mode: str
    leak_output_idx: int
    threshold: float
    decision_score: str | None
    threshold_source: str | None
    early_stopping_threshold: float | None
    param_count: int | None
    # What the model was trained on.
    feature_config: dict[str, Any]
    feature_config_sha256: str | None
    front_end_problem: str | None
    familiarity: dict[str, Any] | None
    split_files: dict[str, int] | None
    split_sha256: str | None
    split_file_ids: dict[str, list[str]] | None
    train_files_per_class: dict[str, int] | None
    split_short_segments: dict[str, int] | None
    class_weights: list[float] | None
    leak_pos_weight: float | None
    dataset_fingerprint: str | None
    # The training run.
    epochs_run: int | None
    stopped_early: bool | None
    resumed_from_epoch: int | None
    training_seconds: float | None
    samples_per_second: float | None
    device: str | None
    torch_version: str | None
    state_dict_sha256: str
    created_at_utc: str | None
    model_version: str | None = None
    """The save version, stamped by ``ModelVersionHook`` when the meta is saved; left out while None."""
    absent: frozenset[str] = frozenset()
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: Any, state_dict: StateDict | None = None) -> ModelMeta:
        """The meta in ``data``, refused unless it could decide correctly (and describes ``state_dict``, if given).

        Raises:
            ValueError: naming each bad field, with what it holds and what it must hold.
        """
        check_model_meta(data, state_dict)
        keys = _json_keys()
        return cls(
            **{key: copy.deepcopy(data.get(key)) for key in keys},
            absent=frozenset(key for key in keys if key not in data),
            extra={key: copy.deepcopy(value) for key, value in data.items() if key not in keys},
        )

    @classmethod
    def from_json(cls, path: str | os.PathLike, state_dict: StateDict | None = None) -> ModelMeta:
        """The meta saved at ``path``, checked as ``from_dict`` does."""
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")), state_dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``model_meta.json``: today's keys, values and order."""
        left_out = self.absent | ({"model_version"} if self.model_version is None else set())
        data = {key: copy.deepcopy(getattr(self, key)) for key in _json_keys() if key not in left_out}
        return {**data, **copy.deepcopy(self.extra)}

    def decision_rule(self, threshold: float | None = None) -> DecisionRule:
        """The model's rule (``threshold`` overrides its own); models saved before rules were recorded voted on
        the leak probability."""
        chosen = self.threshold if threshold is None else threshold
        return DecisionRule(self.decision_score or "leak_probability", float(chosen))

    def familiarity_statistics(self) -> Familiarity | None:
        """The training data's spread, or None for a model saved before it was recorded."""
        return Familiarity.from_meta({"familiarity": self.familiarity})

    def unreproducible_front_end(self) -> str | None:
        """Why this project cannot compute the model's features from audio, or None when it can."""
        return self.front_end_problem or front_end_problem(self.feature_config)

    @property
    def seconds_per_long_hop(self) -> float | None:
        """Time between long segments, when the front end records it."""
        config = self.feature_config
        return config["long_hop"] / config["sample_rate"] if {"long_hop", "sample_rate"} <= set(config) else None


def fit_fields(result: FitResult) -> dict[str, Any]:
    """The ``ModelMeta`` fields that say how the weights in ``result`` were fitted, and when."""
    return {
        "best_file_leak_f1": result.best_file_leak_f1,
        "best_epoch": result.best_epoch,
        "early_stopping_threshold": result.best_threshold,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "resumed_from_epoch": result.resumed_from_epoch,
        "training_seconds": result.train_seconds,
        "samples_per_second": result.samples_per_second,
        "device": result.device,
        "torch_version": torch.__version__,
        "state_dict_sha256": state_dict_sha256(result.best_state),
        "created_at_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _json_keys() -> tuple[str, ...]:
    return tuple(f.name for f in fields(ModelMeta) if f.name not in ("absent", "extra"))


def check_model_meta(meta: Any, state_dict: StateDict | None = None) -> None:
    """Refuse a meta that could not decide correctly, or that does not describe ``state_dict`` (when given).

    Without the weights, everything that does not need them is checked.

    Raises:
        ValueError: naming each bad field, with what it holds and what it must hold.
    """
    problems = model_meta_problems(meta, state_dict)
    if problems:
        known = isinstance(meta, dict) and "model_version" in meta
        version = f" (model version {meta['model_version']})" if known else ""
        raise ValueError(
            f"model_meta.json{version} cannot be used with these weights:\n  - "
            + "\n  - ".join(problems)
            + "\nRetrain, or restore the model_meta.json saved with these weights (same version folder)."
        )


def model_meta_problems(meta: Any, state_dict: StateDict | None = None) -> list[str]:
    """Every problem with ``meta`` (against ``state_dict`` when given), or an empty list."""
    if not isinstance(meta, dict):
        return [f"it holds a {type(meta).__name__}, not a JSON object"]
    missing = [f"{key} is missing" for key in REQUIRED if key not in meta]
    identifiable = "model_type" in meta and "state_dict_sha256" in meta
    identity = _identity_problems(meta, state_dict) if identifiable else []
    if missing or identity:
        # The field checks below need every field, and for other weights would only echo that.
        return identity + missing
    outputs = None if state_dict is None else int(state_dict["head.weight"].shape[0])
    weights_mels = None if state_dict is None else int(state_dict["input_mean"].shape[2])
    return [*_class_problems(meta, outputs), *_decision_problems(meta), *_front_end_problems(meta, weights_mels)]


def _identity_problems(meta: dict[str, Any], state_dict: StateDict | None) -> list[str]:
    if meta["model_type"] != MODEL_TYPE:
        return [f"model_type = {meta['model_type']!r}: this project builds {MODEL_TYPE}"]
    expected = meta["state_dict_sha256"]
    if not isinstance(expected, str) or len(expected) != 64:
        return [f"state_dict_sha256 = {expected!r}: must be the 64-hex-digit SHA-256 of the weights"]
    if state_dict is None:
        return []
    actual = state_dict_sha256(state_dict)
    if expected != actual:
        return [
            "the model weights and model_meta.json are from different versions "
            f"(weights hash {actual[:12]}..., state_dict_sha256 expects {expected[:12]}...); "
            "load both at the same version"
        ]
    missing = [key for key in ("head.weight", "input_mean") if key not in state_dict]
    if missing:
        return [f"the weights lack {missing}: not a {MODEL_TYPE} state_dict"]
    return []


def _class_problems(meta: dict[str, Any], outputs: int | None) -> list[str]:
    problems = []
    mode, names, n_classes = meta["mode"], meta["class_names"], meta["num_classes"]
    if not isinstance(mode, str) or mode not in MODE_CLASS_NAMES:
        problems.append(f"mode = {mode!r}: must be one of {sorted(MODE_CLASS_NAMES)}")
    elif "binary_mode" in meta and meta["binary_mode"] is not (mode == "binary"):
        problems.append(f"binary_mode = {meta['binary_mode']!r} contradicts mode = {mode!r}")
    if outputs is not None and (not _is_int(n_classes) or n_classes != outputs):
        problems.append(f"num_classes = {n_classes!r}: the weights have {outputs} outputs")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return [*problems, f"class_names = {names!r}: must be a list of class names"]
    allowed = list(MODE_CLASS_NAMES[mode]) if mode == "binary" else list(CLASS_NAMES)
    if mode == "binary" and names != allowed:
        problems.append(f"class_names = {names}: a binary model's outputs are {allowed}")
    elif len(set(names)) != len(names) or not set(names) <= set(allowed) or LEAK not in names:
        problems.append(f"class_names = {names}: must be distinct names of {allowed}, LEAK among them")
    if outputs is not None and len(names) != outputs:
        problems.append(f"class_names has {len(names)} names but the weights have {outputs} outputs")
    idx = meta["leak_output_idx"]
    if LEAK in names and (not _is_int(idx) or idx != names.index(LEAK)):
        problems.append(f"leak_output_idx = {idx!r}: LEAK is output {names.index(LEAK)} of class_names {names}")
    return problems


def _decision_problems(meta: dict[str, Any]) -> list[str]:
    problems = []
    threshold = meta["threshold"]
    if not _is_number(threshold) or not 0 < threshold < 1:
        problems.append(f"threshold = {threshold!r}: must be a number in (0, 1)")
    if "decision_score" in meta and meta["decision_score"] not in SCORES:
        problems.append(f"decision_score = {meta['decision_score']!r}: must be one of {list(SCORES)}")
    split_ids = meta.get("split_file_ids")
    if split_ids is not None and not (
        isinstance(split_ids, dict)
        and all(isinstance(ids, list) and all(isinstance(i, str) for i in ids) for ids in split_ids.values())
    ):
        problems.append("split_file_ids: must map each split to a list of file ids")
    familiarity = meta.get("familiarity")
    if familiarity and not _valid_familiarity(familiarity):
        problems.append(
            "familiarity: must hold equally long lists of finite 'mean' and positive 'std', and a 'threshold' >= 0"
        )
    return problems


def _front_end_problems(meta: dict[str, Any], weights_mels: int | None) -> list[str]:
    config = meta["feature_config"]
    if not isinstance(config, dict):
        return [f"feature_config = {config!r}: must be a JSON object"]
    problems = []
    if weights_mels is not None and config.get("n_mels", 32) != weights_mels:
        problems.append(f"feature_config.n_mels = {config.get('n_mels')!r}: the weights take {weights_mels} mel bands")
    problems += [
        f"feature_config.{key} = {config[key]!r}: must be a positive integer"
        for key in TIME_KEYS
        if key in config and not (_is_int(config[key]) and config[key] > 0)
    ]
    recorded_hash = meta.get("feature_config_sha256")
    if recorded_hash is not None and recorded_hash != feature_config_sha256(config):
        # Any other edit (a sample rate of 8000 for 4096, say) is a valid front end
        # too: only a hash made at training time tells it from the original.
        problems.append("feature_config was changed after training (it no longer matches feature_config_sha256)")
    recorded = meta.get("front_end_problem")
    if recorded is not None and not isinstance(recorded, str):
        problems.append(f"front_end_problem = {recorded!r}: must be null or a sentence")
    elif "front_end_problem" in meta and recorded is None:
        # The meta says the features are this project's front end's: predict will
        # compute them from audio with exactly this configuration.
        problem = front_end_problem(config)
        if problem:
            problems.append(f"feature_config: {problem}, yet front_end_problem says it can")
    return problems


def feature_config_sha256(feature_config: dict[str, Any]) -> str:
    """A hash of the front-end configuration, for a meta to record beside it."""
    return hashlib.sha256(json.dumps(feature_config, sort_keys=True).encode()).hexdigest()


def _valid_familiarity(stats: Any) -> bool:
    if not isinstance(stats, dict) or not {"mean", "std", "threshold"} <= set(stats):
        return False
    mean, std = stats["mean"], stats["std"]
    if not (isinstance(mean, list) and isinstance(std, list) and len(mean) == len(std) > 0):
        return False
    finite = all(_is_number(v) for v in (*mean, *std))
    return finite and all(s > 0 for s in std) and _is_number(stats["threshold"]) and stats["threshold"] >= 0


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    """A finite JSON number (``true`` is not one, whatever Python thinks)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
