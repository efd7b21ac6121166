"""A stack of layers (``Conv2d``, ``ReLU``, ``MaxPool2d``, ``AvgPool2d``) run by convlens' own functions.

Layout NCHW, PyTorch's semantics: a stack is what ``torch.nn.Sequential`` of the same layers computes.
Nothing is implemented twice: the forward pass calls :func:`core.conv.conv2d`, :func:`core.activations.relu`,
:func:`core.pool.max_pool2d` and :func:`core.pool.avg_pool2d`; the gradient of one unit with respect to
the input calls their ``*_backward`` twins, layer by layer from the unit down to the input.

Layers are small frozen dataclasses holding their hyper-parameters (pairs resolved to ``(height, width)``);
weights travel separately as one :class:`ConvParams` per ``Conv2d`` (``None`` for the other layers), so that
the same architecture can be run with random, preset, trained or uploaded weights.

Notes
-----
Default initialisation is PyTorch's (``nn.Conv2d.reset_parameters``): Kaiming-uniform with ``a = √5``, i.e.
``w ~ U(−1/√fan_in, 1/√fan_in)`` and ``b ~ U(−1/√fan_in, 1/√fan_in)``, ``fan_in = C/groups · KH · KW``
— drawn from a seeded NumPy generator, so the numbers differ from torch's but the distribution is the same.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from core.activations import relu, relu_backward
from core.conv import conv2d, conv2d_backward
from core.pool import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward
from core.shapes import (
    PaddingSpec,
    as_pair,
    conv_geometry,
    effective_kernel,
    pool_output_size,
    pool_padding,
    resolve_padding,
)

Pair = tuple[int, int]


class StackError(ValueError):
    """A layer that does not fit: carries the layer index and the field the sentence is about.

    Attributes
    ----------
    layer : int or None
        0-based index in the stack (``None`` for the stack as a whole or the input).
    field : str
        ``"in_channels"``, ``"kernel_size"``, ``"padding"``, ...
    """

    def __init__(self, layer: int | None, field_name: str, message: str) -> None:
        where = "" if layer is None else f"layer {layer}: "
        super().__init__(where + message)
        self.layer = layer
        self.field = field_name
        self.message = message


def _padding_form(padding: Any) -> PaddingSpec:
    """One canonical form (so that equal paddings compare equal): lists → tuples, a symmetric 4-tuple → a
    pair, an equal pair → an int, words lower-cased. The form itself is checked by
    :func:`core.shapes.resolve_padding`."""
    if isinstance(padding, str):
        return padding.strip().lower()
    if isinstance(padding, (list, tuple)):
        values = tuple(int(v) for v in padding)
        if len(values) == 4 and values[0] == values[1] and values[2] == values[3]:
            values = (values[0], values[2])
        if len(values) == 2 and values[0] == values[1]:
            return values[0]
        return values
    return int(padding)


@dataclass(frozen=True)
class Conv2d:
    """``nn.Conv2d``: weights ``(out_channels, in_channels/groups, KH, KW)``.

    ``padding`` is kept in the form it was given: int, ``(pad_h, pad_w)``, ``(top, bottom, left, right)``,
    ``'valid'``, ``'same'`` (any stride, TensorFlow's rule) or ``'full'``.
    """

    in_channels: int
    out_channels: int
    kernel_size: Pair
    stride: Pair = (1, 1)
    padding: PaddingSpec = 0
    dilation: Pair = (1, 1)
    groups: int = 1
    bias: bool = True
    name: ClassVar[str] = "Conv2d"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "kernel_size", as_pair(self.kernel_size, "kernel_size", minimum=1))
        set_(self, "stride", as_pair(self.stride, "stride", minimum=1))
        set_(self, "dilation", as_pair(self.dilation, "dilation", minimum=1))
        set_(self, "padding", _padding_form(self.padding))
        for name in ("in_channels", "out_channels", "groups"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups ({self.groups}) must divide in_channels ({self.in_channels}) and out_channels "
                f"({self.out_channels})"
            )
        if not isinstance(self.padding, str):  # words are checked against the input size later
            resolve_padding(self.padding, self.kernel_size, self.stride, self.dilation)
        elif self.padding not in ("valid", "same", "full"):
            resolve_padding(self.padding, self.kernel_size)  # raises the sentence with the allowed forms

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """``(F, C/groups, KH, KW)``."""
        return (self.out_channels, self.in_channels // self.groups, *self.kernel_size)

    @property
    def fan_in(self) -> int:
        """``C/groups · KH · KW``."""
        return self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]


@dataclass(frozen=True)
class ReLU:
    """``nn.ReLU``."""

    name: ClassVar[str] = "ReLU"


@dataclass(frozen=True)
class MaxPool2d:
    """``nn.MaxPool2d``: ``stride`` defaults to ``kernel_size``; padding symmetric, ≤ half the kernel."""

    kernel_size: Pair
    stride: Pair | None = None
    padding: Pair = (0, 0)
    dilation: Pair = (1, 1)
    ceil_mode: bool = False
    name: ClassVar[str] = "MaxPool2d"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "kernel_size", as_pair(self.kernel_size, "kernel_size", minimum=1))
        set_(self, "stride", as_pair(self.kernel_size if self.stride is None else self.stride, "stride", 1))
        set_(self, "padding", pool_padding(self.padding, self.kernel_size))
        set_(self, "dilation", as_pair(self.dilation, "dilation", minimum=1))
        set_(self, "ceil_mode", bool(self.ceil_mode))


@dataclass(frozen=True)
class AvgPool2d:
    """``nn.AvgPool2d`` (no dilation, as in PyTorch)."""

    kernel_size: Pair
    stride: Pair | None = None
    padding: Pair = (0, 0)
    ceil_mode: bool = False
    count_include_pad: bool = True
    name: ClassVar[str] = "AvgPool2d"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "kernel_size", as_pair(self.kernel_size, "kernel_size", minimum=1))
        set_(self, "stride", as_pair(self.kernel_size if self.stride is None else self.stride, "stride", 1))
        set_(self, "padding", pool_padding(self.padding, self.kernel_size))
        set_(self, "ceil_mode", bool(self.ceil_mode))
        set_(self, "count_include_pad", bool(self.count_include_pad))

    @property
    def dilation(self) -> Pair:
        """Always ``(1, 1)``."""
        return (1, 1)


Layer = Conv2d | ReLU | MaxPool2d | AvgPool2d
LAYER_TYPES: dict[str, type] = {cls.name: cls for cls in (Conv2d, ReLU, MaxPool2d, AvgPool2d)}


@dataclass(frozen=True)
class ConvParams:
    """The weights of one ``Conv2d``: ``weight (F, C/groups, KH, KW)``, ``bias (F,)`` or ``None``."""

    weight: np.ndarray
    bias: np.ndarray | None


Params = list[ConvParams | None]


# --------------------------------------------------------------------------------------------------
# geometry of a whole stack
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """How one layer slides over its input, per axis ``(height, width)``, resolved to ints.

    ``pad_lo``/``pad_hi`` are top/left and bottom/right; ``effective`` is the dilated kernel span.
    A ReLU is the window 1×1, stride 1, no padding.
    """

    input: Pair
    output: Pair
    kernel: Pair
    stride: Pair
    dilation: Pair
    pad_lo: Pair
    pad_hi: Pair

    @property
    def effective(self) -> Pair:
        """``(k - 1) · d + 1`` per axis."""
        return (
            effective_kernel(self.kernel[0], self.dilation[0]),
            effective_kernel(self.kernel[1], self.dilation[1]),
        )


def layer_window(layer: Layer, input_size: Pair) -> Window:
    """Resolve ``layer`` over an input of ``input_size = (H, W)``; ``ValueError`` if it does not fit."""
    h, w = input_size
    if isinstance(layer, ReLU):
        return Window(input_size, input_size, (1, 1), (1, 1), (1, 1), (0, 0), (0, 0))
    if isinstance(layer, Conv2d):
        geometry = conv_geometry(
            (1, layer.in_channels, h, w),
            layer.weight_shape,
            layer.stride,
            layer.padding,
            layer.dilation,
            layer.groups,
        ).window
        pad = geometry.padding
        return Window(
            input_size,
            geometry.output,
            geometry.kernel,
            geometry.stride,
            geometry.dilation,
            (pad.top, pad.left),
            (pad.bottom, pad.right),
        )
    stride = layer.stride or layer.kernel_size
    out = pool_output_size((h, w), layer.kernel_size, stride, layer.padding, layer.dilation, layer.ceil_mode)
    return Window(input_size, out, layer.kernel_size, stride, layer.dilation, layer.padding, layer.padding)


def out_channels(layer: Layer, channels: int) -> int:
    """Channels after ``layer`` given ``channels`` before it."""
    return layer.out_channels if isinstance(layer, Conv2d) else channels


def stack_shapes(layers: Sequence[Layer], input_shape: Sequence[int]) -> list[tuple[int, int, int]]:
    """``(C, H, W)`` of the input and of every layer's output, checking that each layer fits.

    Parameters
    ----------
    layers : sequence of Layer
    input_shape : (C, H, W)

    Returns
    -------
    list of (C, H, W)
        ``len(layers) + 1`` shapes; entry 0 is the input.

    Raises
    ------
    StackError
        Naming the layer and the field: channels that do not match, a window larger than the padded map.
    """
    c, h, w = (int(v) for v in input_shape)
    shapes = [(c, h, w)]
    for index, layer in enumerate(layers):
        if isinstance(layer, Conv2d) and layer.in_channels != c:
            raise StackError(
                index,
                "in_channels",
                f"Conv2d expects in_channels={layer.in_channels} but its input has {c} channel(s)",
            )
        try:
            window = layer_window(layer, (h, w))
        except ValueError as exc:
            message = str(exc)
            field_name = "padding" if "padding" in message and "spans" not in message else "kernel_size"
            raise StackError(index, field_name, f"{layer.name} on a {h}×{w} map: {message}") from None
        c, (h, w) = out_channels(layer, c), window.output
        shapes.append((c, h, w))
    return shapes


def windows(layers: Sequence[Layer], input_size: Pair) -> list[Window]:
    """Every layer's :class:`Window` over the sizes the stack produces."""
    out = []
    size = input_size
    for layer in layers:
        window = layer_window(layer, size)
        out.append(window)
        size = window.output
    return out


# --------------------------------------------------------------------------------------------------
# weights
# --------------------------------------------------------------------------------------------------


def kaiming_uniform(layers: Sequence[Layer], seed: int = 0, dtype: Any = np.float32) -> Params:
    """PyTorch's default ``Conv2d`` initialisation, from ``np.random.default_rng(seed)``.

    Returns
    -------
    list of ConvParams or None
        One entry per layer; ``weight`` ``(F, C/groups, KH, KW)`` and ``bias`` ``(F,)`` drawn from
        ``U(−1/√fan_in, 1/√fan_in)``.
    """
    rng = np.random.default_rng(seed)
    params: Params = []
    for layer in layers:
        if not isinstance(layer, Conv2d):
            params.append(None)
            continue
        bound = 1.0 / math.sqrt(layer.fan_in)
        weight = rng.uniform(-bound, bound, size=layer.weight_shape).astype(dtype)
        bias = rng.uniform(-bound, bound, size=layer.out_channels).astype(dtype) if layer.bias else None
        params.append(ConvParams(weight, bias))
    return params


def constant_params(layers: Sequence[Layer], value: float = 1.0, dtype: Any = np.float64) -> Params:
    """Every weight ``value`` and every bias 0 (what the receptive-field support is measured with)."""
    return [
        ConvParams(
            np.full(layer.weight_shape, value, dtype=dtype),
            np.zeros(layer.out_channels, dtype=dtype) if layer.bias else None,
        )
        if isinstance(layer, Conv2d)
        else None
        for layer in layers
    ]


def check_params(layers: Sequence[Layer], params: Params) -> None:
    """Raise :class:`StackError` unless ``params`` has one fitting entry per layer."""
    if len(params) != len(layers):
        raise StackError(None, "weights", f"{len(params)} weight entries for {len(layers)} layers")
    for index, (layer, entry) in enumerate(zip(layers, params, strict=True)):
        if not isinstance(layer, Conv2d):
            continue
        if entry is None:
            raise StackError(index, "weight", "Conv2d has no weights")
        if tuple(entry.weight.shape) != layer.weight_shape:
            raise StackError(
                index,
                "weight",
                f"weight has shape {tuple(entry.weight.shape)} but Conv2d({layer.in_channels}, "
                f"{layer.out_channels}, {layer.kernel_size}, groups={layer.groups}) needs "
                f"{layer.weight_shape}",
            )
        if layer.bias != (entry.bias is not None):
            raise StackError(
                index, "bias", f"bias={layer.bias} but the weights {'lack' if layer.bias else 'have'} one"
            )
        if entry.bias is not None and tuple(entry.bias.shape) != (layer.out_channels,):
            raise StackError(
                index, "bias", f"bias has shape {tuple(entry.bias.shape)}, needs ({layer.out_channels},)"
            )
        if not (
            np.all(np.isfinite(entry.weight)) and (entry.bias is None or np.all(np.isfinite(entry.bias)))
        ):
            raise StackError(index, "weight", "weights must be finite (no NaN or infinity)")


# --------------------------------------------------------------------------------------------------
# forward and the gradient of one unit
# --------------------------------------------------------------------------------------------------


@dataclass
class Activations:
    """Every map of one forward pass.

    Attributes
    ----------
    maps : list of ndarray
        ``maps[0]`` is the input ``(N, C, H, W)``; ``maps[i + 1]`` the output of ``layers[i]``.
    indices : dict of int -> ndarray
        For each ``MaxPool2d`` at layer ``i``: the arg-max of every window, flat ``h·W + w`` into its input.
    """

    maps: list[np.ndarray]
    indices: dict[int, np.ndarray] = field(default_factory=dict)


def _conv_kwargs(layer: Conv2d) -> dict[str, Any]:
    return {
        "stride": layer.stride,
        "padding": layer.padding,
        "dilation": layer.dilation,
        "groups": layer.groups,
    }


def _pool_kwargs(layer: MaxPool2d | AvgPool2d) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "kernel_size": layer.kernel_size,
        "stride": layer.stride,
        "padding": layer.padding,
        "ceil_mode": layer.ceil_mode,
    }
    if isinstance(layer, MaxPool2d):
        kwargs["dilation"] = layer.dilation
    else:
        kwargs["count_include_pad"] = layer.count_include_pad
    return kwargs


def forward(layers: Sequence[Layer], params: Params, x: Any) -> Activations:
    """Run the stack, keeping every activation.

    Parameters
    ----------
    layers : sequence of Layer
    params : list of ConvParams or None
        One entry per layer (see :func:`kaiming_uniform`).
    x : ndarray, shape (N, C, H, W)

    Returns
    -------
    Activations
        ``len(layers) + 1`` maps, dtype of ``x`` (float32 stays float32; integers become float64).
    """
    check_params(layers, params)
    current = np.asarray(x)
    if not np.issubdtype(current.dtype, np.floating):
        current = current.astype(np.float64)
    result = Activations(maps=[current])
    for index, (layer, entry) in enumerate(zip(layers, params, strict=True)):
        if isinstance(layer, Conv2d):
            assert entry is not None
            weight = entry.weight.astype(current.dtype, copy=False)
            bias = None if entry.bias is None else entry.bias.astype(current.dtype, copy=False)
            current = conv2d(current, weight, bias, **_conv_kwargs(layer))
        elif isinstance(layer, ReLU):
            current = relu(current)
        elif isinstance(layer, MaxPool2d):
            current, result.indices[index] = max_pool2d(current, return_indices=True, **_pool_kwargs(layer))
        else:
            current = avg_pool2d(current, **_pool_kwargs(layer))
        result.maps.append(current)
    return result


@dataclass(frozen=True)
class Crop:
    """A gradient that is zero outside a block: ``values (N, C, rows, cols)`` placed at ``(top, left)``."""

    values: np.ndarray
    top: int
    left: int

    def full(self, shape: tuple[int, ...]) -> np.ndarray:
        """The whole ``shape`` array, zero outside the block."""
        out = np.zeros(shape, dtype=self.values.dtype)
        _, _, rows, cols = self.values.shape
        out[:, :, self.top : self.top + rows, self.left : self.left + cols] = self.values
        return out


def _clip_block(values: np.ndarray, top: int, left: int, size: tuple[int, ...]) -> Crop:
    """The part of a block at ``(top, left)`` (possibly outside) that lies inside an ``(H, W)`` map."""
    h, w = size
    _, _, rows, cols = values.shape
    a0, a1 = max(top, 0), min(top + rows, h)
    b0, b1 = max(left, 0), min(left + cols, w)
    a1, b1 = max(a0, a1), max(b0, b1)
    return Crop(values[:, :, a0 - top : a1 - top, b0 - left : b1 - left], a0, b0)


def _window_block(crop: Crop, window: Window) -> tuple[int, int, int, int]:
    """Rows/columns (in the padded input) that the outputs of ``crop`` read: ``top, left, rows, cols``."""
    (sh, sw), (eh, ew) = window.stride, window.effective
    _, _, rows, cols = crop.values.shape
    return crop.top * sh, crop.left * sw, (rows - 1) * sh + eh, (cols - 1) * sw + ew


def _conv_input_grad(crop: Crop, x: np.ndarray, layer: Conv2d, entry: ConvParams) -> Crop:
    """``∂L/∂x`` of a convolution by :func:`core.conv.conv2d_backward`, run on the block that matters.

    The outputs in ``crop`` read a block of the padded input; ``conv2d_backward`` on that block (padding 0)
    gives its gradient, of which the part inside the image is kept. Only ``x``'s shape matters for the
    input gradient, so the block passed in is zeros.
    """
    window = layer_window(layer, x.shape[2:])
    top, left, rows, cols = _window_block(crop, window)
    block = np.zeros((x.shape[0], x.shape[1], rows, cols), dtype=x.dtype)
    grad_block, _, _ = conv2d_backward(
        crop.values,
        block,
        entry.weight.astype(x.dtype, copy=False),
        stride=layer.stride,
        padding=0,
        dilation=layer.dilation,
        groups=layer.groups,
    )
    (pt, pl) = window.pad_lo
    return _clip_block(grad_block, top - pt, left - pl, x.shape[2:])


def _pool_input_grad(
    crop: Crop, x: np.ndarray, out_shape: tuple[int, ...], layer: Layer, indices: Any
) -> Crop:
    """Pooling's ``*_backward`` on the whole map, the result cut to the block the crop's windows read."""
    grad_out = crop.full(out_shape)
    if isinstance(layer, MaxPool2d):
        grad = max_pool2d_backward(grad_out, x, indices=indices, **_pool_kwargs(layer))
    else:
        assert isinstance(layer, AvgPool2d)
        grad = avg_pool2d_backward(grad_out, x, **_pool_kwargs(layer))
    window = layer_window(layer, x.shape[2:])
    top, left, rows, cols = _window_block(crop, window)
    (pt, pl) = window.pad_lo
    h, w = x.shape[2:]
    a0, b0 = min(max(top - pt, 0), h), min(max(left - pl, 0), w)
    a1, b1 = max(min(top - pt + rows, h), a0), max(min(left - pl + cols, w), b0)
    return Crop(grad[:, :, a0:a1, b0:b1], a0, b0)


def input_gradient(
    layers: Sequence[Layer], params: Params, activations: Activations, grad_out: np.ndarray, layer: int
) -> np.ndarray:
    """Back-propagate ``grad_out`` (the gradient at the output of ``layers[layer]``) to the input.

    Parameters
    ----------
    grad_out : ndarray, shape of ``activations.maps[layer + 1]``

    Returns
    -------
    ndarray, shape of ``activations.maps[0]``

    Notes
    -----
    The gradient is carried as a :class:`Crop`, the block where it can be non-zero (for one unit: its
    receptive field on each map), so each ``*_backward`` call runs on that block only.
    """
    return _backward_crop(layers, params, activations, Crop(np.asarray(grad_out), 0, 0), layer)


def _backward_crop(
    layers: Sequence[Layer], params: Params, activations: Activations, crop: Crop, layer: int
) -> np.ndarray:
    for index in range(layer, -1, -1):
        current, x = layers[index], activations.maps[index]
        if crop.values.size == 0:
            return np.zeros_like(activations.maps[0])
        if isinstance(current, Conv2d):
            entry = params[index]
            assert entry is not None
            crop = _conv_input_grad(crop, x, current, entry)
        elif isinstance(current, ReLU):
            _, _, rows, cols = crop.values.shape
            block = x[:, :, crop.top : crop.top + rows, crop.left : crop.left + cols]
            crop = Crop(relu_backward(crop.values, block), crop.top, crop.left)
        else:
            out_shape = activations.maps[index + 1].shape
            crop = _pool_input_grad(crop, x, out_shape, current, activations.indices.get(index))
    return crop.full(activations.maps[0].shape)


def unit_gradient(
    layers: Sequence[Layer],
    params: Params,
    activations: Activations,
    layer: int,
    channel: int,
    y: int,
    x: int,
    batch: int = 0,
) -> np.ndarray:
    """``∂ maps[layer + 1][batch, channel, y, x] / ∂ input`` through the whole stack.

    Parameters
    ----------
    layer : int
        0-based index of the layer whose output holds the unit.
    channel, y, x : int
        The unit in that output ``(C, OH, OW)``.

    Returns
    -------
    ndarray, shape (C_in, H, W)
        The gradient for image ``batch`` of the input (other images get none).

    Raises
    ------
    StackError
        A layer index, channel or position outside the stack or its map.
    """
    if not 0 <= layer < len(layers):
        raise StackError(None, "layer", f"layer must be in 0..{len(layers) - 1}, got {layer}")
    out = activations.maps[layer + 1]
    _, c, h, w = out.shape
    for name, value, size in (("channel", channel, c), ("y", y, h), ("x", x, w)):
        if not 0 <= value < size:
            raise StackError(
                layer, name, f"{name} must be in 0..{size - 1} for an output of {c}×{h}×{w}, got {value}"
            )
    grad = np.zeros((out.shape[0], c, 1, 1), dtype=out.dtype)
    grad[batch, channel] = 1.0
    crop = Crop(grad, y, x)
    return _backward_crop(layers, params, activations, crop, layer)[batch]
