"""Every way convlens can compute the current layer, side by side: the textbook algorithms as real code.

Convolution (all equal to :func:`core.conv.conv2d`, the default):

========================  =========================================================================
``naive``                 plain loops over ``(n, f, oh, ow)`` (:func:`core.conv.conv2d_naive`)
``indices``               im2col by the ``(k, i, j)`` fancy-index arrays (ML-From-Scratch)
``dlfs_rows``             "Deep Learning from Scratch" ch. 7: loop over the KH·KW kernel offsets, rows
                          = windows ``(N·OH·OW, C·KH·KW)``, then ``col @ W.T`` (the book's layout)
``slices``                the same loop over kernel offsets, columns = windows ``(C·KH·KW, OH·OW)``,
                          then ``W @ col`` (PyTorch's unfold layout, convlens's strided-slice im2col)
``windows``               the other loop order: over the OH·OW output positions, one window each
``view``                  one strided view of all windows copied once (the default for stride 1)
``tensordot``             ``sliding_window_view`` + ``np.tensordot``
``einsum``                ``sliding_window_view`` + ``np.einsum``
``fft``                   ``numpy.fft``: one product per frequency (stride 1 only)
========================  =========================================================================

col2im: ``slices`` (one ``+=`` per kernel offset) and ``add_at`` (``np.add.at`` with the index arrays).
Max pooling: ``running_max`` (:func:`core.pool.max_pool2d`, a running maximum over strided slices),
``im2col_argmax`` (the windows as columns, then ``max``/``argmax``) and ``naive``.

Every method works on the input already padded by :func:`core.im2col.pad_input` (any ``padding_mode``)
and on one group at a time, so each function below is the bare algorithm. Layout NCHW, weights
``(F, C/groups, KH, KW)``; all sizes come from :mod:`core.shapes`.
"""

from __future__ import annotations

import inspect
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial
from typing import Any

import numpy as np

from core import conv as conv_module
from core.conv import conv2d, conv2d_naive
from core.im2col import col2im, im2col_geometry, im2col_indices, pad_input
from core.pool import PoolGeometry, max_pool2d, max_pool2d_naive
from core.shapes import ConvGeometry, WindowGeometry, conv_geometry

NAIVE_MAX_VALUES = 4_096
"""The plain loops run one Python iteration per output value (N·F·OH·OW): at most this many."""
WINDOWS_MAX_POSITIONS = 16_384
"""The output-position loop runs one iteration (one window copy) per OH·OW: at most this many."""
MAX_INTERMEDIATE_BYTES = 256 * 2**20
"""No method may allocate intermediates (index arrays, columns, FFT buffers) above this."""
NAIVE_POOL_MAX_VALUES = 2_048
"""The plain pooling loops: at most this many output values (N·C·OH·OW)."""


# ---------------------------------------------------------------------------------------- algorithms
# Each takes the padded input xp (N, C, PH, PW), one group's weight (F, C, KH, KW) and the window
# geometry over xp (no padding), and returns (N, F, OH, OW) without bias.


def conv_indices(xp: np.ndarray, weight: np.ndarray, window: WindowGeometry) -> np.ndarray:
    """im2col by the ``(k, i, j)`` index arrays (ML-From-Scratch), then one product.

    Notes
    -----
    ``cols = xp[:, k, i, j]`` with ``k`` (C·KH·KW, 1) and ``i, j`` (C·KH·KW, OH·OW) from
    :func:`core.im2col.im2col_indices`; ``out = W_col @ cols``.
    """
    n, c = xp.shape[:2]
    f = weight.shape[0]
    k, i, j = im2col_indices(xp.shape, window.kernel, window.stride, 0, window.dilation)
    cols = xp[:, k, i, j]  # (N, C·KH·KW, OH·OW): a gather
    return np.matmul(weight.reshape(f, -1), cols).reshape(n, f, *window.output)


def im2col_dlfs(xp: np.ndarray, window: WindowGeometry) -> np.ndarray:
    """ "Deep Learning from Scratch" ``im2col`` (common/util.py), with dilation: loop over the KH·KW
    kernel offsets, each copying one strided slice of all windows, then transpose to rows = windows.

    Returns
    -------
    ndarray, shape (N·OH·OW, C·KH·KW)
        One row per window (the transpose is a second copy).
    """
    n, c = xp.shape[:2]
    kh, kw = window.kernel
    oh, ow = window.output
    (sh, sw), (dh, dw) = window.stride, window.dilation
    col = np.empty((n, c, kh, kw, oh, ow), dtype=xp.dtype)
    for y in range(kh):
        y0 = y * dh
        for x in range(kw):
            x0 = x * dw
            col[:, :, y, x, :, :] = xp[:, :, y0 : y0 + sh * oh : sh, x0 : x0 + sw * ow : sw]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(n * oh * ow, -1)


def conv_dlfs_rows(xp: np.ndarray, weight: np.ndarray, window: WindowGeometry) -> np.ndarray:
    """The DLfS ``Convolution.forward``: row-major columns times the transposed filters, then transpose.

    Notes
    -----
    ``out = im2col_dlfs(x) @ W.reshape(F, -1).T`` has shape (N·OH·OW, F), reshaped to (N, OH, OW, F)
    and transposed to NCHW.
    """
    n = xp.shape[0]
    f = weight.shape[0]
    col = im2col_dlfs(xp, window)
    out = col @ weight.reshape(f, -1).T
    return out.reshape(n, *window.output, f).transpose(0, 3, 1, 2)


def conv_im2col(method: str) -> Callable[[np.ndarray, np.ndarray, WindowGeometry], np.ndarray]:
    """im2col by ``core.im2col`` method ``method`` (channel-major columns), then ``W_col @ cols``."""

    def run(xp: np.ndarray, weight: np.ndarray, window: WindowGeometry) -> np.ndarray:
        n, f = xp.shape[0], weight.shape[0]
        cols = im2col_geometry(xp, window, method)  # (N, C·KH·KW, OH·OW)
        return np.matmul(weight.reshape(f, -1), cols).reshape(n, f, *window.output)

    run.__name__ = f"conv_im2col_{method}"
    return run


def window_stack(xp: np.ndarray, window: WindowGeometry) -> np.ndarray:
    """``sliding_window_view`` of every (dilated, strided) window of the padded input, no copy.

    Returns
    -------
    ndarray, shape (N, C, OH, OW, KH, KW)
        A read-only view.
    """
    (eh, ew), (sh, sw), (dh, dw) = window.effective, window.stride, window.dilation
    oh, ow = window.output
    view = np.lib.stride_tricks.sliding_window_view(xp, (eh, ew), axis=(2, 3))
    return view[:, :, : (oh - 1) * sh + 1 : sh, : (ow - 1) * sw + 1 : sw, ::dh, ::dw]


def conv_tensordot(xp: np.ndarray, weight: np.ndarray, window: WindowGeometry) -> np.ndarray:
    """``sliding_window_view`` + ``np.tensordot`` over (C, KH, KW): (N, OH, OW, F), then NCHW."""
    windows = window_stack(xp, window)
    return np.tensordot(windows, weight, axes=([1, 4, 5], [1, 2, 3])).transpose(0, 3, 1, 2)


def conv_einsum(xp: np.ndarray, weight: np.ndarray, window: WindowGeometry) -> np.ndarray:
    """``sliding_window_view`` + ``np.einsum('nchwij,fcij->nfhw')``, letting einsum pick the order."""
    return np.einsum("nchwij,fcij->nfhw", window_stack(xp, window), weight, optimize=True)


def conv_fft(xp: np.ndarray, weight: np.ndarray, window: WindowGeometry) -> np.ndarray:
    """Cross-correlation by ``numpy.fft`` (stride 1): one complex product per frequency and channel pair.

    Notes
    -----
    With ``X = rfft2(xp)`` and ``K = rfft2(w_dilated)`` at the padded size ``(PH, PW)``,
    ``irfft2(Σ_c X[n, c] · conj(K[f, c]))[m] = Σ_k xp[m + k] · w[k]`` for every valid ``m``: the
    circular wrap-around only touches positions past ``PH − k_eff`` that are cut off. Cost
    ``O(PH·PW·log(PH·PW))`` per plane whatever the kernel size, against ``KH·KW`` multiply-adds per
    output for the im2col methods: FFT wins for large kernels.
    """
    if window.stride != (1, 1):
        raise ValueError(f"the FFT method computes stride 1 only, got stride {window.stride}")
    f, c, kh, kw = weight.shape
    ph, pw = xp.shape[2:]
    (dh, dw), (oh, ow) = window.dilation, window.output
    dilated = np.zeros((f, c, (kh - 1) * dh + 1, (kw - 1) * dw + 1), dtype=xp.dtype)
    dilated[:, :, ::dh, ::dw] = weight
    spectrum_x = np.fft.rfft2(xp, s=(ph, pw))  # (N, C, PH, PW/2 + 1)
    spectrum_w = np.conj(np.fft.rfft2(dilated, s=(ph, pw)))  # (F, C, PH, PW/2 + 1)
    product = np.einsum("nchw,fchw->nfhw", spectrum_x, spectrum_w, optimize=True)
    out = np.fft.irfft2(product, s=(ph, pw))[:, :, :oh, :ow]
    return out.astype(xp.dtype, copy=False)


def conv_naive_loops(xp: np.ndarray, weight: np.ndarray, window: WindowGeometry) -> np.ndarray:
    """Plain loops over ``(n, f, oh, ow)`` (:func:`core.conv.conv2d_naive` on the padded input)."""
    return conv2d_naive(xp, weight, None, window.stride, 0, window.dilation)


def maxpool_im2col_argmax(x: np.ndarray, geometry: PoolGeometry) -> tuple[np.ndarray, np.ndarray]:
    """Max pooling as im2col + ``max`` / ``argmax`` over each column (padding = −inf).

    Returns
    -------
    out : ndarray, shape (N, C, OH, OW)
    tap : ndarray of int64, shape (N, C, OH, OW)
        Which of the KH·KW taps held the maximum (row-major in the window), the first on ties.
    """
    xp = geometry.pad(x, -np.inf)
    n, c = x.shape[:2]
    kh, kw = geometry.kernel
    oh, ow = geometry.output
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    s_n, s_c, s_h, s_w = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, (n, c, kh, kw, oh, ow), (s_n, s_c, s_h * dh, s_w * dw, s_h * sh, s_w * sw), writeable=False
    )
    cols = view.reshape(n, c, kh * kw, oh, ow)  # the copy: every window as a column
    tap = cols.argmax(axis=2)
    return np.take_along_axis(cols, tap[:, :, None], axis=2)[:, :, 0], tap


# ------------------------------------------------------------------------------------- the catalogue


@dataclass(frozen=True)
class Method:
    """One way to compute: name, what it is, the functions whose source is shown, and its costs.

    Attributes
    ----------
    name, title, description : str
    run : callable
        The algorithm (signature by family, see the module docstring).
    functions : tuple of callables
        Shown with :func:`inspect.getsource`, so the page shows exactly the code that ran.
    """

    name: str
    title: str
    description: str
    run: Callable[..., Any]
    functions: tuple[Callable[..., Any], ...]

    def source(self) -> str:
        """The source of every function this method runs, read with ``inspect`` (once per process)."""
        return _sources(self.functions)


@cache
def _sources(functions: tuple[Callable[..., Any], ...]) -> str:
    return "\n\n".join(inspect.getsource(fn) for fn in functions)


CONV_METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "default",
            "default (conv2d)",
            "im2col by one strided view (stride 1) or kernel-offset "
            "slices on phase planes, the bias riding in the product; what every view uses",
            lambda xp, w, win: conv2d(xp, w, None, win.stride, 0, win.dilation),
            (conv2d, conv_module._forward),
        ),
        Method(
            "naive",
            "naive loops",
            f"one Python iteration per output value; at most {NAIVE_MAX_VALUES:,} values",
            conv_naive_loops,
            (conv_naive_loops, conv2d_naive),
        ),
        Method(
            "indices",
            "im2col by (k, i, j) indices",
            "ML-From-Scratch: fancy-index arrays gather every window",
            conv_indices,
            (conv_indices, im2col_indices),
        ),
        Method(
            "dlfs_rows",
            "DLfS, rows = windows",
            "loop over kernel offsets, then transpose to (N·OH·OW, C·KH·KW) and col @ W.T, as the book",
            conv_dlfs_rows,
            (conv_dlfs_rows, im2col_dlfs),
        ),
        Method(
            "slices",
            "kernel-offset slices, columns = windows",
            "the same loop over kernel offsets, "
            "written straight into PyTorch's unfold layout (C·KH·KW, OH·OW): no transpose",
            conv_im2col("slices"),
            (conv_im2col, im2col_geometry),
        ),
        Method(
            "windows",
            "loop over output positions",
            f"the other loop order: one window copy per "
            f"output position; at most {WINDOWS_MAX_POSITIONS:,} positions",
            conv_im2col("windows"),
            (conv_im2col, im2col_geometry),
        ),
        Method(
            "view",
            "strided view, one copy",
            "as_strided view of all windows copied once into the columns",
            conv_im2col("view"),
            (conv_im2col, im2col_geometry),
        ),
        Method(
            "tensordot",
            "sliding_window_view + tensordot",
            "no explicit im2col: tensordot contracts (C, KH, KW) of the window view",
            conv_tensordot,
            (conv_tensordot, window_stack),
        ),
        Method(
            "einsum",
            "sliding_window_view + einsum",
            "einsum('nchwij,fcij->nfhw') over the window view",
            conv_einsum,
            (conv_einsum, window_stack),
        ),
        Method(
            "fft",
            "FFT (numpy.fft)",
            "products of spectra: cost independent of the kernel size; stride 1 only",
            conv_fft,
            (conv_fft,),
        ),
    )
}

COL2IM_METHODS: dict[str, Method] = {
    "slices": Method(
        "slices",
        "slice +=",
        "one strided-slice += per kernel offset",
        lambda cols, shape, win: col2im(cols, shape, win.kernel, win.stride, 0, win.dilation),
        (col2im,),
    ),
    "add_at": Method(
        "add_at",
        "np.add.at",
        "scatter with np.add.at and the (k, i, j) indices, as the textbook",
        lambda cols, shape, win: col2im(
            cols, shape, win.kernel, win.stride, 0, win.dilation, method="add_at"
        ),
        (col2im,),
    ),
}

POOL_METHODS: dict[str, Method] = {
    "running_max": Method(
        "running_max",
        "running maximum over strided slices",
        "np.maximum of one strided slice per kernel offset (core.pool.max_pool2d)",
        lambda x, g: max_pool2d(x, g.kernel, g.stride, g.padding, g.dilation, g.ceil_mode),
        (max_pool2d,),
    ),
    "im2col_argmax": Method(
        "im2col_argmax",
        "im2col + argmax",
        "every window as a column, then the max and argmax of each column",
        lambda x, g: maxpool_im2col_argmax(x, g)[0],
        (maxpool_im2col_argmax,),
    ),
    "naive": Method(
        "naive",
        "naive loops",
        f"loops over every output and tap; at most {NAIVE_POOL_MAX_VALUES:,} values",
        lambda x, g: max_pool2d_naive(x, g.kernel, g.stride, g.padding, g.dilation, g.ceil_mode)[0],
        (max_pool2d_naive,),
    ),
}


# ------------------------------------------------------------------------------------------ budgets


def conv_intermediates(name: str, geometry: ConvGeometry, itemsize: int) -> dict[str, int]:
    """Bytes of the arrays a convolution method allocates besides input, weights and output.

    Parameters
    ----------
    name : str
        A key of :data:`CONV_METHODS`.
    geometry : ConvGeometry
        The layer (padding included).
    itemsize : int

    Returns
    -------
    dict
        ``{"padded input": bytes, "im2col matrix": bytes, ...}`` by the shapes in the docstrings.
    """
    window = geometry.window
    n, c, g = geometry.batch, geometry.in_channels, geometry.groups
    kh, kw = window.kernel
    ph, pw = window.padded
    out: dict[str, int] = {}
    if any(window.padding) or window.padding_mode != "zeros":
        out["padded input"] = n * c * ph * pw * itemsize
    columns = n * c * kh * kw * window.windows * itemsize
    if name in ("indices", "slices", "windows", "view", "default"):
        out["im2col matrix"] = columns
    if name == "indices":
        out["index arrays (k, i, j)"] = (c // g) * kh * kw * (1 + 2 * window.windows) * 8
    if name == "dlfs_rows":
        out["im2col (kernel-offset blocks)"] = columns
        out["im2col transposed (rows = windows)"] = columns
    if name in ("tensordot", "einsum"):
        out["window view (no copy)"] = 0
        out["contiguous copy of the windows"] = columns
    if name == "fft":
        bins = ph * (pw // 2 + 1) * 2 * itemsize  # complex of the input's precision
        f = geometry.out_channels
        out["input spectra"] = n * c * bins
        out["kernel spectra"] = f * (c // g) * bins
        out["product spectra"] = n * f * bins
    return out


def conv_refusal(name: str, geometry: ConvGeometry, itemsize: int) -> str | None:
    """Why method ``name`` may not run on this layer (work or memory budget, stride), or None."""
    window = geometry.window
    if name not in CONV_METHODS:
        return f"unknown method {name!r}; methods: {', '.join(CONV_METHODS)}"
    values = geometry.batch * geometry.out_channels * window.windows
    if name == "naive" and values > NAIVE_MAX_VALUES:
        return (
            f"naive loops run one Python iteration per output value: this layer has {values:,} "
            f"(N·F·OH·OW), more than {NAIVE_MAX_VALUES:,}; use a smaller image (max_side) or fewer filters"
        )
    if name == "windows" and window.windows > WINDOWS_MAX_POSITIONS:
        return (
            f"the output-position loop copies one window per position: {window.windows:,} positions "
            f"(OH·OW), more than {WINDOWS_MAX_POSITIONS:,}; use a smaller image or a larger stride"
        )
    if name == "fft" and window.stride != (1, 1):
        return f"the FFT method computes stride 1 only (this layer has stride {window.stride})"
    total = sum(conv_intermediates(name, geometry, itemsize).values())
    if total > MAX_INTERMEDIATE_BYTES:
        return f"{name} would allocate {total:,} bytes of intermediates, more than {MAX_INTERMEDIATE_BYTES:,}"
    return None


# -------------------------------------------------------------------------------------------- runs


@dataclass
class Timing:
    """What one method did on one layer.

    Attributes
    ----------
    output : ndarray
    median_ms : float
        Median wall time of ``repeats`` runs, milliseconds.
    repeats : int
    peak_bytes : int
        Largest memory NumPy held during one run beyond what existed before (``tracemalloc``).
    """

    output: np.ndarray
    median_ms: float
    repeats: int
    peak_bytes: int


def measure(call: Callable[[], np.ndarray], repeats: int, budget_ms: float = float("inf")) -> Timing:
    """Run ``call`` once under ``tracemalloc`` (the peak memory), then up to ``repeats`` timed runs, fewer
    when the next would pass ``budget_ms``.

    The median is over the untraced runs; when the budget allows none, it is the traced run's time.

    Returns
    -------
    Timing
    """
    tracemalloc.start()
    try:
        start = time.perf_counter()
        output = call()
        first = (time.perf_counter() - start) * 1000
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    times: list[float] = []
    spent = first
    while len(times) < repeats and spent + (times[-1] if times else first) <= budget_ms:
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
        spent += times[-1]
    return Timing(
        output=output,
        median_ms=statistics.median(times or [first]),
        repeats=max(1, len(times)),
        peak_bytes=peak,
    )


def by_group(
    method: Method, xp: np.ndarray, weight: np.ndarray, window: WindowGeometry, groups: int
) -> np.ndarray:
    """Run a convolution method on each group (channels ``g·C/G…``, filters ``g·F/G…``) and stack."""
    if groups == 1:
        return np.asarray(method.run(xp, weight, window))
    c, f = xp.shape[1] // groups, weight.shape[0] // groups
    parts = [
        method.run(xp[:, g * c : (g + 1) * c], weight[g * f : (g + 1) * f], window) for g in range(groups)
    ]
    return np.concatenate(parts, axis=1)


def run_conv_method(
    name: str,
    x: np.ndarray,
    weight: np.ndarray,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> np.ndarray:
    """Convolution (no bias) of ``x`` by method ``name``; equal to :func:`core.conv.conv2d`.

    Parameters
    ----------
    name : str
        A key of :data:`CONV_METHODS`.
    x : ndarray, shape (N, C, H, W)
    weight : ndarray, shape (F, C/groups, KH, KW)
    stride, padding, dilation, groups, padding_mode
        As :func:`core.conv.conv2d`.

    Returns
    -------
    ndarray, shape (N, F, OH, OW)

    Raises
    ------
    ValueError
        An impossible layer, or a method refused on it (:func:`conv_refusal`).
    """
    geometry = conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups, padding_mode)
    reason = conv_refusal(name, geometry, x.dtype.itemsize)
    if reason:
        raise ValueError(reason)
    xp, window = padded_input(x, geometry)
    return by_group(CONV_METHODS[name], xp, weight, window, groups)


def padded_input(x: np.ndarray, geometry: ConvGeometry) -> tuple[np.ndarray, WindowGeometry]:
    """The input padded by its ``padding_mode`` and the window geometry over it."""
    window = geometry.window
    return pad_input(x, window.padding, padding_mode=window.padding_mode), window.without_padding()


def _row(method: Method, timing: Timing | None, reference: np.ndarray | None, **extra: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": method.name,
        "title": method.title,
        "description": method.description,
        "source": method.source(),
        "available": timing is not None,
        "reason": None,
        "max_abs_diff": None,
        "median_ms": None,
        "repeats": 0,
        "peak_bytes": None,
    }
    if timing is not None and reference is not None:
        diff = np.abs(timing.output.astype(np.float64) - reference.astype(np.float64))
        row.update(
            max_abs_diff=float(diff.max()) if diff.size else 0.0,
            median_ms=timing.median_ms,
            repeats=timing.repeats,
            peak_bytes=timing.peak_bytes,
        )
    row.update(extra)
    return row


def compare_conv(
    x: np.ndarray,
    weight: np.ndarray,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    methods: list[str] | None = None,
    repeats: int = 5,
    budget_ms: float = 250.0,
) -> list[dict[str, Any]]:
    """Run every (or the named) convolution method on one layer and compare it with the default.

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    weight : ndarray, shape (F, C/groups, KH, KW)
    stride, padding, dilation, groups, padding_mode
        As :func:`core.conv.conv2d`.
    methods : list of str, optional
        Keys of :data:`CONV_METHODS`; all by default. A refused method is reported with its reason
        (``available: False``), not run.
    repeats : int
        Timed runs per method (fewer when they would pass ``budget_ms``).
    budget_ms : float
        Timing budget for all methods together, milliseconds: shared out as they run; every method
        runs at least once (traced for its memory), whatever the budget.

    Returns
    -------
    list of dict
        Per method: ``name``, ``title``, ``description``, ``source``, ``available``, ``reason``,
        ``max_abs_diff`` (from the default), ``median_ms``, ``repeats``, ``peak_bytes`` (measured)
        and ``intermediate_bytes`` (by shape, named).

    Notes
    -----
    The input is padded once (:func:`padded_input`) and shared by every method but the default, so their
    times leave the padding out; the default's time is :func:`core.conv.conv2d` whole, padding included.
    """
    geometry = conv_geometry(x.shape, weight.shape, stride, padding, dilation, groups, padding_mode)
    kwargs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    names = methods or list(CONV_METHODS)
    call = partial(conv2d, x, weight, None, padding_mode=padding_mode, **kwargs)
    default = measure(call, repeats, budget_ms / (len(names) + 1))
    reference = default.output
    xp, window = padded_input(x, geometry)
    rows = []
    deadline = time.perf_counter() + budget_ms / 1000
    for left, name in zip(range(len(names), 0, -1), names, strict=True):
        method = CONV_METHODS[name]
        bytes_named = conv_intermediates(name, geometry, x.dtype.itemsize)
        reason = conv_refusal(name, geometry, x.dtype.itemsize)
        if reason:
            rows.append(_row(method, None, None, reason=reason, intermediate_bytes=bytes_named))
            continue
        if name == "default":
            timing = default
        else:
            share = max(0.0, deadline - time.perf_counter()) * 1000 / max(1, left)
            timing = measure(partial(by_group, method, xp, weight, window, groups), repeats, share)
        rows.append(_row(method, timing, reference, intermediate_bytes=bytes_named))
    return rows


def compare_col2im(
    cols: np.ndarray,
    input_shape: tuple[int, int, int, int],
    window: WindowGeometry,
    repeats: int = 5,
    budget_ms: float = 60.0,
) -> list[dict[str, Any]]:
    """col2im by ``slices`` (the reference) and ``add_at`` on the columns of one layer.

    Parameters
    ----------
    cols : ndarray, shape (N, C·KH·KW, OH·OW)
    input_shape : (N, C, PH, PW)
        The (padded) image the columns came from.
    window : WindowGeometry
        Over the padded image (no padding).

    Returns
    -------
    list of dict
        As :func:`compare_conv`; ``intermediate_bytes`` names the index arrays of ``add_at``.
    """
    rows = []
    reference = None
    n, c = input_shape[:2]
    kh, kw = window.kernel
    for name, method in COL2IM_METHODS.items():
        timing = measure(partial(method.run, cols, input_shape, window), repeats, budget_ms)
        if reference is None:
            reference = timing.output
        named = {"image buffer": n * c * window.padded[0] * window.padded[1] * cols.itemsize}
        if name == "add_at":
            named["index arrays (k, i, j)"] = c * kh * kw * (1 + 2 * window.windows) * 8
        rows.append(_row(method, timing, reference, intermediate_bytes=named))
    return rows


def compare_maxpool(
    x: np.ndarray, geometry: PoolGeometry, repeats: int = 5, budget_ms: float = 60.0
) -> list[dict[str, Any]]:
    """Max pooling by ``running_max`` (the reference), ``im2col_argmax`` and ``naive`` (small only).

    Parameters
    ----------
    x : ndarray, shape (N, C, H, W)
    geometry : PoolGeometry

    Returns
    -------
    list of dict
        As :func:`compare_conv`.
    """
    rows = []
    reference = None
    n, c = x.shape[:2]
    kh, kw = geometry.kernel
    oh, ow = geometry.output
    values = n * c * oh * ow
    for name, method in POOL_METHODS.items():
        named: dict[str, int] = {}
        if any(geometry.padding):
            named["padded input (−inf)"] = n * c * geometry.buffer[0] * geometry.buffer[1] * x.itemsize
        if name == "im2col_argmax":
            named["im2col matrix"] = values * kh * kw * x.itemsize
            named["argmax"] = values * 8
        if name == "naive" and values > NAIVE_POOL_MAX_VALUES:
            reason = f"naive loops: {values:,} output values (N·C·OH·OW), more than {NAIVE_POOL_MAX_VALUES:,}"
            rows.append(_row(method, None, None, reason=reason, intermediate_bytes=named))
            continue
        timing = measure(partial(method.run, x, geometry), repeats, budget_ms)
        if reference is None:
            reference = timing.output
        rows.append(_row(method, timing, reference, intermediate_bytes=named))
    return rows


def sweep(
    axis: str,
    values: list[int],
    methods: list[str],
    size: int = 64,
    kernel: int = 3,
    channels: int = 1,
    filters: int = 1,
    repeats: int = 3,
    budget_ms: float = 1500.0,
    seed: int = 0,
) -> dict[str, Any]:
    """Median time of each method against image size or kernel size, on seeded random data (stride 1,
    'same'-sized zero padding), within a total time budget.

    Parameters
    ----------
    axis : {'size', 'kernel'}
        What varies: the square image side, or the square kernel side.
    values : list of int
        The sizes, in increasing order.
    methods : list of str
        Keys of :data:`CONV_METHODS`.
    size, kernel : int
        The fixed image side / kernel side.
    channels, filters : int
    repeats : int
    budget_ms : float
        Total; once spent, the remaining points are ``None``. A method that took more than a quarter of
        the budget at one point is not measured at larger points.

    Returns
    -------
    dict
        ``{"axis", "values", "series": {method: [ms or None, ...]}, "skipped": {method: reason}}``.
    """
    if axis not in ("size", "kernel"):
        raise ValueError(f"axis must be 'size' or 'kernel', got {axis!r}")
    rng = np.random.default_rng(seed)
    series: dict[str, list[float | None]] = {m: [] for m in methods}
    skipped: dict[str, str] = {}
    spent = 0.0
    for value in values:
        side, k = (value, kernel) if axis == "size" else (size, value)
        x = rng.standard_normal((1, channels, side, side)).astype(np.float32)
        w = rng.standard_normal((filters, channels, k, k)).astype(np.float32)
        geometry = conv_geometry(x.shape, w.shape, 1, k // 2, 1, 1)
        xp, window = padded_input(x, geometry)
        for name in methods:
            reason = skipped.get(name) or conv_refusal(name, geometry, 4)
            if reason or spent > budget_ms:
                series[name].append(None)
                if reason and name not in skipped:
                    skipped[name] = reason
                continue
            method = CONV_METHODS[name]
            if name == "default":
                call = partial(conv2d, x, w, None, 1, k // 2)
            else:
                call = partial(by_group, method, xp, w, window, 1)
            timing = measure(call, repeats, budget_ms / 8)
            spent += timing.median_ms * (timing.repeats + 1)
            series[name].append(timing.median_ms)
            if timing.median_ms > budget_ms / 4:
                skipped[name] = (
                    f"took {timing.median_ms:.0f} ms at {axis} {value}; larger points not measured"
                )
    return {"axis": axis, "values": values, "series": series, "skipped": skipped}


__all__ = [
    "COL2IM_METHODS",
    "CONV_METHODS",
    "MAX_INTERMEDIATE_BYTES",
    "NAIVE_MAX_VALUES",
    "NAIVE_POOL_MAX_VALUES",
    "POOL_METHODS",
    "WINDOWS_MAX_POSITIONS",
    "Method",
    "Timing",
    "by_group",
    "compare_col2im",
    "compare_conv",
    "compare_maxpool",
    "conv_dlfs_rows",
    "conv_einsum",
    "conv_fft",
    "conv_indices",
    "conv_intermediates",
    "conv_refusal",
    "conv_tensordot",
    "im2col_dlfs",
    "maxpool_im2col_argmax",
    "measure",
    "padded_input",
    "run_conv_method",
    "sweep",
    "window_stack",
]
