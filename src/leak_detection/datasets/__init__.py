"""Kedro datasets of the leak-detection project."""

from .atomic_csv_dataset import AtomicCSVDataset
from .atomic_json_dataset import AtomicJSONDataset
from .atomic_matplotlib_dataset import AtomicMatplotlibDataset
from .atomic_text_dataset import AtomicTextDataset
from .inbox_dataset import InboxDataset
from .mel_feature_store_dataset import MelFeatureStoreDataset
from .onnx_model_dataset import OnnxModelDataset
from .optuna_storage_dataset import OptunaStorageDataset
from .recordings_dataset import RecordingsDataset
from .torch_model_dataset import TorchModelDataset

__all__ = [
    "AtomicCSVDataset",
    "AtomicJSONDataset",
    "AtomicMatplotlibDataset",
    "AtomicTextDataset",
    "InboxDataset",
    "MelFeatureStoreDataset",
    "OnnxModelDataset",
    "OptunaStorageDataset",
    "RecordingsDataset",
    "TorchModelDataset",
]
