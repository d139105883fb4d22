"""Both modes side by side on the same test files."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
