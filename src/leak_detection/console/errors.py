"""How ``leak-detect`` fails: one line that says what to do, and exit status 2 for a user's mistake."""

from __future__ import annotations

import traceback
from typing import Any

import click
from kedro.io.core import DatasetError, VersionNotFoundError

from leak_detection.parameters import ParameterError

USER_MISTAKE = 2
FAILURE = 1


class UserMistake(click.ClickException):
    """Something the user can fix (the message says how); exit status 2."""

    exit_code = USER_MISTAKE


def explain_load_failure(exc: DatasetError, mode: str, model_version: str | None) -> UserMistake | None:
    """The user's mistake behind a failed model load, or None when it is not one."""
    message = str(exc)
    if isinstance(exc, VersionNotFoundError) and model_version:
        return UserMistake(
            f"no {mode} model version {model_version}: `leak-detect models --mode {mode}` lists the versions there are"
        )
    if isinstance(exc, VersionNotFoundError) or "has been saved yet" in message:
        return UserMistake(
            f"no {mode} model has been trained in this project yet: run `kedro run --pipelines train_both` first"
        )
    if "no audio files in" in message or "does not exist" in message:
        return UserMistake(message.split(": ", 1)[-1] if message.startswith("Failed while loading") else message)
    return None


class UserMistakeGroup(click.Group):
    """Every failure is one line on stderr; ``--verbose`` adds the traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except ParameterError as exc:
            self._fail(ctx, str(exc).replace("\n  - ", "; "), USER_MISTAKE)
        except Exception as exc:  # noqa: BLE001 - the CLI's last word on anything unexpected
            self._fail(ctx, f"{type(exc).__name__}: {exc}", FAILURE)

    @staticmethod
    def _fail(ctx: click.Context, message: str, code: int) -> None:
        if (ctx.obj or {}).get("verbose"):
            traceback.print_exc()
        hint = "" if (ctx.obj or {}).get("verbose") else " (--verbose for the traceback)"
        click.echo(f"Error: {' '.join(message.split())}{hint}", err=True)
        ctx.exit(code)
