"""Per-mode view of the shared recordings index: targets and class counts."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
