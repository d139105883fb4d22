"""The roofline's analytic FLOP count agrees with PyTorch's own counter."""

from bench.training import BACKWARD_FACTOR, MULTIPLY_ADD_LAYERS, fast_path_forward_flops, torch_counted_flops
from leak_detection.model.network import LeakCNNMulti


def test_multiply_adds_match_torch_flop_counter():
    for n_classes in (2, 5):
        model = LeakCNNMulti(n_classes=n_classes)
        analytic = fast_path_forward_flops(model, n_mels=32)
        counted = torch_counted_flops(model, n_mels=32)
        assert sum(analytic[k] for k in MULTIPLY_ADD_LAYERS if k in analytic) == counted["forward"]
        # Backward costs twice the forward, less the input gradient of the first layer.
        ratio = counted["forward_backward"] / counted["forward"]
        assert BACKWARD_FACTOR - 0.05 < ratio <= BACKWARD_FACTOR


def test_elementwise_work_is_a_small_share():
    flops = fast_path_forward_flops(LeakCNNMulti(n_classes=2), n_mels=32)
    elementwise = sum(v for k, v in flops.items() if k not in MULTIPLY_ADD_LAYERS)
    assert elementwise < 0.01 * sum(flops.values())
