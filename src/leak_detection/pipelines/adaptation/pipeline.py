from kedro.pipeline import Node, Pipeline

from .nodes import adapt_model, adaptation_report, read_new_site


def create_pipeline(**kwargs) -> Pipeline:
    """The template; ``pipeline_registry`` instantiates it under each mode's namespace."""
    return Pipeline(
        [
            Node(
                func=read_new_site,
                inputs=["adaptation_recordings", "model_meta", "params:label_mapping"],
                outputs=["adaptation_site", "adaptation_rejected"],
                name="read_new_site_node",
            ),
            Node(
                func=adapt_model,
                inputs=[
                    "model",
                    "model_meta",
                    "adaptation_site",
                    "mel_features",
                    "file_targets",
                    "params:adaptation",
                    "params:training",
                ],
                outputs=["adapted_model", "adapted_model_meta", "adaptation_history"],
                name="adapt_model_node",
            ),
            Node(
                func=adaptation_report,
                inputs=[
                    "model",
                    "model_meta",
                    "adapted_model",
                    "adapted_model_meta",
                    "adaptation_site",
                    "mel_features",
                    "file_targets",
                    "params:evaluation",
                ],
                outputs=["adaptation_report", "adaptation_report_md"],
                name="adaptation_report_node",
            ),
        ],
        namespace="adaptation",
        tags=["adapt"],
        prefix_datasets_with_namespace=False,
    )
