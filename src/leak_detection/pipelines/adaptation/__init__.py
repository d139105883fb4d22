"""Adapt a trained model to a new site (per mode)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
