"""``AtomicCSVDataset``: kedro-datasets' ``pandas.CSVDataset`` whose saves are atomic on
local disk."""

from __future__ import annotations

import pandas as pd
from kedro.io.core import get_filepath_str
from kedro_datasets.pandas import CSVDataset

from leak_detection.runs.atomic_files import open_for_saving


class AtomicCSVDataset(CSVDataset):
    """``pandas.CSVDataset`` with the same options (``load_args``, ``save_args``,
    ``fs_args``, versioning). On the local filesystem the CSV is written beside the
    target, flushed to disk and renamed into place (``atomic_files``): a full disk or a
    crash leaves the previous file or none, never a truncated table. An appending
    ``open_args_save: {mode: a}`` keeps kedro-datasets' plain write.

    Examples:
        Using the [YAML API](https://docs.kedro.org/en/stable/catalog-data/data_catalog_yaml_examples/):

        ```yaml
        "{mode}.file_predictions":
          type: leak_detection.datasets.AtomicCSVDataset
          filepath: data/08_reporting/{mode}/file_predictions.csv
          save_args:
            index: false
        ```

        Using the [Python API](https://docs.kedro.org/en/stable/catalog-data/advanced_data_catalog_usage/):

        >>> import pandas as pd
        >>> from leak_detection.datasets import AtomicCSVDataset
        >>>
        >>> data = pd.DataFrame({"file_id": ["a.wav"], "leak_probability": [0.9]})
        >>> dataset = AtomicCSVDataset(filepath=tmp_path / "predictions.csv", save_args={"index": False})
        >>> dataset.save(data)
        >>> assert dataset.load().equals(data)

    """

    def save(self, data: pd.DataFrame) -> None:
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        with open_for_saving(self._fs, self._protocol, save_path, self._fs_open_args_save) as fs_file:
            data.to_csv(path_or_buf=fs_file, **self._save_args)
        self._invalidate_cache()
