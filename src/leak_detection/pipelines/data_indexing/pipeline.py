from kedro.pipeline import Node, Pipeline

from .nodes import file_targets, summarise_classes


def create_pipeline(**kwargs) -> Pipeline:
    """The template; ``pipeline_registry`` instantiates it under each mode's namespace."""
    return Pipeline(
        [
            Node(
                func=file_targets,
                inputs=["recordings_index", "params:mode", "params:classes", "params:data_source"],
                outputs="file_targets",
                name="file_targets_node",
            ),
            Node(
                func=summarise_classes,
                inputs=["file_targets", "params:mode"],
                outputs="class_summary",
                name="summarise_classes_node",
            ),
        ],
        namespace="data_indexing",
        prefix_datasets_with_namespace=False,
    )
