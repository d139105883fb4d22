import pytest
import torch

from leak_detection.model.network import LeakCNNMulti, dropout, param_count, state_dict_sha256


def spec_param_count(n_classes, aux):
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
    assert param_count(binary) == spec_param_count(2, aux=False) == 617_730
    assert param_count(multi) == spec_param_count(5, aux=True) == 618_758


def assert_fast_path_gradients_match_the_spec_layers(model, x):
    """Under the same seed (so the same dropout masks), both paths give the same gradients."""
    grads = []
    for forward in (model.forward, model.forward_reference):
        model.zero_grad()
        torch.manual_seed(1)
        logits, aux = forward(x)
        loss = logits.square().mean() + (aux.square().mean() if aux is not None else 0.0)
        loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for g_fast, g_ref in zip(*grads, strict=True):
        torch.testing.assert_close(g_fast, g_ref, atol=1e-5, rtol=1e-4)


def test_fast_path_computes_the_spec_layers():
    torch.manual_seed(0)
    model = LeakCNNMulti(n_classes=5)
    model.set_normalisation(torch.randn(32), torch.rand(32) + 0.5)
    x = torch.randn(64, 1, 32, 1) * 10 - 40
    model.eval()
    fast, fast_aux = model(x)
    ref, ref_aux = model.forward_reference(x)
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast_aux, ref_aux, atol=1e-5, rtol=1e-5)
    # In training mode, same dropout masks give the same loss and the same gradients.
    assert_fast_path_gradients_match_the_spec_layers(model.train(), x)


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


def test_dropout_mask_has_the_distribution_of_nn_dropout():
    torch.manual_seed(0)
    x = torch.rand(400, 2048) + 0.5  # never zero, so a zero output means a dropped element
    for p in (0.1, 0.25, 0.5):
        ours, theirs = dropout(x, p, training=True), torch.nn.functional.dropout(x, p, training=True)
        n = x.numel()
        tolerance = 5 * (p * (1 - p) / n) ** 0.5  # five standard deviations of the dropped fraction
        for out in (ours, theirs):
            assert abs(float((out == 0).float().mean()) - p) < tolerance
            kept = out != 0
            # p is rounded to a multiple of 2**-16 for the mask (keep_mask), and the scale with it.
            torch.testing.assert_close(out[kept], x[kept] / (1 - p), rtol=1e-5, atol=0)
    assert dropout(x, 0.25, training=False) is x
    assert dropout(x, 0.0, training=True) is x


def test_training_relu_pool_matches_max_pool1d_of_relu_with_ties_zeros_and_odd_lengths():
    from leak_detection.model.network import _relu_pool_pairs

    torch.manual_seed(0)
    for length in (32, 16, 7):
        h = torch.randint(-3, 3, (64, 8, length)).float()  # small integers: many ties, zeros and negatives
        grad = torch.randn(64, 8, length // 2)
        ours = h.clone().requires_grad_()
        theirs = h.clone().requires_grad_()
        out_ours = _relu_pool_pairs(ours, training=True)
        out_theirs = torch.nn.functional.max_pool1d(torch.relu(theirs), 2)
        assert torch.equal(out_ours, out_theirs)
        out_ours.backward(grad)
        out_theirs.backward(grad)
        assert torch.equal(ours.grad, theirs.grad)  # a tie sends the gradient to the first of the pair


def test_repeat_and_dropout_in_one_pass_equals_repeat_then_dropout():
    from leak_detection.model.network import _RepeatRowsDropout

    x = torch.randn(128, 16, 8, 1)
    grad = torch.randn(128, 16 * 8 * 2)
    ours = x.clone().requires_grad_()
    reference = x.clone().requires_grad_()
    torch.manual_seed(3)
    out_ours = _RepeatRowsDropout.apply(ours, 2, 0.25)
    torch.manual_seed(3)
    out_reference = dropout(reference.repeat_interleave(2, dim=-2).flatten(1), 0.25, training=True)
    assert torch.equal(out_ours, out_reference)  # the same mask, the same numbers
    out_ours.backward(grad)
    out_reference.backward(grad)
    torch.testing.assert_close(ours.grad, reference.grad)


@pytest.mark.parametrize("n_mels", [16, 64])
def test_fast_training_path_matches_the_spec_layers_at_other_mel_counts(n_mels):
    # 16 mels pool to 4 rows (each repeated 4 times before fc), 64 mels to 16 rows (no repeat).
    torch.manual_seed(0)
    model = LeakCNNMulti(n_classes=2, n_mels=n_mels).train()
    assert_fast_path_gradients_match_the_spec_layers(model, torch.randn(32, 1, n_mels, 1))
