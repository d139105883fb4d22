"""``leak-detect``: classify recordings from a shell, with the project's trained models.

It runs the project's own ``predict`` pipeline (the same nodes as
``kedro run --pipelines predict``), so there is one implementation of inference.
(Not named ``cli.py``: Kedro would load that as project commands for ``kedro``.)
"""

from __future__ import annotations

import logging
import os
import tomllib
from pathlib import Path

import click
import pandas as pd

import leak_detection
from leak_detection.features.familiarity import unfamiliar_advice
from leak_detection.runs.predictions_output import FORCE_PARAM, PredictionsOutputError, check_predictions_output
from leak_detection.runs.process_settings import apply_process_settings

PROJECT_ENV = "LEAK_DETECTION_PROJECT"
TABLE_COLUMNS = [
    "file",
    "decision",
    "predicted_class",
    "mean_leak_score",
    "fraction_over_threshold",
    "unfamiliar",
    "error",
]


def _is_project(path: Path) -> bool:
    pyproject = path / "pyproject.toml"
    if not pyproject.is_file():
        return False
    try:
        kedro = tomllib.loads(pyproject.read_text()).get("tool", {}).get("kedro", {})
    except (OSError, tomllib.TOMLDecodeError):
        return False
    return kedro.get("package_name") == "leak_detection"


def find_project(explicit: str | None) -> Path:
    """The project folder: ``--project``, else the current folder or one above it, else
    the folder this package was installed from (an editable install)."""
    if explicit:
        path = Path(explicit).resolve()
        if not _is_project(path):
            raise click.BadParameter(f"{path} is not the leak-detection project (no matching pyproject.toml)")
        return path
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents, Path(leak_detection.__file__).resolve().parents[2]):
        if _is_project(candidate):
            return candidate
    raise click.UsageError(
        f"cannot find the leak-detection project; run from inside it, pass --project PATH or set {PROJECT_ENV}"
    )


def _checked_output(output: Path | None, project_path: Path, mode: str, force: bool, paths: tuple[Path, ...]) -> Path:
    """Where the predictions go, refused (exit 2) before any model is loaded when it is unsafe."""
    if output is None:
        output = project_path / f"data/07_model_output/{mode}/predictions.csv"
        output.parent.mkdir(parents=True, exist_ok=True)  # the project's own folder, as `kedro run` makes it
    try:
        return check_predictions_output(output, project_path, force=force, recordings=paths)
    except PredictionsOutputError as exc:
        raise click.BadParameter(str(exc), param_hint="--output") from exc


@click.group()
def main() -> None:
    """Acoustic leak detection with the models trained by this project."""
    apply_process_settings()


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--mode",
    type=click.Choice(["binary", "multiclass"]),
    default="binary",
    show_default=True,
    help="Which trained model to use: binary (LEAK/NOLEAK) or multiclass (LEAK, NORMAL, QUIET, RANDOM, "
    "MECHANICAL). data/08_reporting/mode_comparison.md says which did better on test files.",
)
@click.option(
    "--model-version",
    metavar="TS",
    default=None,
    help="Model version to use, a folder name under data/06_models/<mode>/best.pth/ such as "
    "2026-11-25T22.01.20.858Z. Default: the newest.",
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the predictions CSV. Default: data/07_model_output/<mode>/predictions.csv in the project.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing --output file that is not a predictions CSV. Models (data/06_models) and the "
    "recordings being classified are never overwritten.",
)
@click.option(
    "--project",
    envvar=PROJECT_ENV,
    default=None,
    help=f"The leak-detection project folder (or set {PROJECT_ENV}). Default: the current folder or one "
    "above it, else the folder the package was installed from.",
)
def predict(
    paths: tuple[Path, ...],
    mode: str,
    model_version: str | None,
    output: Path | None,
    force: bool,
    project: str | None,
) -> None:
    """Classify the recordings in PATHS (audio files, or folders searched recursively).

    Every file gets a row: its decision (LEAK or NOLEAK, by the paper's rule at the
    model's validation threshold), and an error instead when it cannot be read.
    """
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    project_path = find_project(project)
    bootstrap_project(project_path)
    logging.getLogger("kedro").setLevel(logging.WARNING)
    output_path = _checked_output(output, project_path, mode, force, paths)
    runtime_params = {
        "inbox_dir": [str(p.resolve()) for p in paths],
        "predictions_output": str(output_path),
        FORCE_PARAM: force,
    }
    load_versions = {f"{mode}.model": model_version, f"{mode}.model_meta": model_version} if model_version else None
    with KedroSession.create(project_path=project_path, runtime_params=runtime_params) as session:
        session.run(pipeline_names=["predict"], namespaces=[mode], load_versions=load_versions)
    table = pd.read_csv(output_path, keep_default_na=False)
    shown = table[[c for c in TABLE_COLUMNS if c in table.columns]]
    version = table["model_version"].iloc[0] if len(table) else ""
    click.echo(f"{mode} model {version}, threshold {table['threshold'].iloc[0]:.2f}")
    click.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    click.echo(
        f"{(table['decision'] == 'LEAK').sum()} LEAK, {(table['decision'] == 'NOLEAK').sum()} NOLEAK, "
        f"{(table['error'] != '').sum()} not readable; written to {output_path}"
    )
    n_unfamiliar = int((table.get("unfamiliar", pd.Series(dtype=str)).astype(str) == "True").sum())
    if n_unfamiliar:
        click.echo(unfamiliar_advice(n_unfamiliar, int((table["error"] == "").sum())))


if __name__ == "__main__":
    main()
