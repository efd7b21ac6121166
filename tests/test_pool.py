"""core.pool: fast pooling against the loop twins, hand-worked windows, finite differences, padding."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient, relative_error
from textbook import pool_out

from core.pool import (
    avg_pool2d,
    avg_pool2d_backward,
    avg_pool2d_backward_naive,
    avg_pool2d_naive,
    max_pool2d,
    max_pool2d_backward,
    max_pool2d_backward_naive,
    max_pool2d_naive,
)

# (x shape, kernel, stride, padding, dilation, ceil_mode)
GRID = [
    ((1, 1, 4, 4), 2, None, 0, 1, False),
    ((2, 3, 7, 6), 3, 2, 1, 1, False),
    ((2, 3, 7, 6), 3, 2, 1, 1, True),
    ((1, 2, 5, 5), 2, 2, 1, 1, True),  # ceil-mode corner: the 4th window would start in the padding
    ((1, 2, 6, 6), 2, 2, 1, 1, True),
    ((1, 2, 9, 8), (3, 2), (2, 3), (1, 1), 1, True),
    ((1, 1, 9, 9), 3, 2, 1, 2, False),
    ((1, 1, 9, 10), 3, 2, 1, 2, True),
    ((2, 2, 5, 7), (2, 4), 1, (1, 2), 1, False),
    ((1, 1, 10, 10), 2, 3, 0, 1, True),  # stride larger than kernel
    ((1, 1, 1, 1), 1, 1, 0, 1, False),
]


def _x(shape, seed=0):
    # distinct values so the argmax is unique and finite differences never cross a tie
    rng = np.random.default_rng(seed)
    return rng.permutation(np.prod(shape)).reshape(shape) / 7.0 + rng.uniform(0, 0.01, shape)


@pytest.mark.parametrize("case", GRID)
def test_max_pool_equals_loops(case):
    shape, k, s, p, d, cm = case
    x = _x(shape)
    out, idx = max_pool2d(x, k, s, p, d, cm, return_indices=True)
    ref, ref_idx = max_pool2d_naive(x, k, s, p, d, cm)
    assert out.shape == ref.shape == (*shape[:2], *pool_out(shape[2:], k, s, p, d, cm))
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_array_equal(max_pool2d(x, k, s, p, d, cm), ref)
    # each index points at the value it reports
    flat = x.reshape(*shape[:2], -1)
    np.testing.assert_array_equal(
        np.take_along_axis(flat, idx.reshape(*shape[:2], -1), 2), out.reshape(*shape[:2], -1)
    )


@pytest.mark.parametrize("case", GRID)
def test_max_pool_backward_equals_loops(case):
    shape, k, s, p, d, cm = case
    x = _x(shape)
    grad = np.random.default_rng(1).standard_normal(max_pool2d(x, k, s, p, d, cm).shape)
    fast = max_pool2d_backward(grad, x, k, s, p, d, cm)
    np.testing.assert_allclose(fast, max_pool2d_backward_naive(grad, x, k, s, p, d, cm), atol=1e-12)
    _, idx = max_pool2d(x, k, s, p, d, cm, return_indices=True)
    np.testing.assert_allclose(max_pool2d_backward(grad, x, k, s, p, d, cm, indices=idx), fast, atol=1e-12)


AVG_GRID = [(shape, k, s, p, cm) for shape, k, s, p, d, cm in GRID if d == 1]


@pytest.mark.parametrize("case", AVG_GRID)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("divisor_override", [None, 3])
def test_avg_pool_equals_loops(case, count_include_pad, divisor_override):
    shape, k, s, p, cm = case
    x = _x(shape)
    args = (k, s, p, cm, count_include_pad, divisor_override)
    assert avg_pool2d(x, *args).shape == (*shape[:2], *pool_out(shape[2:], k, s, p, 1, cm))
    np.testing.assert_allclose(avg_pool2d(x, *args), avg_pool2d_naive(x, *args), atol=1e-12)
    grad = np.random.default_rng(1).standard_normal(avg_pool2d(x, *args).shape)
    np.testing.assert_allclose(
        avg_pool2d_backward(grad, x, *args), avg_pool2d_backward_naive(grad, x, *args), atol=1e-12
    )


@pytest.mark.parametrize("case", [GRID[1], GRID[3], GRID[5], GRID[7], GRID[8]])
def test_max_pool_finite_differences(case):
    shape, k, s, p, d, cm = case
    x = _x(shape, seed=2)
    grad = np.random.default_rng(3).standard_normal(max_pool2d(x, k, s, p, d, cm).shape)

    def loss():
        return float(np.sum(max_pool2d(x, k, s, p, d, cm) * grad))

    assert relative_error(numeric_gradient(loss, x), max_pool2d_backward(grad, x, k, s, p, d, cm)) < 1e-6


@pytest.mark.parametrize("case", [AVG_GRID[1], AVG_GRID[3], AVG_GRID[5], AVG_GRID[6]])
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool_finite_differences(case, count_include_pad):
    shape, k, s, p, cm = case
    x = _x(shape, seed=2)
    args = (k, s, p, cm, count_include_pad)
    grad = np.random.default_rng(3).standard_normal(avg_pool2d(x, *args).shape)

    def loss():
        return float(np.sum(avg_pool2d(x, *args) * grad))

    assert relative_error(numeric_gradient(loss, x), avg_pool2d_backward(grad, x, *args)) < 1e-6


def test_hand_worked_max_pool():
    x = np.array([[1.0, 3, 2, 4], [5, 6, 8, 7], [0, -1, 9, 9], [-3, -2, 1, 0]]).reshape(1, 1, 4, 4)
    out, idx = max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(out[0, 0], [[6, 8], [0, 9]])
    # ties go to the first maximum in scan order: the 9 at (2, 2) = index 10, not (2, 3) = 11
    np.testing.assert_array_equal(idx[0, 0], [[5, 6], [8, 10]])
    grad = max_pool2d_backward(np.ones((1, 1, 2, 2)), x, 2)
    expected = np.zeros((4, 4))
    expected[1, 1] = expected[1, 2] = expected[2, 0] = expected[2, 2] = 1
    np.testing.assert_array_equal(grad[0, 0], expected)


def test_max_pool_padding_never_wins():
    x = -np.ones((1, 1, 3, 3))
    out, idx = max_pool2d(x, 3, 1, 1, return_indices=True)
    np.testing.assert_array_equal(out, -np.ones((1, 1, 3, 3)))
    assert idx.min() >= 0 and idx.max() <= 8
    # overlapping windows sharing an argmax add their gradients
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    grad = max_pool2d_backward(np.ones((1, 1, 3, 3)), x, 3, 1, 1)
    assert grad[0, 0, 1, 1] == 9.0 and grad.sum() == 9.0


def test_hand_worked_avg_pool_with_padding():
    x = np.ones((1, 1, 2, 2))
    # 2x2 windows, stride 2, padding 1: each window holds one pixel and three padded zeros
    np.testing.assert_array_equal(avg_pool2d(x, 2, 2, 1)[0, 0], np.full((2, 2), 0.25))
    np.testing.assert_array_equal(avg_pool2d(x, 2, 2, 1, count_include_pad=False)[0, 0], np.ones((2, 2)))
    np.testing.assert_array_equal(avg_pool2d(x, 2, 2, 1, divisor_override=2)[0, 0], np.full((2, 2), 0.5))
    # ceil mode: 3 columns, kernel 2, stride 2 -> the last window hangs past the input and is clipped
    x = np.array([[[[2.0, 4.0, 6.0]]]])
    np.testing.assert_array_equal(avg_pool2d(x, (1, 2), (1, 2), ceil_mode=True)[0, 0], [[3.0, 6.0]])
    # gradient of the padded average: 1/4 to the single real pixel
    np.testing.assert_array_equal(
        avg_pool2d_backward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), 2, 2, 1)[0, 0],
        np.full((2, 2), 0.25),
    )


def test_mnist_pool_shape():
    assert max_pool2d(np.zeros((1, 30, 24, 24)), 2, 2).shape == (1, 30, 12, 12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = _x((1, 2, 6, 6)).astype(dtype)
    assert max_pool2d(x, 2).dtype == dtype
    assert max_pool2d(x, 3, 2, 1, return_indices=True)[0].dtype == dtype
    assert max_pool2d(x, 3, 2, 1, return_indices=True)[1].dtype == np.int64
    assert avg_pool2d(x, 2).dtype == dtype
    assert max_pool2d_backward(np.ones((1, 2, 3, 3), dtype), x, 2).dtype == dtype
    assert avg_pool2d_backward(np.ones((1, 2, 3, 3), dtype), x, 2).dtype == dtype
    assert max_pool2d(np.arange(16).reshape(1, 1, 4, 4), 2).dtype == np.float64


def test_nan_wins_max_pool():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    out, idx = max_pool2d(x, 2, return_indices=True)
    assert np.isnan(out[0, 0, 0, 0]) and idx[0, 0, 0, 0] == 1
    assert np.isnan(max_pool2d(x, 2)[0, 0, 0, 0])
    assert out[0, 0, 1, 1] == 15


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: max_pool2d(np.zeros((4, 4)), 2), r"x must have 4 dimensions"),
        (lambda: max_pool2d(np.zeros((1, 1, 4, 4)), 2, padding=2), r"at most half the kernel"),
        (lambda: max_pool2d(np.zeros((1, 1, 4, 4)), 2, stride=0), r"stride must be at least 1"),
        (lambda: max_pool2d(np.zeros((1, 1, 4, 4)), 5), r"pooling window 5 spans 5 pixels"),
        (lambda: avg_pool2d(np.zeros((1, 1, 4, 4)), 2, padding=-1), r"padding must be at least 0"),
        (
            lambda: avg_pool2d(np.zeros((1, 1, 4, 4)), 2, divisor_override=0),
            r"divisor_override must be a positive",
        ),
        (
            lambda: max_pool2d_backward(np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 4, 4)), 2),
            r"grad_out must have the pooled shape \(1, 1, 2, 2\)",
        ),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_ceil_mode_keeps_a_window_wider_than_the_padded_input() -> None:
    # Width 2, kernel width 3, stride 2, ceil_mode: PyTorch gives one output column, the window clipped to the
    # two real columns (its third tap falls past the end). Without ceil_mode there is no output at all.
    x = np.arange(10, dtype=np.float64).reshape(1, 1, 5, 2) * np.array([1.0, -1.0])
    assert max_pool2d(x, (1, 3), (1, 2), ceil_mode=True).shape == (1, 1, 5, 1)
    pooled_max = max_pool2d(x, (1, 3), (1, 2), ceil_mode=True)[0, 0, :, 0]
    pooled_avg = avg_pool2d(x, (1, 3), (1, 2), ceil_mode=True)[0, 0, :, 0]
    np.testing.assert_array_equal(pooled_max, x[0, 0].max(axis=1))
    np.testing.assert_array_equal(pooled_avg, x[0, 0].mean(axis=1))
    with pytest.raises(ValueError, match="spans 3 pixels but the padded input is only 2 wide"):
        max_pool2d(x, (1, 3), (1, 2))


def test_a_window_of_padding_only_is_minus_inf_and_passes_no_gradient():
    # rows: kernel 2, dilation 3, padding 1 on a height of 2 -> one window with taps at rows -1 and 2, both
    # outside the input; columns: kernel 1. Every window is padding only, in every channel and image.
    x = np.arange(2 * 3 * 2 * 3, dtype=np.float64).reshape(2, 3, 2, 3)
    out, idx = max_pool2d(x, (2, 1), stride=1, padding=(1, 0), dilation=(3, 1), return_indices=True)
    assert out.shape == (2, 3, 1, 3) and np.isneginf(out).all()
    assert ((idx < 0) | (idx >= 2 * 3)).all()  # no pixel of the plane is its argmax
    grad = max_pool2d_backward(np.ones(out.shape), x, (2, 1), 1, (1, 0), (3, 1))
    np.testing.assert_array_equal(grad, np.zeros(x.shape))
