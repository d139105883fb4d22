"""Kedro datasets of the leak-detection project."""

from .inbox_dataset import InboxDataset
from .mel_feature_store_dataset import MelFeatureStoreDataset
from .onnx_model_dataset import OnnxModelDataset
from .recordings_dataset import RecordingCollection, RecordingsDataset
from .torch_model_dataset import TorchModelDataset

__all__ = [
    "InboxDataset",
    "MelFeatureStoreDataset",
    "OnnxModelDataset",
    "RecordingCollection",
    "RecordingsDataset",
    "TorchModelDataset",
]
