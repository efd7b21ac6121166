"""im2col and col2im: turning sliding windows into the columns of a matrix, and back.

Layout (PyTorch's ``unfold``): an input ``x`` of shape ``(N, C, H, W)`` becomes columns of shape
``(N, C·KH·KW, OH·OW)``; rows are ordered ``(c, kh, kw)`` (channel-major), columns ``(oh, ow)``
row-major. ``col2im`` is the adjoint (PyTorch's ``fold``): every column entry is added back to the
input pixel it was read from, so pixels read by several windows receive the sum.

dtype: float32 stays float32 and float64 stays float64; integer, bool and other real input is
converted to float64.

All sizes come from :mod:`core.shapes`; nothing here re-derives an output size.

Notes
-----
Column ``oh·OW + ow``, row ``(c·KH + kh)·KW + kw`` holds the padded input at
``(c, oh·s_h + kh·d_h, ow·s_w + kw·d_w)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.shapes import IntOrPair, Padding, PaddingSpec, WindowGeometry, window_geometry

IM2COL_METHODS = ("slices", "view", "indices", "windows")
COL2IM_METHODS = ("slices", "add_at")


def as_float_array(x: Any, name: str = "x") -> np.ndarray:
    """Return ``x`` as a float32 or float64 array.

    float32 and float64 arrays are returned unchanged (no copy); integer, bool and other real input
    (float16, Python lists of numbers) is converted to float64. Complex input raises ``ValueError``.
    """
    arr = np.asarray(x)
    if arr.dtype == np.float32 or arr.dtype == np.float64:
        return arr
    if arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    raise ValueError(f"{name} must hold real numbers, got dtype {arr.dtype}")


def check_ndim(x: np.ndarray, name: str = "x", layout: str = "(N, C, H, W)") -> None:
    """Raise ``ValueError`` unless ``x`` has 4 dimensions."""
    if x.ndim != 4:
        raise ValueError(f"{name} must have 4 dimensions {layout}, got shape {tuple(x.shape)}")


def border_index(n: int, before: int, after: int, padding_mode: str) -> np.ndarray:
    """Which input index each position of a padded axis holds.

    Parameters
    ----------
    n : int
        Input length along the axis.
    before, after : int
        Padding on each side (already checked by :func:`core.shapes.check_padding_mode`).
    padding_mode : {'reflect', 'replicate', 'circular'}

    Returns
    -------
    ndarray of int64, shape (before + n + after,)
        ``index[p]`` is the input position copied to padded position ``p``.

    Notes
    -----
    With ``t = p − before``: reflect ``|t|`` folded at ``n − 1`` (``2(n − 1) − |t|`` past the end);
    replicate ``clip(t, 0, n − 1)``; circular ``t mod n``.
    """
    t = np.arange(-before, n + after)
    if padding_mode == "reflect":
        t = np.abs(t)
        return np.where(t > n - 1, 2 * (n - 1) - t, t)
    if padding_mode == "replicate":
        return np.clip(t, 0, n - 1)
    if padding_mode == "circular":
        return t % n
    raise ValueError(f"border_index has no rule for padding_mode {padding_mode!r}")


def pad_input(x: np.ndarray, padding: Padding, value: float = 0.0, padding_mode: str = "zeros") -> np.ndarray:
    """Pad the last two axes of ``x`` by an explicit ``Padding(top, bottom, left, right)``.

    The one function in convlens that fills a convolution's border.

    Parameters
    ----------
    x : ndarray, shape (..., H, W)
    padding : Padding
        Pixels added on each side (from :func:`core.shapes.resolve_padding`).
    value : float
        Fill value of ``'zeros'`` mode (0 for convolution, ``-inf`` for max pooling).
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        ``'zeros'`` fills with ``value``; the others copy input pixels (:func:`border_index`).

    Returns
    -------
    ndarray, shape (..., H + top + bottom, W + left + right)
        Same dtype as ``x``. ``x`` itself (not a copy) when the padding is all zero.
    """
    top, bottom, left, right = padding
    if top == bottom == left == right == 0:
        return x
    h, w = x.shape[-2:]
    if padding_mode != "zeros":
        rows = border_index(h, top, bottom, padding_mode)
        cols = border_index(w, left, right, padding_mode)
        return np.take(np.take(x, rows, axis=-2), cols, axis=-1)
    out = np.full((*x.shape[:-2], h + top + bottom, w + left + right), value, dtype=x.dtype)
    out[..., top : top + h, left : left + w] = x
    return out


def fold_border(grad_padded: np.ndarray, padding: Padding, padding_mode: str = "zeros") -> np.ndarray:
    """The adjoint of :func:`pad_input`: a gradient on the padded input back onto the input.

    Every border pixel's gradient is added to the input pixel it was copied from; with ``'zeros'`` the
    border's gradient is dropped.

    Parameters
    ----------
    grad_padded : ndarray, shape (..., H + top + bottom, W + left + right)
    padding : Padding
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}

    Returns
    -------
    ndarray, shape (..., H, W)
        A new array.
    """
    top, bottom, left, right = padding
    ph, pw = grad_padded.shape[-2:]
    h, w = ph - top - bottom, pw - left - right
    if padding_mode == "zeros":
        return np.array(grad_padded[..., top : top + h, left : left + w])
    rows = border_index(h, top, bottom, padding_mode)
    cols = border_index(w, left, right, padding_mode)
    g = np.array(grad_padded[..., top : top + h, :])
    for p in (*range(top), *range(top + h, ph)):
        g[..., rows[p], :] += grad_padded[..., p, :]
    out = np.array(g[..., left : left + w])
    for q in (*range(left), *range(left + w, pw)):
        out[..., cols[q]] += g[..., q]
    return out


def _window_slices(geometry: WindowGeometry, kh: int, kw: int) -> tuple[slice, slice]:
    """Strided slices of the padded input read by kernel offset ``(kh, kw)`` over all windows."""
    (sh, sw), (dh, dw), (oh, ow) = geometry.stride, geometry.dilation, geometry.output
    top, left = kh * dh, kw * dw
    return slice(top, top + sh * (oh - 1) + 1, sh), slice(left, left + sw * (ow - 1) + 1, sw)


def _axis_taps(n: int, o: int, s: int, start: int) -> tuple[int, int]:
    """Output positions ``q`` in ``[lo, hi)`` whose tap ``start + s·q`` lies inside ``[0, n)``."""
    lo = max(0, -(start // s)) if start < 0 else 0
    hi = min(o, -(-(n - start) // s))
    return lo, max(lo, hi)


def _im2col_slices(x: np.ndarray, geometry: WindowGeometry) -> np.ndarray:
    n, c = x.shape[:2]
    kh, kw = geometry.kernel
    oh, ow = geometry.output
    cols = (np.zeros if any(geometry.padding) else np.empty)((n, c, kh, kw, oh, ow), dtype=x.dtype)
    slices_into(cols, x, geometry, zero_fill=False)
    return cols.reshape(n, c * kh * kw, oh * ow)


def _zero_outside(block: np.ndarray, rows: tuple[int, int], columns: tuple[int, int]) -> None:
    """Zero ``block (N, C, R, OW)`` outside ``rows × columns``: the windows whose tap reads padding."""
    (r_lo, r_hi), (q_lo, q_hi) = rows, columns
    if r_lo >= r_hi or q_lo >= q_hi:
        block[...] = 0
        return
    block[:, :, :r_lo] = 0
    block[:, :, r_hi:] = 0
    block[:, :, r_lo:r_hi, :q_lo] = 0
    block[:, :, r_lo:r_hi, q_hi:] = 0


def slices_into(
    cols: np.ndarray,
    x: np.ndarray,
    geometry: WindowGeometry,
    band: tuple[int, int] | None = None,
    planes: dict[tuple[int, int], np.ndarray] | None = None,
    zero_fill: bool = True,
) -> None:
    """Write the im2col columns of output rows ``band`` into ``cols``, by the kernel-offset loop.

    Works on the unpadded input: each kernel offset copies the part of its strided slice that lies
    inside the input, and the entries that would read padding are zero, so no padded copy of the input
    is made. With a stride, when there are more kernel offsets than stride phases, the input is first
    split once into its phase planes ``x[a::s_h, b::s_w]`` so that every offset copies whole rows.

    Parameters
    ----------
    cols : ndarray, shape (N, C, KH, KW, r1 − r0, OW)
        Written in place.
    x : ndarray, shape (N, C, H, W)
    geometry : WindowGeometry
    band : (int, int), optional
        Output rows ``[r0, r1)``; all rows by default.
    planes : dict, optional
        Cache of phase planes, shared between the bands of one image.
    zero_fill : bool
        Zero the entries that read padding, a border strip per kernel offset (skip if ``cols`` is
        already zero).
    """
    _, _, h, w = x.shape
    kh, kw = geometry.kernel
    oh, ow = geometry.output
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    top, left = geometry.padding.top, geometry.padding.left
    b0, b1 = (0, oh) if band is None else band
    phases = (sh > 1 or sw > 1) and kh * kw > sh * sw
    planes = {} if planes is None else planes
    zero_fill = zero_fill and any(geometry.padding)
    for i in range(kh):
        r0 = i * dh - top
        r_lo, r_hi = _axis_taps(h, oh, sh, r0)
        r_lo, r_hi = max(r_lo, b0), min(r_hi, b1)
        for j in range(kw):
            q0 = j * dw - left
            q_lo, q_hi = _axis_taps(w, ow, sw, q0)
            if zero_fill:
                _zero_outside(cols[:, :, i, j], (r_lo - b0, r_hi - b0), (q_lo, q_hi))
            if r_lo >= r_hi or q_lo == q_hi:
                continue
            if phases:
                key = (r0 % sh, q0 % sw)
                if key not in planes:
                    planes[key] = np.ascontiguousarray(x[:, :, key[0] :: sh, key[1] :: sw])
                a, b = r0 // sh, q0 // sw
                source = planes[key][:, :, a + r_lo : a + r_hi, b + q_lo : b + q_hi]
            else:
                source = x[
                    :,
                    :,
                    r0 + sh * r_lo : r0 + sh * (r_hi - 1) + 1 : sh,
                    q0 + sw * q_lo : q0 + sw * (q_hi - 1) + 1 : sw,
                ]
            cols[:, :, i, j, r_lo - b0 : r_hi - b0, q_lo:q_hi] = source


def window_view(xp: np.ndarray, geometry: WindowGeometry) -> np.ndarray:
    """A read-only strided view of every window of an already padded input (no copy).

    Parameters
    ----------
    xp : ndarray, shape (N, C, H + top + bottom, W + left + right)
        The padded input (:func:`pad_input`).
    geometry : WindowGeometry

    Returns
    -------
    ndarray, shape (N, C, KH, KW, OH, OW)
        ``view[n, c, kh, kw, oh, ow] = xp[n, c, oh·s_h + kh·d_h, ow·s_w + kw·d_w]``; reshaping it to
        ``(N, C·KH·KW, OH·OW)`` copies it into im2col's layout.
    """
    n, c = xp.shape[:2]
    kh, kw = geometry.kernel
    oh, ow = geometry.output
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    s_n, s_c, s_h, s_w = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp,
        shape=(n, c, kh, kw, oh, ow),
        strides=(s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw),
        writeable=False,
    )


def _im2col_view(xp: np.ndarray, geometry: WindowGeometry) -> np.ndarray:
    n, c = xp.shape[:2]
    kh, kw = geometry.kernel
    # reshape of the non-contiguous view makes the one copy
    return window_view(xp, geometry).reshape(n, c * kh * kw, geometry.windows)


def _im2col_windows(xp: np.ndarray, geometry: WindowGeometry) -> np.ndarray:
    n, c = xp.shape[:2]
    kh, kw = geometry.kernel
    oh, ow = geometry.output
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    eh, ew = geometry.effective
    cols = np.empty((n, c * kh * kw, oh * ow), dtype=xp.dtype)
    for r in range(oh):
        for q in range(ow):
            window = xp[:, :, r * sh : r * sh + eh : dh, q * sw : q * sw + ew : dw]
            cols[:, :, r * ow + q] = window.reshape(n, c * kh * kw)
    return cols


def _indices(channels: int, geometry: WindowGeometry) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    kh, kw = geometry.kernel
    oh, ow = geometry.output
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    # row offsets inside the window, one per (c, kh, kw) row
    i0 = np.tile(np.repeat(np.arange(kh) * dh, kw), channels)
    j0 = np.tile(np.arange(kw) * dw, kh * channels)
    # window origin, one per (oh, ow) column
    i1 = sh * np.repeat(np.arange(oh), ow)
    j1 = sw * np.tile(np.arange(ow), oh)
    i = i0.reshape(-1, 1) + i1.reshape(1, -1)
    j = j0.reshape(-1, 1) + j1.reshape(1, -1)
    k = np.repeat(np.arange(channels), kh * kw).reshape(-1, 1)
    return k, i, j


def im2col_indices(
    input_shape: tuple[int, int, int, int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fancy indices ``(k, i, j)`` with ``im2col(x) == pad(x)[:, k, i, j]``.

    The construction of the ML-From-Scratch walk-through (``get_im2col_indices``), with dilation.

    Parameters
    ----------
    input_shape : (N, C, H, W)
    kernel_size, stride, dilation : int or (int, int)
    padding : any form accepted by :func:`core.shapes.resolve_padding`

    Returns
    -------
    k : ndarray of int, shape (C·KH·KW, 1)
        Channel of each row.
    i, j : ndarray of int, shape (C·KH·KW, OH·OW)
        Row and column **in the padded input** read by each entry.

    Notes
    -----
    ``i[(c·KH + kh)·KW + kw, oh·OW + ow] = kh·d_h + oh·s_h`` and likewise for ``j``.
    For input (1, 3, 32, 32), 3×3, padding 1: ``k`` is (27, 1), ``i`` and ``j`` are (27, 1024).
    """
    if len(input_shape) != 4:
        raise ValueError(f"input_shape must have 4 dimensions (N, C, H, W), got {tuple(input_shape)}")
    geometry = window_geometry(tuple(input_shape[2:]), kernel_size, stride, padding, dilation)
    return _indices(int(input_shape[1]), geometry)


def im2col(
    x: Any,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    method: str = "slices",
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Unfold every sliding window of ``x`` into a column (PyTorch's ``unfold``).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
        float32 stays float32, float64 stays float64; other real dtypes become float64.
    kernel_size, stride, dilation : int or (int, int)
    padding : int, (pad_h, pad_w), (top, bottom, left, right), 'valid', 'same' or 'full'
    method : {'slices', 'view', 'indices', 'windows'}
        All give the same array. ``'slices'`` loops over the KH·KW kernel offsets and copies one
        strided slice each (the "Deep Learning from Scratch" loop, channel-major); ``'view'`` builds
        a strided view of all windows and copies it once; ``'indices'`` gathers with the ``(k, i, j)``
        fancy indices of :func:`im2col_indices`; ``'windows'`` loops over output positions, the
        readable order.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        What the padding holds (PyTorch's ``padding_mode``; see :func:`pad_input`).

    Returns
    -------
    ndarray, shape (N, C·KH·KW, OH·OW)
        Rows ordered ``(c, kh, kw)``, columns ``(oh, ow)`` row-major.

    Raises
    ------
    ValueError
        Wrong number of dimensions, unknown method, or an impossible window (from ``core.shapes``).
    """
    x = as_float_array(x)
    check_ndim(x)
    geometry = window_geometry(x.shape[2:], kernel_size, stride, padding, dilation, padding_mode)
    return im2col_geometry(x, geometry, method)


def im2col_geometry(x: np.ndarray, geometry: WindowGeometry, method: str = "slices") -> np.ndarray:
    """:func:`im2col` for an already resolved :class:`core.shapes.WindowGeometry` (no re-validation).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W), float32 or float64
    geometry : WindowGeometry
    method : str
        As :func:`im2col`.

    Returns
    -------
    ndarray, shape (N, C·KH·KW, OH·OW)
    """
    if geometry.padding_mode != "zeros":
        x = pad_input(x, geometry.padding, padding_mode=geometry.padding_mode)
        geometry = geometry.without_padding()
    if method == "slices":
        return _im2col_slices(x, geometry)
    xp = pad_input(x, geometry.padding)
    if method == "view":
        return _im2col_view(xp, geometry)
    if method == "indices":
        k, i, j = _indices(x.shape[1], geometry)
        return xp[:, k, i, j]
    if method == "windows":
        return _im2col_windows(xp, geometry)
    raise ValueError(f"unknown im2col method {method!r}; choose one of {', '.join(IM2COL_METHODS)}")


def fold_buffer_size(geometry: WindowGeometry, out_size: tuple[int, int]) -> tuple[int, int]:
    """Height and width of a buffer holding both the image (at ``geometry.padding``) and every window.

    Notes
    -----
    The last window ends at ``(o − 1)·s + k_eff``; the image at ``pad_top + H``.
    """
    (oh, ow), (sh, sw), (eh, ew) = geometry.output, geometry.stride, geometry.effective
    return (
        max(geometry.padding.top + out_size[0], (oh - 1) * sh + eh),
        max(geometry.padding.left + out_size[1], (ow - 1) * sw + ew),
    )


def fold_add(buf: np.ndarray, blocks: np.ndarray, geometry: WindowGeometry) -> None:
    """Add column blocks into a padded buffer in place, one strided slice per kernel offset.

    Parameters
    ----------
    buf : ndarray, shape (N, C, BH, BW)
        At least :func:`fold_buffer_size`; modified in place.
    blocks : ndarray, shape (N, C, KH, KW, OH, OW)
        Columns viewed per kernel offset.
    geometry : WindowGeometry
    """
    kh, kw = geometry.kernel
    for i in range(kh):
        for j in range(kw):
            rows, columns = _window_slices(geometry, i, j)
            buf[:, :, rows, columns] += blocks[:, :, i, j]


def fold_into(
    cols: np.ndarray,
    n: int,
    c: int,
    geometry: WindowGeometry,
    out_size: tuple[int, int],
    method: str = "slices",
) -> np.ndarray:
    """Sum columns back into an image of ``out_size`` whose top-left sits at ``geometry.padding``.

    The general adjoint used by :func:`col2im` and by the transposed convolution, whose output may
    be taller than the windows reach (``output_padding``). The working buffer is as large as both the
    windows and ``top + out_size`` need, and the ``out_size`` region is cut out at the end.

    Parameters
    ----------
    cols : ndarray, shape (N, C·KH·KW, OH·OW)
    n, c : int
        Batch and channels of the image.
    geometry : WindowGeometry
        Kernel, stride, dilation, ``output = (OH, OW)`` window counts, and ``padding`` (its top and
        left say where the image starts in the buffer).
    out_size : (int, int)
        ``(H, W)`` of the image returned.
    method : {'slices', 'add_at'}

    Returns
    -------
    ndarray, shape (N, C, H, W)
    """
    kh, kw = geometry.kernel
    oh, ow = geometry.output
    top, left = geometry.padding.top, geometry.padding.left
    h, w = out_size
    expected = (n, c * kh * kw, oh * ow)
    if cols.shape != expected:
        raise ValueError(f"cols must have shape {expected} for this geometry, got {tuple(cols.shape)}")
    buf = np.zeros((n, c, *fold_buffer_size(geometry, out_size)), dtype=cols.dtype)
    if method == "slices":
        fold_add(buf, cols.reshape(n, c, kh, kw, oh, ow), geometry)
    elif method == "add_at":
        k, i_idx, j_idx = _indices(c, geometry)
        np.add.at(buf, (slice(None), k, i_idx, j_idx), cols)  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown col2im method {method!r}; choose one of {', '.join(COL2IM_METHODS)}")
    return buf[:, :, top : top + h, left : left + w]


def col2im(
    cols: Any,
    input_shape: tuple[int, int, int, int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    method: str = "slices",
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Fold columns back into an image, summing overlaps (PyTorch's ``fold``; the adjoint of im2col).

    Parameters
    ----------
    cols : ndarray, shape (N, C·KH·KW, OH·OW)
        float32 stays float32, float64 stays float64; other real dtypes become float64.
    input_shape : (N, C, H, W)
        Shape of the image the columns were unfolded from.
    kernel_size, stride, padding, dilation
        As given to :func:`im2col`.
    method : {'slices', 'add_at'}
        ``'slices'`` adds one strided slice per kernel offset (``+=``); ``'add_at'`` scatters with
        ``np.add.at`` and the ``(k, i, j)`` indices, as in the textbook. Same result.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        As given to :func:`im2col`: entries that fell in a copied border go to their source pixel.

    Returns
    -------
    ndarray, shape (N, C, H, W)
        Entries that fell in zero padding are dropped.

    Notes
    -----
    Adjointness: ``<im2col(x), y> == <x, col2im(y)>`` for every ``x`` and ``y``.
    """
    cols = as_float_array(cols, "cols")
    if len(input_shape) != 4:
        raise ValueError(f"input_shape must have 4 dimensions (N, C, H, W), got {tuple(input_shape)}")
    n, c, h, w = (int(v) for v in input_shape)
    geometry = window_geometry((h, w), kernel_size, stride, padding, dilation, padding_mode)
    return fold_geometry(cols, n, c, geometry, method)


def fold_geometry(
    cols: np.ndarray, n: int, c: int, geometry: WindowGeometry, method: str = "slices"
) -> np.ndarray:
    """:func:`col2im` for a resolved geometry, any ``padding_mode``.

    Parameters
    ----------
    cols : ndarray, shape (N, C·KH·KW, OH·OW)
    n, c : int
    geometry : WindowGeometry
    method : {'slices', 'add_at'}

    Returns
    -------
    ndarray, shape (N, C, H, W)
    """
    if geometry.padding_mode == "zeros":
        size = (geometry.height, geometry.width)
        return np.ascontiguousarray(fold_into(cols, n, c, geometry, size, method))
    bare = geometry.without_padding()
    padded = fold_into(cols, n, c, bare, bare.padded, method)
    return fold_border(padded, geometry.padding, geometry.padding_mode)


def overlap_count(
    input_size: IntOrPair,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """How many windows read each input pixel.

    Parameters
    ----------
    input_size : int or (H, W)
    kernel_size, stride, padding, dilation, padding_mode
        As :func:`im2col` (a pixel copied into the border counts the windows that read its copies).

    Returns
    -------
    ndarray of int64, shape (H, W)
        0 where no window reaches the pixel (a stride that does not fit, or a stride larger than
        the kernel).

    Notes
    -----
    ``col2im(ones)``: the diagonal of ``im2colᵀ · im2col``.
    """
    geometry = window_geometry(input_size, kernel_size, stride, padding, dilation, padding_mode)
    kh, kw = geometry.kernel
    ones = np.ones((1, kh * kw, geometry.windows), dtype=np.int64)
    counts = fold_geometry(ones, 1, 1, geometry)
    return np.ascontiguousarray(counts[0, 0])


__all__ = [
    "COL2IM_METHODS",
    "IM2COL_METHODS",
    "as_float_array",
    "border_index",
    "col2im",
    "fold_add",
    "fold_border",
    "fold_geometry",
    "fold_buffer_size",
    "fold_into",
    "im2col",
    "im2col_geometry",
    "im2col_indices",
    "overlap_count",
    "pad_input",
    "slices_into",
    "window_view",
]
