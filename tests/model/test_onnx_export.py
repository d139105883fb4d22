import numpy as np
import torch

from leak_detection.model.network import LeakCNNMulti
from leak_detection.model.onnx_export import INPUT_NAME, export_onnx, onnx_session, parity
from tests.conftest import synthetic_store


def trained_like(n_classes):
    torch.manual_seed(n_classes)
    model = LeakCNNMulti(n_classes=n_classes)
    model.set_normalisation(torch.full((32,), -38.0), torch.full((32,), 4.0))
    return model.eval()


def real_like_features():
    store, _ = synthetic_store()
    return store.segments_mel.reshape(-1, 1, 32, 1)


def test_onnx_matches_pytorch_on_feature_batches_for_both_modes():
    features = real_like_features()
    for n_classes in (2, 5):
        model = trained_like(n_classes)
        report = parity(export_onnx(model, 32, 1), model, features, batch_size=97)
        assert report["samples_compared"] == features.shape[0]
        assert report["max_abs_diff_logits"] < 1e-4
        assert report["max_abs_diff_leak_aux"] < 1e-4


def test_onnx_has_a_dynamic_batch_axis_and_includes_normalisation():
    model = trained_like(5)
    session = onnx_session(export_onnx(model, 32, 1))
    for batch in (1, 3, 1000):
        x = np.full((batch, 1, 32, 1), -38.0, dtype=np.float32)
        logits, aux = session.run(None, {INPUT_NAME: x})
        assert logits.shape == (batch, 5) and aux.shape == (batch,)
        # Raw dB in, the model's own normalisation applied inside the graph.
        expected, _ = model(torch.from_numpy(x))
        np.testing.assert_allclose(logits, expected.detach().numpy(), atol=1e-4)
