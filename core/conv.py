"""2-D convolution (PyTorch's cross-correlation) as im2col + one matrix product, its backward pass, and
the transposed convolution built from the same col2im.

Layout: input ``(N, C, H, W)``, weight ``(F, C/groups, KH, KW)``, output ``(N, F, OH, OW)``; the
transposed convolution takes PyTorch's weight layout ``(C_in, C_out/groups, KH, KW)``.

dtype: float32 stays float32 and float64 stays float64; integer, bool and other real input is
converted to float64. When ``x`` and ``weight`` differ, both are promoted to the wider
(``np.result_type``), so float32 with float64 gives float64.

Every function has a loop twin (``*_naive``) used as the reference in the tests.

Notes
-----
``out[n, f, oh, ow] = b[f] + Σ_{c, kh, kw} w[f, c, kh, kw] · x_pad[n, g·C/G + c, oh·s_h + kh·d_h,
ow·s_w + kw·d_w]`` with ``g = f // (F/G)``. As matrices, per group: ``out = W_col · X_col`` with
``W_col`` of shape ``(F/G, C/G·KH·KW)`` and ``X_col`` of shape ``(C/G·KH·KW, OH·OW)``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from core.im2col import (
    as_float_array,
    check_ndim,
    fold_add,
    fold_border,
    fold_buffer_size,
    fold_into,
    im2col_geometry,
    pad_input,
    slices_into,
    window_view,
)
from core.shapes import (
    ConvGeometry,
    IntOrPair,
    PaddingSpec,
    as_pair,
    conv_geometry,
    conv_transpose_output_size,
    window_geometry,
)


def _floats(x: Any, weight: Any) -> tuple[np.ndarray, np.ndarray]:
    x = as_float_array(x, "x")
    weight = as_float_array(weight, "weight")
    check_ndim(x, "x", "(N, C, H, W)")
    check_ndim(weight, "weight", "(F, C/groups, KH, KW)")
    if x.dtype != weight.dtype:
        dtype = np.result_type(x, weight)
        x, weight = x.astype(dtype, copy=False), weight.astype(dtype, copy=False)
    return x, weight


def _bias(bias: Any, count: int, dtype: np.dtype) -> np.ndarray | None:
    if bias is None:
        return None
    b = as_float_array(bias, "bias").astype(dtype, copy=False)
    if b.shape != (count,):
        raise ValueError(f"bias must have shape ({count},), one per output channel, got {tuple(b.shape)}")
    return b


def _fastest_im2col(geometry: ConvGeometry) -> str:
    """The im2col method measured fastest (bench/bench_core.py): one strided-view copy for stride 1,
    the kernel-offset slices on phase planes for larger strides."""
    return "view" if geometry.window.stride == (1, 1) else "slices"


def _weight_columns(weight: np.ndarray, groups: int) -> np.ndarray:
    """``(F, C/G, KH, KW)`` → ``(G, F/G, C/G·KH·KW)``: one row per filter, rows grouped."""
    f = weight.shape[0]
    return weight.reshape(groups, f // groups, -1)


@dataclass(frozen=True)
class ConvGemm:
    """The pieces of a convolution done as a matrix product (what the page shows).

    Attributes
    ----------
    w_col : ndarray, shape (G, F/G, C/G·KH·KW)
        The filters flattened to rows, per group (``G = groups``).
    x_col : ndarray, shape (N, C·KH·KW, OH·OW)
        :func:`core.im2col.im2col` of the input; group ``g`` owns rows ``g·C/G·KH·KW`` up to the next.
    product : ndarray, shape (N, F, OH·OW)
        ``W_col · X_col`` per group, **without** the bias, before reshaping.
    output : ndarray, shape (N, F, OH, OW)
        ``product`` reshaped, plus the bias when one was given (equal to :func:`conv2d`).
    geometry : ConvGeometry
        Every resolved size.
    """

    w_col: np.ndarray
    x_col: np.ndarray
    product: np.ndarray
    output: np.ndarray
    geometry: ConvGeometry


def _product(w_col: np.ndarray, x_col: np.ndarray, geometry: ConvGeometry) -> np.ndarray:
    n, g = geometry.batch, geometry.groups
    if g == 1:
        return np.matmul(w_col[0], x_col)
    rows = x_col.shape[1] // g
    product = np.matmul(w_col, x_col.reshape(n, g, rows, -1))
    return product.reshape(n, geometry.out_channels, -1)


def conv2d_gemm(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "slices",
) -> ConvGemm:
    """A convolution as im2col + one matrix product, returning every intermediate.

    Parameters
    ----------
    x, weight, bias, stride, padding, dilation, groups, padding_mode
        As :func:`conv2d`.
    method : str
        The im2col method (see :func:`core.im2col.im2col`).

    Returns
    -------
    ConvGemm
    """
    x, weight = _floats(x, weight)
    geometry = conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups, padding_mode)
    b = _bias(bias, geometry.out_channels, x.dtype)
    x_col = im2col_geometry(x, geometry.window, method)
    w_col = _weight_columns(weight, geometry.groups)
    product = _product(w_col, x_col, geometry)
    output = product.reshape(geometry.output_shape)
    if b is not None:
        output = output + b[None, :, None, None]
    else:
        output = output.copy()
    return ConvGemm(w_col=w_col, x_col=x_col, product=product, output=output, geometry=geometry)


def conv2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """2-D cross-correlation, equal to ``torch.nn.functional.conv2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    weight : ndarray, shape (F, C/groups, KH, KW)
    bias : ndarray, shape (F,), optional
    stride, dilation : int or (int, int)
    padding : int, (pad_h, pad_w), (top, bottom, left, right), 'valid', 'same' or 'full'
        'same' works with any stride (TensorFlow's rule: output ``ceil(n / s)``, the odd pixel at the
        bottom/right), which PyTorch refuses for stride > 1.
    groups : int
        Divides C and F; ``groups == C`` is a depthwise convolution.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        What the padding holds, as ``torch.nn.Conv2d(padding_mode=...)``; 'reflect' needs padding
        smaller than the input, 'circular' at most the input (:func:`core.shapes.check_padding_mode`).

    Returns
    -------
    ndarray, shape (N, F, OH, OW)
        float32 for float32 inputs, float64 for float64 (or integer) inputs.

    Raises
    ------
    ValueError
        Wrong number of dimensions, channel mismatch, groups not dividing the channels, kernel larger
        than the padded input, stride 0, negative or unknown padding, wrong bias shape.

    Notes
    -----
    im2col ``(N, C·KH·KW, OH·OW)`` then ``W_col (G, F/G, C/G·KH·KW) @ X_col`` per group.
    """
    x, weight = _floats(x, weight)
    geometry = conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups, padding_mode)
    b = _bias(bias, geometry.out_channels, x.dtype)
    x, geometry = _prepad(x, geometry)
    return _forward(x, weight, b, geometry)


def _prepad(x: np.ndarray, geometry: ConvGeometry) -> tuple[np.ndarray, ConvGeometry]:
    """For a border mode other than zeros: the padded input and the geometry over it (no padding).
    Zero padding is left to im2col, which never materialises it."""
    window = geometry.window
    if window.padding_mode == "zeros":
        return x, geometry
    return pad_input(x, window.padding, padding_mode=window.padding_mode), geometry.without_padding()


def _forward(x: np.ndarray, weight: np.ndarray, b: np.ndarray | None, geometry: ConvGeometry) -> np.ndarray:
    """im2col + one product. Without groups the bias rides in the product: X_col gets a row of ones
    and W_col the bias as an extra column, which costs one more row in the product instead of a
    separate pass over the whole output."""
    window = geometry.window
    n, c = x.shape[:2]
    kh, kw = window.kernel
    oh, ow = window.output
    w_col = _weight_columns(weight, geometry.groups)
    if b is None or geometry.groups > 1:
        x_col = im2col_geometry(x, window, _fastest_im2col(geometry))
        out = _product(w_col, x_col, geometry).reshape(geometry.output_shape)
        if b is not None:
            out += b[:, None, None]
        return out
    rows = c * kh * kw
    cols = np.empty((n, rows + 1, oh * ow), dtype=x.dtype)
    blocks = cols[:, :rows].reshape(n, c, kh, kw, oh, ow)  # a view into cols
    if _fastest_im2col(geometry) == "view":
        np.copyto(blocks, window_view(pad_input(x, window.padding), window))
    else:
        slices_into(blocks, x, window)
    cols[:, rows] = 1
    w_aug = np.concatenate([w_col[0], b[:, None]], axis=1)  # (F, C·KH·KW + 1)
    return np.matmul(w_aug, cols).reshape(geometry.output_shape)


# pragma: no mutate start  (a loop twin: the tests' reference, not mutated; docs/mutation.md)
# --------------------------------------------------------------------------------------------------
# the loop twins' own geometry: the textbook formulas written out again, on purpose not taken from
# core.shapes, so that a wrong padding or size rule there cannot hide from the twins in the tests
# --------------------------------------------------------------------------------------------------


def twin_pair(value: Any) -> tuple[int, int]:
    """``v`` → ``(v, v)``; a pair stays a pair (the loop twins' own, not ``core.shapes.as_pair``)."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    first, second = value
    return int(first), int(second)


def _twin_padding(
    padding: Any, size: tuple[int, int], kernel: tuple[int, int], stride: Any, dilation: Any
) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` by the textbook rules (Dumoulin & Visin; TensorFlow's 'same')."""
    (h, w), (kh, kw), (sh, sw), (dh, dw) = size, kernel, twin_pair(stride), twin_pair(dilation)
    if isinstance(padding, str):
        word = padding.strip().lower()
        if word == "valid":
            return 0, 0, 0, 0
        if word == "full":  # every window that overlaps the input: k_eff − 1 on each side
            return (kh - 1) * dh, (kh - 1) * dh, (kw - 1) * dw, (kw - 1) * dw
        if word == "same":  # output ceil(n / s); the odd pixel goes to the bottom / right
            sides = []
            for n, k, s, d in ((h, kh, sh, dh), (w, kw, sw, dw)):
                total = max((-(-n // s) - 1) * s + (k - 1) * d + 1 - n, 0)
                sides += [total // 2, total - total // 2]
            return sides[0], sides[1], sides[2], sides[3]
        raise ValueError(f"unknown padding {padding!r}")
    if isinstance(padding, (int, np.integer)):
        return (int(padding),) * 4  # type: ignore[return-value]
    values = [int(v) for v in padding]
    if len(values) == 2:
        return values[0], values[0], values[1], values[1]
    top, bottom, left, right = values
    return top, bottom, left, right


def _twin_output(n: int, k: int, s: int, d: int, lo: int, hi: int) -> int:
    """``floor((n + lo + hi − ((k − 1)·d + 1)) / s) + 1``; raises when the kernel does not fit."""
    span = (k - 1) * d + 1
    if n + lo + hi < span:
        raise ValueError(f"kernel spans {span} pixels but the padded input is only {n + lo + hi}")
    return (n + lo + hi - span) // s + 1


_TWIN_NUMPY_MODES: dict[str, Literal["reflect", "edge", "wrap"]] = {
    "reflect": "reflect", "replicate": "edge", "circular": "wrap"
}
"""PyTorch's padding_mode → ``np.pad``'s mode (independent of core.im2col's border code)."""


def _twin_sources(n: int, lo: int, hi: int, padding_mode: str) -> np.ndarray:
    """The input index each of the ``lo + n + hi`` padded positions reads; −1 where it is a zero."""
    index = np.arange(n)
    if padding_mode == "zeros":
        return np.pad(index, (lo, hi), constant_values=-1)
    if padding_mode not in _TWIN_NUMPY_MODES:
        raise ValueError(f"unknown padding_mode {padding_mode!r}")
    if (padding_mode == "reflect" and max(lo, hi) >= n) or (padding_mode == "circular" and max(lo, hi) > n):
        raise ValueError(f"{padding_mode} padding ({lo}, {hi}) does not fit an input of {n}")
    return np.pad(index, (lo, hi), mode=_TWIN_NUMPY_MODES[padding_mode])


def _twin_setup(
    x: Any, weight: Any, stride: Any, padding: Any, dilation: Any, groups: int, padding_mode: str = "zeros"
) -> tuple[
    np.ndarray, np.ndarray, np.ndarray, tuple[int, int, int, int], tuple[int, int, int, int],
    tuple[np.ndarray, np.ndarray],
]:
    """Inputs as floats, the padded input, ``(N, F, OH, OW)``, ``(sh, sw, dh, dw)`` and, per padded row and
    column, the input row / column it copies (−1: a zero)."""
    x, weight = _floats(x, weight)
    n, c, h, w = x.shape
    f, cg, kh, kw = weight.shape
    if groups < 1 or c % groups or f % groups or cg * groups != c:
        raise ValueError(f"groups {groups} does not fit input channels {c}, weight {weight.shape}")
    top, bottom, left, right = _twin_padding(padding, (h, w), (kh, kw), stride, dilation)
    (sh, sw), (dh, dw) = twin_pair(stride), twin_pair(dilation)
    oh = _twin_output(h, kh, sh, dh, top, bottom)
    ow = _twin_output(w, kw, sw, dw, left, right)
    rows = _twin_sources(h, top, bottom, padding_mode)
    cols = _twin_sources(w, left, right, padding_mode)
    xp = np.zeros((n, c, rows.size, cols.size), dtype=x.dtype)
    for i, r in enumerate(rows):
        for j, col in enumerate(cols):
            if r >= 0 and col >= 0:
                xp[:, :, i, j] = x[:, :, r, col]
    return x, weight, xp, (n, f, oh, ow), (sh, sw, dh, dw), (rows, cols)


def conv2d_naive(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """:func:`conv2d` with plain loops over ``(n, f, oh, ow)``: the reference twin. Slow; small shapes.

    Parameters and returns as :func:`conv2d`.
    """
    x, weight, xp, shape, (sh, sw, dh, dw), sources = _twin_setup(
        x, weight, stride, padding, dilation, groups, padding_mode
    )
    n_, f_, oh_, ow_ = shape
    _, cg, kh, kw = weight.shape
    b = _bias(bias, f_, x.dtype)
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    fg = f_ // groups
    out = np.zeros(shape, dtype=x.dtype)
    for n in range(n_):
        for f in range(f_):
            c0 = (f // fg) * cg
            for oh in range(oh_):
                for ow in range(ow_):
                    window = xp[n, c0 : c0 + cg, oh * sh : oh * sh + eh : dh, ow * sw : ow * sw + ew : dw]
                    out[n, f, oh, ow] = np.sum(window * weight[f]) + (0.0 if b is None else b[f])
    return out


# pragma: no mutate end
def conv2d_backward(
    grad_out: Any,
    x: Any,
    weight: Any,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gradients of :func:`conv2d` by im2col / col2im. Pure: returns gradients, updates nothing.

    Parameters
    ----------
    grad_out : ndarray, shape (N, F, OH, OW)
        ∂L/∂out.
    x : ndarray, shape (N, C, H, W)
    weight : ndarray, shape (F, C/groups, KH, KW)
    stride, padding, dilation, groups, padding_mode
        As in the forward call.

    Returns
    -------
    grad_x : ndarray, shape (N, C, H, W)
    grad_weight : ndarray, shape (F, C/groups, KH, KW)
    grad_bias : ndarray, shape (F,)

    Notes
    -----
    Per group: ``∂W_col = Σ_n G_n · X_colᵀ``, ``∂X_col = W_colᵀ · G_n`` folded back by col2im (a
    transposed convolution), ``∂b = Σ_{n, oh, ow} G``, with ``G_n`` the ``(F/G, OH·OW)`` gradient.
    With a ``padding_mode`` other than zeros, the gradient of each border pixel is added to the input
    pixel it was copied from (:func:`core.im2col.fold_border`).
    """
    x, weight = _floats(x, weight)
    geometry = conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups, padding_mode)
    grad = as_float_array(grad_out, "grad_out").astype(x.dtype, copy=False)
    if grad.shape != geometry.output_shape:
        raise ValueError(
            f"grad_out must have the output shape {geometry.output_shape}, got {tuple(grad.shape)}"
        )
    if geometry.window.padding_mode == "zeros":
        return _backward_tiled(grad, x, weight, geometry)
    xp, bare = _prepad(x, geometry)
    grad_xp, grad_w, grad_b = _backward_tiled(grad, xp, weight, bare)
    return fold_border(grad_xp, geometry.window.padding, geometry.window.padding_mode), grad_w, grad_b


# Columns per tile of images in the backward pass: bounds the memory of a large batch (the MNIST
# batch of 64 is one tile; smaller tiles measured slower, the col2im being ~25 numpy calls per tile).
TILE_BYTES = 1 << 22


def _backward_tiled(
    grad: np.ndarray, x: np.ndarray, weight: np.ndarray, geometry: ConvGeometry
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """conv2d_backward over tiles of whole images: the columns of ``x`` and of the input gradient
    exist for one tile at a time, and the bias sum is taken while the tile's gradient is in cache."""
    window = geometry.window
    n, c, h, w = x.shape
    g, f = geometry.groups, geometry.out_channels
    kh, kw = window.kernel
    oh, ow = window.output
    rows, length = c * kh * kw, oh * ow
    w_col = _weight_columns(weight, g)  # (G, F/G, C/G·KH·KW)
    w_col_t = w_col.transpose(0, 2, 1)
    go = grad.reshape(n, g, f // g, length)  # (N, G, F/G, L)
    view = window_view(pad_input(x, window.padding), window)  # (N, C, KH, KW, OH, OW)
    buf = np.zeros((n, c, *fold_buffer_size(window, (h, w))), dtype=x.dtype)
    grad_w_col = np.zeros(w_col.shape, dtype=x.dtype)
    grad_b = np.zeros(f, dtype=x.dtype)
    per = max(1, TILE_BYTES // (rows * length * x.itemsize))
    for n0 in range(0, n, per):
        m = min(per, n - n0)
        x_col = np.ascontiguousarray(view[n0 : n0 + m]).reshape(m, g, rows // g, length)
        g_tile = go[n0 : n0 + m]
        # ∂W_col = Σ_n G_n · X_colᵀ (a batch of products then a sum; np.einsum is ~8x slower here)
        grad_w_col += np.matmul(g_tile, x_col.transpose(0, 1, 3, 2)).sum(axis=0)
        # ∂X_col = W_colᵀ · G_n, folded back into the (padded) input gradient
        grad_cols = np.matmul(w_col_t, g_tile)  # (m, G, C/G·KH·KW, L)
        fold_add(buf[n0 : n0 + m], grad_cols.reshape(m, c, kh, kw, oh, ow), window)
        grad_b += g_tile.sum(axis=3).sum(axis=0).reshape(f)  # ∂b = Σ G, while the tile is in cache
    top, left = window.padding.top, window.padding.left
    grad_x = np.ascontiguousarray(buf[:, :, top : top + h, left : left + w])
    return grad_x, grad_w_col.reshape(weight.shape), grad_b


# pragma: no mutate start  (a loop twin: the tests' reference, not mutated; docs/mutation.md)
def conv2d_backward_naive(
    grad_out: Any,
    x: Any,
    weight: Any,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`conv2d_backward` with plain loops over ``(n, f, oh, ow)``: the reference twin."""
    x, weight, xp, shape, (sh, sw, dh, dw), sources = _twin_setup(
        x, weight, stride, padding, dilation, groups, padding_mode
    )
    grad = as_float_array(grad_out, "grad_out").astype(x.dtype, copy=False)
    if grad.shape != shape:
        raise ValueError(f"grad_out must have the output shape {shape}, got {tuple(grad.shape)}")
    n_, f_, oh_, ow_ = shape
    _, cg, kh, kw = weight.shape
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    fg = f_ // groups
    grad_xp = np.zeros(xp.shape, dtype=x.dtype)
    grad_w = np.zeros(weight.shape, dtype=x.dtype)
    for n in range(n_):
        for f in range(f_):
            c0 = (f // fg) * cg
            for oh in range(oh_):
                for ow in range(ow_):
                    rows = slice(oh * sh, oh * sh + eh, dh)
                    cols = slice(ow * sw, ow * sw + ew, dw)
                    grad_w[f] += grad[n, f, oh, ow] * xp[n, c0 : c0 + cg, rows, cols]
                    grad_xp[n, c0 : c0 + cg, rows, cols] += grad[n, f, oh, ow] * weight[f]
    # each padded cell's gradient goes back to the input pixel it copies (none for a zero)
    source_rows, source_cols = sources
    grad_x = np.zeros(x.shape, dtype=x.dtype)
    for i, r in enumerate(source_rows):
        for j, col in enumerate(source_cols):
            if r >= 0 and col >= 0:
                grad_x[:, :, r, col] += grad_xp[:, :, i, j]
    return grad_x, grad_w, grad.sum(axis=(0, 2, 3))


# pragma: no mutate end
def _transpose_setup(
    x: Any,
    weight: Any,
    stride: IntOrPair,
    padding: IntOrPair,
    output_padding: IntOrPair,
    dilation: IntOrPair,
    groups: int,
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    x, weight = _floats(x, weight)
    n, c_in, h, w = x.shape
    if weight.shape[0] != c_in:
        raise ValueError(
            f"transposed-convolution weight (C_in, C_out/groups, KH, KW) has {weight.shape[0]} input "
            f"channels but the input has {c_in}"
        )
    if isinstance(groups, bool) or not isinstance(groups, int) or groups < 1 or c_in % groups:
        raise ValueError(f"groups ({groups!r}) must be a positive int dividing the input channels ({c_in})")
    as_pair(padding, "padding", minimum=0)
    size = conv_transpose_output_size((h, w), weight.shape[2:], stride, padding, output_padding, dilation)
    return x, weight, size


def conv_transpose2d(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> np.ndarray:
    """Transposed convolution, equal to ``torch.nn.functional.conv_transpose2d``.

    Built as the adjoint of :func:`conv2d`: ``col2im(W_colᵀ · X)``, the very computation that gives
    ``grad_x`` in :func:`conv2d_backward` — the backward pass of a convolution *is* a transposed
    convolution.

    Parameters
    ----------
    x : ndarray, shape (N, C_in, H, W)
    weight : ndarray, shape (C_in, C_out/groups, KH, KW)
        PyTorch's layout for transposed convolution.
    bias : ndarray, shape (C_out,), optional
    stride, dilation : int or (int, int)
    padding : int or (int, int)
        Cut from both sides of the full output.
    output_padding : int or (int, int)
        Extra rows/columns at the bottom/right; smaller than the stride or the dilation.
    groups : int

    Returns
    -------
    ndarray, shape (N, C_out, OH, OW)
        float32 for float32 inputs, float64 for float64 (or integer) inputs.

    Notes
    -----
    ``OH = (H − 1)·s − 2·p + (KH − 1)·d + 1 + output_padding``. The columns
    ``W_colᵀ · X`` have shape ``(N, C_out·KH·KW, H·W)``; col2im sums them into the output, each
    input pixel ``(h, w)`` being one window of the equivalent convolution over the output.
    """
    x, weight, (oh, ow) = _transpose_setup(x, weight, stride, padding, output_padding, dilation, groups)
    n, c_in, h, w = x.shape
    cog, kh, kw = weight.shape[1:]
    c_out = cog * groups
    b = _bias(bias, c_out, x.dtype)
    ph, pw = as_pair(padding, "padding", minimum=0)
    # The convolution over the (OH, OW) output whose windows are the (H, W) input pixels.
    window = window_geometry((oh, ow), (kh, kw), stride, (ph, pw), dilation)
    window = dataclasses.replace(window, output=(h, w))
    w_col = weight.reshape(groups, c_in // groups, cog * kh * kw)  # (G, C_in/G, C_out/G·KH·KW)
    xg = x.reshape(n, groups, c_in // groups, h * w)
    cols = np.matmul(w_col.transpose(0, 2, 1), xg).reshape(n, c_out * kh * kw, h * w)
    out = fold_into(cols, n, c_out, window, (oh, ow))
    if b is not None:
        out = out + b[None, :, None, None]
    return np.ascontiguousarray(out)


# pragma: no mutate start  (a loop twin: the tests' reference, not mutated; docs/mutation.md)
def conv_transpose2d_naive(
    x: Any,
    weight: Any,
    bias: Any = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> np.ndarray:
    """:func:`conv_transpose2d` by scattering every input pixel times its kernel: the reference twin.

    Notes
    -----
    ``out[n, g·C_out/G + co, h·s_h + kh·d_h − p_h, w·s_w + kw·d_w − p_w] +=
    x[n, ci, h, w] · W[ci, co, kh, kw]`` for every input channel ``ci`` of group ``g``, kept where
    the index is inside the output.
    """
    x, weight = _floats(x, weight)
    n_, c_in, h_, w_ = x.shape
    cog, kh_, kw_ = weight.shape[1:]
    if weight.shape[0] != c_in or groups < 1 or c_in % groups:
        raise ValueError(f"weight {weight.shape} with groups {groups} does not fit {c_in} input channels")
    c_out = cog * groups
    b = _bias(bias, c_out, x.dtype)
    (sh, sw), (ph, pw), (dh, dw) = twin_pair(stride), twin_pair(padding), twin_pair(dilation)
    oph, opw = twin_pair(output_padding)
    # Dumoulin & Visin, relationship 14 with dilation: o = (i − 1)·s − 2p + (k − 1)·d + 1 + output_padding
    oh_ = (h_ - 1) * sh - 2 * ph + (kh_ - 1) * dh + 1 + oph
    ow_ = (w_ - 1) * sw - 2 * pw + (kw_ - 1) * dw + 1 + opw
    if oh_ < 1 or ow_ < 1:
        raise ValueError(f"transposed-convolution output would be {oh_} × {ow_}")
    cig = c_in // groups
    out = np.zeros((n_, c_out, oh_, ow_), dtype=x.dtype)
    for n in range(n_):
        for ci in range(c_in):
            co0 = (ci // cig) * cog
            for h in range(h_):
                for w in range(w_):
                    for kh in range(kh_):
                        for kw in range(kw_):
                            r, q = h * sh + kh * dh - ph, w * sw + kw * dw - pw
                            if 0 <= r < oh_ and 0 <= q < ow_:
                                out[n, co0 : co0 + cog, r, q] += x[n, ci, h, w] * weight[ci, :, kh, kw]
    if b is not None:
        out += b[None, :, None, None]
    return out


# pragma: no mutate end
__all__ = [
    "ConvGemm",
    "conv2d",
    "conv2d_backward",
    "conv2d_backward_naive",
    "conv2d_gemm",
    "conv2d_naive",
    "conv_transpose2d",
    "conv_transpose2d_naive",
]
