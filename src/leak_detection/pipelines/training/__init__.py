"""Per-mode training of LeakCNNMulti on the shared feature store."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
