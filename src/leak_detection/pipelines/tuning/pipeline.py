from kedro.pipeline import Node, Pipeline

from .nodes import run_study, study_outcome


def create_pipeline(**kwargs) -> Pipeline:
    """The template; ``pipeline_registry`` instantiates it under each mode's namespace."""
    return Pipeline(
        [
            Node(
                func=run_study,
                inputs=[
                    "mel_features",
                    "file_targets",
                    "class_summary",
                    "tuning_storage",
                    "params:training",
                    "params:tuning",
                    "params:mode",
                ],
                outputs="tuning_study",
                name="run_study_node",
            ),
            Node(
                func=study_outcome,
                inputs=["tuning_study", "params:tuning", "params:mode"],
                outputs=["tuning_report", "tuning_report_md", "tuning_plots", "tuning_trials", "tuned_parameters"],
                name="study_outcome_node",
            ),
        ],
        namespace="tuning",
        prefix_datasets_with_namespace=False,
        tags=["tune"],
    )
