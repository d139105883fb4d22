import warnings

from kedro.pipeline import Node, Pipeline

from .nodes import compare_modes


def create_pipeline(**kwargs) -> Pipeline:
    # The one node that joins the two branches reads each mode's namespaced outputs; Kedro warns about any
    # dotted name outside a node's own namespace, which here is the point, so that advice is silenced here only.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="One or more dataset names contain '.'", category=UserWarning)
        return _comparison()


def _comparison() -> Pipeline:
    return Pipeline(
        [
            Node(
                func=compare_modes,
                inputs=[
                    "binary_metrics",
                    "multiclass_metrics",
                    "binary_predictions",
                    "multiclass_predictions",
                    "params:bootstrap",
                ],
                outputs=["mode_comparison", "mode_comparison_report"],
                name="compare_modes_node",
            ),
        ],
        inputs={
            "binary_metrics": "binary.evaluation_metrics",
            "multiclass_metrics": "multiclass.evaluation_metrics",
            "binary_predictions": "binary.file_predictions",
            "multiclass_predictions": "multiclass.file_predictions",
        },
        outputs={"mode_comparison", "mode_comparison_report"},
        namespace="mode_comparison",
    )
