"""core/ against PyTorch, the independent reference: conv2d, its gradients, unfold/fold,
conv_transpose2d, pooling (ceil_mode, count_include_pad, indices) and pool_output_size.

Skipped when torch is not installed (it is the optional ``reference`` extra)."""

from __future__ import annotations

import numpy as np
import pytest
from textbook import conv_out, padding_tblr, pair, pool_out

from core.conv import conv2d, conv2d_backward, conv_transpose2d
from core.im2col import col2im, im2col
from core.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from core.shapes import pool_output_size

torch = pytest.importorskip("torch")
F = torch.nn.functional

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")


def _t(a, grad=False):
    return torch.tensor(a, requires_grad=grad)


def _torch_padding(x, padding, kernel, stride, dilation):
    """``(input, padding argument)`` for torch: every form PyTorch accepts goes to it as it is; the
    others ('same' with a stride, 'full', (top, bottom, left, right)) are padded with F.pad by a
    tuple worked out here (tests/textbook.py), never by core.shapes."""
    if padding == "valid" or isinstance(padding, int) or (not isinstance(padding, str) and len(padding) == 2):
        return x, padding
    if padding == "same" and pair(stride) == (1, 1):
        return x, "same"
    top, bottom, left, right = padding_tblr(padding, tuple(x.shape[-2:]), kernel, stride, dilation)
    return F.pad(x, (left, right, top, bottom)), 0


def _torch_conv(x, w, b, stride, padding, dilation, groups):
    xp, torch_padding = _torch_padding(x, padding, tuple(w.shape[2:]), stride, dilation)
    return F.conv2d(xp, w, b, stride, torch_padding, dilation, groups)


def _torch_unfold(x, kernel, stride, padding, dilation):
    xp, torch_padding = _torch_padding(x, padding, kernel, stride, dilation)
    return F.unfold(xp, kernel, dilation, 0 if torch_padding in ("valid", "same") else torch_padding, stride)


def _random_conv_config(rng):
    groups = int(rng.choice([1, 1, 2, 3]))
    cg = int(rng.integers(1, 3))
    fg = int(rng.integers(1, 3))
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dh, dw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    form = int(rng.integers(0, 6))
    padding = [
        int(rng.integers(0, 3)),
        (int(rng.integers(0, 3)), int(rng.integers(0, 3))),
        tuple(int(v) for v in rng.integers(0, 3, 4)),
        "valid",
        "same",
        "full",
    ][form]
    h = int(rng.integers((kh - 1) * dh + 1, 12))
    w = int(rng.integers((kw - 1) * dw + 1, 12))
    n = int(rng.integers(1, 3))
    return (n, cg * groups, h, w), (fg * groups, cg, kh, kw), (sh, sw), padding, (dh, dw), groups


CONFIGS = [_random_conv_config(np.random.default_rng(seed)) for seed in range(60)]


@pytest.mark.parametrize("config", CONFIGS, ids=[str(i) for i in range(len(CONFIGS))])
def test_conv2d_and_gradients_match_torch(config):
    xs, ws, stride, padding, dilation, groups = config
    rng = np.random.default_rng(7)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[0])
    out = conv2d(x, w, b, stride, padding, dilation, groups)
    xt, wt, bt = _t(x, True), _t(w, True), _t(b, True)
    ref = _torch_conv(xt, wt, bt, stride, padding, dilation, groups)
    expected_shape = (xs[0], ws[0], *conv_out(xs[2:], ws[2:], stride, padding, dilation))
    assert out.shape == tuple(ref.shape) == expected_shape
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-10, atol=1e-10)
    grad = rng.standard_normal(out.shape)
    ref.backward(_t(grad))
    gx, gw, gb = conv2d_backward(grad, x, w, stride, padding, dilation, groups)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("padding", [0, 1, 2, (1, 2), "valid", "same"])
@pytest.mark.parametrize(("kernel", "dilation"), [((3, 3), 1), ((2, 4), 1), ((3, 2), (2, 3))])
def test_conv2d_padding_given_to_torch_directly(padding, kernel, dilation):
    """The forms PyTorch accepts itself (stride 1 for 'same'; even kernels put the extra pixel last)."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 3, 9, 8)), rng.standard_normal((4, 3, *kernel))
    ref = F.conv2d(_t(x), _t(w), padding=padding, dilation=dilation).numpy()
    out = conv2d(x, w, padding=padding, dilation=dilation)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("padding", ["same", "full", "valid", (2, 0, 1, 3), (0, 1, 1, 0)])
@pytest.mark.parametrize(
    ("kernel", "stride", "dilation"), [((3, 2), (2, 3), 1), ((2, 4), 2, (2, 1)), ((1, 3), 3, 2)]
)
def test_conv2d_forms_torch_lacks_padded_by_the_test(padding, kernel, stride, dilation):
    """TF-style 'same' with a stride, 'full' and asymmetric padding: F.pad by the tuple worked out in
    tests/textbook.py, on rectangular kernels with unequal strides and dilations."""
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal((1, 2, 11, 10)), rng.standard_normal((3, 2, *kernel))
    top, bottom, left, right = padding_tblr(padding, (11, 10), kernel, stride, dilation)
    ref = F.conv2d(F.pad(_t(x), (left, right, top, bottom)), _t(w), None, stride, 0, dilation).numpy()
    out = conv2d(x, w, None, stride, padding, dilation)
    assert out.shape == ref.shape
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


def test_conv2d_float32_matches_torch():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 32, 32), dtype=np.float32)
    w = rng.standard_normal((8, 3, 3, 3), dtype=np.float32)
    b = rng.standard_normal(8, dtype=np.float32)
    out = conv2d(x, w, b, 2, 1)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, F.conv2d(_t(x), _t(w), _t(b), 2, 1).numpy(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("config", CONFIGS[:30], ids=[str(i) for i in range(30)])
@pytest.mark.parametrize("method", ["slices", "view", "indices", "windows"])
def test_im2col_matches_unfold(config, method):
    xs, ws, stride, padding, dilation, _ = config
    x = np.random.default_rng(3).standard_normal(xs)
    # 'same' with stride 1 is not an unfold argument: it goes through F.pad like the other string forms
    if padding == "same" and pair(stride) == (1, 1):
        top, bottom, left, right = padding_tblr(padding, xs[2:], ws[2:], stride, dilation)
        ref = F.unfold(F.pad(_t(x), (left, right, top, bottom)), ws[2:], dilation, 0, stride).numpy()
    else:
        ref = _torch_unfold(_t(x), ws[2:], stride, padding, dilation).numpy()
    cols = im2col(x, ws[2:], stride, padding, dilation, method=method)
    assert cols.shape == ref.shape
    np.testing.assert_array_equal(cols, ref)


@pytest.mark.parametrize("config", CONFIGS[:30], ids=[str(i) for i in range(30)])
@pytest.mark.parametrize("method", ["slices", "add_at"])
def test_col2im_matches_fold(config, method):
    xs, ws, stride, padding, dilation, _ = config
    top, bottom, left, right = padding_tblr(padding, xs[2:], ws[2:], stride, dilation)
    oh, ow = conv_out(xs[2:], ws[2:], stride, padding, dilation)
    y = np.random.default_rng(4).standard_normal((xs[0], xs[1] * ws[2] * ws[3], oh * ow))
    padded_size = (xs[2] + top + bottom, xs[3] + left + right)
    ref = F.fold(_t(y), padded_size, ws[2:], dilation, 0, stride).numpy()
    ref = ref[:, :, top : top + xs[2], left : left + xs[3]]
    np.testing.assert_allclose(
        col2im(y, xs, ws[2:], stride, padding, dilation, method), ref, rtol=1e-12, atol=1e-12
    )


def test_unfold_and_fold_with_torch_padding_argument():
    x = np.random.default_rng(5).standard_normal((2, 3, 7, 6))
    ref = F.unfold(_t(x), 3, 1, (1, 2), 2).numpy()
    np.testing.assert_array_equal(im2col(x, 3, 2, (1, 2)), ref)
    y = np.random.default_rng(6).standard_normal(ref.shape)
    np.testing.assert_allclose(
        col2im(y, x.shape, 3, 2, (1, 2)), F.fold(_t(y), (7, 6), 3, 1, (1, 2), 2).numpy()
    )


def _random_transpose_config(rng):
    groups = int(rng.choice([1, 2]))
    cig, cog = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    dh, dw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    oph, opw = int(rng.integers(0, max(sh, dh))), int(rng.integers(0, max(sw, dw)))
    h, w = int(rng.integers(1, 7)), int(rng.integers(1, 7))
    full_h, full_w = (h - 1) * sh + (kh - 1) * dh + 1, (w - 1) * sw + (kw - 1) * dw + 1
    ph, pw = int(rng.integers(0, (full_h + 1) // 2)), int(rng.integers(0, (full_w + 1) // 2))
    n = int(rng.integers(1, 3))
    return (
        (n, cig * groups, h, w),
        (cig * groups, cog, kh, kw),
        (sh, sw),
        (ph, pw),
        (oph, opw),
        (dh, dw),
        groups,
    )


TRANSPOSE_CONFIGS = [_random_transpose_config(np.random.default_rng(100 + seed)) for seed in range(40)]


@pytest.mark.parametrize("config", TRANSPOSE_CONFIGS, ids=[str(i) for i in range(len(TRANSPOSE_CONFIGS))])
def test_conv_transpose2d_matches_torch(config):
    xs, ws, stride, padding, output_padding, dilation, groups = config
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[1] * groups)
    ref = F.conv_transpose2d(_t(x), _t(w), _t(b), stride, padding, output_padding, groups, dilation).numpy()
    out = conv_transpose2d(x, w, b, stride, padding, output_padding, dilation, groups)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)


def _random_pool_config(rng):
    kh, kw = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
    dh, dw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    h = int(rng.integers(max((kh - 1) * dh + 1 - 2 * ph, 1), 11))
    w = int(rng.integers(max((kw - 1) * dw + 1 - 2 * pw, 1), 11))
    return (
        (int(rng.integers(1, 3)), 2, h, w),
        (kh, kw),
        (sh, sw),
        (ph, pw),
        (dh, dw),
        bool(rng.integers(0, 2)),
    )


POOL_CONFIGS = [_random_pool_config(np.random.default_rng(200 + seed)) for seed in range(60)]


def _window_has_input(xs, k, s, p, d, ceil_mode):
    """Whether every window has a tap inside the input. PyTorch leaves a window made only of padding at
    -inf with an index past the plane, and its backward then writes out of place (test below)."""
    oh, ow = pool_out(xs[2:], k, s, p, d, ceil_mode)
    for n, o, kk, ss, pp, dd in ((xs[2], oh, k[0], s[0], p[0], d[0]), (xs[3], ow, k[1], s[1], p[1], d[1])):
        for i in range(o):
            if not any(0 <= i * ss - pp + t * dd < n for t in range(kk)):
                return False
    return True


@pytest.mark.parametrize("config", POOL_CONFIGS, ids=[str(i) for i in range(len(POOL_CONFIGS))])
def test_max_pool_matches_torch(config):
    xs, k, s, p, d, ceil_mode = config
    rng = np.random.default_rng(9)
    x = rng.standard_normal(xs)
    xt = _t(x, True)
    ref, ref_idx = F.max_pool2d(xt, k, s, p, d, ceil_mode, return_indices=True)
    out, idx = max_pool2d(x, k, s, p, d, ceil_mode, return_indices=True)
    assert out.shape == tuple(ref.shape) == (*xs[:2], *pool_out(xs[2:], k, s, p, d, ceil_mode))
    np.testing.assert_array_equal(out, ref.detach().numpy())
    np.testing.assert_array_equal(idx, ref_idx.numpy())
    grad = rng.standard_normal(out.shape)
    if _window_has_input(xs, k, s, p, d, ceil_mode):
        ref.backward(_t(grad))
        expected = xt.grad.numpy()
    else:
        # A window of padding only (its maximum is -inf) has an index past the plane, and PyTorch's backward
        # writes its gradient into the next channel or past the tensor. Expected here: every window's
        # gradient scattered to PyTorch's argmax, those of padding-only windows dropped.
        assert np.isneginf(out).any()
        plane = xs[2] * xs[3]
        torch_idx = ref_idx.numpy().reshape(xs[0] * xs[1], -1)
        expected_flat = np.zeros((xs[0] * xs[1], plane))
        for row, (where, g) in enumerate(zip(torch_idx, grad.reshape(xs[0] * xs[1], -1), strict=True)):
            for i, gi in zip(where, g, strict=True):
                if 0 <= i < plane:
                    expected_flat[row, i] += gi
        expected = expected_flat.reshape(xs)
    np.testing.assert_allclose(max_pool2d_backward(grad, x, k, s, p, d, ceil_mode), expected, atol=1e-12)


def test_max_pool_ties_match_torch():
    x = np.zeros((1, 2, 6, 6))
    x[0, 1, ::2, ::2] = 1.0
    out, idx = max_pool2d(x, 3, 1, 1, return_indices=True)
    ref, ref_idx = F.max_pool2d(_t(x), 3, 1, 1, return_indices=True)
    np.testing.assert_array_equal(out, ref.numpy())
    np.testing.assert_array_equal(idx, ref_idx.numpy())


@pytest.mark.parametrize("config", POOL_CONFIGS, ids=[str(i) for i in range(len(POOL_CONFIGS))])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("divisor_override", [None, 2])
def test_avg_pool_matches_torch(config, count_include_pad, divisor_override):
    xs, k, s, p, _, ceil_mode = config
    rng = np.random.default_rng(10)
    x = rng.standard_normal(xs)
    xt = _t(x, True)
    ref = F.avg_pool2d(xt, k, s, p, ceil_mode, count_include_pad, divisor_override)
    out = avg_pool2d(x, k, s, p, ceil_mode, count_include_pad, divisor_override)
    assert out.shape == tuple(ref.shape)
    np.testing.assert_allclose(out, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    grad = rng.standard_normal(out.shape)
    ref.backward(_t(grad))
    back = avg_pool2d_backward(grad, x, k, s, p, ceil_mode, count_include_pad, divisor_override)
    np.testing.assert_allclose(back, xt.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_pool_output_size_matches_torch_exhaustively():
    """Every small (n, k, s, p, d, ceil_mode), including the ceil_mode corner case."""
    checked = 0
    for n in range(1, 9):
        for k in range(1, 5):
            for s in range(1, 5):
                for p in range(0, k // 2 + 1):
                    for d in (1, 2):
                        if (k - 1) * d + 1 > n + 2 * p:
                            continue
                        for ceil_mode in (False, True):
                            expected = F.max_pool2d(torch.zeros(1, 1, n, n), k, s, p, d, ceil_mode).shape[-1]
                            assert pool_output_size(n, k, s, p, d, ceil_mode) == expected, (
                                n,
                                k,
                                s,
                                p,
                                d,
                                ceil_mode,
                            )
                            checked += 1
    assert checked > 500
