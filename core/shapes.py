"""Shape arithmetic: the one place where a convolution or pooling size is derived.

Everything else in convlens (im2col, conv, pooling, the API's validators, the explanations the page
prints and the page's slider bounds) asks this module; nothing re-derives a size.

Conventions (PyTorch's): NCHW input ``(N, C, H, W)``, weights ``(F, C/groups, KH, KW)``,
``dilation=1`` means no dilation, cross-correlation.

Notes
-----
effective kernel   ``k_eff = (k - 1) * d + 1``

convolution output ``o = floor((n + p_lo + p_hi - k_eff) / s) + 1``

pooling output     PyTorch's rule, the same with symmetric padding, plus ``ceil_mode`` (see
                   :func:`pool_output_size`)

transposed output  ``o = (n - 1) * s - 2 p + k_eff + output_padding``

See V. Dumoulin and F. Visin, "A guide to convolution arithmetic for deep learning" (2016).
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

IntOrPair = int | Sequence[int]
PaddingSpec = int | str | Sequence[int]

PADDING_WORDS = ("valid", "same", "full")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
"""PyTorch's ``padding_mode``: what the border pixels hold (see :func:`check_padding_mode`)."""
PADDING_FORMS = (
    "an int, (pad_h, pad_w), (top, bottom, left, right), 'valid', 'same' or 'full'"
)


class Padding(NamedTuple):
    """Explicit padding in pixels, named so that nobody has to remember an order."""

    top: int
    bottom: int
    left: int
    right: int

    @property
    def height_total(self) -> int:
        """Rows added in all (``top + bottom``)."""
        return self.top + self.bottom

    @property
    def width_total(self) -> int:
        """Columns added in all (``left + right``)."""
        return self.left + self.right

    @property
    def is_symmetric(self) -> bool:
        """True when top == bottom and left == right (what PyTorch's int/pair padding can express)."""
        return self.top == self.bottom and self.left == self.right


# --------------------------------------------------------------------------------------------------
# argument normalisation
# --------------------------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def as_pair(value: IntOrPair, name: str, minimum: int | None = None) -> tuple[int, int]:
    """Normalise an int or a (height, width) pair to a tuple of two ints.

    Parameters
    ----------
    value : int or sequence of two ints
    name : str
        Used in the error message (``"stride"``, ``"kernel_size"``, ...).
    minimum : int, optional
        Smallest allowed value; a smaller one raises ``ValueError``.

    Returns
    -------
    (int, int)
        ``(height, width)``.
    """
    if _is_int(value):
        pair = (int(value), int(value))  # type: ignore[arg-type]
    elif isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2 and all(
        _is_int(v) for v in value
    ):
        pair = (int(value[0]), int(value[1]))
    else:
        raise ValueError(f"{name} must be an int or a (height, width) pair of ints, got {value!r}")
    if minimum is not None and min(pair) < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return pair


def effective_kernel(kernel_size: int, dilation: int = 1) -> int:
    """Span of a dilated kernel along one axis.

    Notes
    -----
    ``k_eff = (k - 1) * d + 1``: a 3-tap kernel with dilation 2 spans 5 pixels.
    """
    if kernel_size < 1 or dilation < 1:
        raise ValueError(
            f"kernel size and dilation must be at least 1, got kernel {kernel_size}, dilation {dilation}"
        )
    return (kernel_size - 1) * dilation + 1


def _same_total(n: int | None, k: int, s: int, d: int, axis: str) -> int:
    """Total padding along one axis for 'same' (output = ceil(n / s))."""
    k_eff = effective_kernel(k, d)
    if s == 1:
        return k_eff - 1
    if n is None:
        raise ValueError(
            f"padding 'same' with stride {s} depends on the input {axis}; pass input_size"
        )
    out = -(-n // s)  # ceil(n / s)
    return max((out - 1) * s + k_eff - n, 0)


def resolve_padding(
    padding: PaddingSpec,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    dilation: IntOrPair = 1,
    input_size: IntOrPair | None = None,
) -> Padding:
    """Turn any accepted padding form into an explicit ``Padding(top, bottom, left, right)``.

    Parameters
    ----------
    padding : int, (pad_h, pad_w), (top, bottom, left, right), 'valid', 'same' or 'full'
        ``'valid'`` is no padding. ``'same'`` gives an output of ``ceil(n / stride)``; an odd total
        puts the extra pixel at the bottom/right (as TensorFlow; equal to PyTorch's
        ``padding='same'`` for stride 1). ``'full'`` pads ``(k - 1) * d`` on every side, so every
        window that touches the input at all is taken.
    kernel_size, stride, dilation : int or (int, int)
    input_size : int or (int, int), optional
        ``(H, W)``; needed only for ``'same'`` with a stride above 1.

    Returns
    -------
    Padding

    Notes
    -----
    'same': ``total = max((ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)``,
    ``top = floor(total / 2)``, ``bottom = total - top``.
    """
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    sh, sw = as_pair(stride, "stride", minimum=1)
    dh, dw = as_pair(dilation, "dilation", minimum=1)
    if isinstance(padding, str):
        word = padding.strip().lower()
        if word == "valid":
            return Padding(0, 0, 0, 0)
        if word == "full":
            ph, pw = (kh - 1) * dh, (kw - 1) * dw
            return Padding(ph, ph, pw, pw)
        if word == "same":
            h, w = (None, None) if input_size is None else as_pair(input_size, "input_size", minimum=1)
            th = _same_total(h, kh, sh, dh, "height")
            tw = _same_total(w, kw, sw, dw, "width")
            return Padding(th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise ValueError(f"unknown padding {padding!r}; padding must be {PADDING_FORMS}")
    if _is_int(padding):
        values: tuple[int, ...] = (int(padding),) * 4  # type: ignore[arg-type]
    elif isinstance(padding, Sequence) and all(_is_int(v) for v in padding) and len(padding) in (2, 4):
        if len(padding) == 2:
            values = (int(padding[0]), int(padding[0]), int(padding[1]), int(padding[1]))
        else:
            values = tuple(int(v) for v in padding)
    else:
        raise ValueError(f"padding {padding!r} is not understood; padding must be {PADDING_FORMS}")
    if min(values) < 0:
        raise ValueError(f"padding cannot be negative, got {padding!r}")
    return Padding(*values)


# --------------------------------------------------------------------------------------------------
# output sizes
# --------------------------------------------------------------------------------------------------


def _axis_output(n: int, k: int, s: int, lo: int, hi: int, d: int, axis: str) -> int:
    """One axis of a convolution; raises a sentence when the kernel does not fit."""
    k_eff = effective_kernel(k, d)
    padded = n + lo + hi
    if k_eff > padded:
        word = "wide" if axis == "width" else "tall"
        dil = f" with dilation {d}" if d > 1 else ""
        raise ValueError(
            f"kernel {k}{dil} spans {k_eff} pixels but the padded input is only {padded} {word} "
            f"({n} + {lo} + {hi}); use a smaller kernel or dilation, or more padding"
        )
    return (padded - k_eff) // s + 1


@dataclass(frozen=True)
class WindowGeometry:
    """Everything about sliding a (dilated) window over an ``H × W`` input, resolved to ints.

    Attributes
    ----------
    height, width : int
        Unpadded input size.
    kernel, stride, dilation : (int, int)
        ``(height, width)`` pairs.
    padding : Padding
    effective : (int, int)
        Span of the dilated kernel.
    padded : (int, int)
        ``(H + top + bottom, W + left + right)``.
    output : (int, int)
        ``(OH, OW)``.
    uncovered : (int, int)
        Trailing rows and columns of the padded input that no window reaches,
        ``(padded - k_eff) mod s`` along each axis.
    padding_mode : str
        What the padding holds: one of :data:`PADDING_MODES` (``'zeros'`` by default).
    """

    height: int
    width: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    dilation: tuple[int, int]
    padding: Padding
    effective: tuple[int, int]
    padded: tuple[int, int]
    output: tuple[int, int]
    uncovered: tuple[int, int]
    padding_mode: str = "zeros"

    @property
    def windows(self) -> int:
        """Number of window positions, ``OH * OW`` (the im2col column count per image)."""
        return self.output[0] * self.output[1]

    def without_padding(self) -> WindowGeometry:
        """The same windows over the already padded input: size ``padded``, no padding, mode 'zeros'.

        Used after the border has been filled by a ``padding_mode`` other than zeros.
        """
        return WindowGeometry(
            height=self.padded[0],
            width=self.padded[1],
            kernel=self.kernel,
            stride=self.stride,
            dilation=self.dilation,
            padding=Padding(0, 0, 0, 0),
            effective=self.effective,
            padded=self.padded,
            output=self.output,
            uncovered=self.uncovered,
        )


def check_padding_mode(padding_mode: str, padding: Padding, input_size: tuple[int, int]) -> str:
    """Check a ``padding_mode`` against the padding and the input size, by PyTorch's rules.

    Parameters
    ----------
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        ``'zeros'`` pads with 0; ``'reflect'`` mirrors the input about its edge pixel (the edge is not
        repeated: ``x[2], x[1] | x[0], x[1], ...``); ``'replicate'`` repeats the edge pixel;
        ``'circular'`` wraps around (the left padding holds the right end of the input).
    padding : Padding
    input_size : (H, W)

    Returns
    -------
    str
        The mode.

    Raises
    ------
    ValueError
        An unknown mode; ``'reflect'`` with a padding not smaller than the input along its axis; or
        ``'circular'`` with a padding larger than the input (it would wrap around more than once).

    Notes
    -----
    These are the checks of ``torch.nn.functional.pad`` (``reflect``: ``pad < n``;
    ``circular``: ``pad <= n``; ``replicate``: any padding of a non-empty input).
    """
    if padding_mode not in PADDING_MODES:
        raise ValueError(
            f"unknown padding_mode {padding_mode!r}; padding_mode must be one of {', '.join(PADDING_MODES)}"
        )
    h, w = input_size
    axes = (("height", h, padding.top, padding.bottom), ("width", w, padding.left, padding.right))
    for axis, n, lo, hi in axes:
        if padding_mode == "reflect" and max(lo, hi) >= n:
            raise ValueError(
                f"padding_mode 'reflect' needs padding smaller than the input {axis}: padding ({lo}, {hi}) "
                f"with input {axis} {n} allows at most {n - 1} per side; use less padding, a larger image or "
                "another padding_mode"
            )
        if padding_mode == "circular" and max(lo, hi) > n:
            raise ValueError(
                f"padding_mode 'circular' needs padding at most the input {axis}: padding ({lo}, {hi}) with "
                f"input {axis} {n} would wrap around more than once; use at most {n} per side"
            )
    return padding_mode


def window_geometry(
    input_size: IntOrPair,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    padding_mode: str = "zeros",
) -> WindowGeometry:
    """Resolve a sliding window over an input of ``input_size = (H, W)``.

    Raises ``ValueError`` with a sentence naming the rule and the numbers when the setting is
    impossible (kernel larger than the padded input, stride 0, negative or unknown padding, a
    ``padding_mode`` that does not fit the padding, see :func:`check_padding_mode`).
    """
    h, w = as_pair(input_size, "input size", minimum=1)
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    sh, sw = as_pair(stride, "stride", minimum=1)
    dh, dw = as_pair(dilation, "dilation", minimum=1)
    pad = resolve_padding(padding, (kh, kw), (sh, sw), (dh, dw), (h, w))
    check_padding_mode(padding_mode, pad, (h, w))
    oh = _axis_output(h, kh, sh, pad.top, pad.bottom, dh, "height")
    ow = _axis_output(w, kw, sw, pad.left, pad.right, dw, "width")
    eh, ew = effective_kernel(kh, dh), effective_kernel(kw, dw)
    ph, pw = h + pad.height_total, w + pad.width_total
    return WindowGeometry(
        height=h,
        width=w,
        kernel=(kh, kw),
        stride=(sh, sw),
        dilation=(dh, dw),
        padding=pad,
        effective=(eh, ew),
        padded=(ph, pw),
        output=(oh, ow),
        uncovered=((ph - eh) % sh, (pw - ew) % sw),
        padding_mode=padding_mode,
    )


def conv_output_size(
    input_size: IntOrPair,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
) -> Any:
    """Output size of a convolution.

    Parameters
    ----------
    input_size : int or (H, W)
    kernel_size, stride, dilation : int or (int, int)
    padding : any form accepted by :func:`resolve_padding`

    Returns
    -------
    int or (int, int)
        An int when ``input_size`` is an int (a square problem), else ``(OH, OW)``.

    Notes
    -----
    ``o = floor((n + p_lo + p_hi - ((k - 1) * d + 1)) / s) + 1``
    """
    geometry = window_geometry(input_size, kernel_size, stride, padding, dilation)
    return geometry.output[0] if _is_int(input_size) else geometry.output


def pool_padding(padding: IntOrPair, kernel_size: IntOrPair) -> tuple[int, int]:
    """Validate pooling padding, which PyTorch allows only symmetric and at most half the kernel.

    Returns
    -------
    (int, int)
        ``(pad_h, pad_w)``, applied on both sides.
    """
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    ph, pw = as_pair(padding, "padding", minimum=0)
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(
            f"pooling padding must be at most half the kernel size: padding ({ph}, {pw}) "
            f"with kernel ({kh}, {kw}) allows at most ({kh // 2}, {kw // 2})"
        )
    return ph, pw


def _pool_axis(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool, axis: str) -> int:
    k_eff = effective_kernel(k, d)
    numerator = n + 2 * p - k_eff
    # Floor division rounds towards −inf, as PyTorch's div_rtn: in ceil mode a window a little larger than
    # the padded input still gives one (clipped) output, as in PyTorch.
    out = (numerator + (s - 1 if ceil_mode else 0)) // s + 1
    # PyTorch: in ceil mode the last window must start inside the input or its left padding.
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    if out < 1:
        word = "wide" if axis == "width" else "tall"
        raise ValueError(
            f"pooling window {k} spans {k_eff} pixels but the padded input is only {n + 2 * p} {word}"
        )
    return out


def pool_output_size(
    input_size: IntOrPair,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> Any:
    """Output size of max or average pooling, by PyTorch's rule.

    Parameters
    ----------
    input_size : int or (H, W)
    kernel_size : int or (int, int)
    stride : int or (int, int), optional
        Defaults to ``kernel_size`` (PyTorch's default).
    padding : int or (int, int)
        Symmetric, at most half the kernel.
    dilation : int or (int, int)
    ceil_mode : bool

    Returns
    -------
    int or (int, int)
        An int when ``input_size`` is an int, else ``(OH, OW)``.

    Notes
    -----
    ``o = floor_or_ceil((n + 2 p - (k - 1) * d - 1) / s) + 1``; in ceil mode, if the last window
    would start at or past ``n + p`` (entirely in the right padding), it is dropped.
    """
    h, w = as_pair(input_size, "input size", minimum=1)
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    sh, sw = as_pair(kernel_size if stride is None else stride, "stride", minimum=1)
    dh, dw = as_pair(dilation, "dilation", minimum=1)
    ph, pw = pool_padding(padding, (kh, kw))
    oh = _pool_axis(h, kh, sh, ph, dh, ceil_mode, "height")
    ow = _pool_axis(w, kw, sw, pw, dw, ceil_mode, "width")
    return oh if _is_int(input_size) else (oh, ow)


def conv_transpose_output_size(
    input_size: IntOrPair,
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> Any:
    """Output size of a transposed convolution (PyTorch's ``conv_transpose2d``).

    Parameters
    ----------
    input_size : int or (H, W)
    kernel_size, stride, dilation : int or (int, int)
    padding : int or (int, int)
        Removed from both sides of the full output (symmetric, as in PyTorch).
    output_padding : int or (int, int)
        Extra rows/columns on the bottom/right; must be smaller than the stride or the dilation.

    Returns
    -------
    int or (int, int)

    Notes
    -----
    ``o = (n - 1) * s - 2 p + (k - 1) * d + 1 + output_padding``
    """
    h, w = as_pair(input_size, "input size", minimum=1)
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    sh, sw = as_pair(stride, "stride", minimum=1)
    ph, pw = as_pair(padding, "padding", minimum=0)
    oph, opw = as_pair(output_padding, "output_padding", minimum=0)
    dh, dw = as_pair(dilation, "dilation", minimum=1)
    for op, s, d, axis in ((oph, sh, dh, "height"), (opw, sw, dw, "width")):
        if op >= max(s, d):
            raise ValueError(
                f"output_padding {op} along the {axis} must be smaller than the stride ({s}) "
                f"or the dilation ({d})"
            )
    out = []
    for n, k, s, p, op, d, axis in ((h, kh, sh, ph, oph, dh, "height"), (w, kw, sw, pw, opw, dw, "width")):
        o = (n - 1) * s - 2 * p + effective_kernel(k, d) + op
        if o < 1:
            raise ValueError(
                f"transposed convolution output {axis} would be {o}: "
                f"({n} - 1)·{s} - 2·{p} + {effective_kernel(k, d)} + {op}; reduce the padding"
            )
        out.append(o)
    return out[0] if _is_int(input_size) else (out[0], out[1])


# --------------------------------------------------------------------------------------------------
# whole-layer checks
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ConvGeometry:
    """A convolution layer resolved to ints: input ``(N, C, H, W)``, weight ``(F, C/groups, KH, KW)``."""

    batch: int
    in_channels: int
    out_channels: int
    groups: int
    window: WindowGeometry

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """``(N, F, OH, OW)``."""
        return (self.batch, self.out_channels, *self.window.output)

    @property
    def column_rows(self) -> int:
        """Rows of the im2col matrix, ``C * KH * KW`` (all groups stacked)."""
        return self.in_channels * self.window.kernel[0] * self.window.kernel[1]

    def without_padding(self) -> ConvGeometry:
        """The same layer over the already padded input (see :meth:`WindowGeometry.without_padding`)."""
        return ConvGeometry(
            batch=self.batch,
            in_channels=self.in_channels,
            out_channels=self.out_channels,
            groups=self.groups,
            window=self.window.without_padding(),
        )


def _check_shape(shape: Sequence[int], ndim: int, name: str, layout: str) -> tuple[int, ...]:
    if len(shape) != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions {layout}, got shape {tuple(shape)}")
    if any(int(v) < 1 for v in shape):
        raise ValueError(f"{name} dimensions must all be at least 1, got shape {tuple(shape)}")
    return tuple(int(v) for v in shape)


def conv_geometry(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> ConvGeometry:
    """Check a convolution's arguments against each other and resolve every size.

    Parameters
    ----------
    input_shape : (N, C, H, W)
    weight_shape : (F, C/groups, KH, KW)
    stride, dilation : int or (int, int)
    padding : any form accepted by :func:`resolve_padding`
    groups : int
        Must divide both C and F.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        Checked by :func:`check_padding_mode`.

    Returns
    -------
    ConvGeometry

    Raises
    ------
    ValueError
        With a sentence that names the rule and the numbers.
    """
    n, c, h, w = _check_shape(input_shape, 4, "input", "(N, C, H, W)")
    f, cg, kh, kw = _check_shape(weight_shape, 4, "weight", "(F, C/groups, KH, KW)")
    if not _is_int(groups) or groups < 1:
        raise ValueError(f"groups must be a positive int, got {groups!r}")
    if c % groups:
        raise ValueError(f"groups ({groups}) must divide the input channels ({c})")
    if f % groups:
        raise ValueError(f"groups ({groups}) must divide the number of filters ({f})")
    if cg != c // groups:
        raise ValueError(
            f"weight has {cg} input channels per filter but the input has {c} channels in "
            f"{groups} group(s), so each filter needs {c // groups}"
        )
    window = window_geometry((h, w), (kh, kw), stride, padding, dilation, padding_mode)
    return ConvGeometry(batch=n, in_channels=c, out_channels=f, groups=groups, window=window)


# --------------------------------------------------------------------------------------------------
# explanations a page can print
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One line of worked arithmetic.

    Attributes
    ----------
    quantity : str
        What is computed, e.g. ``"output height"``.
    formula : str
        With symbols, e.g. ``"floor((H + pad_top + pad_bottom − k_eff) / s) + 1"``.
    substituted : str
        The same with the numbers in, e.g. ``"floor((28 + 0 + 0 − 5) / 1) + 1"``.
    value : int or float or str
    """

    quantity: str
    formula: str
    substituted: str
    value: Any

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.quantity} = {self.formula} = {self.substituted} = {self.value}"


@dataclass
class Explanation:
    """Worked steps plus the facts a page shows beside them."""

    steps: list[Step]
    output_shape: tuple[int, ...]
    warnings: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": [s.as_dict() for s in self.steps],
            "output_shape": list(self.output_shape),
            "warnings": list(self.warnings),
            **self.facts,
        }

    def value(self, quantity: str) -> Any:
        """The value of the step named ``quantity``."""
        for step in self.steps:
            if step.quantity == quantity:
                return step.value
        raise KeyError(quantity)


def _axis_steps(window: WindowGeometry, axis: int) -> list[Step]:
    name = ("height", "width")[axis]
    short = ("H", "W")[axis]
    n = (window.height, window.width)[axis]
    k, s, d = window.kernel[axis], window.stride[axis], window.dilation[axis]
    lo, hi = ((window.padding.top, window.padding.bottom), (window.padding.left, window.padding.right))[axis]
    lo_name, hi_name = (("pad_top", "pad_bottom"), ("pad_left", "pad_right"))[axis]
    k_eff = window.effective[axis]
    padded = window.padded[axis]
    steps = [
        Step(f"effective kernel {name}", "(k − 1)·d + 1", f"({k} − 1)·{d} + 1", k_eff),
        Step(f"padded {name}", f"{short} + {lo_name} + {hi_name}", f"{n} + {lo} + {hi}", padded),
        Step(
            f"output {name}",
            f"floor(({short} + {lo_name} + {hi_name} − k_eff) / s) + 1",
            f"floor(({n} + {lo} + {hi} − {k_eff}) / {s}) + 1",
            window.output[axis],
        ),
        Step(
            f"uncovered {'rows' if axis == 0 else 'columns'}",
            f"({short} + {lo_name} + {hi_name} − k_eff) mod s",
            f"({n} + {lo} + {hi} − {k_eff}) mod {s}",
            window.uncovered[axis],
        ),
    ]
    return steps


def _uncovered_warnings(window: WindowGeometry) -> list[str]:
    warnings = []
    for axis, (what, side) in enumerate((("row", "bottom"), ("column", "right"))):
        count = window.uncovered[axis]
        if count:
            padded = window.padded[axis]
            first = padded - count
            plural = "s" if count > 1 else ""
            warnings.append(
                f"stride {window.stride[axis]} does not fit: the last {count} {what}{plural} of the padded "
                f"input (padded index {first}{'' if count == 1 else f'–{padded - 1}'}, at the {side}) "
                f"are reached by no window and do not affect the output"
            )
        k_eff, s = window.effective[axis], window.stride[axis]
        n = (window.height, window.width)[axis]
        if k_eff > n:
            extent = ("height", "width")[axis]
            warnings.append(
                f"the kernel spans {k_eff} pixels, more than the input {extent} ({n}): every window "
                f"reads padding, and only the padding lets the kernel fit"
            )
        if s > k_eff:
            warnings.append(
                f"stride {s} is larger than the kernel span {k_eff}: {s - k_eff} {what}(s) between "
                f"neighbouring windows are never read"
            )
    return warnings


BORDER_SENTENCES = {
    "zeros": "the padding holds zeros",
    "reflect": "the padding mirrors the input about its edge pixel, which is not repeated (c b | a b c)",
    "replicate": "the padding repeats the edge pixel (a a | a b c)",
    "circular": "the padding wraps around: the left padding holds the right end of the input (b c | a b c)",
}
"""One sentence per ``padding_mode`` for the explanations."""


def explain_conv(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: IntOrPair = 1,
    padding: PaddingSpec = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    bias: bool = True,
    itemsize: int = 4,
    padding_mode: str = "zeros",
) -> Explanation:
    """Every size of a convolution layer as worked steps.

    Parameters
    ----------
    input_shape : (N, C, H, W)
    weight_shape : (F, C/groups, KH, KW)
    stride, padding, dilation, groups
        As :func:`conv_geometry`.
    bias : bool
        Whether the layer has one bias per filter (counted in the parameters).
    itemsize : int
        Bytes per number (4 for float32, 8 for float64), for the im2col memory.
    padding_mode : {'zeros', 'reflect', 'replicate', 'circular'}
        What the padding holds (:func:`check_padding_mode`).

    Returns
    -------
    Explanation
        ``facts`` holds ``padding`` (dict), ``padding_mode``, ``border`` (a sentence), ``params``,
        ``macs``, ``im2col_shape``,
        ``im2col_bytes``, ``input_bytes``, ``duplication``, ``uncovered_rows`` and
        ``uncovered_cols`` (padded indices no window reaches).

    Notes
    -----
    parameters ``F·(C/groups)·KH·KW + F``; multiply-adds ``N·F·OH·OW·(C/groups)·KH·KW``;
    im2col ``(N, C·KH·KW, OH·OW)``; duplication = im2col elements / input elements.
    """
    geometry = conv_geometry(
        input_shape, weight_shape, stride, padding, dilation, groups, padding_mode
    )
    window = geometry.window
    n, c, f, g = geometry.batch, geometry.in_channels, geometry.out_channels, geometry.groups
    kh, kw = window.kernel
    oh, ow = window.output
    cg = c // g
    steps = _axis_steps(window, 0) + _axis_steps(window, 1)
    weights = f * cg * kh * kw
    params = weights + (f if bias else 0)
    steps.append(
        Step(
            "parameters",
            "F·(C/groups)·KH·KW + F" if bias else "F·(C/groups)·KH·KW",
            f"{f}·{cg}·{kh}·{kw} + {f}" if bias else f"{f}·{cg}·{kh}·{kw}",
            params,
        )
    )
    macs = n * f * oh * ow * cg * kh * kw
    steps.append(
        Step("multiply-adds", "N·F·OH·OW·(C/groups)·KH·KW", f"{n}·{f}·{oh}·{ow}·{cg}·{kh}·{kw}", macs)
    )
    rows, cols = c * kh * kw, oh * ow
    steps.append(Step("im2col rows", "C·KH·KW", f"{c}·{kh}·{kw}", rows))
    steps.append(Step("im2col columns", "OH·OW", f"{oh}·{ow}", cols))
    col_bytes = n * rows * cols * itemsize
    steps.append(Step("im2col bytes", "N·C·KH·KW·OH·OW·itemsize", f"{n}·{rows}·{cols}·{itemsize}", col_bytes))
    input_elems = n * c * window.height * window.width
    duplication = round(n * rows * cols / input_elems, 4)
    steps.append(
        Step(
            "im2col duplication",
            "(C·KH·KW·OH·OW) / (C·H·W)",
            f"({rows}·{cols}) / ({c}·{window.height}·{window.width})",
            duplication,
        )
    )
    steps.append(
        Step(
            "GEMM",
            "W_col (F × C·KH·KW) · X_col (C·KH·KW × OH·OW)",
            f"({f} × {rows}) · ({rows} × {cols})",
            f"{f} × {cols}",
        )
    )
    warnings = _uncovered_warnings(window)
    ph, pw = window.padded
    facts = {
        "padding": window.padding._asdict(),
        "padding_mode": padding_mode,
        "border": BORDER_SENTENCES[padding_mode],
        "effective_kernel": list(window.effective),
        "padded_size": [ph, pw],
        "params": params,
        "macs": macs,
        "im2col_shape": [n, rows, cols],
        "im2col_bytes": col_bytes,
        "input_bytes": input_elems * itemsize,
        "duplication": duplication,
        "uncovered_rows": list(range(ph - window.uncovered[0], ph)),
        "uncovered_cols": list(range(pw - window.uncovered[1], pw)),
    }
    return Explanation(steps=steps, output_shape=geometry.output_shape, warnings=warnings, facts=facts)


def explain_pool(
    input_shape: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> Explanation:
    """The output size of pooling as worked steps.

    Parameters
    ----------
    input_shape : (N, C, H, W)
    kernel_size, stride, padding, dilation, ceil_mode
        As :func:`pool_output_size`.

    Returns
    -------
    Explanation
    """
    n, c, h, w = _check_shape(input_shape, 4, "input", "(N, C, H, W)")
    kh, kw = as_pair(kernel_size, "kernel_size", minimum=1)
    sh, sw = as_pair(kernel_size if stride is None else stride, "stride", minimum=1)
    dh, dw = as_pair(dilation, "dilation", minimum=1)
    ph, pw = pool_padding(padding, (kh, kw))
    oh, ow = pool_output_size((h, w), (kh, kw), (sh, sw), (ph, pw), (dh, dw), ceil_mode)
    rounding = "ceil" if ceil_mode else "floor"
    steps: list[Step] = []
    warnings: list[str] = []
    for name, short, size, k, s, p, d, o in (
        ("height", "H", h, kh, sh, ph, dh, oh),
        ("width", "W", w, kw, sw, pw, dw, ow),
    ):
        k_eff = effective_kernel(k, d)
        raw = (size + 2 * p - k_eff + (s - 1 if ceil_mode else 0)) // s + 1
        steps.append(
            Step(
                f"pooled {name}",
                f"{rounding}(({short} + 2·pad − k_eff) / s) + 1",
                f"{rounding}(({size} + 2·{p} − {k_eff}) / {s}) + 1",
                raw,
            )
        )
        if raw != o:
            steps.append(
                Step(
                    f"pooled {name} (ceil_mode correction)",
                    f"last window would start at (o − 1)·s ≥ {short} + pad, so drop it",
                    f"({raw} − 1)·{s} = {(raw - 1) * s} ≥ {size} + {p}",
                    o,
                )
            )
        leftover = (size + 2 * p - k_eff) % s
        if leftover and not ceil_mode:
            warnings.append(
                f"pool stride {s} does not fit the {name}: the last {leftover} of {size + 2 * p} padded "
                f"{'rows' if short == 'H' else 'columns'} are dropped (ceil_mode would keep a partial window)"
            )
    facts = {"padding": {"height": ph, "width": pw}, "kernel_size": [kh, kw], "stride": [sh, sw]}
    return Explanation(steps=steps, output_shape=(n, c, oh, ow), warnings=warnings, facts=facts)


def explain_conv_transpose(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
) -> Explanation:
    """The output size of a transposed convolution as worked steps.

    Parameters
    ----------
    input_shape : (N, C_in, H, W)
    weight_shape : (C_in, C_out/groups, KH, KW)
        PyTorch's layout for ``conv_transpose2d``.

    Returns
    -------
    Explanation
    """
    n, c, h, w = _check_shape(input_shape, 4, "input", "(N, C_in, H, W)")
    ci, cog, kh, kw = _check_shape(weight_shape, 4, "weight", "(C_in, C_out/groups, KH, KW)")
    if not _is_int(groups) or groups < 1 or c % groups:
        raise ValueError(f"groups ({groups!r}) must be a positive int dividing the input channels ({c})")
    if ci != c:
        raise ValueError(f"weight has {ci} input channels but the input has {c}")
    sh, sw = as_pair(stride, "stride", minimum=1)
    ph, pw = as_pair(padding, "padding", minimum=0)
    oph, opw = as_pair(output_padding, "output_padding", minimum=0)
    dh, dw = as_pair(dilation, "dilation", minimum=1)
    oh, ow = conv_transpose_output_size((h, w), (kh, kw), (sh, sw), (ph, pw), (oph, opw), (dh, dw))
    steps = []
    for name, size, k, s, p, op, d, o in (
        ("height", h, kh, sh, ph, oph, dh, oh),
        ("width", w, kw, sw, pw, opw, dw, ow),
    ):
        steps.append(
            Step(
                f"output {name}",
                "(n − 1)·s − 2·p + (k − 1)·d + 1 + output_padding",
                f"({size} − 1)·{s} − 2·{p} + ({k} − 1)·{d} + 1 + {op}",
                o,
            )
        )
    return Explanation(steps=steps, output_shape=(n, cog * groups, oh, ow), facts={})


def ceil_div(a: int, b: int) -> int:
    """``ceil(a / b)`` for ints without floating point."""
    return -(-a // b)


__all__ = [
    "BORDER_SENTENCES",
    "PADDING_FORMS",
    "PADDING_MODES",
    "PADDING_WORDS",
    "ConvGeometry",
    "Explanation",
    "Padding",
    "Step",
    "WindowGeometry",
    "as_pair",
    "ceil_div",
    "check_padding_mode",
    "conv_geometry",
    "conv_output_size",
    "conv_transpose_output_size",
    "effective_kernel",
    "explain_conv",
    "explain_conv_transpose",
    "explain_pool",
    "pool_output_size",
    "pool_padding",
    "resolve_padding",
    "window_geometry",
]

