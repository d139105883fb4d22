from kedro.pipeline import Node, Pipeline

from .nodes import choose_rule, evaluated_files, evaluation_metrics, evaluation_plots, predict_files, score_segments


def create_pipeline(**kwargs) -> Pipeline:
    """The template; ``pipeline_registry`` instantiates it under each mode's namespace."""
    return Pipeline(
        [
            Node(
                func=evaluated_files,
                inputs=["model_meta", "mel_features", "file_targets", "params:evaluation"],
                outputs=["evaluated_targets", "split_check"],
                name="evaluated_files_node",
            ),
            Node(
                func=score_segments,
                inputs=["model", "model_meta", "mel_features", "evaluated_targets", "params:evaluation"],
                outputs="segment_scores",
                name="score_segments_node",
            ),
            Node(
                func=choose_rule,
                inputs=["segment_scores", "evaluated_targets", "model_meta"],
                outputs=["threshold_curve", "decision_rule"],
                name="choose_rule_node",
            ),
            Node(
                func=predict_files,
                inputs=["segment_scores", "evaluated_targets", "decision_rule", "model_meta"],
                outputs="file_predictions",
                name="predict_files_node",
            ),
            Node(
                func=evaluation_metrics,
                inputs=[
                    "file_predictions",
                    "segment_scores",
                    "decision_rule",
                    "split_check",
                    "model_meta",
                    "params:evaluation",
                ],
                outputs="evaluation_metrics",
                name="evaluation_metrics_node",
            ),
            Node(
                func=evaluation_plots,
                inputs=[
                    "file_predictions",
                    "segment_scores",
                    "threshold_curve",
                    "evaluation_metrics",
                    "training_history",
                    "model_meta",
                    "params:evaluation",
                ],
                outputs="evaluation_plots",
                name="evaluation_plots_node",
            ),
        ],
        namespace="evaluation",
        tags=["evaluate"],
        prefix_datasets_with_namespace=False,
    )
