"""Batching is a speed setting only: probabilities, loss and accuracy do not depend on it."""

import numpy as np
import torch

from leak_detection.decisions.inference import CPU_MODEL_SLICE, predict_segments
from leak_detection.model.network import LeakCNNMulti
from leak_detection.training.loss import LeakLoss


def test_predictions_do_not_depend_on_the_batch_size():
    torch.manual_seed(0)
    model = LeakCNNMulti(n_classes=5).eval()
    n = CPU_MODEL_SLICE * 2 + 37  # more than one CPU slice, and a ragged last one
    x = torch.randn(n, 1, 32, 1) * 10 - 40
    y = torch.randint(0, 5, (n,))
    leak = (y == 0).float()
    loss = LeakLoss(class_weights=[1.0] * 5)
    blocks = [(x[:1500], y[:1500], leak[:1500]), (x[1500:], y[1500:], leak[1500:])]
    whole = predict_segments(model, blocks, leak_output_idx=0, batch_size=8192, loss_fn=loss)
    small = predict_segments(model, blocks, leak_output_idx=0, batch_size=7, loss_fn=loss)
    plain_layers = LeakCNNMulti(n_classes=5, fast_cpu_ops=False).eval()
    plain_layers.load_state_dict(model.state_dict())
    with torch.inference_mode():
        logits, _ = plain_layers(x)
    np.testing.assert_allclose(whole.class_probabilities, torch.softmax(logits, 1).numpy(), atol=1e-5)
    np.testing.assert_allclose(whole.class_probabilities, small.class_probabilities, atol=1e-6)
    np.testing.assert_allclose(whole.leak_probability, small.leak_probability, atol=1e-6)
    assert whole.accuracy == small.accuracy
    assert abs(whole.mean_loss - small.mean_loss) < 1e-5
    assert whole.leak_probability.shape == (n,)
