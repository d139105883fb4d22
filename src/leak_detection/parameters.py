"""Every parameter checked once, before a run does any work.

A bad value found only when its node runs would cost a feature extraction or a
training run first; a misspelt or misplaced key would silently fall back to a
default (``--params epochs=1`` ran the 12-epoch default). Each problem names the
key and the values it allows, or the keys it was probably meant to be, and all
problems are reported together.
"""

from __future__ import annotations

import difflib
import os
import re
import tarfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from leak_detection.adaptation.settings import AdaptationSettings
from leak_detection.audio.front_end import FrontEndConfig
from leak_detection.features.splits import check_holdout_sites, check_split_ratios
from leak_detection.labels import CLASS_NAMES, MODE_CLASS_NAMES, check_mode_classes
from leak_detection.metrics.model_split import ON_MISMATCH
from leak_detection.metrics.uncertainty import BootstrapSettings
from leak_detection.runs.predictions_output import FORCE_PARAM
from leak_detection.training.config import TrainerConfig
from leak_detection.tuning.settings import TuningSettings


class ParameterError(ValueError):
    """One or more parameters are wrong; the message lists each key and what it allows."""


def _int_at_least(minimum: int) -> Callable[[Any], str | None]:
    def check(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            return f"an integer >= {minimum}"
        return None

    return check


def _positive_number(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        return "a number > 0"
    return None


def _optional_probability(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
        return "null (use the model's validation threshold) or a number strictly between 0 and 1"
    return None


def _workers(value: Any) -> str | None:
    if value == "auto" or _int_at_least(1)(value) is None:
        return None
    return "'auto' (one process per available core) or an integer >= 1 (1: no worker processes)"


def _boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else "true or false"


def _split_mismatch(value: Any) -> str | None:
    return None if value in ON_MISMATCH else f"one of {list(ON_MISMATCH)}"


def _bootstrap(value: Any) -> str | None:
    try:
        BootstrapSettings.from_params(value if isinstance(value, dict) else {"resamples": value})
    except (TypeError, ValueError) as exc:
        return f"a mapping of resamples (integer >= 1000), confidence in [0.5, 1) and seed >= 0 ({exc})"
    return None


BLOCK_RULES: dict[str, dict[str, Callable[[Any], str | None]]] = {
    "evaluation": {
        "batch_size": _int_at_least(1),
        "memory_budget_mb": _positive_number,
        "timeline_files_per_outcome": _int_at_least(1),
        "on_split_mismatch": _split_mismatch,
        "bootstrap": _bootstrap,
    },
    "deployment": {"parity_segments": _int_at_least(1), "parity_tolerance": _positive_number},
    "predict": {"batch_size": _int_at_least(1), "threshold": _optional_probability, "workers": _workers},
}
"""Per-mode blocks checked key by key: ``<mode>.<block>.<key>``."""


def _check_block(name: str, block: Any, rules: dict[str, Callable[[Any], str | None]]) -> list[str]:
    if not isinstance(block, dict):
        return [f"{name}: must be a mapping with keys {sorted(rules)}"]
    problems = (
        [f"{name}: unknown keys {sorted(set(block) - set(rules))}; allowed {sorted(rules)}"]
        if set(block) - set(rules)
        else []
    )
    for key, rule in rules.items():
        if key in block and (allowed := rule(block[key])) is not None:
            problems.append(f"{name}.{key} = {block[key]!r}: must be {allowed}")
    return problems


def _adaptation_config(branch: dict[str, Any]) -> Any:
    """The adaptation block, and the training settings it makes for fine-tuning."""
    settings = AdaptationSettings.from_params(branch["adaptation"])
    return settings.trainer_config(branch.get("training") or {"checkpoint_dir": "."}, 0)


def _tuning_settings(branch: dict[str, Any], mode: str) -> TuningSettings:
    """The tuning block, checked against the mode's training block its trials start from."""
    settings = TuningSettings.from_params(branch["tuning"])
    settings.check_with(branch.get("training") or {}, mode)
    return settings


def _check_config(name: str, build: Callable[[], Any]) -> list[str]:
    try:
        build()
    except (TypeError, ValueError) as exc:
        return [f"{name}: {exc}"]
    return []


READ_OUTSIDE_NODES = frozenset({"demo_recordings", FORCE_PARAM})
"""Keys no node takes as an input but a hook reads (``DemoRecordingsHook``, ``PredictionsOutputHook``)."""

_RUNTIME_PARAM = re.compile(r"\$\{runtime_params:\s*([^,}\s]+)")


def parameters_read(pipelines: Iterable[Any], conf_source: str | os.PathLike) -> set[str]:
    """Every key a run can read: the pipelines' ``params:`` inputs, hook reads, runtime params in conf.

    Kedro puts runtime params among the parameters too; without the ``${runtime_params:...}``
    keys of the conf files, a valid ``--params recordings_dir=PATH`` would look unread.
    """
    node_inputs = {name.removeprefix("params:") for p in pipelines for name in p.inputs() if name.startswith("params:")}
    conf_refs = {key for text in _conf_texts(Path(conf_source)) for key in _RUNTIME_PARAM.findall(text)}
    return node_inputs | READ_OUTSIDE_NODES | conf_refs


def _conf_texts(source: Path) -> Iterator[str]:
    """The YAML files of a conf folder, or of the archive ``kedro package`` makes of one."""
    if source.is_dir():
        yield from (path.read_text(encoding="utf-8") for path in sorted(source.rglob("*.y*ml")))
    elif zipfile.is_zipfile(source):
        with zipfile.ZipFile(source) as archive:
            yield from (archive.read(n).decode() for n in archive.namelist() if n.endswith((".yml", ".yaml")))
    elif source.is_file() and tarfile.is_tarfile(source):
        with tarfile.open(source) as archive:
            for member in archive:
                if member.isfile() and member.name.endswith((".yml", ".yaml")):
                    yield archive.extractfile(member).read().decode()


def _unread_keys(params: dict[str, Any], read: set[str], prefix: str = "") -> list[str]:
    """Dotted keys of ``params`` that neither ``read`` nor a parent in it covers."""
    unread = []
    for key, value in params.items():
        dotted = f"{prefix}{key}"
        # Top-level ``_name`` blocks only hold YAML anchors (``_training: &training``), as in Kedro's catalog.
        if dotted in read or dotted.startswith("_"):
            continue
        if isinstance(value, dict) and any(r.startswith(f"{dotted}.") for r in read):
            unread += _unread_keys(value, read, f"{dotted}.")
        else:
            unread += _leaf_keys(value, dotted)
    return unread


def _leaf_keys(value: Any, dotted: str) -> list[str]:
    if not isinstance(value, dict) or not value:
        return [dotted]
    return [leaf for key, child in value.items() for leaf in _leaf_keys(child, f"{dotted}.{key}")]


def _closest_keys(dotted: str, valid: set[str], limit: int = 4) -> list[str]:
    """The same leaf under other parents (``epochs`` -> ``binary.training.epochs``), else near spellings."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        tail = ".".join(parts[-n:])
        same_leaf = [k for k in valid if k.endswith(f".{tail}")]
        if same_leaf:
            return sorted(same_leaf, key=lambda k: -difflib.SequenceMatcher(None, dotted, k).ratio())[:limit]
    return difflib.get_close_matches(dotted, sorted(valid), n=limit, cutoff=0.6)


def unread_parameter_problems(params: dict[str, Any], read: set[str]) -> list[str]:
    """One problem per key that no pipeline or hook reads, with the keys it was probably meant to be."""
    valid = read | {leaf for key in read for leaf in _leaf_keys(_lookup(params, key), key)}
    problems = []
    for dotted in _unread_keys(params, read):
        guesses = _closest_keys(dotted, valid)
        hint = f"did you mean {' or '.join(guesses)}?" if guesses else "see conf/base/parameters*.yml for the keys"
        problems.append(f"{dotted}: no pipeline reads this key, so its value would be ignored; {hint}")
    return problems


def _lookup(params: dict[str, Any], dotted: str) -> Any:
    node: Any = params
    for key in dotted.split("."):
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node


def parameter_problems(params: dict[str, Any], read: set[str] | None = None) -> list[str]:
    """Everything wrong with a run's parameters (empty when all is well).

    With ``read`` (from ``parameters_read``), a key nothing reads is a problem too.
    """
    problems = [] if read is None else unread_parameter_problems(params, read)
    mapping = params.get("label_mapping") or {}
    if not isinstance(mapping, dict):
        problems.append("label_mapping: must be a mapping of raw label -> class")
    else:
        bad = {k: v for k, v in mapping.items() if str(v).upper() not in CLASS_NAMES}
        if bad:
            problems.append(f"label_mapping: {bad} map to names that are not classes; allowed {list(CLASS_NAMES)}")
    if "front_end" in params:
        problems += _check_config("front_end", lambda: FrontEndConfig.from_params(params["front_end"]))
    if "extraction" in params:
        problems += _check_block("extraction", params["extraction"], {"strict": _boolean, "workers": _workers})
    if "splits" in params:
        splits = params["splits"] or {}
        problems += _check_config("splits.ratios", lambda: check_split_ratios(splits.get("ratios") or {}))
        if "holdout_sites" in splits:
            problems += _check_config("splits.holdout_sites", lambda: check_holdout_sites(splits["holdout_sites"]))
        if (allowed := _int_at_least(0)(splits.get("seed"))) is not None:
            problems.append(f"splits.seed = {splits.get('seed')!r}: must be {allowed}")
    if "mode_comparison" in params:
        problems += _check_block("mode_comparison", params["mode_comparison"], {"bootstrap": _bootstrap})
    for mode in MODE_CLASS_NAMES:
        branch = params.get(mode)
        if branch is None:
            continue
        if branch.get("mode") != mode:
            problems.append(f"{mode}.mode = {branch.get('mode')!r}: must be {mode!r} (the namespace's own mode)")
        if "classes" in branch:
            problems += _check_config(f"{mode}.classes", lambda b=branch: check_mode_classes(b["classes"]))
        if "training" in branch:
            problems += _check_config(f"{mode}.training", lambda b=branch: TrainerConfig.from_params(b["training"]))
        if "adaptation" in branch:
            problems += _check_config(f"{mode}.adaptation", lambda b=branch: _adaptation_config(b))
        if "tuning" in branch:
            problems += _check_config(f"{mode}.tuning", lambda b=branch, m=mode: _tuning_settings(b, m))
        for block, rules in BLOCK_RULES.items():
            if block in branch:
                problems += _check_block(f"{mode}.{block}", branch[block], rules)
    unknown_modes = [k for k, v in params.items() if isinstance(v, dict) and "mode" in v and k not in MODE_CLASS_NAMES]
    problems += [
        f"{k}.mode: unknown mode {params[k]['mode']!r}; allowed {sorted(MODE_CLASS_NAMES)}" for k in unknown_modes
    ]
    return problems


def validate_parameters(params: dict[str, Any], read: set[str] | None = None) -> None:
    problems = parameter_problems(params, read)
    if problems:
        raise ParameterError(
            "the run was stopped before doing any work because of bad parameters:\n  - " + "\n  - ".join(problems)
        )
