"""Property tests with hypothesis over random shapes, strides, paddings, dilations and groups."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textbook import conv_out, padding_tblr, pair, pool_out, span

from core.conv import conv2d, conv2d_backward, conv2d_backward_naive, conv2d_naive, conv_transpose2d
from core.im2col import col2im, im2col, overlap_count
from core.pool import avg_pool2d, avg_pool2d_naive, max_pool2d, max_pool2d_naive

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

padding_forms = st.one_of(
    st.integers(0, 2),
    st.tuples(st.integers(0, 2), st.integers(0, 2)),
    st.tuples(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2), st.integers(0, 2)),
    st.sampled_from(["valid", "same", "full"]),
)


@st.composite
def conv_cases(draw):
    groups = draw(st.integers(1, 3))
    cg, fg = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    dh, dw = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    padding = draw(padding_forms)
    h = draw(st.integers((kh - 1) * dh + 1, 10))
    w = draw(st.integers((kw - 1) * dw + 1, 10))
    n = draw(st.integers(1, 2))
    seed = draw(st.integers(0, 2**16))
    return (n, cg * groups, h, w), (fg * groups, cg, kh, kw), (sh, sw), padding, (dh, dw), groups, seed


@SETTINGS
@given(conv_cases())
def test_conv2d_equals_loops_and_shapes(case):
    xs, ws, s, p, d, g, seed = case
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    out = conv2d(x, w, b, s, p, d, g)
    assert out.shape == (xs[0], ws[0], *conv_out(xs[2:], ws[2:], s, p, d))
    np.testing.assert_allclose(out, conv2d_naive(x, w, b, s, p, d, g), atol=1e-10)
    grad = rng.standard_normal(out.shape)
    for fast, slow in zip(
        conv2d_backward(grad, x, w, s, p, d, g), conv2d_backward_naive(grad, x, w, s, p, d, g), strict=True
    ):
        np.testing.assert_allclose(fast, slow, atol=1e-10)


@SETTINGS
@given(conv_cases())
def test_im2col_methods_agree_and_adjoint(case):
    xs, ws, s, p, d, _, seed = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(xs)
    k = ws[2:]
    reference = im2col(x, k, s, p, d, method="windows")
    for method in ("slices", "view", "indices"):
        np.testing.assert_array_equal(im2col(x, k, s, p, d, method=method), reference)
    y = rng.standard_normal(reference.shape)
    for method in ("slices", "add_at"):
        back = col2im(y, xs, k, s, p, d, method=method)
        assert np.isclose(np.sum(reference * y), np.sum(x * back), rtol=1e-10, atol=1e-10)


@SETTINGS
@given(conv_cases())
def test_overlap_count_counts_the_windows_over_each_pixel(case):
    """Against a count written here: for each pixel, the (window, tap) pairs that land on it, by the
    tests' own geometry (not col2im, which overlap_count is built from)."""
    xs, ws, s, p, d, _, _ = case
    counts = overlap_count(xs[2:], ws[2:], s, p, d)
    (h, w), (kh, kw), (sh, sw), (dh, dw) = xs[2:], ws[2:], pair(s), pair(d)
    top, _, left, _ = padding_tblr(p, (h, w), ws[2:], s, d)
    oh, ow = conv_out((h, w), ws[2:], s, p, d)
    rows = np.zeros(h, dtype=int)  # a separable count: windows × taps along each axis
    for r in range(oh):
        for i in range(kh):
            if 0 <= r * sh + i * dh - top < h:
                rows[r * sh + i * dh - top] += 1
    cols = np.zeros(w, dtype=int)
    for q in range(ow):
        for j in range(kw):
            if 0 <= q * sw + j * dw - left < w:
                cols[q * sw + j * dw - left] += 1
    np.testing.assert_array_equal(counts, np.outer(rows, cols))
    # every read of a real pixel is one 1 in the columns of an all-ones image
    assert counts.sum() == im2col(np.ones((1, 1, h, w)), ws[2:], s, p, d).sum()


@SETTINGS
@given(conv_cases(), st.tuples(st.integers(0, 2), st.integers(0, 2)))
def test_conv_transpose_is_adjoint_of_conv(case, pad):
    """<conv2d(x), y> = <x, conv_transpose2d(y)> with the same weight; symmetric padding only, as in
    PyTorch's conv_transpose2d, and the rows the stride leaves unread given back as output_padding."""
    xs, ws, s, _, d, g, seed = case
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    out = conv2d(x, w, None, s, pad, d, g)
    y = rng.standard_normal(out.shape)
    uncovered = tuple(
        (n + 2 * p_ - span(k, dd)) % ss
        for n, k, ss, p_, dd in zip(xs[2:], ws[2:], pair(s), pad, pair(d), strict=True)
    )
    back = conv_transpose2d(y, w, None, s, pad, uncovered, d, g)
    assert back.shape == x.shape
    assert np.isclose(np.sum(out * y), np.sum(x * back), rtol=1e-10, atol=1e-10)


@st.composite
def pool_cases(draw):
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    ph, pw = draw(st.integers(0, kh // 2)), draw(st.integers(0, kw // 2))
    ceil_mode = draw(st.booleans())
    h = draw(st.integers(max(kh - 2 * ph, 1), 9))
    w = draw(st.integers(max(kw - 2 * pw, 1), 9))
    return (
        (draw(st.integers(1, 2)), 2, h, w),
        (kh, kw),
        (sh, sw),
        (ph, pw),
        ceil_mode,
        draw(st.integers(0, 2**16)),
    )


@SETTINGS
@given(pool_cases())
def test_pools_equal_loops(case):
    xs, k, s, p, ceil_mode, seed = case
    x = np.random.default_rng(seed).standard_normal(xs)
    out, idx = max_pool2d(x, k, s, p, 1, ceil_mode, return_indices=True)
    assert out.shape == (*xs[:2], *pool_out(xs[2:], k, s, p, 1, ceil_mode))
    ref, ref_idx = max_pool2d_naive(x, k, s, p, 1, ceil_mode)
    np.testing.assert_array_equal(out, ref)
    np.testing.assert_array_equal(idx, ref_idx)
    for include in (True, False):
        avg = avg_pool2d(x, k, s, p, ceil_mode, include)
        np.testing.assert_allclose(avg, avg_pool2d_naive(x, k, s, p, ceil_mode, include), atol=1e-12)
    # the maximum of real pixels is at least their mean
    assert np.all(out >= avg_pool2d(x, k, s, p, ceil_mode, False) - 1e-12)
