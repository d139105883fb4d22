"""Experiment tracking with MLflow through kedro-mlflow: where runs are stored, what each mode's run records.

Every tracked Kedro run is one MLflow run (kedro-mlflow's: all parameters, named after the
pipeline) with one child run per mode (its parameters, learning curves, test metrics with
their intervals, plots, model card, ONNX export, and tags naming the model version and the
data). ``store``: where; ``records``: what, from the datasets; ``mode_runs``: the child runs;
``hooks``: the Kedro hook that ties them to a run and keeps tracking from ever failing one.
"""

import warnings

_MLFLOW_ADVICE = "Add type hints to the `predict` method"


def _import_kedro_mlflow_quietly() -> None:
    """Import kedro-mlflow without MLflow's advice to its authors on every kedro command.

    MLflow warns that kedro-mlflow's pipeline model has no type hints, under its own "once"
    filter that no filter of ours can override; only that message is dropped, at that import.
    """
    import kedro.framework.project  # noqa: F401 - it sets up logging, which would replace the hook below

    shown = warnings.showwarning

    def show(message, *args, **kwargs):
        if _MLFLOW_ADVICE not in str(message):
            shown(message, *args, **kwargs)

    warnings.showwarning = show
    try:
        import kedro_mlflow.mlflow.kedro_pipeline_model  # noqa: F401
    finally:
        warnings.showwarning = shown


_import_kedro_mlflow_quietly()
