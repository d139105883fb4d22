"""``leak-detect explain FILE``: one figure of why the model called a recording what it did."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import click
from kedro.io.core import Version

from leak_detection.audio.remote import remote_info
from leak_detection.console.catalog import default_version, load_version, project_catalog
from leak_detection.console.errors import UserMistake
from leak_detection.console.project import PROJECT_ENV, RecordingLocation, find_project


def load_model(project: Path, mode: str, version: str | None) -> tuple[dict, dict, str]:
    """``(state_dict, meta, version)`` of a saved model: ``version``, else the one predict uses by default."""
    catalog = project_catalog(project)
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
    if isinstance(recording, str) and remote_info(recording, {}) is None:
        raise UserMistake(f"{recording} does not exist")
    state, meta, version = load_model(project_path, mode, model_version)
    try:
        explained = explain_recording(recording, state, meta)
    except ValueError as exc:
        raise UserMistake(f"{recording}: {exc}") from exc
    name = PurePosixPath(str(recording)).name
    output = output or project_path / f"data/08_reporting/{mode}/explain/{PurePosixPath(name).stem}.png"
    output.parent.mkdir(parents=True, exist_ok=True)
    explanation_figure(explained, meta, f"{name}, {mode} model {version}").savefig(output, dpi=110)
    click.echo(f"{recording}\t{explained.decision}\t{explained.predicted_class}")
    click.echo(f"figure written to {output}", err=True)
