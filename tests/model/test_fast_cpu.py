"""Each fast operation computes what the plain operation it replaces computes, gradients included."""

import torch
import torch.nn.functional as F

from leak_detection.model.fast_cpu import (
    LaneDropout,
    _RepeatRowsDropout,
    dropout,
    one_frame_convolutions,
    one_frame_fc,
    relu_pool_pairs,
)


def test_dropout_mask_has_the_distribution_of_nn_dropout():
    torch.manual_seed(0)
    x = torch.rand(400, 2048) + 0.5  # never zero, so a zero output means a dropped element
    for p in (0.1, 0.25, 0.5):
        ours, theirs = dropout(x, p, training=True), F.dropout(x, p, training=True)
        n = x.numel()
        tolerance = 5 * (p * (1 - p) / n) ** 0.5  # five standard deviations of the dropped fraction
        for out in (ours, theirs):
            assert abs(float((out == 0).float().mean()) - p) < tolerance
            kept = out != 0
            # p is rounded to a multiple of 2**-16 for the mask (keep_mask), and the scale with it.
            torch.testing.assert_close(out[kept], x[kept] / (1 - p), rtol=1e-5, atol=0)
    assert dropout(x, 0.25, training=False) is x
    assert dropout(x, 0.0, training=True) is x


def test_the_dropout_layer_is_nn_dropout_with_the_lane_mask():
    x = torch.randn(64, 2048)
    layer = LaneDropout(0.25)
    assert isinstance(layer, torch.nn.Dropout)
    torch.manual_seed(5)
    ours = layer(x)
    torch.manual_seed(5)
    assert torch.equal(ours, dropout(x, 0.25, training=True))
    assert layer.eval()(x) is x


def test_training_relu_pool_matches_max_pool1d_of_relu_with_ties_zeros_and_odd_lengths():
    torch.manual_seed(0)
    for length in (32, 16, 7):
        h = torch.randint(-3, 3, (64, 8, length)).float()  # small integers: many ties, zeros and negatives
        grad = torch.randn(64, 8, length // 2)
        ours = h.clone().requires_grad_()
        theirs = h.clone().requires_grad_()
        out_ours = relu_pool_pairs(ours, training=True)
        out_theirs = F.max_pool1d(torch.relu(theirs), 2)
        assert torch.equal(out_ours, out_theirs)
        out_ours.backward(grad)
        out_theirs.backward(grad)
        assert torch.equal(ours.grad, theirs.grad)  # a tie sends the gradient to the first of the pair


def test_repeat_and_dropout_in_one_pass_equals_repeat_then_dropout():
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


def test_one_frame_convolutions_equal_the_3x3_layers_in_training_and_eval():
    torch.manual_seed(0)
    convs = (
        torch.nn.Conv2d(1, 32, 3, padding=1),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.Conv2d(64, 128, 3, padding=1),
    )
    pool = torch.nn.MaxPool2d((2, 1))
    x = torch.randn(16, 1, 32, 1)
    for training in (True, False):
        plain = pool(F.relu(convs[2](pool(F.relu(convs[1](F.relu(convs[0](x))))))))
        fast = one_frame_convolutions(x, convs, training)
        torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
        plain_grads = torch.autograd.grad(plain.square().sum(), [c.weight for c in convs])
        fast_grads = torch.autograd.grad(fast.square().sum(), [c.weight for c in convs])
        for g_fast, g_plain in zip(fast_grads, plain_grads, strict=True):
            torch.testing.assert_close(g_fast, g_plain, atol=1e-4, rtol=1e-4)


def test_folded_fc_equals_fc_of_the_adaptive_pooling():
    torch.manual_seed(0)
    fc, pool, no_dropout = torch.nn.Linear(2048, 256), torch.nn.AdaptiveAvgPool2d((16, 1)), LaneDropout(0.25).eval()
    for rows in (4, 8, 16, 6):  # 6 does not divide 16: the adaptive pooling itself
        x = torch.randn(32, 128, rows, 1)
        torch.testing.assert_close(one_frame_fc(x, pool, no_dropout, fc), fc(pool(x).flatten(1)), atol=1e-5, rtol=1e-5)
