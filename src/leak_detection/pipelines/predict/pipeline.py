from kedro.pipeline import Node, Pipeline

from .nodes import predict_recordings


def create_pipeline(**kwargs) -> Pipeline:
    """The template; ``pipeline_registry`` instantiates it under each mode's namespace."""
    return Pipeline(
        [
            Node(
                func=predict_recordings,
                inputs=["inbox", "model", "model_meta", "params:predict"],
                outputs="inbox_predictions",
                name="predict_recordings_node",
            ),
        ],
        namespace="predict",
        tags=["predict"],
        prefix_datasets_with_namespace=False,
    )
