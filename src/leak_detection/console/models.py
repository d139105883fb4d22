"""``leak-detect models``: the trained versions of each mode, how they did, where they came from."""

from __future__ import annotations

from typing import Any

import click
import pandas as pd
from kedro.io import DataCatalog

from leak_detection.console.catalog import default_version, load_version, project_catalog, saved_versions
from leak_detection.console.predict import print_table
from leak_detection.console.project import PROJECT_ENV, find_project

MODES = ("binary", "multiclass")


def origin(meta: dict[str, Any]) -> str:
    """trained, tuned (trained in the ``tuned`` environment) or adapted (from which version)."""
    adaptation = meta.get("adaptation")
    if adaptation:
        return f"adapted from {adaptation.get('base_model_version')}"
    return "tuned" if meta.get("kedro_env") == "tuned" else "trained"


def _row(catalog: DataCatalog, mode: str, version: str, default: str | None) -> dict[str, Any]:
    meta = load_version(catalog, f"{mode}.model_meta", version) or {}
    metrics = load_version(catalog, f"{mode}.evaluation_metrics", version) or {}
    test = metrics.get("test", {})
    interval = test.get("intervals", {}).get("f1")
    return {
        "mode": mode,
        "version": version,
        "default": "yes" if version == default else "",
        "origin": origin(meta) if meta else "unreadable meta",
        "test_f1": test.get("f1"),
        "test_f1_interval": f"[{interval[0]:.2f}, {interval[1]:.2f}]" if interval else "",
        "test_roc_auc": test.get("roc_auc"),
        "threshold": meta.get("threshold"),
        "created_utc": meta.get("created_at_utc", ""),
    }


def model_table(catalog: DataCatalog, modes: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    for mode in modes:
        versions = saved_versions(catalog, mode)
        default = default_version(catalog, mode) if versions else None
        rows += [_row(catalog, mode, version, default) for version in versions]
    return pd.DataFrame(rows)


@click.command()
@click.option("--mode", type=click.Choice([*MODES, "all"]), default="all", show_default=True)
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option("--project", envvar=PROJECT_ENV, default=None, help=f"The project folder (or set {PROJECT_ENV}).")
def models(mode: str, output_format: str, project: str | None) -> None:
    """List the trained model versions, newest first, with their test F1 and origin; `default` marks the one
    `leak-detect predict` uses when no --model-version is given."""
    project_path = find_project(project)
    table = model_table(project_catalog(project_path), MODES if mode == "all" else (mode,))
    if table.empty:
        click.echo(
            f"no model has been trained in {project_path} yet: run `kedro run --pipelines train_both` first", err=True
        )
        return
    print_table(table, output_format)
