"""``leak-detect models``: the trained versions of each mode, how they did, where they came from."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import pandas as pd
from kedro.io.core import DatasetError, Version

from leak_detection.console.predict import print_table
from leak_detection.console.project import PROJECT_ENV, find_project
from leak_detection.datasets import TorchModelDataset

MODES = ("binary", "multiclass")


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def origin(meta: dict[str, Any]) -> str:
    """trained, tuned (trained in the ``tuned`` environment) or adapted (from which version)."""
    adaptation = meta.get("adaptation")
    if adaptation:
        return f"adapted from {adaptation.get('base_model_version')}"
    return "tuned" if meta.get("kedro_env") == "tuned" else "trained"


def default_version(project: Path, mode: str) -> str | None:
    """The version ``predict`` loads when none is named: the newest intact pair of weights and meta."""
    dataset = TorchModelDataset(
        filepath=str(project / f"data/06_models/{mode}/best.pth"),
        version=Version(None, None),
        paired_with=["model_meta.json"],
    )
    try:
        return dataset.resolve_load_version()
    except DatasetError:
        return None


def _row(project: Path, mode: str, version: str, default: str | None) -> dict[str, Any]:
    meta = _read_json(project / f"data/06_models/{mode}/model_meta.json/{version}/model_meta.json") or {}
    metrics = _read_json(project / f"data/08_reporting/{mode}/metrics.json/{version}/metrics.json") or {}
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


def model_table(project: Path, modes: tuple[str, ...]) -> pd.DataFrame:
    rows = []
    for mode in modes:
        folder = project / f"data/06_models/{mode}/model_meta.json"
        versions = sorted((p.name for p in folder.iterdir() if p.is_dir()), reverse=True) if folder.is_dir() else []
        default = default_version(project, mode) if versions else None
        rows += [_row(project, mode, version, default) for version in versions]
    return pd.DataFrame(rows)


@click.command()
@click.option("--mode", type=click.Choice([*MODES, "all"]), default="all", show_default=True)
@click.option("--format", "output_format", type=click.Choice(["table", "csv", "json"]), default="table")
@click.option("--project", envvar=PROJECT_ENV, default=None, help=f"The project folder (or set {PROJECT_ENV}).")
def models(mode: str, output_format: str, project: str | None) -> None:
    """List the trained model versions, newest first, with their test F1 and origin; `default` marks the one
    `leak-detect predict` uses when no --model-version is given."""
    project_path = find_project(project)
    table = model_table(project_path, MODES if mode == "all" else (mode,))
    if table.empty:
        click.echo(
            f"no model has been trained in {project_path} yet: run `kedro run --pipelines train_both` first", err=True
        )
        return
    print_table(table, output_format)
