"""``leak-detect``: classify recordings from a shell, with the project's trained models.

Results go to stdout (a table, CSV or JSON) and everything else (logs, progress, advice) to stderr, so
``leak-detect predict PATH > out.csv`` holds results only. A user's mistake (no model yet, a wrong
version, an empty folder) is one line on stderr and exit status 2; ``--verbose`` adds the traceback.
(Not named ``cli``: Kedro would load that as project commands for ``kedro``.)
"""

from __future__ import annotations

import os

import click

from leak_detection.console.errors import UserMistakeGroup
from leak_detection.console.explain import explain
from leak_detection.console.models import models
from leak_detection.console.predict import predict
from leak_detection.runs.process_settings import apply_process_settings


@click.group(cls=UserMistakeGroup)
@click.option("--verbose", is_flag=True, help="Show the full traceback when a command fails.")
@click.pass_context
def main(context: click.Context, verbose: bool) -> None:
    """Acoustic leak detection with the models trained by this project."""
    context.obj = {"verbose": verbose}
    # A command that answers from local files sends nothing anywhere (Kedro's usage statistics).
    os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "1")
    apply_process_settings()


main.add_command(predict)
main.add_command(models)
main.add_command(explain)

__all__ = ["main"]
