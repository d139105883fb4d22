"""``leak-detect predict``: classify recordings with the project's own ``predict`` pipeline.

It runs the same nodes as ``kedro run --pipelines predict``, so there is one implementation of inference.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import click
import pandas as pd
from kedro.io.core import DatasetError

from leak_detection.console.catalog import kedro_quiet
from leak_detection.console.errors import explain_load_failure
from leak_detection.console.project import PROJECT_ENV, RecordingLocation, find_project
from leak_detection.runs.predictions_output import FORCE_PARAM, PredictionsOutputError, check_predictions_output

TABLE_COLUMNS = [
    "file",
    "decision",
    "predicted_class",
    "mean_leak_score",
    "fraction_over_threshold",
    "unfamiliar",
    "error",
]


def _checked_output(output: Path | None, project_path: Path, mode: str, force: bool, paths: tuple[Path, ...]) -> Path:
    """Where the predictions go, refused (exit 2) before any model is loaded when it is unsafe."""
    if output is None:
        output = project_path / f"data/07_model_output/{mode}/predictions.csv"
        output.parent.mkdir(parents=True, exist_ok=True)  # the project's own folder, as `kedro run` makes it
    try:
        return check_predictions_output(output, project_path, force=force, recordings=paths)
    except PredictionsOutputError as exc:
        raise click.BadParameter(str(exc), param_hint="--output") from exc


NUMBER_COLUMNS = ("mean_leak_score", "fraction_over_threshold", "test_f1", "test_roc_auc", "threshold")


def as_text(table: pd.DataFrame) -> pd.DataFrame:
    """Every cell as fixed text: numbers to three decimals, blanks for missing ones, messages on one line."""
    shown = table.copy()
    for column in shown.columns:
        if column in NUMBER_COLUMNS:
            values = pd.to_numeric(shown[column], errors="coerce")
            shown[column] = [f"{v:.3f}" if pd.notna(v) else "" for v in values]
        else:
            shown[column] = [" ".join(str(v).split()) for v in shown[column]]
    return shown


def print_table(table: pd.DataFrame, output_format: str, columns: list[str] | None = None) -> None:
    """``table`` on stdout: aligned text (``columns`` of it), CSV or JSON records."""
    if output_format == "csv":
        click.echo(table.to_csv(index=False), nl=False)
    elif output_format == "json":
        click.echo(table.to_json(orient="records", indent=2))
    else:
        shown = table[[c for c in columns if c in table.columns]] if columns else table
        click.echo(as_text(shown).to_string(index=False))


@click.command()
@click.argument("paths", nargs=-1, required=True, type=RecordingLocation())
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
    help="Model version to use, as `leak-detect models` lists them (a folder name under the model's path, "
    "data/06_models/<mode>/best.pth/ by default) such as 2026-11-25T22.01.20.858Z. Default: the newest.",
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
    "--threshold",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Decide at this threshold instead of the model's own (chosen on validation): lower finds more leaks "
    "and raises more false alarms.",
)
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="How the results are printed on stdout (the CSV file is written either way).",
)
@click.option(
    "--project",
    envvar=PROJECT_ENV,
    default=None,
    help=f"The leak-detection project folder (or set {PROJECT_ENV}). Default: the current folder or one "
    "above it, else the folder the package was installed from.",
)
def predict(
    paths: tuple[Path | str, ...],
    mode: str,
    model_version: str | None,
    output: Path | None,
    force: bool,
    threshold: float | None,
    output_format: str,
    project: str | None,
) -> None:
    """Classify the recordings in PATHS (audio files, or folders searched recursively; local, or
    URLs such as s3://bucket/week48 with the s3 extra installed).

    Every file gets a row: its decision (LEAK or NOLEAK, by the paper's rule at the
    model's validation threshold), and an error instead when it cannot be read.
    """
    project_path = find_project(project)  # first: it chooses the logging configuration Kedro loads on import
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project_path)
    local = tuple(p for p in paths if isinstance(p, Path))
    output_path = _checked_output(output, project_path, mode, force, local)
    runtime_params = {
        "inbox_dir": [str(p.resolve()) if isinstance(p, Path) else p for p in paths],
        "predictions_output": str(output_path),
        FORCE_PARAM: force,
    }
    if threshold is not None:
        runtime_params[mode] = {"predict": {"threshold": threshold}}
    _run_predict(project_path, mode, model_version, runtime_params)
    table = pd.read_csv(output_path, keep_default_na=False)
    version = table["model_version"].iloc[0] if len(table) else ""
    click.echo(f"{mode} model {version}, threshold {table['threshold'].iloc[0]:.2f}", err=True)
    print_table(table, output_format, TABLE_COLUMNS)
    click.echo(
        f"{(table['decision'] == 'LEAK').sum()} LEAK, {(table['decision'] == 'NOLEAK').sum()} NOLEAK, "
        f"{(table['error'] != '').sum()} not readable; written to {output_path}",
        err=True,
    )


def _run_predict(project_path: Path, mode: str, model_version: str | None, runtime_params: dict) -> None:
    from kedro.framework.session import KedroSession
    from kedro.runner import SequentialRunner

    load_versions = {f"{mode}.model": model_version, f"{mode}.model_meta": model_version} if model_version else None
    # Progress and warnings stay on stderr.
    try:
        # From the project folder, as `kedro run`: plugins (kedro-viz's run statistics) look for it there.
        with (
            kedro_quiet(),
            contextlib.chdir(project_path),
            KedroSession.create(project_path=project_path, runtime_params=runtime_params) as session,
        ):
            # Named, as `kedro run` names it: kedro-viz warns about a runner it cannot see.
            session.run(
                pipeline_names=["predict"], namespaces=[mode], load_versions=load_versions, runner=SequentialRunner()
            )
    except DatasetError as exc:
        mistake = explain_load_failure(exc, mode, model_version)
        if mistake is None:
            raise
        raise mistake from exc
