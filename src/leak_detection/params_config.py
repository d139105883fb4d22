"""A frozen dataclass built from one block of parameters, refusing keys it does not know.

A misspelt key (``learnig_rate``) would otherwise be ignored and its default used
without a word.
"""

from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, Self


class ParamsConfig:
    """Mixin for frozen dataclasses filled from a parameters block named ``SECTION``."""

    SECTION = "parameters"

    @classmethod
    def from_params(cls, params: dict[str, Any] | None) -> Self:
        params = dict(params or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"unknown {cls.SECTION} parameters {unknown}; allowed keys are {sorted(known)}")
        return cls(**params)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
