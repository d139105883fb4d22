"""``OnnxModelDataset`` keeps an exported ONNX model, versioned beside the PyTorch one."""

from __future__ import annotations

import json
import os
from pathlib import PurePosixPath
from typing import Any

import onnx
from kedro.io.core import AbstractVersionedDataset, DatasetError, Version, get_filepath_str, get_protocol_and_path
from kedro_datasets._typing import JSONPreview

from leak_detection.runs.atomic_files import atomic_path


class OnnxModelDataset(AbstractVersionedDataset[bytes, bytes]):
    """A serialised ONNX model (``bytes``), checked with ``onnx.checker`` on save and load.

    Examples:
        ```yaml
        "{mode}.onnx_model":
          type: leak_detection.datasets.OnnxModelDataset
          filepath: data/06_models/{mode}/model.onnx
          versioned: true
        ```

        >>> dataset = OnnxModelDataset(filepath=tmp_path / "model.onnx")  # doctest: +SKIP
        >>> dataset.save(onnx_bytes)  # doctest: +SKIP
        >>> assert dataset.load() == onnx_bytes  # doctest: +SKIP
    """

    def __init__(
        self, *, filepath: str | os.PathLike, version: Version | None = None, metadata: dict[str, Any] | None = None
    ) -> None:
        protocol, path = get_protocol_and_path(str(filepath), version)
        if protocol != "file":
            raise DatasetError(f"OnnxModelDataset writes local files only; got {filepath}")
        self.metadata = metadata
        super().__init__(filepath=PurePosixPath(path), version=version, exists_function=os.path.exists)

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "version": self._version}

    def load(self) -> bytes:
        path = get_filepath_str(self._get_load_path(), "file")
        with open(path, "rb") as handle:
            data = handle.read()
        _check(data, path)
        return data

    def save(self, data: bytes) -> None:
        path = get_filepath_str(self._get_save_path(), "file")
        if not isinstance(data, bytes):
            raise DatasetError(f"OnnxModelDataset at {path} saves serialised ONNX bytes, got {type(data).__name__}")
        _check(data, path)
        with atomic_path(path) as tmp, open(tmp, "xb") as handle:
            handle.write(data)

    def preview(self) -> JSONPreview:
        """The graph's inputs and outputs with their shapes, and its opset, for kedro-viz."""
        model = onnx.load_from_string(self.load())

        def described(values) -> dict[str, list]:
            return {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim] for v in values}

        summary = {
            "inputs": described(model.graph.input),
            "outputs": described(model.graph.output),
            "opset": [o.version for o in model.opset_import],
            "nodes": len(model.graph.node),
        }
        return JSONPreview(json.dumps(summary))

    def _exists(self) -> bool:
        try:
            return os.path.exists(get_filepath_str(self._get_load_path(), "file"))
        except DatasetError:
            return False


def _check(data: bytes, path: str) -> None:
    try:
        onnx.checker.check_model(onnx.load_from_string(data))
    except Exception as exc:  # noqa: BLE001 - any parse or check failure means the same to a user
        raise DatasetError(f"{path} is not a valid ONNX model: {type(exc).__name__}: {exc}") from exc
