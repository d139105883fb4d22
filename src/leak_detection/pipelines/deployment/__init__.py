"""Per-mode deployment artefacts: the ONNX export (checked against PyTorch) and the model card."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
