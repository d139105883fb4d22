"""The search space: which ``training`` settings a study varies, and over what values.

Written in parameters as one entry per training key, a range or a list of choices::

    search_space:
      learning_rate: {low: 1.0e-4, high: 3.0e-3, log: true}
      batch_size: {choices: [256, 512, 1024]}
      dropout: {low: 0.0, high: 0.5}

A range of an integer setting (``batch_size``) is searched over integers, of any other
over real numbers. Every entry is checked against the training block's own rules, so
a range that would reach an invalid setting is refused before the first trial, not
after hours of them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, Self

import optuna

from leak_detection.training.config import TrainerConfig, TrajectoryConfig

SEARCHABLE = frozenset(f.name for f in fields(TrajectoryConfig)) - {"seed", "amp"}
"""The trajectory's settings; not its seed (searching seeds fits the noise of the validation files) nor
its precision (a speed setting on the GPU, not a modelling choice)."""

TRAINING_KEYS = frozenset(TrainerConfig().to_dict())

INTEGER_KEYS = frozenset(name for name in SEARCHABLE if type(getattr(TrajectoryConfig(), name)) is int)

RANGE_KEYS = {"low", "high", "log", "step"}
SHAPE = "{low: L, high: H} (optional log: true, step: S) or {choices: [A, B, ...]}"


@dataclass(frozen=True)
class Dimension:
    """One searched training setting: a range (``low``..``high``, maybe on a log scale) or a list of choices."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] | None = None

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.choices is not None:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.name in INTEGER_KEYS:
            return trial.suggest_int(self.name, int(self.low), int(self.high), step=int(self.step or 1), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, step=self.step, log=self.log)

    def contains(self, value: Any) -> bool:
        if self.choices is not None:
            return value in self.choices
        return _is_number(value) and self.low <= value <= self.high

    def describe(self) -> str:
        if self.choices is not None:
            return f"one of {list(self.choices)}"
        scale = ", log scale" if self.log else f", step {self.step:g}" if self.step else ""
        return f"{self.low:g} to {self.high:g}{scale}"


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _training_problem(name: str, value: Any) -> str | None:
    """What the training block says of ``name = value`` (None when it takes it)."""
    try:
        TrainerConfig.from_params({name: value})
    except (TypeError, ValueError) as exc:
        return str(exc)
    return None


def _choices_problems(name: str, choices: Any) -> list[str]:
    if not isinstance(choices, list) or not choices:
        return ["choices must be a non-empty list"]
    if len({repr(c) for c in choices}) < len(choices):
        return [f"choices {choices} repeat a value"]
    return [problem for value in choices if (problem := _training_problem(name, value)) is not None]


def _range_problems(name: str, spec: dict[str, Any]) -> list[str]:
    low, high, step, log = spec.get("low"), spec.get("high"), spec.get("step"), spec.get("log", False)
    if not (_is_number(low) and _is_number(high)) or not low < high:
        return [f"low and high must be finite numbers with low < high, got low = {low!r}, high = {high!r}"]
    integer = name in INTEGER_KEYS
    if integer and not all(isinstance(v, int) for v in (low, high, step if step is not None else 1)):
        return [f"{name} is an integer setting: low, high and step must be integers"]
    problems = [] if isinstance(log, bool) else [f"log must be true or false, got {log!r}"]
    if log is True and low <= 0:
        problems.append(f"a log scale needs low > 0, got low = {low!r}")
    if step is not None and (not _is_number(step) or step <= 0):
        problems.append(f"step must be a number > 0, got {step!r}")
    if step is not None and log is True:
        problems.append("step and log cannot be used together (Optuna samples a log range continuously)")
    return problems + [p for value in (low, high) if (p := _training_problem(name, value)) is not None]


def _dimension_problems(name: str, spec: Any) -> list[str]:
    if name not in SEARCHABLE:
        why = "a training setting a study does not search" if name in TRAINING_KEYS else "no training setting"
        return [f"{why}; searchable: {sorted(SEARCHABLE)}"]
    if not isinstance(spec, dict):
        return [f"must be a mapping {SHAPE}, got {spec!r}"]
    unknown = sorted(set(spec) - RANGE_KEYS - {"choices"})
    if unknown:
        return [f"unknown keys {unknown}; write {SHAPE}"]
    if ("choices" in spec) == bool(set(spec) & RANGE_KEYS):
        return [f"give either a range or choices: {SHAPE}"]
    return _choices_problems(name, spec["choices"]) if "choices" in spec else _range_problems(name, spec)


def _dimension(name: str, spec: dict[str, Any]) -> Dimension:
    if "choices" in spec:
        return Dimension(name, choices=tuple(spec["choices"]))
    return Dimension(name, spec["low"], spec["high"], spec.get("log", False), spec.get("step"))


@dataclass(frozen=True)
class SearchSpace:
    """The searched settings, in the order they are written."""

    dimensions: tuple[Dimension, ...]

    @classmethod
    def from_params(cls, spec: Any) -> Self:
        """The space written in parameters; every bad entry is named in one ``ValueError``."""
        if not isinstance(spec, dict) or not spec:
            raise ValueError(f"search_space must be a non-empty mapping of training setting -> {SHAPE}")
        problems = [
            f"search_space.{name}: {p}" for name, entry in spec.items() for p in _dimension_problems(name, entry)
        ]
        if problems:
            raise ValueError("; ".join(problems))
        return cls(tuple(_dimension(name, entry) for name, entry in spec.items()))

    @property
    def names(self) -> list[str]:
        return [d.name for d in self.dimensions]

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """The trial's training settings, one value per searched setting."""
        return {d.name: d.suggest(trial) for d in self.dimensions}

    def values_inside(self, training: dict[str, Any]) -> dict[str, Any]:
        """The settings of ``training`` that lie inside the space (a trial of the defaults)."""
        return {
            d.name: training[d.name] for d in self.dimensions if d.name in training and d.contains(training[d.name])
        }
