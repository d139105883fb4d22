"""Mode-independent feature extraction, shared by both modes."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
