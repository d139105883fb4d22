import pytest
import torch

from leak_detection.model.network import LeakCNNMulti, param_count, state_dict_sha256


def expected_param_count(n_classes, aux):
    conv = lambda cin, cout: cout * (cin * 9 + 1)  # noqa: E731
    linear = lambda i, o: o * (i + 1)  # noqa: E731
    total = conv(1, 32) + conv(32, 64) + conv(64, 128) + linear(2048, 256) + linear(256, n_classes)
    return total + (linear(256, 1) if aux else 0)


def test_shapes_and_real_parameter_count_of_both_modes():
    x = torch.randn(7, 1, 32, 1)
    binary, multi = LeakCNNMulti(n_classes=2), LeakCNNMulti(n_classes=5)
    logits, aux = binary(x)
    assert logits.shape == (7, 2) and aux is None
    logits, aux = multi(x)
    assert logits.shape == (7, 5) and aux.shape == (7,)
    assert param_count(binary) == expected_param_count(2, aux=False) == 617_730
    assert param_count(multi) == expected_param_count(5, aux=True) == 618_758


def outputs_and_gradients(model, x, fast_cpu_ops):
    """Logits, aux and parameter gradients of one path, under seed 1 (so one dropout mask)."""
    model.fast_cpu_ops = fast_cpu_ops
    model.zero_grad()
    torch.manual_seed(1)
    logits, aux = model(x)
    loss = logits.square().mean() + (aux.square().mean() if aux is not None else 0.0)
    loss.backward()
    model.fast_cpu_ops = True
    return logits.detach(), aux, [p.grad.clone() for p in model.parameters()]


def assert_fast_path_matches_the_plain_layers(model, x):
    fast_logits, fast_aux, fast_grads = outputs_and_gradients(model, x, fast_cpu_ops=True)
    plain_logits, plain_aux, plain_grads = outputs_and_gradients(model, x, fast_cpu_ops=False)
    torch.testing.assert_close(fast_logits, plain_logits, atol=1e-5, rtol=1e-5)
    if fast_aux is not None:
        torch.testing.assert_close(fast_aux, plain_aux, atol=1e-5, rtol=1e-5)
    for g_fast, g_plain in zip(fast_grads, plain_grads, strict=True):
        torch.testing.assert_close(g_fast, g_plain, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_fast_path_computes_the_plain_layers_with_their_gradients(mode):
    torch.manual_seed(0)
    model = LeakCNNMulti(n_classes=5)
    model.set_normalisation(torch.randn(32), torch.rand(32) + 0.5)
    model.train(mode == "train")  # eval: fc folded; train: the same dropout masks in both paths
    assert_fast_path_matches_the_plain_layers(model, torch.randn(64, 1, 32, 1) * 10 - 40)


@pytest.mark.parametrize("n_mels", [16, 24, 64])
def test_fast_training_path_matches_the_plain_layers_at_other_mel_counts(n_mels):
    # 16 mels pool to 4 rows (each repeated 4 times before fc), 64 mels to 16 rows (no
    # repeat), 24 mels to 6 rows (no whole repeat: the adaptive pooling itself).
    torch.manual_seed(0)
    model = LeakCNNMulti(n_classes=2, n_mels=n_mels).train()
    assert_fast_path_matches_the_plain_layers(model, torch.randn(32, 1, n_mels, 1))


def test_the_fast_path_is_the_default_and_the_switch_is_not_saved():
    fast, plain = LeakCNNMulti(n_classes=5), LeakCNNMulti(n_classes=5, fast_cpu_ops=False)
    assert fast.fast_cpu_ops and not plain.fast_cpu_ops
    plain.load_state_dict(fast.state_dict())  # strict: the same keys either way
    assert list(plain.state_dict()) == list(fast.state_dict())


def test_with_the_switch_off_every_layer_runs_in_order():
    model = LeakCNNMulti(n_classes=5, fast_cpu_ops=False).train()
    called = []
    for name, layer in model.named_children():
        layer.register_forward_hook(lambda *_, name=name: called.append(name))
    model(torch.randn(4, 1, 32, 1))
    assert called == ["conv1", "conv2", "pool", "conv3", "pool", "adaptive_pool", "dropout", "fc", "head", "leak_aux"]


def test_wider_inputs_take_the_plain_layers_whatever_the_switch():
    torch.manual_seed(0)
    model, x = LeakCNNMulti(n_classes=2).train(), torch.randn(8, 1, 32, 3)
    fast_logits, _, fast_grads = outputs_and_gradients(model, x, fast_cpu_ops=True)
    plain_logits, _, plain_grads = outputs_and_gradients(model, x, fast_cpu_ops=False)
    assert fast_logits.shape == (8, 2) and torch.equal(fast_logits, plain_logits)
    assert all(torch.equal(a, b) for a, b in zip(fast_grads, plain_grads, strict=True))


def test_reference_readme_usage_works_on_a_saved_model(tmp_path):
    trained = LeakCNNMulti(n_classes=2)
    trained.set_normalisation(torch.full((32,), -40.0), torch.full((32,), 5.0))
    torch.save(trained.state_dict(), tmp_path / "best.pth")

    binary_model = LeakCNNMulti(n_classes=2)
    binary_model.load_state_dict(torch.load(tmp_path / "best.pth", weights_only=True))
    binary_model.eval()
    with torch.no_grad():
        logits, _ = binary_model(torch.randn(1, 1, 32, 1))
        probs = torch.softmax(logits, dim=1)
    assert probs.shape == (1, 2)
    assert torch.equal(binary_model.input_mean, trained.input_mean)  # normalisation travels with the weights
    assert state_dict_sha256(binary_model.state_dict()) == state_dict_sha256(trained.state_dict())


def test_a_checkpoint_of_the_other_mode_is_refused():
    multi = LeakCNNMulti(n_classes=5)
    try:
        LeakCNNMulti(n_classes=2).load_state_dict(multi.state_dict())
    except RuntimeError as err:
        assert "size mismatch" in str(err) or "Unexpected key" in str(err)
    else:
        raise AssertionError("strict loading must refuse a mismatched state_dict")
