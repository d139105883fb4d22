"""Per-mode classification of new, unlabelled recordings with a trained model."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
