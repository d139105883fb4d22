"""``AtomicMatplotlibDataset``: kedro-datasets' ``matplotlib.MatplotlibDataset`` whose
image files are each written atomically on local disk."""

from __future__ import annotations

import base64
import io
from pathlib import PurePosixPath

import matplotlib.image
from kedro.io.core import get_filepath_str
from kedro_datasets._typing import ImagePreview
from kedro_datasets.matplotlib import MatplotlibDataset
from matplotlib.figure import Figure

from leak_detection.runs.atomic_files import open_for_saving


class AtomicMatplotlibDataset(MatplotlibDataset):
    """``matplotlib.MatplotlibDataset`` with the same options (a figure, a list or a dict
    of figures; ``save_args`` for ``savefig``; ``overwrite``; versioning). Each image is
    rendered in memory, then written beside its target and renamed into place
    (``atomic_files``), so a full disk never leaves a truncated PNG.

    Examples:
        Using the [YAML API](https://docs.kedro.org/en/stable/catalog-data/data_catalog_yaml_examples/):

        ```yaml
        "{mode}.evaluation_plots":
          type: leak_detection.datasets.AtomicMatplotlibDataset
          filepath: data/08_reporting/{mode}/plots
          save_args:
            dpi: 110
        ```

        Using the [Python API](https://docs.kedro.org/en/stable/catalog-data/advanced_data_catalog_usage/):

        >>> import matplotlib.pyplot as plt
        >>> from leak_detection.datasets import AtomicMatplotlibDataset
        >>>
        >>> figure = plt.figure()
        >>> dataset = AtomicMatplotlibDataset(filepath=tmp_path / "plots")
        >>> dataset.save({"roc.png": figure})
        >>> assert (tmp_path / "plots" / "roc.png").stat().st_size > 0

    """

    def _save_to_fs(self, full_key_path: str, plot: Figure) -> None:
        bytes_buffer = io.BytesIO()
        plot.savefig(bytes_buffer, **self._save_args)
        with open_for_saving(self._fs, self._protocol, full_key_path, self._fs_open_args_save) as fs_file:
            fs_file.write(bytes_buffer.getvalue())

    def preview(self) -> ImagePreview:
        """The saved image, or a folder's images stacked into one, for kedro-viz."""
        path = get_filepath_str(self._get_load_path(), self._protocol)
        if not self._fs.isdir(path):
            return super().preview()
        names = sorted(p for p in self._fs.ls(path, detail=False) if p.lower().endswith(".png"))
        figure = Figure(figsize=(8, 5 * max(1, len(names))), layout="constrained")
        for axis, name in zip(figure.subplots(max(1, len(names)), 1, squeeze=False)[:, 0], names, strict=False):
            with self._fs.open(name, "rb") as image:
                axis.imshow(matplotlib.image.imread(image, format="png"))
            axis.set_title(PurePosixPath(name).name)
            axis.axis("off")
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=60)
        return ImagePreview(base64.b64encode(buffer.getvalue()).decode("utf-8"))
