"""core.conv: the GEMM convolution against its loop twin, hand-worked numbers, finite differences,
and the transposed convolution as the adjoint of the convolution."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import numeric_gradient, relative_error
from textbook import conv_out, padding_tblr, span, transpose_out

from core.conv import (
    ConvGemm,
    conv2d,
    conv2d_backward,
    conv2d_backward_naive,
    conv2d_gemm,
    conv2d_naive,
    conv_transpose2d,
    conv_transpose2d_naive,
)
from core.im2col import im2col

# (x shape, weight shape, stride, padding, dilation, groups)
GRID = [
    ((1, 1, 5, 5), (1, 1, 3, 3), 1, 0, 1, 1),
    ((2, 3, 7, 6), (4, 3, 3, 3), 2, 1, 1, 1),  # stride 2 does not fit the width
    ((1, 2, 8, 9), (3, 2, 2, 3), (3, 2), 0, 1, 1),  # rectangular kernel and stride
    ((2, 2, 6, 7), (2, 2, 3, 3), 1, "same", 1, 1),
    ((1, 3, 7, 8), (2, 3, 3, 2), 2, "same", 1, 1),  # TF-style asymmetric 'same' with stride
    ((1, 2, 9, 9), (2, 2, 3, 3), 2, "same", 2, 1),
    ((1, 2, 4, 5), (3, 2, 3, 3), 1, "full", 1, 1),
    ((2, 1, 6, 6), (2, 1, 2, 2), 1, (0, 1, 2, 0), 1, 1),  # asymmetric explicit
    ((1, 2, 9, 7), (2, 2, 3, 2), (2, 3), (1, 0, 0, 2), (2, 1), 1),
    ((1, 4, 6, 6), (6, 2, 3, 3), 1, 1, 1, 2),  # groups
    ((2, 3, 6, 5), (3, 1, 3, 3), 2, "same", 1, 3),  # depthwise
    ((1, 4, 7, 7), (8, 1, 2, 2), 1, "valid", 2, 4),  # depthwise multiplier 2, dilated
    ((1, 1, 10, 10), (1, 1, 3, 3), 4, "valid", 1, 1),  # stride larger than kernel
    ((1, 2, 7, 6), (2, 2, 3, 1), (1, 2), "valid", 1, 1),  # 'valid' with a non-square kernel
    ((1, 1, 5, 6), (1, 1, 2, 3), 2, "full", (1, 2), 1),  # 'full' with unequal dilations
    ((1, 1, 8, 7), (2, 1, 3, 2), (3, 2), "same", (2, 1), 1),  # 'same', stride 3 rows: ceil(8 / 3)
]


def _data(case, seed=0, dtype=np.float64):
    xs, ws, *_ = case
    rng = np.random.default_rng(seed)
    return (
        rng.standard_normal(xs).astype(dtype),
        rng.standard_normal(ws).astype(dtype),
        rng.standard_normal(ws[0]).astype(dtype),
    )


@pytest.mark.parametrize("case", GRID)
def test_conv2d_equals_loops(case):
    x, w, b = _data(case)
    xs, ws, s, p, d, g = case
    expected_shape = (xs[0], ws[0], *conv_out(xs[2:], ws[2:], s, p, d))
    assert conv2d(x, w, b, s, p, d, g).shape == conv2d_naive(x, w, b, s, p, d, g).shape == expected_shape
    np.testing.assert_allclose(conv2d(x, w, b, s, p, d, g), conv2d_naive(x, w, b, s, p, d, g), atol=1e-12)
    np.testing.assert_allclose(
        conv2d(x, w, None, s, p, d, g), conv2d_naive(x, w, None, s, p, d, g), atol=1e-12
    )


@pytest.mark.parametrize("case", GRID)
def test_conv2d_gemm_pieces(case):
    x, w, b = _data(case)
    xs, ws, s, p, d, g = case
    gemm = conv2d_gemm(x, w, b, s, p, d, g)
    assert isinstance(gemm, ConvGemm)
    n, c = xs[:2]
    f, cg, kh, kw = ws
    oh, ow = gemm.geometry.window.output
    assert gemm.w_col.shape == (g, f // g, cg * kh * kw)
    assert gemm.x_col.shape == (n, c * kh * kw, oh * ow)
    assert gemm.product.shape == (n, f, oh * ow)
    np.testing.assert_array_equal(gemm.x_col, im2col(x, (kh, kw), s, p, d))
    # product is W_col · X_col per group, without the bias
    for group in range(g):
        rows = slice(group * cg * kh * kw, (group + 1) * cg * kh * kw)
        filters = slice(group * f // g, (group + 1) * f // g)
        np.testing.assert_allclose(
            gemm.product[:, filters], gemm.w_col[group] @ gemm.x_col[:, rows], atol=1e-12
        )
    np.testing.assert_allclose(gemm.output, conv2d(x, w, b, s, p, d, g), atol=1e-12)
    np.testing.assert_allclose(gemm.output, gemm.product.reshape(n, f, oh, ow) + b[:, None, None], atol=1e-12)


@pytest.mark.parametrize("case", GRID)
def test_conv2d_backward_equals_loops(case):
    x, w, _ = _data(case)
    _, _, s, p, d, g = case
    out = conv2d(x, w, None, s, p, d, g)
    grad = np.random.default_rng(9).standard_normal(out.shape)
    for fast, slow in zip(
        conv2d_backward(grad, x, w, s, p, d, g), conv2d_backward_naive(grad, x, w, s, p, d, g), strict=True
    ):
        assert fast.shape == slow.shape
        np.testing.assert_allclose(fast, slow, atol=1e-12)


FD_CASES = [GRID[1], GRID[4], GRID[5], GRID[7], GRID[9], GRID[10]]


@pytest.mark.parametrize("case", FD_CASES)
def test_conv2d_finite_differences(case):
    x, w, b = _data(case, seed=4)
    _, _, s, p, d, g = case
    grad = np.random.default_rng(5).standard_normal(conv2d(x, w, b, s, p, d, g).shape)

    def loss():
        return float(np.sum(conv2d(x, w, b, s, p, d, g) * grad))

    grad_x, grad_w, grad_b = conv2d_backward(grad, x, w, s, p, d, g)
    assert relative_error(numeric_gradient(loss, x), grad_x) < 1e-6
    assert relative_error(numeric_gradient(loss, w), grad_w) < 1e-6
    assert relative_error(numeric_gradient(loss, b), grad_b) < 1e-6


def test_hand_worked_convolution():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])  # x[r, c] - x[r+1, c+1] = -5 everywhere
    np.testing.assert_array_equal(conv2d(x, w), np.full((1, 1, 3, 3), -5.0))
    # a 3x3 box sum with padding 1 on a 3x3 of ones counts the neighbours
    ones = np.ones((1, 1, 3, 3))
    np.testing.assert_array_equal(
        conv2d(ones, np.ones((1, 1, 3, 3)), padding=1)[0, 0], [[4, 6, 4], [6, 9, 6], [4, 6, 4]]
    )
    # cross-correlation, not convolution: the kernel is not flipped
    impulse = np.zeros((1, 1, 3, 3))
    impulse[0, 0, 1, 1] = 1.0
    k = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    np.testing.assert_array_equal(conv2d(impulse, k, padding=1)[0, 0], k[0, 0, ::-1, ::-1])
    # bias is added per filter
    out = conv2d(ones, np.ones((2, 1, 3, 3)), np.array([10.0, -1.0]))
    assert out[0, :, 0, 0].tolist() == [19.0, 8.0]


def test_textbook_shapes():
    x = np.zeros((1, 3, 32, 32), dtype=np.float32)
    w = np.zeros((16, 3, 3, 3), dtype=np.float32)
    assert conv2d(x, w, padding="same").shape == (1, 16, 32, 32)
    assert conv2d(x, w, padding="valid").shape == (1, 16, 30, 30)
    assert conv2d_gemm(x, w, padding="valid").x_col.shape == (1, 27, 900)
    assert conv2d(x, w, stride=2, padding="valid").shape == (1, 16, 15, 15)
    assert conv2d_gemm(x, w, stride=2).x_col.shape == (1, 27, 225)
    assert conv2d(np.zeros((1, 1, 28, 28)), np.zeros((30, 1, 5, 5))).shape == (1, 30, 24, 24)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x, w, b = _data(GRID[1], dtype=dtype)
    assert conv2d(x, w, b, 2, 1).dtype == dtype
    assert conv2d_gemm(x, w, b, 2, 1).output.dtype == dtype
    out = conv2d(x, w, b, 2, 1)
    assert all(a.dtype == dtype for a in conv2d_backward(out, x, w, 2, 1))
    assert conv_transpose2d(out, w, None, 2, 1).dtype == dtype


def test_float32_matches_float64_closely_and_integers_become_float64():
    x, w, b = _data(GRID[2])
    _, _, s, p, d, g = GRID[2]
    np.testing.assert_allclose(
        conv2d(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32), s, p, d, g),
        conv2d(x, w, b, s, p, d, g),
        rtol=1e-5,
        atol=1e-5,
    )
    xi = np.arange(25).reshape(1, 1, 5, 5)
    wi = np.ones((1, 1, 3, 3), dtype=np.int32)
    out = conv2d(xi, wi)
    assert out.dtype == np.float64
    assert out[0, 0, 0, 0] == 0 + 1 + 2 + 5 + 6 + 7 + 10 + 11 + 12


def test_nan_propagates_only_to_windows_that_read_it():
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 0, 0] = np.nan
    out = conv2d(x, np.ones((1, 1, 2, 2)))
    assert np.isnan(out[0, 0, 0, 0]) and np.isnan(out).sum() == 1


def test_backward_is_pure():
    x, w, _ = _data(GRID[1])
    w_before, x_before = w.copy(), x.copy()
    grad = np.ones(conv2d(x, w, None, 2, 1).shape)
    conv2d_backward(grad, x, w, 2, 1)
    np.testing.assert_array_equal(w, w_before)
    np.testing.assert_array_equal(x, x_before)


# ---- transposed convolution -----------------------------------------------------------------------

# (x shape (N, C_in, H, W), weight (C_in, C_out/g, KH, KW), stride, padding, output_padding, dilation, groups)
TRANSPOSE_GRID = [
    ((1, 1, 3, 3), (1, 1, 3, 3), 1, 0, 0, 1, 1),
    ((2, 3, 4, 5), (3, 2, 3, 3), 2, 1, 1, 1, 1),
    ((1, 2, 3, 4), (2, 3, 2, 3), (2, 3), (0, 1), (1, 2), 1, 1),
    ((1, 4, 4, 4), (4, 2, 3, 3), 2, 0, 0, 1, 2),
    ((2, 3, 3, 3), (3, 1, 3, 3), 1, 1, 0, 2, 3),
    ((1, 2, 4, 3), (2, 2, 3, 2), 1, 0, (2, 1), (3, 2), 1),  # output_padding < dilation, > stride
    ((1, 2, 5, 5), (2, 1, 4, 4), 3, 2, 2, 1, 1),
]


def _transpose_data(case, seed=0):
    xs, ws, *_ = case
    rng = np.random.default_rng(seed)
    c_out = ws[1] * case[6]
    return rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(c_out)


@pytest.mark.parametrize("case", TRANSPOSE_GRID)
def test_conv_transpose2d_equals_loops(case):
    x, w, b = _transpose_data(case)
    xs, ws, s, p, op, d, g = case
    out = conv_transpose2d(x, w, b, s, p, op, d, g)
    assert out.shape == (xs[0], ws[1] * g, *transpose_out(xs[2:], ws[2:], s, p, op, d))
    np.testing.assert_allclose(out, conv_transpose2d_naive(x, w, b, s, p, op, d, g), atol=1e-12)


@pytest.mark.parametrize("case", TRANSPOSE_GRID)
def test_conv_transpose2d_is_the_adjoint_of_conv2d(case):
    """<conv_transpose(x), y> = <x, conv2d(y)> with the same weight, and d/dx is conv2d, d/dW is
    conv2d_backward's weight gradient: checked by finite differences."""
    x, w, _ = _transpose_data(case, seed=1)
    _, _, s, p, op, d, g = case
    out = conv_transpose2d(x, w, None, s, p, op, d, g)
    y = np.random.default_rng(2).standard_normal(out.shape)
    # with output_padding >= stride (allowed when the dilation is larger) the convolution of the
    # output has more windows than x has pixels; x pairs with the first ones
    conv_of_y = conv2d(y, w, None, s, p, d, g)[:, :, : x.shape[2], : x.shape[3]]
    assert conv_of_y.shape == x.shape
    assert float(np.sum(out * y)) == pytest.approx(float(np.sum(x * conv_of_y)), rel=1e-10)

    def loss():
        return float(np.sum(conv_transpose2d(x, w, None, s, p, op, d, g) * y))

    assert relative_error(numeric_gradient(loss, x), conv_of_y) < 1e-6
    full = conv2d(y, w, None, s, p, d, g)
    grad_out = np.zeros(full.shape)
    grad_out[:, :, : x.shape[2], : x.shape[3]] = x
    grad_w = conv2d_backward(grad_out, y, w, s, p, d, g)[1]
    assert relative_error(numeric_gradient(loss, w), grad_w) < 1e-6


@pytest.mark.parametrize("case", [GRID[1], GRID[2], GRID[9], GRID[11], GRID[12]])
def test_backward_grad_x_is_a_transposed_convolution(case):
    x, w, _ = _data(case)
    xs, ws, s, p, d, g = case
    out = conv2d(x, w, None, s, p, d, g)
    grad = np.random.default_rng(3).standard_normal(out.shape)
    grad_x = conv2d_backward(grad, x, w, s, p, d, g)[0]
    # (symmetric padding only) the rows/columns the stride leaves unread come back as output_padding
    top, bottom, left, right = padding_tblr(p, xs[2:], ws[2:], s, d)
    pad = (top, left)
    (sh, sw), (dh, dw) = ((s, s) if isinstance(s, int) else s), ((d, d) if isinstance(d, int) else d)
    op = ((xs[2] + top + bottom - span(ws[2], dh)) % sh, (xs[3] + left + right - span(ws[3], dw)) % sw)
    np.testing.assert_allclose(conv_transpose2d(grad, w, None, s, pad, op, d, g), grad_x, atol=1e-12)


def test_conv_transpose_hand_worked():
    # stride 2 upsampling of a 2x2 input with a 2x2 kernel of ones: each pixel becomes a 2x2 block
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    out = conv_transpose2d(x, np.ones((1, 1, 2, 2)), stride=2)
    np.testing.assert_array_equal(out[0, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    # stride 1, 2x2 ones: overlapping blocks add
    out = conv_transpose2d(x, np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(out[0, 0], [[1, 3, 2], [4, 10, 6], [3, 7, 4]])


# ---- bad arguments ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: conv2d(np.zeros((1, 5, 5)), np.zeros((1, 1, 3, 3))), r"x must have 4 dimensions"),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 3, 3))), r"weight must have 4 dimensions"),
        (lambda: conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 2, 3, 3))), r"weight has 2 input channels"),
        (
            lambda: conv2d(np.zeros((1, 3, 5, 5)), np.zeros((2, 1, 3, 3)), groups=2),
            r"groups \(2\) must divide",
        ),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 6, 6))), r"kernel 6 spans 6 pixels"),
        (
            lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), stride=0),
            r"stride must be at least 1",
        ),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding=-2), "cannot be negative"),
        (lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3)), padding="half"), "unknown padding"),
        (
            lambda: conv2d(np.zeros((1, 1, 5, 5)), np.zeros((2, 1, 3, 3)), np.zeros(3)),
            r"bias must have shape \(2,\)",
        ),
        (
            lambda: conv2d_backward(np.zeros((1, 1, 2, 2)), np.zeros((1, 1, 5, 5)), np.zeros((1, 1, 3, 3))),
            r"grad_out must have the output shape \(1, 1, 3, 3\)",
        ),
        (lambda: conv_transpose2d(np.zeros((1, 2, 3, 3)), np.zeros((3, 1, 3, 3))), r"has 3 input channels"),
        (
            lambda: conv_transpose2d(
                np.zeros((1, 1, 3, 3)), np.zeros((1, 1, 3, 3)), stride=2, output_padding=2
            ),
            r"output_padding 2 .* smaller than the stride",
        ),
        (lambda: conv_transpose2d(np.zeros((1, 3, 3, 3)), np.zeros((3, 1, 3, 3)), groups=2), r"groups"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# ---- the tiled backward pass and the bias-in-the-product forward path ------------------------------


@pytest.mark.parametrize("tile_bytes", [1, 2000, 50_000])
@pytest.mark.parametrize("case", [GRID[1], GRID[4], GRID[8], GRID[9], GRID[11]])
def test_tiled_forward_and_backward_equal_loops(monkeypatch, tile_bytes, case):
    """Tiny tiles force one image per tile (1, 2000) or several (50 000) in the backward pass."""
    import core.conv

    monkeypatch.setattr(core.conv, "TILE_BYTES", tile_bytes)
    x, w, b = _data(case, seed=11)
    x = np.concatenate([x, x[:, ::-1] * 0.5, x + 1.0])  # a few more images for the image tiles
    _, _, s, p, d, g = case
    out = conv2d(x, w, b, s, p, d, g)
    np.testing.assert_allclose(out, conv2d_naive(x, w, b, s, p, d, g), atol=1e-12)
    grad = np.random.default_rng(12).standard_normal(out.shape)
    for fast, slow in zip(
        conv2d_backward(grad, x, w, s, p, d, g), conv2d_backward_naive(grad, x, w, s, p, d, g), strict=True
    ):
        np.testing.assert_allclose(fast, slow, atol=1e-12)


def test_conv2d_gemm_without_bias_owns_its_output_and_honours_the_method():
    x, w, _ = _data(GRID[1])
    gemm = conv2d_gemm(x, w, None, 2, 1)
    np.testing.assert_allclose(gemm.output, conv2d_naive(x, w, None, 2, 1), atol=1e-12)
    assert gemm.output.shape == (2, 4, *conv_out((7, 6), 3, 2, 1))
    assert not np.shares_memory(gemm.output, gemm.product)  # the product stays as it was shown
    for method in ("view", "indices", "windows"):
        np.testing.assert_array_equal(conv2d_gemm(x, w, None, 2, 1, method=method).x_col, gemm.x_col)
    with pytest.raises(ValueError, match="unknown im2col method 'fast'"):
        conv2d_gemm(x, w, None, 2, 1, method="fast")


@pytest.mark.parametrize(("x_dtype", "w_dtype"), [(np.float32, np.float64), (np.float64, np.float32)])
def test_mixed_float_dtypes_are_computed_in_float64(x_dtype, w_dtype):
    """float32 with float64 is promoted to float64 (the module's dtype rule), the bias with them: a 1×1
    kernel of 0.1 and a bias of 0.1 give 0.1·x + 0.1 to float64 precision (a float32 bias would be off by
    1.5e-9, a float32 product by 1e-8 relative)."""
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=x_dtype)  # exact in both dtypes
    w = np.full((1, 1, 1, 1), 0.1, dtype=w_dtype)
    out = conv2d(x, w, np.array([0.1]))
    assert out.dtype == np.float64
    tap = float(w_dtype(0.1))  # the weight as given
    expected = [[tap * 1.0 + 0.1, tap * 2.0 + 0.1], [tap * 3.0 + 0.1, tap * 4.0 + 0.1]]
    np.testing.assert_allclose(out[0, 0], expected, rtol=1e-13, atol=0)
    grads = conv2d_backward(np.ones((1, 1, 2, 2)), x, w)
    assert [g.dtype for g in grads] == [np.float64] * 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_taps_that_read_only_padding_add_nothing(dtype):
    """A 5×5 kernel of ones, stride 2, padding 2 on a 2×2 input: one window (rows and columns −2…2)
    holding the four pixels, so the output is their sum plus the bias. The taps at rows or columns −2,
    −1 and 2 read only padding: zeros, whatever the buffer held before."""
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]], dtype=dtype)
    out = conv2d(x, np.ones((1, 1, 5, 5), dtype=dtype), np.array([0.5], dtype=dtype), stride=2, padding=2)
    assert out.shape == (1, 1, 1, 1) and out.dtype == dtype
    assert out[0, 0, 0, 0] == 1 + 2 + 3 + 4 + 0.5


@pytest.mark.parametrize("bias", [None, [0.5]])
def test_a_tap_above_the_input_for_every_window_with_a_large_stride(bias):
    """6 × 1 input [1 … 6], kernel 6 × 1 of ones, stride (3, 2), padding 2 on top: one window, rows −2…3,
    so the taps at rows −2 and −1 read padding for every window and x[0] … x[3] are summed: 10. (A strided
    slice for the first tap, had it not been skipped, would start at row 1 and hold rows 1 and 4.)"""
    x = np.arange(1.0, 7.0).reshape(1, 1, 6, 1)
    out = conv2d(x, np.ones((1, 1, 6, 1)), bias, stride=(3, 2), padding=(2, 0, 0, 0))
    assert out.shape == (1, 1, 1, 1)
    assert out[0, 0, 0, 0] == 10.0 + (0.0 if bias is None else 0.5)
    np.testing.assert_array_equal(im2col(x, (6, 1), (3, 2), (2, 0, 0, 0))[0, :, 0], [0, 0, 1, 2, 3, 4])
