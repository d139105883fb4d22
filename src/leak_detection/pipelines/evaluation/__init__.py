"""Per-mode evaluation: threshold from validation, paper-exact file-level results on test."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
