from kedro.pipeline import Node, Pipeline

from .nodes import export_onnx_model, model_card


def create_pipeline(**kwargs) -> Pipeline:
    """The template; ``pipeline_registry`` instantiates it under each mode's namespace."""
    return Pipeline(
        [
            Node(
                func=export_onnx_model,
                inputs=["model", "model_meta", "mel_features", "file_targets", "params:deployment"],
                outputs=["onnx_model", "onnx_parity"],
                name="export_onnx_model_node",
            ),
            Node(
                func=model_card,
                inputs=["model_meta", "evaluation_metrics", "class_summary", "onnx_parity"],
                outputs="model_card",
                name="model_card_node",
            ),
        ],
        namespace="deployment",
        tags=["deploy"],
        prefix_datasets_with_namespace=False,
    )
