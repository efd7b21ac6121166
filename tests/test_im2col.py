"""core.im2col: every method against a triple loop written here, hand-worked columns, adjointness."""

from __future__ import annotations

import numpy as np
import pytest
from textbook import conv_out, padding_tblr, pair

from core.im2col import (
    COL2IM_METHODS,
    IM2COL_METHODS,
    as_float_array,
    col2im,
    im2col,
    im2col_geometry,
    im2col_indices,
    overlap_count,
    pad_input,
    slices_into,
    window_view,
)
from core.shapes import Padding, window_geometry

# (input shape, kernel, stride, padding, dilation): strides that do not fit, asymmetric and string
# paddings, dilation, rectangular kernels.
GRID = [
    ((1, 1, 5, 5), 3, 1, 0, 1),
    ((2, 3, 7, 6), 3, 2, 1, 1),
    ((1, 2, 8, 9), (2, 3), (3, 2), 0, 1),
    ((2, 2, 6, 7), 3, 1, "same", 1),
    ((1, 3, 7, 8), (3, 2), 2, "same", 1),
    ((1, 1, 9, 9), 3, 2, "same", 2),
    ((1, 2, 4, 5), 3, 1, "full", 1),
    ((1, 2, 5, 4), 2, 3, "full", (1, 2)),
    ((2, 1, 6, 6), 2, 1, (0, 1, 2, 0), 1),
    ((1, 2, 9, 7), (3, 2), (2, 3), (1, 0, 0, 2), (2, 1)),
    ((1, 1, 10, 10), 3, 4, "valid", 1),
    ((1, 1, 3, 3), 3, 1, 0, 1),
    ((1, 1, 1, 1), 1, 1, 0, 1),
    ((1, 2, 7, 6), (3, 1), (1, 2), "valid", 1),
    ((1, 1, 5, 6), (2, 3), 2, "full", (1, 2)),
    ((1, 1, 8, 7), (3, 2), (3, 2), "same", (2, 1)),
]


def reference_im2col(x, kernel_size, stride, padding, dilation):
    """Independent loop over (output position, channel, tap) with bounds checks, no padding copy, and its
    own padding and output size (tests/textbook.py, not core.shapes)."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = pair(kernel_size), pair(stride), pair(dilation)
    oh, ow = conv_out((h, w), kernel_size, stride, padding, dilation)
    top, _, left, _ = padding_tblr(padding, (h, w), kernel_size, stride, dilation)
    cols = np.zeros((n, c * kh * kw, oh * ow), dtype=x.dtype)
    for r in range(oh):
        for q in range(ow):
            for ch in range(c):
                for i in range(kh):
                    for j in range(kw):
                        row, col = r * sh + i * dh - top, q * sw + j * dw - left
                        if 0 <= row < h and 0 <= col < w:
                            cols[:, (ch * kh + i) * kw + j, r * ow + q] = x[:, ch, row, col]
    return cols


@pytest.mark.parametrize("case", GRID)
@pytest.mark.parametrize("method", IM2COL_METHODS)
def test_im2col_equals_reference_loop(case, method):
    shape, k, s, p, d = case
    x = np.random.default_rng(0).standard_normal(shape)
    np.testing.assert_array_equal(im2col(x, k, s, p, d, method=method), reference_im2col(x, k, s, p, d))


@pytest.mark.parametrize("case", GRID)
@pytest.mark.parametrize("method", COL2IM_METHODS)
def test_adjointness(case, method):
    shape, k, s, p, d = case
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    cols = im2col(x, k, s, p, d)
    y = rng.standard_normal(cols.shape)
    lhs = float(np.sum(cols * y))
    rhs = float(np.sum(x * col2im(y, shape, k, s, p, d, method=method)))
    assert lhs == pytest.approx(rhs, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize("case", GRID)
def test_col2im_methods_agree(case):
    shape, k, s, p, d = case
    y = np.random.default_rng(2).standard_normal(im2col(np.zeros(shape), k, s, p, d).shape)
    np.testing.assert_allclose(col2im(y, shape, k, s, p, d, "slices"), col2im(y, shape, k, s, p, d, "add_at"))


def test_hand_worked_columns_2x2_stride_2():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    cols = im2col(x, 2, 2)
    # rows (kh, kw) = (0,0), (0,1), (1,0), (1,1); columns are the four windows, row-major
    expected = np.array(
        [
            [0, 2, 8, 10],
            [1, 3, 9, 11],
            [4, 6, 12, 14],
            [5, 7, 13, 15],
        ],
        dtype=float,
    )
    np.testing.assert_array_equal(cols[0], expected)
    # non-overlapping windows cover every pixel exactly once, so col2im inverts im2col
    np.testing.assert_array_equal(col2im(cols, x.shape, 2, 2), x)


def test_hand_worked_columns_with_padding_and_dilation():
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)  # 1..9
    cols = im2col(x, 2, 1, 0, 2)  # 2 taps 2 apart: one window, the four corners
    np.testing.assert_array_equal(cols[0, :, 0], [1, 3, 7, 9])
    cols = im2col(x, 3, 2, 1)  # padded 5x5, 3x3 windows at padded rows/cols 0 and 2
    assert cols.shape == (1, 9, 4)
    # the first covers x rows -1..1, cols -1..1; the last rows 1..3, cols 1..3
    np.testing.assert_array_equal(cols[0, :, 0], [0, 0, 0, 0, 1, 2, 0, 4, 5])
    np.testing.assert_array_equal(cols[0, :, 3], [5, 6, 0, 8, 9, 0, 0, 0, 0])


def test_textbook_index_shapes():
    k, i, j = im2col_indices((1, 3, 32, 32), 3, 1, 1)
    assert k.shape == (27, 1)
    assert i.shape == (27, 1024) and j.shape == (27, 1024)
    # first row is channel 0 tap (0, 0): its window origins run over the padded grid
    assert i[0, :3].tolist() == [0, 0, 0] and j[0, :3].tolist() == [0, 1, 2]
    assert i[0, 32] == 1 and j[0, 32] == 0
    # row 5 is channel 0, tap (1, 2)
    assert i[5, 0] == 1 and j[5, 0] == 2
    assert k[9, 0] == 1 and k[26, 0] == 2


def test_textbook_column_shapes():
    x = np.zeros((1, 3, 32, 32))
    assert im2col(x, 3, 1, "valid").shape == (1, 27, 900)
    assert im2col(x, 3, 2, "valid").shape == (1, 27, 225)
    assert im2col(x, 3, 1, "same").shape == (1, 27, 1024)


def test_indices_read_the_padded_input():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 6, 5))
    for padding in (1, "same", (0, 2, 1, 0)):
        k, i, j = im2col_indices(x.shape, 3, 2, padding, 1)
        top, bottom, left, right = padding_tblr(padding, (6, 5), 3, 2, 1)
        xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
        np.testing.assert_array_equal(xp[:, k, i, j], im2col(x, 3, 2, padding))


def test_overlap_count_by_hand():
    # 4x4, 3x3 windows, stride 1: corners are read once, edges twice, the centre four times
    expected = np.array([[1, 2, 2, 1], [2, 4, 4, 2], [2, 4, 4, 2], [1, 2, 2, 1]])
    np.testing.assert_array_equal(overlap_count(4, 3), expected)
    # 5 columns, kernel 2, stride 2: the last column is never read
    counts = overlap_count((2, 5), 2, 2)
    np.testing.assert_array_equal(counts, [[1, 1, 1, 1, 0], [1, 1, 1, 1, 0]])
    # padding 1, kernel 3, stride 1 on 3x3: every pixel is read by all the windows around it
    np.testing.assert_array_equal(overlap_count(3, 3, 1, 1), [[4, 6, 4], [6, 9, 6], [4, 6, 4]])
    assert overlap_count(4, 3).dtype.kind == "i"


@pytest.mark.parametrize("case", GRID)
def test_overlap_count_counts_index_occurrences(case):
    shape, k, s, p, d = case
    """Counted by a loop over the windows and their taps, with the tests' own geometry."""
    h, w = shape[2:]
    (kh, kw), (sh, sw), (dh, dw) = pair(k), pair(s), pair(d)
    top, _, left, _ = padding_tblr(p, (h, w), k, s, d)
    oh, ow = conv_out((h, w), k, s, p, d)
    expected = np.zeros((h, w), dtype=int)
    for r in range(oh):
        for q in range(ow):
            for i in range(kh):
                for j in range(kw):
                    row, col = r * sh + i * dh - top, q * sw + j * dw - left
                    if 0 <= row < h and 0 <= col < w:
                        expected[row, col] += 1
    np.testing.assert_array_equal(overlap_count(shape[2:], k, s, p, d), expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype):
    x = np.ones((1, 2, 5, 5), dtype=dtype)
    for method in IM2COL_METHODS:
        assert im2col(x, 3, 1, 1, method=method).dtype == dtype
    cols = im2col(x, 3, 1, 1)
    for method in COL2IM_METHODS:
        assert col2im(cols, x.shape, 3, 1, 1, method=method).dtype == dtype


def test_integer_input_becomes_float64():
    x = np.arange(25).reshape(1, 1, 5, 5)
    cols = im2col(x, 3)
    assert cols.dtype == np.float64
    np.testing.assert_array_equal(cols, im2col(x.astype(float), 3))


def test_nan_passes_through():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = np.nan
    cols = im2col(x, 2)
    assert np.isnan(cols).sum() == 4


def test_pad_input():
    x = np.ones((1, 1, 2, 3), dtype=np.float32)
    p = pad_input(x, Padding(1, 0, 2, 1), value=-1.0)
    assert p.shape == (1, 1, 3, 6) and p.dtype == np.float32
    assert p[0, 0, 0].tolist() == [-1] * 6
    assert p[0, 0, 1].tolist() == [-1, -1, 1, 1, 1, -1]
    assert pad_input(x, Padding(0, 0, 0, 0)) is x


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: im2col(np.zeros((3, 5, 5)), 3),
            r"x must have 4 dimensions \(N, C, H, W\), got shape \(3, 5, 5\)",
        ),
        (
            lambda: im2col(np.zeros((1, 1, 5, 5)), 6),
            r"kernel 6 spans 6 pixels but the padded input is only 5",
        ),
        (lambda: im2col(np.zeros((1, 1, 5, 5)), 3, stride=0), "stride must be at least 1"),
        (lambda: im2col(np.zeros((1, 1, 5, 5)), 3, padding=-1), "padding cannot be negative"),
        (lambda: im2col(np.zeros((1, 1, 5, 5)), 3, padding="half"), "unknown padding 'half'"),
        (lambda: im2col(np.zeros((1, 1, 5, 5)), 3, method="fast"), "unknown im2col method 'fast'"),
        (lambda: col2im(np.zeros((1, 9, 9)), (1, 1, 5, 5), 3, method="x"), "unknown col2im method"),
        (lambda: col2im(np.zeros((1, 9, 8)), (1, 1, 5, 5), 3), r"cols must have shape \(1, 9, 9\)"),
        (lambda: im2col(np.zeros((1, 1, 5, 5), dtype=complex), 3), "real numbers"),
    ],
)
def test_bad_arguments(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_im2col_indices_defaults_and_refusal():
    """Defaults stride 1, padding 0, dilation 1: a 3×3 kernel on 5×5 reads 3×3 window origins."""
    k, i, j = im2col_indices((1, 2, 5, 5), 3)
    assert k.shape == (18, 1) and i.shape == j.shape == (18, 9)
    assert i[0].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2] and j[0].tolist() == [0, 1, 2] * 3
    message = r"^input_shape must have 4 dimensions \(N, C, H, W\), got \(5, 5\)$"
    with pytest.raises(ValueError, match=message):
        im2col_indices((5, 5), 3)


def test_pad_input_pads_the_last_two_axes_of_any_array():
    """``(..., H, W)``: a plain ``(H, W)`` image is padded as a batch would be."""
    image = np.arange(6.0).reshape(2, 3)
    assert pad_input(image, Padding(1, 0, 0, 2)).tolist() == [
        [0, 0, 0, 0, 0],
        [0, 1, 2, 0, 0],
        [3, 4, 5, 0, 0],
    ]
    # reflect mirrors without repeating the edge: ... 1 | 0 1 2 | 1 ...
    assert pad_input(image, Padding(0, 0, 1, 1), padding_mode="reflect").tolist() == [
        [1, 0, 1, 2, 1],
        [4, 3, 4, 5, 4],
    ]


def test_window_view_is_a_read_only_view():
    """``view[n, c, kh, kw, oh, ow] = xp[n, c, oh·s_h + kh·d_h, ow·s_w + kw·d_w]``, sharing ``xp``'s memory,
    and read-only: writing one window would write its neighbours too."""
    xp = np.arange(16.0).reshape(1, 1, 4, 4)
    view = window_view(xp, window_geometry((4, 4), 2, 2, 0, 1))
    assert view.shape == (1, 1, 2, 2, 2, 2)
    assert view[0, 0, 1, 0, 1, 1] == xp[0, 0, 1 * 2 + 1, 1 * 2 + 0] == 14
    assert np.shares_memory(view, xp) and not view.flags.writeable
    with pytest.raises(ValueError, match="read-only"):
        view[0, 0, 0, 0, 0, 0] = -1.0


def test_im2col_geometry_defaults_to_slices_and_lists_the_methods_it_knows():
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 6))
    geometry = window_geometry((7, 6), 3, 2, 1, 1)
    np.testing.assert_array_equal(im2col_geometry(x, geometry), reference_im2col(x, 3, 2, 1, 1))
    message = r"^unknown im2col method 'fast'; choose one of slices, view, indices, windows$"
    with pytest.raises(ValueError, match=message):
        im2col_geometry(x, geometry, "fast")


@pytest.mark.parametrize(
    "case",
    [
        ((2, 3, 7, 6), 3, 2, 1, 1),  # stride 2 with padding: phase planes
        ((1, 2, 9, 7), (3, 2), (2, 3), (1, 0, 0, 2), (2, 1)),
        ((1, 2, 4, 5), 3, 1, "full", 1),  # stride 1: direct slices, taps reading only padding
        ((1, 1, 2, 2), 5, 2, 2, 1),  # one window; whole kernel rows and columns in the padding
    ],
)
def test_slices_into_writes_one_band_of_output_rows(case):
    """``slices_into(..., band=(r0, r1))`` writes output rows ``[r0, r1)`` of every kernel offset into a
    buffer of ``r1 − r0`` rows, zeroing what reads padding (the buffer starts as NaN here), with the phase
    planes shared between the bands of one image."""
    shape, kernel, stride, padding, dilation = case
    x = np.random.default_rng(4).standard_normal(shape)
    n, c, h, w = shape
    (kh, kw) = pair(kernel)
    oh, ow = conv_out((h, w), kernel, stride, padding, dilation)
    full = reference_im2col(x, kernel, stride, padding, dilation).reshape(n, c, kh, kw, oh, ow)
    geometry = window_geometry((h, w), kernel, stride, padding, dilation)
    bands = sorted({(0, 1), (1, max(1, oh - 1)), (max(1, oh - 1), oh), (0, oh)} - {(1, 1)})
    planes: dict = {}
    for r0, r1 in bands:
        cols = np.full((n, c, kh, kw, r1 - r0, ow), np.nan)
        slices_into(cols, x, geometry, band=(r0, r1), planes=planes)
        np.testing.assert_array_equal(cols, full[..., r0:r1, :], err_msg=f"band {(r0, r1)}")


def test_as_float_array_names_x_by_default():
    with pytest.raises(ValueError, match=r"^x must hold real numbers, got dtype complex128$"):
        as_float_array(np.zeros(2, dtype=complex))
    assert as_float_array([1, 2]).dtype == np.float64 and as_float_array(np.float32([1])).dtype == np.float32
