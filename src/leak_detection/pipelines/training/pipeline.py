from kedro.pipeline import Node, Pipeline

from .nodes import train_model


def create_pipeline(**kwargs) -> Pipeline:
    """The template; ``pipeline_registry`` instantiates it under each mode's namespace."""
    return Pipeline(
        [
            Node(
                func=train_model,
                inputs=["mel_features", "file_targets", "class_summary", "params:training", "params:mode"],
                outputs=["model", "model_meta", "training_history"],
                name="train_model_node",
            ),
        ],
        namespace="training",
        tags=["train"],
        prefix_datasets_with_namespace=False,
    )
