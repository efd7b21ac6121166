"""Small contracts of core/ that the larger tests pass over: defaults, dtypes, argument checks and their
sentences, the worked pooling steps. Each was a surviving mutant in `make mutate` (docs/mutation.md); the
expected numbers are worked out here by hand or with tests/textbook.py."""

from __future__ import annotations

import numpy as np
import pytest
from textbook import pool_out

from core.conv import conv_transpose2d
from core.im2col import col2im
from core.pool import PoolGeometry, avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from core.shapes import (
    ceil_div,
    conv_output_size,
    conv_transpose_output_size,
    explain_conv_transpose,
    explain_pool,
    pool_output_size,
)

# ------------------------------------------------------------------------------------------ max pool backward


def test_max_pool_backward_defaults_to_floor_mode():
    """5×5, kernel 2: floor mode pools to 2×2 (ceil mode: 3×3); the last row and column get nothing."""
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    grad = max_pool2d_backward(np.ones((1, 1, 2, 2)), x, 2)
    expected = np.zeros((5, 5))
    expected[[1, 1, 3, 3], [1, 3, 1, 3]] = 1.0  # the maximum of each window is its bottom-right pixel
    np.testing.assert_array_equal(grad[0, 0], expected)


def test_max_pool_backward_takes_indices_of_any_integer_like_type():
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6)).astype(np.float32)
    _, idx = max_pool2d(x, 2, return_indices=True)
    grad = np.random.default_rng(1).standard_normal((2, 3, 3, 3)).astype(np.float32)
    reference = max_pool2d_backward(grad, x, 2)
    assert reference.dtype == np.float32
    for indices in (idx, idx.astype(np.int32), idx.astype(np.float64), idx.tolist()):
        np.testing.assert_array_equal(max_pool2d_backward(grad, x, 2, indices=indices), reference)
    with pytest.raises(
        ValueError, match=r"^indices must have the pooled shape \(2, 3, 3, 3\), got \(2, 3, 9\)$"
    ):
        max_pool2d_backward(grad, x, 2, indices=idx.reshape(2, 3, 9))


# ----------------------------------------------------------------------------------------------- col2im


def test_col2im_names_its_arguments_in_refusals():
    with pytest.raises(ValueError, match=r"^cols must hold real numbers, got dtype complex128$"):
        col2im(np.zeros((1, 9, 9), dtype=complex), (1, 1, 5, 5), 3)
    with pytest.raises(
        ValueError, match=r"^input_shape must have 4 dimensions \(N, C, H, W\), got \(5, 5\)$"
    ):
        col2im(np.zeros((1, 9, 9)), (5, 5), 3)


# ------------------------------------------------------------------------------------ transposed convolution


def test_conv_transpose_keeps_float32_with_a_bias():
    x = np.ones((1, 2, 3, 3), dtype=np.float32)
    out = conv_transpose2d(x, np.ones((2, 1, 2, 2), dtype=np.float32), np.array([0.5], dtype=np.float32))
    assert out.dtype == np.float32
    assert out[0, 0, 0, 0] == np.float32(2.5)  # one tap of each of the two input channels, plus the bias


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"groups": 0}, r"^groups \(0\) must be a positive int dividing the input channels \(2\)$"),
        ({"groups": True}, r"^groups \(True\) must be a positive int"),
        ({"groups": 2.0}, r"^groups \(2\.0\) must be a positive int"),
        ({"groups": 3}, r"^groups \(3\) must be a positive int dividing the input channels \(2\)$"),
        ({"padding": -1}, r"^padding must be at least 0, got -1$"),
        ({"padding": "same"}, r"^padding must be an int or a \(height, width\) pair of ints, got 'same'$"),
    ],
)
def test_conv_transpose_refusals(kwargs, message):
    with pytest.raises(ValueError, match=message):
        conv_transpose2d(np.zeros((1, 2, 3, 3)), np.zeros((2, 1, 3, 3)), **kwargs)


# ------------------------------------------------------------------------------------------ shape functions


def test_conv_output_size_of_a_square_input_is_its_height():
    # an int input is a square problem; a (3, 1) kernel on 7×7 gives 5 rows and 7 columns: the int is the rows
    assert conv_output_size(7, (3, 1)) == 5
    assert conv_output_size((7, 7), (3, 1)) == (5, 7)
    assert conv_output_size(7, 3, dilation=2) == 3  # span 5
    assert conv_output_size(9, 3, 2, 1, 2) == 4  # floor((9 + 2 − 5) / 2) + 1


def test_conv_transpose_output_size_defaults_and_refusals():
    assert conv_transpose_output_size(4, 3) == 6  # (4 − 1)·1 − 0 + 3 + 0
    assert conv_transpose_output_size((4, 2), (3, 1)) == (6, 2)
    for kwargs, message in (
        ({"input_size": 0, "kernel_size": 3}, r"^input size must be at least 1, got 0$"),
        ({"input_size": 4, "kernel_size": 0}, r"^kernel_size must be at least 1, got 0$"),
        ({"input_size": "4", "kernel_size": 3}, r"^input size must be an int"),
        ({"input_size": 4, "kernel_size": "3"}, r"^kernel_size must be an int"),
    ):
        with pytest.raises(ValueError, match=message):
            conv_transpose_output_size(**kwargs)


def test_explain_conv_transpose_names_an_int_dilation_in_its_refusal():
    with pytest.raises(ValueError, match=r"^dilation must be at least 1, got 0$"):
        explain_conv_transpose((1, 1, 3, 3), (1, 1, 3, 3), dilation=0)


def test_ceil_div():
    assert [ceil_div(a, 3) for a in (-4, -3, 0, 1, 3, 4, 6, 7)] == [-1, -1, 0, 1, 1, 2, 2, 3]
    assert isinstance(ceil_div(7, 2), int)


# ------------------------------------------------------------------------------------ the worked pool steps


def test_explain_pool_ceil_mode_keeps_a_partial_window():
    # 7 wide, kernel 2, stride 2: floor gives 3, ceil gives 4 (the 4th window starts at 6 < 7 and is kept)
    e = explain_pool((1, 1, 7, 7), 2, 2, 0, 1, True)
    assert e.output_shape == (1, 1, 4, 4) == (1, 1, *pool_out((7, 7), 2, 2, 0, 1, True))
    assert [s.value for s in e.steps] == [4, 4] and e.warnings == []


def test_explain_pool_steps_and_warnings_per_axis():
    """8 × 9, kernel (3, 2), stride 2, padding 1, dilation (2, 1), floor mode:
    rows: span 5, (8 + 2 − 5) = 5 → floor(5 / 2) + 1 = 3 with 1 row left over;
    columns: span 2, (9 + 2 − 2) = 9 → floor(9 / 2) + 1 = 5 with 1 column left over."""
    e = explain_pool((1, 1, 8, 9), (3, 2), 2, 1, (2, 1))
    assert e.output_shape == (1, 1, 3, 5) == (1, 1, *pool_out((8, 9), (3, 2), 2, 1, (2, 1)))
    assert [(s.quantity, s.formula, s.substituted, s.value) for s in e.steps] == [
        ("pooled height", "floor((H + 2·pad − k_eff) / s) + 1", "floor((8 + 2·1 − 5) / 2) + 1", 3),
        ("pooled width", "floor((W + 2·pad − k_eff) / s) + 1", "floor((9 + 2·1 − 2) / 2) + 1", 5),
    ]
    assert e.warnings == [
        "pool stride 2 does not fit the height: the last 1 of 10 padded rows are dropped "
        "(ceil_mode would keep a partial window)",
        "pool stride 2 does not fit the width: the last 1 of 11 padded columns are dropped "
        "(ceil_mode would keep a partial window)",
    ]


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "dropped"),
    [
        (7, 2, 3, 0, 2),  # windows start at 0 and 3 and cover rows 0–4: rows 5 and 6 are dropped
        (8, 3, 3, 1, 1),  # 10 padded rows, windows at 0, 3 and 6 cover rows 0–8: row 9 is dropped
    ],
)
def test_explain_pool_counts_the_rows_after_the_last_window(size, kernel, stride, padding, dropped):
    e = explain_pool((1, 1, size, 1), (kernel, 1), (stride, 1), (padding, 0))
    assert e.output_shape[2] == pool_out((size, 1), (kernel, 1), (stride, 1), (padding, 0), 1, False)[0]
    assert e.warnings == [
        f"pool stride {stride} does not fit the height: the last {dropped} of {size + 2 * padding} padded "
        "rows are dropped (ceil_mode would keep a partial window)"
    ]


def test_pool_geometry_carries_ceil_mode_to_rerun_the_pool():
    """core.algorithms re-runs the pool from a PoolGeometry's fields, ceil_mode among them. 5 wide,
    kernel 2, stride 2: ceil mode keeps a third, partial window (it starts at 4 < 5); floor pools to 2."""
    g = PoolGeometry((5, 5), 2, None, 0, 1, True)
    assert g.ceil_mode is True
    assert g.output == pool_out((5, 5), 2, 2, 0, 1, True) == (3, 3)
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    out = max_pool2d(x, g.kernel, g.stride, g.padding, g.dilation, g.ceil_mode)
    assert out.shape == (1, 1, *g.output)
    assert out[0, 0, :, 2].tolist() == [9.0, 19.0, 24.0]  # the last column's windows hold only column 4


def test_explain_pool_ceil_mode_correction_formula():
    e = explain_pool((1, 1, 5, 1), (2, 1), (2, 1), (1, 0), 1, True)
    correction = e.steps[1]
    assert correction.quantity == "pooled height (ceil_mode correction)"
    assert correction.formula == "last window would start at (o − 1)·s ≥ H + pad, so drop it"
    assert correction.substituted == "(4 − 1)·2 = 6 ≥ 5 + 1" and correction.value == 3
    assert e.steps[0].substituted == "ceil((5 + 2·1 − 2) / 2) + 1" and e.steps[0].value == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"stride": 0}, r"^stride must be at least 1, got 0$"),
        ({"stride": "1"}, r"^stride must be an int"),
        ({"padding": -1}, r"^padding must be at least 0, got -1$"),
        ({"padding": "1"}, r"^padding must be an int"),
        ({"output_padding": -1}, r"^output_padding must be at least 0, got -1$"),
        ({"output_padding": "1"}, r"^output_padding must be an int"),
        ({"dilation": 0}, r"^dilation must be at least 1, got 0$"),
        ({"dilation": "1"}, r"^dilation must be an int"),
        ({"kernel_size": "3"}, r"^kernel_size must be an int"),
        (
            {"stride": (3, 2), "output_padding": (2, 2)},
            r"^output_padding 2 along the width must be smaller than the stride \(2\) or the dilation \(1\)$",
        ),
        (
            {"stride": (1, 3), "output_padding": (1, 0)},
            r"^output_padding 1 along the height must be smaller than the stride \(1\) "
            r"or the dilation \(1\)$",
        ),
        (
            {"input_size": (1, 4), "kernel_size": (1, 3), "padding": (1, 0)},
            r"^transposed convolution output height would be -1: "
            r"\(1 - 1\)·1 - 2·1 \+ 1 \+ 0; reduce the padding$",
        ),
        (
            {"input_size": (4, 1), "kernel_size": (1, 1), "padding": (0, 1), "dilation": (1, 2)},
            r"^transposed convolution output width would be -1: "
            r"\(1 - 1\)·1 - 2·1 \+ 1 \+ 0; reduce the padding$",
        ),
        (  # a dilated kernel: the sentence shows its span (2 − 1)·2 + 1 = 3, not its size 2
            {"input_size": (4, 1), "kernel_size": (1, 2), "padding": (0, 2), "dilation": (1, 2)},
            r"^transposed convolution output width would be -1: "
            r"\(1 - 1\)·1 - 2·2 \+ 3 \+ 0; reduce the padding$",
        ),
    ],
)
def test_conv_transpose_output_size_refusals(kwargs, message):
    arguments = {"input_size": (4, 4), "kernel_size": 3, **kwargs}
    with pytest.raises(ValueError, match=message):
        conv_transpose_output_size(**arguments)


def test_conv_transpose_output_size_of_a_square_input_is_its_height():
    assert conv_transpose_output_size(4, (3, 1)) == 6
    assert conv_transpose_output_size(4, (1, 3)) == 4
    # (n − 1)·s − 2p + (k − 1)·d + 1 + output_padding, a dilation of 3 letting output_padding reach 2:
    # rows (3 − 1)·2 − 2 + 1·1 + 1 + 1 = 5, columns (3 − 1)·2 − 2 + 1·3 + 1 + 2 = 8
    assert conv_transpose_output_size((3, 3), 2, 2, 1, (1, 2), (1, 3)) == (5, 8)


def test_max_pool_index_of_a_window_with_no_finite_value_is_its_first_tap_inside():
    """PyTorch starts each window's index at its first tap inside the input (skipping the padding by
    whole dilation steps) and keeps it when nothing beats −inf."""
    h, w, k, s, p, d = 6, 7, 3, 2, 1, 2
    x = np.full((1, 1, h, w), -np.inf)
    out, idx = max_pool2d(x, k, s, p, d, return_indices=True)
    oh, ow = pool_out((h, w), k, s, p, d)
    assert out.shape == (1, 1, oh, ow) and np.all(out == -np.inf)
    for r in range(oh):
        for q in range(ow):
            row = next(r * s - p + i * d for i in range(k) if r * s - p + i * d >= 0)
            col = next(q * s - p + j * d for j in range(k) if q * s - p + j * d >= 0)
            assert idx[0, 0, r, q] == row * w + col, (r, q)


def test_avg_pool_backward_defaults_and_dtype():
    x = np.zeros((1, 1, 5, 5), dtype=np.float32)
    grad = avg_pool2d_backward(np.ones((1, 1, 2, 2), dtype=np.float32), x, 2)  # floor mode: 2×2
    assert grad.dtype == np.float32
    expected = np.zeros((5, 5), dtype=np.float32)
    expected[:4, :4] = 0.25
    np.testing.assert_array_equal(grad[0, 0], expected)


# ---------------------------------------------------------------------------------------- pooling arguments


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: max_pool2d(x, 0), r"^kernel_size must be at least 1, got 0$"),
        (lambda x: max_pool2d(x, "2"), r"^kernel_size must be an int"),
        (lambda x: max_pool2d(x, 2, 0), r"^stride must be at least 1, got 0$"),
        (lambda x: max_pool2d(x, 2, 2, 0, 0), r"^dilation must be at least 1, got 0$"),
        (lambda x: max_pool2d(x, 2, 2, 0, "1"), r"^dilation must be an int"),
        (lambda x: avg_pool2d(x, 2, divisor_override=True), r"^divisor_override must be a positive int"),
        (lambda x: avg_pool2d(x, 2, divisor_override=0), r"^divisor_override must be a positive int"),
        (lambda x: avg_pool2d(x, 2, divisor_override=2.0), r"^divisor_override must be a positive int"),
        (
            lambda x: max_pool2d_backward(np.zeros((1, 1, 2, 2), dtype=complex), x, 2),
            r"^grad_out must hold real numbers, got dtype complex128$",
        ),
        (
            lambda x: col2im(np.zeros((1, 9, 9)), (1, 1, 5, 5), 3, method="fast"),
            r"^unknown col2im method 'fast'; choose one of slices, add_at$",
        ),
    ],
)
def test_pooling_refusals_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call(np.zeros((1, 1, 5, 5)))


def test_avg_pool_divisor_override_of_one_is_a_sum_and_defaults_to_floor_mode():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    summed = avg_pool2d(x, 2, divisor_override=1)
    assert summed.shape == (1, 1, 2, 2)  # floor mode by default: the last row and column are dropped
    assert summed[0, 0, 0, 0] == 0 + 1 + 5 + 6


@pytest.mark.parametrize("padding", [0, 1])
def test_pooling_keeps_float32_with_padding_and_overrides(padding):
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 5)).astype(np.float32)
    assert max_pool2d(x, 3, 2, padding).dtype == np.float32
    assert max_pool2d(x, 3, 2, padding, return_indices=True)[0].dtype == np.float32
    for include in (True, False):
        assert avg_pool2d(x, 3, 2, padding, count_include_pad=include).dtype == np.float32
    assert avg_pool2d(x, 3, 2, padding, divisor_override=4).dtype == np.float32
    out = avg_pool2d(x, 3, 2, padding)
    assert avg_pool2d_backward(np.ones_like(out), x, 3, 2, padding).dtype == np.float32
    assert avg_pool2d_backward(np.ones_like(out), x, 3, 2, padding, divisor_override=4).dtype == np.float32


def test_an_unpadded_pool_reads_the_input_itself():
    """No padding and no ceil-mode overhang: the windows are read from ``x`` itself, not from a copy."""
    x = np.zeros((1, 1, 4, 4))
    assert PoolGeometry((4, 4), 2, 2, 0, 1, False).pad(x, -np.inf) is x
    padded = PoolGeometry((4, 4), 3, 1, 1, 1, False).pad(x, -np.inf)
    assert padded.shape == (1, 1, 6, 6) and padded[0, 0, 0, 0] == -np.inf
    wide = PoolGeometry((4, 4), (1, 3), 1, (0, 1), 1, False).pad(x, -1.0)
    assert wide.shape == (1, 1, 4, 6) and wide[0, 0, 0, 0] == -1.0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 2), r"^input size must be at least 1, got 0$"),
        (("5", 2), r"^input size must be an int"),
        ((5, 0), r"^kernel_size must be at least 1, got 0$"),
        ((5, "2"), r"^kernel_size must be an int"),
        ((5, 2, 0), r"^stride must be at least 1, got 0$"),
        ((5, 2, "1"), r"^stride must be an int"),
        ((5, 2, None, 0, 0), r"^dilation must be at least 1, got 0$"),
        ((5, 2, None, 0, "1"), r"^dilation must be an int"),
        (((2, 5), (3, 1)), r"^pooling window 3 spans 3 pixels but the padded input is only 2 tall$"),
        (((5, 2), (1, 3)), r"^pooling window 3 spans 3 pixels but the padded input is only 2 wide$"),
    ],
)
def test_pool_output_size_refusals(args, message):
    with pytest.raises(ValueError, match=message):
        pool_output_size(*args)


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (np.zeros((1, 1, 4, 4), dtype=complex), r"^x must hold real numbers, got dtype complex128$"),
        (np.zeros((4, 4)), r"^x must have 4 dimensions \(N, C, H, W\), got shape \(4, 4\)$"),
    ],
)
def test_pools_name_their_input_in_refusals(x, message):
    for pool in (max_pool2d, avg_pool2d):
        with pytest.raises(ValueError, match=message):
            pool(x, 2)


def test_conv_backward_keeps_float32_and_names_grad_out():
    from core.conv import conv2d_backward

    x = np.ones((1, 2, 5, 5), dtype=np.float32)
    w = np.ones((3, 2, 3, 3), dtype=np.float32)
    grads = conv2d_backward(np.ones((1, 3, 3, 3)), x, w)  # a float64 upstream gradient is taken as float32
    assert [g.dtype for g in grads] == [np.float32] * 3
    assert grads[2].tolist() == [9.0, 9.0, 9.0]
    with pytest.raises(ValueError, match=r"^grad_out must hold real numbers, got dtype complex128$"):
        conv2d_backward(np.ones((1, 3, 3, 3), dtype=complex), x, w)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            (np.zeros((1, 1, 4, 4), dtype=complex), np.ones((1, 1, 3, 3))),
            r"^x must hold real numbers, got dtype",
        ),
        (
            (np.zeros((1, 1, 4, 4)), np.ones((1, 1, 3, 3), dtype=complex)),
            r"^weight must hold real numbers, got dtype",
        ),
        (
            (np.zeros((4, 4)), np.ones((1, 1, 3, 3))),
            r"^x must have 4 dimensions \(N, C, H, W\), got shape \(4, 4\)$",
        ),
        (
            (np.zeros((1, 1, 4, 4)), np.ones((3, 3))),
            r"^weight must have 4 dimensions \(F, C/groups, KH, KW\), got shape \(3, 3\)$",
        ),
        (
            (np.zeros((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), np.ones(1, dtype=complex)),
            r"^bias must hold real numbers, got dtype complex128$",
        ),
    ],
)
def test_conv_refusals_name_the_argument(args, message):
    from core.conv import conv2d

    with pytest.raises(ValueError, match=message):
        conv2d(*args)
