from kedro.pipeline import Node, Pipeline

from .nodes import extract_features, index_recordings, label_recordings


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                func=label_recordings,
                inputs=["recordings", "params:label_mapping"],
                outputs="labelled_recordings",
                name="label_recordings_node",
            ),
            Node(
                func=extract_features,
                inputs=["recordings", "labelled_recordings", "params:front_end", "params:extraction"],
                outputs=["mel_features", "rejected_recordings"],
                name="extract_features_node",
            ),
            Node(
                func=index_recordings,
                inputs=["mel_features", "params:splits", "params:label_mapping"],
                outputs="recordings_index",
                name="index_recordings_node",
            ),
        ],
        namespace="feature_extraction",
        prefix_datasets_with_namespace=False,
    )
