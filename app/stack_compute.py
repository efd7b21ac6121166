"""From a validated stack request to layers, weights and every activation, with every check and budget.

:func:`prepare_stack` resolves the stack (``layers`` JSON, ``text`` or ``preset``) into :mod:`core.layers`
objects, loads the image (:func:`app.image_source.load_array`), checks that the layers chain on it
(:func:`core.layers.stack_shapes`) and that the work and memory fit the budget, and resolves the weights.
:func:`forward_cached` runs :func:`core.layers.forward` once per (image, stack, weights): hovering over the
maps asks ``/api/stack/field`` for many units of the same stack, which then only pays the backward pass.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from app.errors import BodyError
from app.image_source import load_array
from app.schemas import as_tuple
from app.settings import Settings
from app.stack_schemas import MAX_STACK_BYTES, MAX_STACK_LAYERS, MAX_STACK_MAPS, StackRequest
from core import layers as L
from core.stack_text import StackTextError, parse
from core.stack_weights import mnist_params, params_from_npz, preset_kernel_params, preset_layers


@dataclass
class PreparedStack:
    """A stack request resolved and checked.

    Attributes
    ----------
    layers : list of Layer
    params : list of ConvParams or None
    x : ndarray, shape (1, C, H, W), float32
    shapes : list of (C, H, W)
        Input and every layer's output.
    macs : list of int
        Multiply-adds of each layer (0 for ReLU; window size × outputs for pooling).
    key : str
        Identifies (image, stack, weights) for the activation cache.
    timing : dict
    """

    layers: list[L.Layer]
    params: L.Params
    x: np.ndarray
    shapes: list[tuple[int, int, int]]
    macs: list[int]
    key: str
    timing: dict[str, float]
    source: str = "layers"
    """Which request field holds the stack: ``"layers"``, ``"text"`` or ``"preset"`` (where errors point)."""


def _source(request: StackRequest) -> str:
    return "layers" if request.layers is not None else "text" if request.text is not None else "preset"


def _loc(source: str, error: L.StackError) -> tuple[Any, ...]:
    """Where a core error points in the request body."""
    if error.field in ("weights", "weight", "bias") and error.layer is None:
        return ("weights",)
    if source == "layers":
        return ("layers",) if error.layer is None else ("layers", error.layer, error.field)
    return (source,)


def _layer_from_spec(spec: Any) -> L.Layer:
    data = spec.model_dump()
    kind = data.pop("type")
    data.pop("kernels", None)
    data = {key: as_tuple(value) for key, value in data.items()}
    return {"Conv2d": L.Conv2d, "ReLU": L.ReLU, "MaxPool2d": L.MaxPool2d, "AvgPool2d": L.AvgPool2d}[kind](
        **data
    )


def resolve_layers(request: StackRequest) -> list[L.Layer]:
    """The request's stack as core layers (422 naming the layer and field, or the text's line)."""
    if request.text is not None:
        try:
            layers = parse(request.text)
        except StackTextError as exc:
            raise BodyError("text", str(exc)) from None
        if len(layers) > MAX_STACK_LAYERS:
            raise BodyError("text", f"the stack has {len(layers)} layers; at most {MAX_STACK_LAYERS}")
        return layers
    if request.preset is not None:
        try:
            return preset_layers(request.preset)
        except ValueError as exc:
            raise BodyError("preset", str(exc)) from None
    out = []
    assert request.layers is not None
    for index, spec in enumerate(request.layers):
        try:
            out.append(_layer_from_spec(spec))
        except ValueError as exc:  # a form the schema lets through but the layer refuses (e.g. padding)
            loc: tuple[Any, ...] = ("layers", index, "padding" if "padding" in str(exc) else "type")
            raise BodyError(loc, f"layer {index}: {exc}") from None
    return out


def _macs(layer: L.Layer, shape_out: tuple[int, int, int]) -> int:
    c, h, w = shape_out
    if isinstance(layer, L.Conv2d):
        return c * h * w * layer.fan_in
    if isinstance(layer, (L.MaxPool2d, L.AvgPool2d)):
        return c * h * w * layer.kernel_size[0] * layer.kernel_size[1]
    return c * h * w


def check_budget(
    request: StackRequest, shapes: list[tuple[int, int, int]], macs: list[int], settings: Settings
) -> None:
    """Refuse (422) a stack above the work, memory or picture budget, saying what to reduce."""
    total = sum(macs)
    if total > settings.max_macs:
        raise BodyError(
            "max_side",
            f"this stack needs {total:,} multiply-adds, more than the limit of {settings.max_macs:,} per "
            "request; reduce max_side (image size), the channels or the kernel sizes, or add a stride",
        )
    floats = sum(c * h * w for c, h, w in shapes)
    if floats * 4 * 2 > MAX_STACK_BYTES:  # activations plus a gradient of the same size
        raise BodyError(
            "max_side",
            f"the stack's maps would take {floats * 8:,} bytes, more than the limit of {MAX_STACK_BYTES:,}; "
            "reduce max_side or the channels",
        )
    maps = sum(c for c, _, _ in shapes[1:])
    if maps > MAX_STACK_MAPS:
        raise BodyError(
            "layers", f"the stack has {maps} maps in all, more than the {MAX_STACK_MAPS} one answer can draw"
        )


def _weights(request: StackRequest, layers: list[L.Layer]) -> L.Params:
    spec = request.weights
    kernels: dict[int, Sequence[str]] = {}
    for index, layer_spec in enumerate(request.layers or []):
        names = getattr(layer_spec, "kernels", None)
        if names:
            kernels[index] = names
    if spec.source == "mnist":
        return mnist_params(layers)
    if spec.source == "npz":
        try:
            data = base64.b64decode(spec.npz or "", validate=True)
        except (binascii.Error, ValueError):
            raise BodyError(("weights", "npz"), "npz must be base64 of an .npz file") from None
        return params_from_npz(layers, data)
    return preset_kernel_params(layers, kernels, spec.seed)


def stack_key(request: StackRequest, x: np.ndarray) -> str:
    """Hash of what the activations depend on (the image id, colour, size and the resolved stack)."""
    body = request.model_dump(
        mode="json", include={"image", "color", "max_side", "layers", "text", "preset", "weights"}
    )
    digest = hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS))
    digest.update(repr(x.shape).encode())
    return digest.hexdigest()


def prepare_stack(request: StackRequest, settings: Settings) -> PreparedStack:
    """Resolve and check everything a stack request needs before computing (see the module docstring)."""
    start = time.perf_counter()
    layers = resolve_layers(request)
    x = load_array(request.image, request.color, request.max_side, settings)
    load_ms = (time.perf_counter() - start) * 1000
    try:
        shapes = L.stack_shapes(layers, x.shape[1:])
    except L.StackError as exc:
        raise BodyError(_loc(_source(request), exc), str(exc)) from None
    macs = [_macs(layer, shape) for layer, shape in zip(layers, shapes[1:], strict=True)]
    check_budget(request, shapes, macs, settings)
    try:
        params = _weights(request, layers)
    except L.StackError as exc:
        raise BodyError(_loc(_source(request), exc), str(exc)) from None
    return PreparedStack(
        layers, params, x, shapes, macs, stack_key(request, x), {"load": load_ms}, _source(request)
    )


_CACHE_SIZE = 4
_CACHE_MAX_BYTES = 64 * 1024 * 1024
"""A forward pass larger than this is not kept (at most ``_CACHE_SIZE`` of them are)."""
_activations: OrderedDict[str, L.Activations] = OrderedDict()
_lock = threading.Lock()


def _check_finite(prepared: PreparedStack, result: L.Activations) -> None:
    """422 for a map with an infinity or NaN: a max-pool window lying entirely in the padding (−inf, as in
    PyTorch) or weights so large that the sums overflow float32."""
    for index, (layer, maps) in enumerate(zip(prepared.layers, result.maps[1:], strict=True)):
        if np.isfinite(maps).all():
            continue
        if isinstance(layer, L.MaxPool2d):
            error = L.StackError(
                index,
                "padding",
                "MaxPool2d has a window that lies entirely in the padding (its maximum is −inf); use less "
                "padding or dilation, or a larger map",
            )
        else:
            error = L.StackError(
                index, "weights", f"{layer.name} overflows float32 (infinite values); use smaller weights"
            )
        raise BodyError(_loc(prepared.source, error), str(error))


def forward_cached(prepared: PreparedStack) -> tuple[L.Activations, bool]:
    """Every activation of the stack, kept for the last few stacks; returns (activations, was_cached)."""
    with _lock:
        hit = _activations.get(prepared.key)
        if hit is not None:
            _activations.move_to_end(prepared.key)
            return hit, True
    result = L.forward(prepared.layers, prepared.params, prepared.x)
    _check_finite(prepared, result)
    for array in result.maps:
        array.setflags(write=False)
    if sum(array.nbytes for array in result.maps) > _CACHE_MAX_BYTES:
        return result, False
    with _lock:
        _activations[prepared.key] = result
        while len(_activations) > _CACHE_SIZE:
            _activations.popitem(last=False)
    return result, False
