"""What a ``model_meta.json`` must say before its weights are used: checked in one place.

The meta is plain JSON beside the weights, and a hand edit ran with exit 0 and wrong
decisions: a threshold of 5 called nothing LEAK, a leak index pointing at NOLEAK
inverted every call, a deleted weights hash paired any weights with any meta.
``model_from_state`` calls ``check_model_meta``, so evaluation, deployment and predict
all refuse such a meta, naming every bad field.

Required (every meta the training node has written holds them): ``model_type``,
``state_dict_sha256``, ``mode``, ``num_classes``, ``class_names``, ``leak_output_idx``,
``threshold`` and ``feature_config``. Optional, because older metas lack them:
``binary_mode``, ``decision_score``, ``split_file_ids``, ``familiarity``,
``front_end_problem`` and ``feature_config_sha256``. A meta whose ``front_end_problem`` says the features came from
a front end this project cannot reproduce is valid (evaluation can score its store);
``predict`` refuses it on its own.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import torch

from leak_detection.decisions.rules import SCORES
from leak_detection.features.store_contract import front_end_problem
from leak_detection.labels import CLASS_NAMES, LEAK, MODE_CLASS_NAMES
from leak_detection.model.network import state_dict_sha256

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


def check_model_meta(meta: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> None:
    """Refuse a meta that does not describe ``state_dict`` or could not decide correctly.

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


def model_meta_problems(meta: Any, state_dict: dict[str, torch.Tensor]) -> list[str]:
    """Every problem with ``meta``, or an empty list."""
    if not isinstance(meta, dict):
        return [f"it holds a {type(meta).__name__}, not a JSON object"]
    missing = [f"{key} is missing" for key in REQUIRED if key not in meta]
    identifiable = "model_type" in meta and "state_dict_sha256" in meta
    identity = _identity_problems(meta, state_dict) if identifiable else []
    if missing or identity:
        # The field checks below need every field, and for other weights would only echo that.
        return identity + missing
    return [*_class_problems(meta, state_dict), *_decision_problems(meta), *_front_end_problems(meta, state_dict)]


def _identity_problems(meta: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> list[str]:
    if meta["model_type"] != MODEL_TYPE:
        return [f"model_type = {meta['model_type']!r}: this project builds {MODEL_TYPE}"]
    expected = meta["state_dict_sha256"]
    if not isinstance(expected, str) or len(expected) != 64:
        return [f"state_dict_sha256 = {expected!r}: must be the 64-hex-digit SHA-256 of the weights"]
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


def _class_problems(meta: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> list[str]:
    problems = []
    mode, names, n_classes = meta["mode"], meta["class_names"], meta["num_classes"]
    outputs = int(state_dict["head.weight"].shape[0])
    if not isinstance(mode, str) or mode not in MODE_CLASS_NAMES:
        problems.append(f"mode = {mode!r}: must be one of {sorted(MODE_CLASS_NAMES)}")
    elif "binary_mode" in meta and meta["binary_mode"] is not (mode == "binary"):
        problems.append(f"binary_mode = {meta['binary_mode']!r} contradicts mode = {mode!r}")
    if not _is_int(n_classes) or n_classes != outputs:
        problems.append(f"num_classes = {n_classes!r}: the weights have {outputs} outputs")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return [*problems, f"class_names = {names!r}: must be a list of class names"]
    allowed = list(MODE_CLASS_NAMES[mode]) if mode == "binary" else list(CLASS_NAMES)
    if mode == "binary" and names != allowed:
        problems.append(f"class_names = {names}: a binary model's outputs are {allowed}")
    elif len(set(names)) != len(names) or not set(names) <= set(allowed) or LEAK not in names:
        problems.append(f"class_names = {names}: must be distinct names of {allowed}, LEAK among them")
    if len(names) != outputs:
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


def _front_end_problems(meta: dict[str, Any], state_dict: dict[str, torch.Tensor]) -> list[str]:
    config = meta["feature_config"]
    if not isinstance(config, dict):
        return [f"feature_config = {config!r}: must be a JSON object"]
    problems = []
    weights_mels = int(state_dict["input_mean"].shape[2])
    if config.get("n_mels", 32) != weights_mels:
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
