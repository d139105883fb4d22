"""``AtomicMatplotlibDataset``: kedro-datasets' ``matplotlib.MatplotlibDataset`` whose
image files are each written atomically on local disk."""

from __future__ import annotations

import io

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
