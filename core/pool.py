"""Max and average pooling, forward and backward, equal to PyTorch (``max_pool2d``, ``avg_pool2d``).

Layout NCHW: input ``(N, C, H, W)``, output ``(N, C, OH, OW)`` with the sizes of
:func:`core.shapes.pool_output_size` (PyTorch's rule, ``ceil_mode`` included). Padding is symmetric and
at most half the kernel; max pooling pads with ``-inf``, so a padded pixel never wins.

dtype: float32 stays float32 and float64 stays float64; integer, bool and other real input is
converted to float64.

The fast versions loop over the ``KH·KW`` kernel offsets and combine one strided slice of the padded
input each (a running ``np.maximum`` or sum); the ``*_naive`` twins loop over every output pixel and
clip each window to the input, as PyTorch's reference kernels do.

Notes
-----
Window ``(oh, ow)`` starts at input row ``oh·s_h − p_h`` and column ``ow·s_w − p_w``. In ceil mode
the last window may hang past the padded input; it is clipped. Average pooling divides by
``divisor_override`` if given, else by the window clipped to the padded extent ``H + 2p``
(``count_include_pad=True``) or to the input (``count_include_pad=False``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.conv import twin_pair
from core.im2col import as_float_array, check_ndim
from core.shapes import IntOrPair, as_pair, effective_kernel, pool_output_size, pool_padding


class PoolGeometry:
    """Resolved pooling sizes: ``kernel``, ``stride``, ``padding``, ``dilation``, ``output`` pairs, plus
    the buffer size ``buffer`` that the padded input is stored in (``H + 2p`` grown when a ceil-mode
    window hangs past it)."""

    def __init__(
        self,
        input_size: tuple[int, int],
        kernel_size: IntOrPair,
        stride: IntOrPair | None,
        padding: IntOrPair,
        dilation: IntOrPair,
        ceil_mode: bool,
    ) -> None:
        self.input = input_size
        self.ceil_mode = ceil_mode
        self.kernel = as_pair(kernel_size, "kernel_size", minimum=1)
        self.stride = as_pair(kernel_size if stride is None else stride, "stride", minimum=1)
        self.dilation = as_pair(dilation, "dilation", minimum=1)
        self.padding = pool_padding(padding, self.kernel)
        self.output: tuple[int, int] = pool_output_size(
            input_size, self.kernel, self.stride, self.padding, self.dilation, ceil_mode
        )
        # the last window ends at (o - 1)·s + k_eff, which ceil mode may put past H + 2p
        self.buffer: tuple[int, int] = tuple(  # type: ignore[assignment]
            max(n + 2 * p, (o - 1) * s + effective_kernel(k, d))
            for n, p, o, s, k, d in zip(
                self.input, self.padding, self.output, self.stride, self.kernel, self.dilation, strict=True
            )
        )

    def slices(self, i: int, j: int) -> tuple[slice, slice]:
        """Strided slices of the padded buffer read by kernel offset ``(i, j)`` over all windows."""
        (sh, sw), (dh, dw), (oh, ow) = self.stride, self.dilation, self.output
        return (
            slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
            slice(j * dw, j * dw + sw * (ow - 1) + 1, sw),
        )

    def pad(self, x: np.ndarray, value: float) -> np.ndarray:
        """``x`` placed in a buffer of ``self.buffer`` filled with ``value`` (``x`` itself if it fits)."""
        (ph, pw), (bh, bw) = self.padding, self.buffer
        h, w = self.input
        if ph == pw == 0 and (bh, bw) == (h, w):
            return x
        out = np.full((*x.shape[:2], bh, bw), value, dtype=x.dtype)
        out[:, :, ph : ph + h, pw : pw + w] = x
        return out


def _setup(
    x: Any,
    kernel_size: IntOrPair,
    stride: IntOrPair | None,
    padding: IntOrPair,
    dilation: IntOrPair,
    ceil_mode: bool,
) -> tuple[np.ndarray, PoolGeometry]:
    x = as_float_array(x, "x")
    check_ndim(x, "x", "(N, C, H, W)")
    return x, PoolGeometry(x.shape[2:], kernel_size, stride, padding, dilation, ceil_mode)


def _grad(grad_out: Any, x: np.ndarray, geometry: PoolGeometry) -> np.ndarray:
    grad = as_float_array(grad_out, "grad_out").astype(x.dtype, copy=False)
    expected = (*x.shape[:2], *geometry.output)
    if grad.shape != expected:
        raise ValueError(f"grad_out must have the pooled shape {expected}, got {tuple(grad.shape)}")
    return grad


# pragma: no mutate start  (a loop twin: the tests' reference, not mutated; docs/mutation.md)
# --------------------------------------------------------------------------------------------------
# the loop twins' own geometry: PyTorch's pooling size rule written out again, on purpose not taken
# from core.shapes, so that a wrong size rule there cannot hide from the twins in the tests
# --------------------------------------------------------------------------------------------------


def _twin_setup(
    x: Any,
    kernel_size: IntOrPair,
    stride: IntOrPair | None,
    padding: IntOrPair,
    dilation: IntOrPair,
    ceil_mode: bool,
) -> tuple[np.ndarray, tuple[tuple[int, int], ...]]:
    """Float input and ``(kernel, stride, padding, dilation, output)`` pairs.

    Notes
    -----
    ``o = floor_or_ceil((n + 2p − (k − 1)·d − 1) / s) + 1``, and in ceil mode a last window that
    would start at or past ``n + p`` (in the right padding only) is dropped (PyTorch's rule).
    """
    x = as_float_array(x, "x")
    check_ndim(x, "x", "(N, C, H, W)")
    k, d, p = twin_pair(kernel_size), twin_pair(dilation), twin_pair(padding)
    s = k if stride is None else twin_pair(stride)
    out = []
    for n, kk, ss, pp, dd in zip(x.shape[2:], k, s, p, d, strict=True):
        numerator = n + 2 * pp - (kk - 1) * dd - 1
        o = (numerator + (ss - 1 if ceil_mode else 0)) // ss + 1
        if ceil_mode and (o - 1) * ss >= n + pp:
            o -= 1
        if o < 1:
            raise ValueError(f"pooling window {kk} does not fit {n} + 2·{pp}")
        out.append(o)
    return x, (k, s, p, d, (out[0], out[1]))


def _twin_grad(grad_out: Any, x: np.ndarray, output: tuple[int, int]) -> np.ndarray:
    grad = as_float_array(grad_out, "grad_out").astype(x.dtype, copy=False)
    if grad.shape != (*x.shape[:2], *output):
        raise ValueError(f"grad_out must have the pooled shape {(*x.shape[:2], *output)}")
    return grad


# pragma: no mutate end
# --------------------------------------------------------------------------------------------------
# max pooling
# --------------------------------------------------------------------------------------------------


def _first_inside(o: int, s: int, p: int, d: int) -> np.ndarray:
    """First tap of each window that lies inside the input (``start`` moved past the padding)."""
    start = np.arange(o) * s - p
    skip = np.where(start < 0, -(start // d), 0)  # ceil(-start / d) taps in the padding
    return start + skip * d


def max_pool2d(
    x: Any,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """Max pooling, equal to ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        Symmetric, at most half the kernel; padded pixels are ``-inf``.
    dilation : int or (int, int)
    ceil_mode : bool
        Keep a last, partial window (PyTorch's rule: only if it starts inside the input or its left
        padding).
    return_indices : bool
        Also return where each maximum came from.

    Returns
    -------
    out : ndarray, shape (N, C, OH, OW)
    indices : ndarray of int64, shape (N, C, OH, OW)
        Only with ``return_indices``: the flat index ``h·W + w`` of the maximum in its unpadded
        ``(H, W)`` input plane, as PyTorch. Ties go to the first maximum in scan order (row by row);
        a NaN wins (the last NaN in scan order), and NaN propagates to the output.
    """
    x, geometry = _setup(x, kernel_size, stride, padding, dilation, ceil_mode)
    xp = geometry.pad(x, -np.inf)
    kh, kw = geometry.kernel
    if not return_indices:
        out: np.ndarray | None = None
        for i in range(kh):
            for j in range(kw):
                piece = xp[(slice(None), slice(None), *geometry.slices(i, j))]
                if out is None:
                    out = piece.copy()
                else:
                    np.maximum(out, piece, out=out)
        return out
    (sh, sw), (ph, pw), (dh, dw), (oh, ow) = (
        geometry.stride,
        geometry.padding,
        geometry.dilation,
        geometry.output,
    )
    width = geometry.input[1]
    best = np.full((*x.shape[:2], oh, ow), -np.inf, dtype=x.dtype)
    first = _first_inside(oh, sh, ph, dh)[:, None] * width + _first_inside(ow, sw, pw, dw)[None, :]
    indices = np.broadcast_to(first, best.shape).copy()
    origin = (np.arange(oh) * sh - ph)[:, None] * width + (np.arange(ow) * sw - pw)[None, :]
    for i in range(kh):
        for j in range(kw):
            piece = xp[(slice(None), slice(None), *geometry.slices(i, j))]
            better = (piece > best) | np.isnan(piece)
            np.copyto(best, piece, where=better)
            np.copyto(indices, origin + (i * dh * width + j * dw), where=better)
    return best, indices


# pragma: no mutate start  (a loop twin: the tests' reference, not mutated; docs/mutation.md)
def max_pool2d_naive(
    x: Any,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`max_pool2d` with loops over every output pixel and window tap: the reference twin.

    Returns
    -------
    out, indices : ndarray, shape (N, C, OH, OW)
        As ``max_pool2d(..., return_indices=True)``.
    """
    x, ((kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh_, ow_)) = _twin_setup(
        x, kernel_size, stride, padding, dilation, ceil_mode
    )
    h_, w_ = x.shape[2:]
    out = np.empty((*x.shape[:2], oh_, ow_), dtype=x.dtype)
    indices = np.empty(out.shape, dtype=np.int64)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for oh in range(oh_):
                for ow in range(ow_):
                    best, where = -np.inf, -1
                    for i in range(kh):
                        for j in range(kw):
                            h, w = oh * sh - ph + i * dh, ow * sw - pw + j * dw
                            if not (0 <= h < h_ and 0 <= w < w_):
                                continue
                            value = x[n, c, h, w]
                            if where < 0 or value > best or np.isnan(value):
                                best, where = value, h * w_ + w
                    out[n, c, oh, ow], indices[n, c, oh, ow] = best, where
    return out, indices


# pragma: no mutate end
def max_pool2d_backward(
    grad_out: Any,
    x: Any,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
    indices: Any = None,
) -> np.ndarray:
    """Gradient of :func:`max_pool2d` with respect to ``x``: each output's gradient goes to its argmax.

    Parameters
    ----------
    grad_out : ndarray, shape (N, C, OH, OW)
    x : ndarray, shape (N, C, H, W)
    kernel_size, stride, padding, dilation, ceil_mode
        As in the forward call.
    indices : ndarray of int, shape (N, C, OH, OW), optional
        From ``max_pool2d(..., return_indices=True)``; recomputed from ``x`` when omitted.

    Returns
    -------
    ndarray, shape (N, C, H, W)
        Gradients of overlapping windows that share an argmax are summed; padding receives nothing.

    Notes
    -----
    A window that lies entirely in the padding (possible with dilation or ``ceil_mode``; its maximum is
    ``-inf`` whatever the input) passes its gradient to no input. Its index, here as in PyTorch, points past
    the end of the plane; PyTorch's backward then adds the gradient to a pixel of a later channel (or past the
    tensor), this one drops it.
    """
    x, geometry = _setup(x, kernel_size, stride, padding, dilation, ceil_mode)
    grad = _grad(grad_out, x, geometry)
    if indices is None:
        _, indices = max_pool2d(x, kernel_size, stride, padding, dilation, ceil_mode, return_indices=True)
    idx = np.asarray(indices, dtype=np.int64)
    if idx.shape != grad.shape:
        raise ValueError(f"indices must have the pooled shape {grad.shape}, got {tuple(idx.shape)}")
    n, c, h, w = x.shape
    plane = h * w
    flat = (idx.reshape(n * c, -1) + (np.arange(n * c) * plane)[:, None]).ravel()
    weights = grad.ravel()
    inside = (idx >= 0) & (idx < plane)
    if not inside.all():  # windows of padding only: their gradient goes nowhere
        flat, weights = flat[inside.ravel()], weights[inside.ravel()]
    counts = np.bincount(flat, weights=weights, minlength=n * c * plane)
    return counts.astype(x.dtype, copy=False).reshape(x.shape)


# pragma: no mutate start  (a loop twin: the tests' reference, not mutated; docs/mutation.md)
def max_pool2d_backward_naive(
    grad_out: Any,
    x: Any,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """:func:`max_pool2d_backward` with loops: the reference twin."""
    x, (*_, output) = _twin_setup(x, kernel_size, stride, padding, dilation, ceil_mode)
    grad = _twin_grad(grad_out, x, output)
    _, indices = max_pool2d_naive(x, kernel_size, stride, padding, dilation, ceil_mode)
    out = np.zeros(x.shape, dtype=x.dtype)
    w_ = x.shape[3]
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for oh in range(grad.shape[2]):
                for ow in range(grad.shape[3]):
                    h, w = divmod(int(indices[n, c, oh, ow]), w_)
                    if 0 <= h < x.shape[2]:  # else a window of padding only: no input to send to
                        out[n, c, h, w] += grad[n, c, oh, ow]
    return out


# pragma: no mutate end
# --------------------------------------------------------------------------------------------------
# average pooling
# --------------------------------------------------------------------------------------------------


def _axis_divisor(n: int, k: int, s: int, p: int, o: int, count_include_pad: bool) -> np.ndarray:
    """Window length along one axis used by the divisor (PyTorch's ``avg_pool2d`` rule)."""
    start = np.arange(o) * s - p
    end = np.minimum(start + k, n + p)
    if count_include_pad:
        return end - start
    return np.minimum(end, n) - np.maximum(start, 0)


def _divisor(
    geometry: PoolGeometry, count_include_pad: bool, divisor_override: int | None, dtype: np.dtype
) -> np.ndarray:
    if divisor_override is not None:
        if (
            isinstance(divisor_override, bool)
            or not isinstance(divisor_override, int)
            or divisor_override < 1
        ):
            raise ValueError(f"divisor_override must be a positive int, got {divisor_override!r}")
        return np.full((1, 1), divisor_override, dtype=dtype)
    rows = _axis_divisor(
        geometry.input[0],
        geometry.kernel[0],
        geometry.stride[0],
        geometry.padding[0],
        geometry.output[0],
        count_include_pad,
    )
    cols = _axis_divisor(
        geometry.input[1],
        geometry.kernel[1],
        geometry.stride[1],
        geometry.padding[1],
        geometry.output[1],
        count_include_pad,
    )
    return (rows[:, None] * cols[None, :]).astype(dtype)


def avg_pool2d(
    x: Any,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Average pooling, equal to ``torch.nn.functional.avg_pool2d``.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size``.
    padding : int or (int, int)
        Symmetric zero padding, at most half the kernel.
    ceil_mode : bool
    count_include_pad : bool
        Whether padded zeros count in the divisor.
    divisor_override : int, optional
        Divide every window sum by this instead.

    Returns
    -------
    ndarray, shape (N, C, OH, OW)

    Notes
    -----
    divisor = ``(min(start + k, H + p) − start)`` per axis with padding counted, or
    ``(min(start + k, H) − max(start, 0))`` without; ``start = o·s − p``.
    """
    x, geometry = _setup(x, kernel_size, stride, padding, 1, ceil_mode)
    xp = geometry.pad(x, 0.0)
    kh, kw = geometry.kernel
    total = np.zeros((*x.shape[:2], *geometry.output), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            total += xp[(slice(None), slice(None), *geometry.slices(i, j))]
    total /= _divisor(geometry, count_include_pad, divisor_override, x.dtype)
    return total


def avg_pool2d_backward(
    grad_out: Any,
    x: Any,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """Gradient of :func:`avg_pool2d` with respect to ``x``.

    Parameters
    ----------
    grad_out : ndarray, shape (N, C, OH, OW)
    x : ndarray, shape (N, C, H, W)
        Only its shape and dtype are used.
    kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override
        As in the forward call.

    Returns
    -------
    ndarray, shape (N, C, H, W)
        Each output's gradient divided by its divisor, spread over the input pixels of its window;
        the share of padded pixels is dropped.
    """
    x, geometry = _setup(x, kernel_size, stride, padding, 1, ceil_mode)
    grad = _grad(grad_out, x, geometry)
    share = grad / _divisor(geometry, count_include_pad, divisor_override, x.dtype)
    buf = np.zeros((*x.shape[:2], *geometry.buffer), dtype=x.dtype)
    kh, kw = geometry.kernel
    for i in range(kh):
        for j in range(kw):
            buf[(slice(None), slice(None), *geometry.slices(i, j))] += share
    (ph, pw), (h, w) = geometry.padding, geometry.input
    return np.ascontiguousarray(buf[:, :, ph : ph + h, pw : pw + w])


# pragma: no mutate start  (a loop twin: the tests' reference, not mutated; docs/mutation.md)
def avg_pool2d_naive(
    x: Any,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """:func:`avg_pool2d` with loops over every output pixel, PyTorch's reference kernel: the twin."""
    x, ((kh, kw), (sh, sw), (ph, pw), _, output) = _twin_setup(x, kernel_size, stride, padding, 1, ceil_mode)
    h_, w_ = x.shape[2:]
    out = np.empty((*x.shape[:2], *output), dtype=x.dtype)
    for oh in range(out.shape[2]):
        for ow in range(out.shape[3]):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, h_ + ph), min(w0 + kw, w_ + pw)
            pool_size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h_), min(w1, w_)
            if divisor_override is not None:
                divisor = divisor_override
            elif count_include_pad:
                divisor = pool_size
            else:
                divisor = (h1 - h0) * (w1 - w0)
            out[:, :, oh, ow] = x[:, :, h0:h1, w0:w1].sum(axis=(2, 3)) / divisor
    return out


def avg_pool2d_backward_naive(
    grad_out: Any,
    x: Any,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> np.ndarray:
    """:func:`avg_pool2d_backward` with loops over every output pixel: the reference twin."""
    x, ((kh, kw), (sh, sw), (ph, pw), _, output) = _twin_setup(x, kernel_size, stride, padding, 1, ceil_mode)
    grad = _twin_grad(grad_out, x, output)
    h_, w_ = x.shape[2:]
    out = np.zeros(x.shape, dtype=x.dtype)
    for oh in range(grad.shape[2]):
        for ow in range(grad.shape[3]):
            h0, w0 = oh * sh - ph, ow * sw - pw
            h1, w1 = min(h0 + kh, h_ + ph), min(w0 + kw, w_ + pw)
            pool_size = (h1 - h0) * (w1 - w0)
            h0, w0, h1, w1 = max(h0, 0), max(w0, 0), min(h1, h_), min(w1, w_)
            if divisor_override is not None:
                divisor = divisor_override
            elif count_include_pad:
                divisor = pool_size
            else:
                divisor = (h1 - h0) * (w1 - w0)
            out[:, :, h0:h1, w0:w1] += (grad[:, :, oh, ow] / divisor)[:, :, None, None]
    return out


# pragma: no mutate end
__all__ = [
    "PoolGeometry",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_backward_naive",
    "avg_pool2d_naive",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_backward_naive",
    "max_pool2d_naive",
]
