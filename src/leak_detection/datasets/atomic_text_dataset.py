"""``AtomicTextDataset``: kedro-datasets' ``text.TextDataset`` whose saves are atomic on
local disk and whose "latest" version is the newest intact one."""

from __future__ import annotations

import html
import os
from typing import Any

from kedro.io.core import Version, get_filepath_str
from kedro_datasets._typing import HTMLPreview
from kedro_datasets.text import TextDataset

from leak_detection.datasets.intact_versions import IntactVersionsMixin, paired_filepaths
from leak_detection.runs.atomic_files import open_for_saving


class AtomicTextDataset(IntactVersionsMixin, TextDataset):
    """``text.TextDataset`` with the same options, written through ``atomic_files`` on
    local disk; an unpinned versioned load skips empty or incomplete versions (see
    ``AtomicJSONDataset``).

    Examples:
        Using the [YAML API](https://docs.kedro.org/en/stable/catalog-data/data_catalog_yaml_examples/):

        ```yaml
        mode_comparison_report:
          type: leak_detection.datasets.AtomicTextDataset
          filepath: data/08_reporting/mode_comparison.md
        ```

        Using the [Python API](https://docs.kedro.org/en/stable/catalog-data/advanced_data_catalog_usage/):

        >>> from leak_detection.datasets import AtomicTextDataset
        >>>
        >>> dataset = AtomicTextDataset(filepath=tmp_path / "report.md")
        >>> dataset.save("# Report")
        >>> assert dataset.load() == "# Report"

    """

    def __init__(  # noqa: PLR0913
        self,
        *,
        filepath: str | os.PathLike,
        version: Version | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        paired_with: list[str] | None = None,
    ) -> None:
        """As ``text.TextDataset``; ``paired_with`` as in ``AtomicJSONDataset``."""
        super().__init__(
            filepath=filepath, version=version, credentials=credentials, fs_args=fs_args, metadata=metadata
        )
        self._paired_with = paired_filepaths(paired_with)

    def save(self, data: str) -> None:
        save_path = get_filepath_str(self._get_save_path(), self._protocol)
        with open_for_saving(self._fs, self._protocol, save_path, self._fs_open_args_save) as fs_file:
            fs_file.write(data)
        self._invalidate_cache()

    def preview(self) -> HTMLPreview:
        """The text as written (a Markdown report or model card), for kedro-viz."""
        return HTMLPreview(f"<pre style='white-space: pre-wrap'>{html.escape(self.load())}</pre>")
