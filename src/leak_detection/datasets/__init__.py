"""Kedro datasets of the leak-detection project."""

from .mel_feature_store_dataset import MelFeatureStoreDataset
from .recordings_dataset import RecordingCollection, RecordingsDataset
from .torch_model_dataset import TorchModelDataset

__all__ = [
    "MelFeatureStoreDataset",
    "RecordingCollection",
    "RecordingsDataset",
    "TorchModelDataset",
]
