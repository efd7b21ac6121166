"""Border modes (``padding_mode`` = zeros | reflect | replicate | circular): core against plain loops
that find each border pixel's source by their own formula, and against PyTorch forward and backward.

The loops here do not import the padding or the geometry they check: the source of a padded position
is worked out from the textbook description of each mode, and the output size from the formula.
"""

from __future__ import annotations

import numpy as np
import pytest

from core.conv import conv2d, conv2d_backward, conv2d_backward_naive, conv2d_naive
from core.im2col import border_index, col2im, fold_border, im2col, overlap_count, pad_input
from core.shapes import Padding, explain_conv

MODES = ("zeros", "reflect", "replicate", "circular")


def source(t: int, n: int, mode: str) -> int | None:
    """Input index held at unpadded coordinate ``t`` (``None`` for a zero), from each mode's description."""
    if 0 <= t < n:
        return t
    if mode == "zeros":
        return None
    if mode == "replicate":  # the nearest edge pixel
        return 0 if t < 0 else n - 1
    if mode == "circular":  # the input repeated end to end
        while t < 0:
            t += n
        while t >= n:
            t -= n
        return t
    # reflect: the sequence 0, 1, ..., n-1, n-2, ..., 1 repeated (mirror without repeating the edge)
    period = list(range(n)) + list(range(n - 2, 0, -1))
    return period[t % len(period)]


def loop_conv(x, w, b, stride, pad, dilation, mode):
    """Plain loops, one tap at a time; ``pad = (top, bottom, left, right)``."""
    n_, c_, h, wd = x.shape
    f_, _, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    top, bottom, left, right = pad
    oh = (h + top + bottom - (kh - 1) * dh - 1) // sh + 1
    ow = (wd + left + right - (kw - 1) * dw - 1) // sw + 1
    out = np.zeros((n_, f_, oh, ow))
    for n in range(n_):
        for f in range(f_):
            for y in range(oh):
                for z in range(ow):
                    acc = b[f]
                    for c in range(c_):
                        for i in range(kh):
                            for j in range(kw):
                                r = source(y * sh + i * dh - top, h, mode)
                                q = source(z * sw + j * dw - left, wd, mode)
                                if r is not None and q is not None:
                                    acc += w[f, c, i, j] * x[n, c, r, q]
                    out[n, f, y, z] = acc
    return out


def loop_grad_x(g, x, w, stride, pad, dilation, mode):
    """∂L/∂x by scattering every output gradient to the source pixel of each tap."""
    n_, c_, h, wd = x.shape
    _, _, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    top, _, left, _ = pad
    gx = np.zeros(x.shape)
    for n, f, y, z in np.ndindex(*g.shape):
        for c in range(c_):
            for i in range(kh):
                for j in range(kw):
                    r = source(y * sh + i * dh - top, h, mode)
                    q = source(z * sw + j * dw - left, wd, mode)
                    if r is not None and q is not None:
                        gx[n, c, r, q] += g[n, f, y, z] * w[f, c, i, j]
    return gx


def random_config(rng: np.random.Generator, mode: str):
    h, w = int(rng.integers(3, 8)), int(rng.integers(3, 8))
    limit_h = h - 1 if mode == "reflect" else h
    limit_w = w - 1 if mode == "reflect" else w
    pad = tuple(int(v) for v in rng.integers(0, [limit_h + 1, limit_h + 1, limit_w + 1, limit_w + 1]))
    pad = (min(pad[0], 3), min(pad[1], 3), min(pad[2], 3), min(pad[3], 3))
    stride = tuple(int(v) for v in rng.integers(1, 3, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    kh = int(rng.integers(1, 4))
    kw = int(rng.integers(1, 4))
    while (kh - 1) * dilation[0] + 1 > h + pad[0] + pad[1]:
        kh -= 1
    while (kw - 1) * dilation[1] + 1 > w + pad[2] + pad[3]:
        kw -= 1
    x = rng.standard_normal((2, 2, h, w))
    weight = rng.standard_normal((3, 2, kh, kw))
    bias = rng.standard_normal(3)
    return x, weight, bias, stride, pad, dilation


def test_source_formula_hand_worked() -> None:
    # a b c d with two pixels of padding each side
    assert [source(t, 4, "reflect") for t in range(-2, 6)] == [2, 1, 0, 1, 2, 3, 2, 1]
    assert [source(t, 4, "replicate") for t in range(-2, 6)] == [0, 0, 0, 1, 2, 3, 3, 3]
    assert [source(t, 4, "circular") for t in range(-2, 6)] == [2, 3, 0, 1, 2, 3, 0, 1]


@pytest.mark.parametrize("mode", MODES)
def test_pad_input_hand_worked(mode: str) -> None:
    x = np.array([[1.0, 2.0, 3.0]])
    got = pad_input(x, Padding(0, 0, 2, 2), padding_mode=mode)[0].tolist()
    expected = {
        "zeros": [0, 0, 1, 2, 3, 0, 0],
        "reflect": [3, 2, 1, 2, 3, 2, 1],
        "replicate": [1, 1, 1, 2, 3, 3, 3],
        "circular": [2, 3, 1, 2, 3, 1, 2],
    }[mode]
    assert got == expected


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", range(6))
def test_forward_and_backward_equal_plain_loops(mode: str, seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    x, weight, bias, stride, pad, dilation = random_config(rng, mode)
    kwargs = {"stride": stride, "padding": pad, "dilation": dilation, "padding_mode": mode}
    expected = loop_conv(x, weight, bias, stride, pad, dilation, mode)
    np.testing.assert_allclose(conv2d(x, weight, bias, **kwargs), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(conv2d_naive(x, weight, bias, **kwargs), expected, rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(expected.shape)
    gx_loop = loop_grad_x(g, x, weight, stride, pad, dilation, mode)
    for backward in (conv2d_backward, conv2d_backward_naive):
        gx, gw, gb = backward(g, x, weight, **kwargs)
        np.testing.assert_allclose(gx, gx_loop, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gb, g.sum(axis=(0, 2, 3)), rtol=1e-10)
    # ∂L/∂w: the loop over the same taps
    gx, gw, _ = conv2d_backward(g, x, weight, **kwargs)
    eps = 1e-6
    w2 = weight.copy()
    w2[1, 0, 0, 0] += eps
    numeric = (np.sum(loop_conv(x, w2, bias, stride, pad, dilation, mode) * g) - np.sum(expected * g)) / eps
    assert abs(gw[1, 0, 0, 0] - numeric) < 1e-4


@pytest.mark.parametrize("mode", MODES)
def test_im2col_adjoint_and_overlap(mode: str) -> None:
    rng = np.random.default_rng(7)
    x = rng.standard_normal((1, 2, 5, 6))
    kwargs = {"kernel_size": (3, 2), "stride": (2, 1), "padding": (2, 1, 1, 2), "dilation": 1}
    cols = im2col(x, **kwargs, padding_mode=mode)
    for method in ("view", "indices", "windows"):
        np.testing.assert_array_equal(im2col(x, **kwargs, method=method, padding_mode=mode), cols)
    y = rng.standard_normal(cols.shape)
    for method in ("slices", "add_at"):
        back = col2im(y, x.shape, **kwargs, method=method, padding_mode=mode)
        assert np.isclose(np.sum(cols * y), np.sum(x * back))
    # every tap that reads pixel (r, q) counts once, whichever copy it reads
    counts = np.zeros((5, 6), dtype=int)
    for i in range(3):
        for j in range(2):
            for y0 in range((5 + 3 - 3) // 2 + 1):
                for x0 in range(6 + 3 - 2 + 1):
                    r, q = source(y0 * 2 + i - 2, 5, mode), source(x0 + j - 1, 6, mode)
                    if r is not None and q is not None:
                        counts[r, q] += 1
    np.testing.assert_array_equal(overlap_count((5, 6), **kwargs, padding_mode=mode), counts)


@pytest.mark.parametrize(
    ("mode", "pad", "size", "ok"),
    [
        ("reflect", 2, 3, True),
        ("reflect", 3, 3, False),
        ("circular", 3, 3, True),
        ("circular", 4, 3, False),
        ("replicate", 9, 3, True),
        ("zeros", 9, 3, True),
    ],
)
def test_pytorch_rules(mode: str, pad: int, size: int, ok: bool) -> None:
    x = np.ones((1, 1, size, size + 4))
    w = np.ones((1, 1, 1, 1))
    if ok:
        assert conv2d(x, w, padding=pad, padding_mode=mode).shape == (
            1,
            1,
            size + 2 * pad,
            size + 4 + 2 * pad,
        )
    else:
        with pytest.raises(ValueError, match=f"padding_mode '{mode}'.*height"):
            conv2d(x, w, padding=pad, padding_mode=mode)


@pytest.mark.parametrize(("mode", "pad"), [("reflect", 3), ("circular", 4)])
def test_explain_conv_refuses_what_conv2d_refuses(mode: str, pad: int) -> None:
    """The shape panel's explanation applies PyTorch's border rules as the convolution does (3 × 7 input:
    reflect needs padding < 3, circular at most 3)."""
    with pytest.raises(ValueError, match=f"padding_mode '{mode}'.*height"):
        explain_conv((1, 1, 3, 7), (1, 1, 1, 1), padding=pad, padding_mode=mode)
    assert explain_conv((1, 1, 3, 7), (1, 1, 1, 1), padding=pad - 1, padding_mode=mode).output_shape == (
        1,
        1,
        3 + 2 * (pad - 1),
        7 + 2 * (pad - 1),
    )


@pytest.mark.parametrize(
    ("mode", "padding", "sentence"),
    [
        (
            "reflect",
            (3, 0, 0, 0),
            "padding_mode 'reflect' needs padding smaller than the input height: padding (3, 0) with input "
            "height 3 allows at most 2 per side; use less padding, a larger image or another padding_mode",
        ),
        (
            "reflect",
            (0, 0, 1, 7),
            "padding_mode 'reflect' needs padding smaller than the input width: padding (1, 7) with input "
            "width 7 allows at most 6 per side; use less padding, a larger image or another padding_mode",
        ),
        (
            "circular",
            (0, 0, 8, 0),
            "padding_mode 'circular' needs padding at most the input width: padding (8, 0) with input "
            "width 7 would wrap around more than once; use at most 7 per side",
        ),
    ],
)
def test_border_refusals_name_the_axis_and_the_most_allowed(mode: str, padding, sentence: str) -> None:
    """3 × 7 input: reflect allows at most n − 1 per side (2 rows, 6 columns), circular at most n."""
    with pytest.raises(ValueError) as refused:
        conv2d(np.ones((1, 1, 3, 7)), np.ones((1, 1, 1, 1)), padding=padding, padding_mode=mode)
    assert str(refused.value) == sentence


def test_unknown_mode_lists_the_allowed() -> None:
    with pytest.raises(ValueError, match="zeros, reflect, replicate, circular"):
        conv2d(np.ones((1, 1, 4, 4)), np.ones((1, 1, 3, 3)), padding=1, padding_mode="mirror")


def test_explain_names_the_mode() -> None:
    facts = explain_conv((1, 1, 8, 8), (1, 1, 3, 3), padding=1, padding_mode="circular").facts
    assert facts["padding_mode"] == "circular"
    assert "wraps" in facts["border"]


# ------------------------------------------------------------------------------------------ PyTorch

torch = pytest.importorskip("torch")
F = torch.nn.functional


@pytest.mark.parametrize("mode", ("reflect", "replicate", "circular"))
@pytest.mark.parametrize("seed", range(8))
def test_against_pytorch_pad_and_conv(mode: str, seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    x, weight, bias, stride, pad, dilation = random_config(rng, mode)
    top, bottom, left, right = pad
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(weight, requires_grad=True)
    bt = torch.tensor(bias, requires_grad=True)
    out_t = F.conv2d(F.pad(xt, (left, right, top, bottom), mode=mode), wt, bt, stride, 0, dilation)
    out = conv2d(x, weight, bias, stride, pad, dilation, padding_mode=mode)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(out.shape)
    out_t.backward(torch.tensor(g))
    gx, gw, gb = conv2d_backward(g, x, weight, stride, pad, dilation, padding_mode=mode)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, wt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gb, bt.grad.numpy(), rtol=1e-10, atol=1e-10)
    cols = im2col(x, weight.shape[2:], stride, pad, dilation, padding_mode=mode)
    unfold = F.unfold(
        F.pad(torch.tensor(x), (left, right, top, bottom), mode=mode),
        weight.shape[2:],
        dilation=dilation,
        stride=stride,
    )
    np.testing.assert_allclose(cols, unfold.numpy(), rtol=0, atol=0)


@pytest.mark.parametrize("mode", MODES)
def test_against_nn_conv2d_module(mode: str) -> None:
    rng = np.random.default_rng(9)
    layer = torch.nn.Conv2d(
        3, 4, 3, stride=2, padding=(1, 2), dilation=(1, 2), groups=1, padding_mode=mode, dtype=torch.float64
    )
    x = rng.standard_normal((2, 3, 7, 9))
    xt = torch.tensor(x, requires_grad=True)
    out_t = layer(xt)
    weight, bias = layer.weight.detach().numpy(), layer.bias.detach().numpy()
    out = conv2d(x, weight, bias, 2, (1, 2), (1, 2), padding_mode=mode)
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(out.shape)
    out_t.backward(torch.tensor(g))
    gx, gw, gb = conv2d_backward(g, x, weight, 2, (1, 2), (1, 2), padding_mode=mode)
    np.testing.assert_allclose(gx, xt.grad.numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(gw, layer.weight.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(("mode", "pad", "size"), [("reflect", 3, 3), ("circular", 4, 3)])
def test_pytorch_refuses_what_we_refuse(mode: str, pad: int, size: int) -> None:
    x = torch.ones((1, 1, size, size + 4))
    with pytest.raises((RuntimeError, ValueError)):
        F.pad(x, (0, 0, pad, pad), mode=mode)
    with pytest.raises(ValueError):
        conv2d(x.numpy(), np.ones((1, 1, 1, 1)), padding=(pad, 0), padding_mode=mode)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 4, 5)])
def test_fold_border_is_the_adjoint_of_pad_input(mode: str, shape: tuple[int, ...]) -> None:
    """``<pad_input(x), g> = <x, fold_border(g)>`` for every mode, on a plain (H, W) image and a batch;
    with zeros the border's gradient is dropped, so fold_border is the crop."""
    rng = np.random.default_rng(7)
    pad = Padding(2, 1, 3, 1)  # each side smaller than the input, as reflect needs
    x = rng.standard_normal(shape)
    g = rng.standard_normal((*shape[:-2], shape[-2] + 3, shape[-1] + 4))
    folded = fold_border(g, pad, mode)
    assert folded.shape == x.shape
    np.testing.assert_allclose(np.sum(pad_input(x, pad, padding_mode=mode) * g), np.sum(x * folded))
    if mode == "zeros":
        np.testing.assert_array_equal(fold_border(g, pad), g[..., 2:-1, 3:-1])  # the default mode


def test_border_index_by_the_formula_of_each_mode() -> None:
    """n = 3, two before and three after: positions t = −2 … 5 of the unpadded axis (reflect: two after,
    as it needs padding smaller than the input)."""
    assert border_index(3, 2, 2, "reflect").tolist() == [2, 1, 0, 1, 2, 1, 0]
    assert border_index(3, 2, 2, "reflect").tolist() == [source(t, 3, "reflect") for t in range(-2, 5)]
    assert border_index(3, 2, 3, "replicate").tolist() == [0, 0, 0, 1, 2, 2, 2, 2]
    assert border_index(3, 2, 3, "circular").tolist() == [1, 2, 0, 1, 2, 0, 1, 2]
    with pytest.raises(ValueError, match=r"^border_index has no rule for padding_mode 'zeros'$"):
        border_index(3, 1, 1, "zeros")
