"""Per-mode hyperparameter search over the training settings, with Optuna."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
