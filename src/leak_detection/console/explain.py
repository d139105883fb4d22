"""``leak-detect explain FILE``: one figure of why the model called a recording what it did."""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

import click
from kedro.io import DataCatalog
from kedro.io.core import Version

from leak_detection.audio.remote import kind
from leak_detection.console.catalog import default_version, load_version, project_catalog
from leak_detection.console.errors import UserMistake
from leak_detection.console.project import PROJECT_ENV, RecordingLocation, find_project


def load_model(catalog: DataCatalog, project: Path, mode: str, version: str | None) -> tuple[dict, dict, str]:
    """``(state_dict, meta, version)`` of a saved model: ``version``, else the one predict uses by default."""
    version = version or default_version(catalog, mode)
    if version is None:
        raise UserMistake(f"no {mode} model has been trained in {project} yet: run `kedro run --pipelines train_both`")
    meta = load_version(catalog, f"{mode}.model_meta", version)
    if meta is None:
        raise UserMistake(f"no {mode} model version {version}: `leak-detect models --mode {mode}` lists them")
    return catalog.get(f"{mode}.model", version=Version(version, None)).load(), meta, version


@click.command()
@click.argument("recording", type=RecordingLocation(dir_okay=False))
@click.option("--mode", type=click.Choice(["binary", "multiclass"]), default="binary", show_default=True)
@click.option("--model-version", metavar="TS", default=None, help="Default: the version predict uses.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="The PNG to write. Default: data/08_reporting/<mode>/explain/<recording name>.png in the project.",
)
@click.option("--project", envvar=PROJECT_ENV, default=None, help=f"The project folder (or set {PROJECT_ENV}).")
def explain(
    recording: Path | str, mode: str, model_version: str | None, output: Path | None, project: str | None
) -> None:
    """Draw RECORDING's waveform, log-mel spectrogram, the long-segment scores against the threshold with the
    vote, the class probabilities over time and its unfamiliarity, as the model saw them."""
    from leak_detection.decisions.explain import explain_recording, explanation_figure

    project_path = find_project(project)
    catalog = project_catalog(project_path)
    storage_options = inbox_storage_options(catalog)
    if isinstance(recording, str):
        check_recording_url(recording, storage_options)
    state, meta, version = load_model(catalog, project_path, mode, model_version)
    try:
        explained = explain_recording(recording, state, meta, storage_options)
    except ValueError as exc:
        raise UserMistake(f"{recording}: {exc}") from exc
    name = PurePosixPath(str(recording)).name
    output = output or project_path / f"data/08_reporting/{mode}/explain/{PurePosixPath(name).stem}.png"
    output.parent.mkdir(parents=True, exist_ok=True)
    explanation_figure(explained, meta, f"{name}, {mode} model {version}").savefig(output, dpi=110)
    click.echo(f"{recording}\t{explained.decision}\t{explained.predicted_class}")
    click.echo(f"figure written to {output}", err=True)


def inbox_storage_options(catalog: DataCatalog) -> dict[str, Any]:
    """The ``inbox`` entry's fsspec options, so a URL is read with the credentials predict reads it with."""
    return getattr(catalog.get("inbox"), "storage_options", {})


def check_recording_url(url: str, storage_options: dict[str, Any]) -> None:
    """A URL that names no object is the user's mistake, said before any model is loaded."""
    found = kind(url, storage_options)
    if found == "directory":
        raise UserMistake(f"{url} is a folder: explain takes one recording (`leak-detect predict` takes a folder)")
    if found != "file":
        raise UserMistake(f"{url} does not exist: give the URL of one recording")
