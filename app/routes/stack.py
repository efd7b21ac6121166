"""``POST /api/stack`` (every layer's maps and receptive-field table) and ``POST /api/stack/field``
(one unit's theoretical box and effective receptive field on the input)."""

from __future__ import annotations

import base64
import io
import time
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response

from app import admission
from app.errors import BodyError
from app.image_source import activation_bytes, check_activation, store_for
from app.render import data_url, image_png, map_png
from app.response_cache import cached_body, elapsed_ms, with_field
from app.responses import arr, body_response, json_bytes, map_entry, server_timing
from app.routes.conv import CONV_ERRORS
from app.schemas import MAX_VALUES_PER_MAP, Message
from app.settings import Settings, SettingsDep
from app.stack_compute import PreparedStack, forward_cached, prepare_stack
from app.stack_schemas import (
    MAX_VALUES_FIELD,
    ActivationRequest,
    ActivationResponse,
    FieldRequest,
    FieldResponse,
    StackPresetList,
    StackRequest,
    StackResponse,
)
from core import layers as L
from core.layers import layer_window
from core.receptive_field import effective_field, field_table, field_warnings, unit_box
from core.stack_text import layer_text, to_pytorch, to_text, weights_npz_arrays
from core.stack_weights import PRESET_TEXT

router = APIRouter(prefix="/api", tags=["layers"])

STORE_ERRORS: dict[int | str, dict[str, Any]] = {
    **CONV_ERRORS,
    503: {
        "model": Message,
        "description": "The worker is busy (retry after Retry-After), or the store cannot be written.",
    },
    507: {"model": Message, "description": "The store or its disk is full."},
}

MAX_INLINE_WEIGHTS = 20_000
"""Weights written into the PyTorch snippet itself; above this the snippet loads ``convlens_stack.npz``."""
MAX_NPZ_BYTES = 4 * 1024 * 1024
NPZ_NAME = "convlens_stack.npz"


def _weights_npz(prepared: PreparedStack) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **weights_npz_arrays(prepared.layers, prepared.params))  # type: ignore[arg-type]
    return buffer.getvalue()


MAX_LAYER_WEIGHTS = 4096
"""A Conv2d's weights come with its layer entry up to this many values (so the page can open it)."""


def _small_weights(entry: L.ConvParams | None) -> dict[str, Any]:
    if entry is None or entry.weight.size > MAX_LAYER_WEIGHTS:
        return {"weight": None, "bias": None}
    return {"weight": arr(entry.weight), "bias": None if entry.bias is None else arr(entry.bias)}


def stack_payload(request: StackRequest, prepared: PreparedStack, settings: Settings) -> dict[str, Any]:
    """The ``POST /api/stack`` body (without ``timing_ms``, which is per request)."""
    timing = prepared.timing
    start = time.perf_counter()
    acts, _ = forward_cached(prepared)
    timing["forward"] = elapsed_ms(start)
    start = time.perf_counter()
    size = prepared.x.shape[2:]
    table = field_table(prepared.layers, size)
    warnings = field_warnings(prepared.layers, size)
    timing["field"] = elapsed_ms(start)
    start = time.perf_counter()
    layers_out = []
    for index, (layer, row) in enumerate(zip(prepared.layers, table, strict=True)):
        maps = acts.maps[index + 1][0]
        c, h, w = maps.shape
        small = request.values and h * w <= MAX_VALUES_PER_MAP
        layers_out.append(
            {
                "index": index,
                "name": layer.name,
                "text": layer_text(layer),
                "shape": [c, h, w],
                "height": row.as_dict()["height"],
                "width": row.as_dict()["width"],
                "maps": [map_entry(channel, maps[channel], small) for channel in range(c)],
                "macs": prepared.macs[index],
                **_small_weights(prepared.params[index]),
            }
        )
    timing["encode"] = elapsed_ms(start)
    count = sum(
        e.weight.size + (0 if e.bias is None else e.bias.size) for e in prepared.params if e is not None
    )
    inline = count <= MAX_INLINE_WEIGHTS
    npz = _weights_npz(prepared)
    return {
        "input": {"shape": list(prepared.x.shape[1:]), "png": data_url(image_png(prepared.x[0]))},
        "layers": layers_out,
        "warnings": warnings,
        "text": to_text(prepared.layers),
        "pytorch": to_pytorch(prepared.layers, prepared.params, size, None if inline else NPZ_NAME),
        "weights_npz": base64.b64encode(npz).decode("ascii") if len(npz) <= MAX_NPZ_BYTES else None,
    }


@router.post("/stack", response_model=StackResponse, responses=CONV_ERRORS)
async def post_stack(request: StackRequest, http: Request, settings: SettingsDep) -> Response:
    """Run a stack of Conv2d / ReLU / MaxPool2d / AvgPool2d layers on an image.

    Returns every layer's shape, receptive-field row (Distill's r, jump j, start and centre of unit 0, per
    axis), maps as PNGs with their ranges (exact values with ``values: true`` for maps up to 64×64), the
    warnings (unproductive layers, strides or dilations that skip pixels), the stack as ``nn.Sequential``
    text, a PyTorch script rebuilding it with these weights, the weights as a base64 ``.npz`` and timings.
    """
    start = time.perf_counter()
    timing: dict[str, float] = {}

    def compute() -> bytes:
        prepared = prepare_stack(request, settings)
        payload = stack_payload(request, prepared, settings)
        timing.update(prepared.timing)
        return json_bytes(payload)

    # behind the worker's gate, as every single-layer computation (app/jobs.py): bounded, else a 503
    body, state = await admission.gate("light", settings).run(
        http, cached_body, "POST /api/stack", request, request.image, settings, compute
    )
    if state == "hit":
        timing["cache"] = elapsed_ms(start)
    timing["total"] = elapsed_ms(start)
    return body_response(
        with_field(body, "timing_ms", timing), state, {"Server-Timing": server_timing(timing)}
    )


@router.get("/stack/presets", response_model=StackPresetList)
def get_stack_presets() -> dict[str, Any]:
    """The preset stacks: name, description, ``nn.Sequential`` text and a typical input ``(C, H, W)``."""
    return {
        "presets": [
            {"name": name, "description": description, "text": text, "input": list(shape)}
            for name, (description, text, shape) in PRESET_TEXT.items()
        ]
    }


# ------------------------------------------------------------------------------------------- activation


def activation_payload(request: ActivationRequest, settings: Settings) -> dict[str, Any]:
    """Run the stack up to the input of Conv2d ``request.layer``, store that activation, describe the layer.

    The activation is the stack's own forward pass (:func:`app.stack_compute.forward_cached`, i.e.
    :func:`core.layers.forward`), ``maps[layer]`` of shape ``(C, H, W)`` float32, stored in the upload store
    as an ``.npy`` under ``act:<sha256>`` (so the same activation always gets the same id).
    """
    prepared = prepare_stack(request, settings)
    count = len(prepared.layers)
    if request.layer >= count:
        raise BodyError(
            "layer", f"layer must be in 0..{count - 1} (the stack has {count} layers), got {request.layer}"
        )
    layer = prepared.layers[request.layer]
    if not isinstance(layer, L.Conv2d):
        convs = [str(i) for i, other in enumerate(prepared.layers) if isinstance(other, L.Conv2d)]
        raise BodyError(
            "layer",
            f"layer {request.layer} is {layer.name}; only a Conv2d opens in the convolution view "
            f"(this stack's Conv2d layers: {', '.join(convs) or 'none'})",
        )
    acts, _ = forward_cached(prepared)
    activation = np.ascontiguousarray(acts.maps[request.layer][0], dtype=np.float32)
    reason = check_activation(activation, settings)
    if reason is not None:
        raise BodyError("layer", f"layer {request.layer}'s input cannot be stored: {reason}")
    saved = store_for(settings).save(activation_bytes(activation), activation=True)
    c, h, w = activation.shape
    window = layer_window(layer, (h, w))
    entry = prepared.params[request.layer]
    assert entry is not None
    following = prepared.layers[request.layer + 1] if request.layer + 1 < count else None
    after = request.layer + (2 if isinstance(following, L.ReLU) else 1)
    pool = prepared.layers[after] if after < count else None
    return {
        "id": saved.image_id,
        "layer": request.layer,
        "shape": [c, h, w],
        "min": float(activation.min()),
        "max": float(activation.max()),
        "conv": {
            "in_channels": layer.in_channels,
            "out_channels": layer.out_channels,
            "kernel_size": list(window.kernel),
            "stride": list(window.stride),
            "dilation": list(window.dilation),
            "padding": [window.pad_lo[0], window.pad_hi[0], window.pad_lo[1], window.pad_hi[1]],
            "groups": layer.groups,
            "weight": arr(entry.weight),
            "bias": None if entry.bias is None else arr(entry.bias),
            "relu_after": isinstance(following, L.ReLU),
            "pool_after": _pool_entry(pool),
        },
    }


def _pool_entry(layer: L.Layer | None) -> dict[str, Any] | None:
    """A pooling layer's settings, or None when ``layer`` is not one."""
    if not isinstance(layer, (L.MaxPool2d, L.AvgPool2d)):
        return None
    return {
        "mode": "max" if isinstance(layer, L.MaxPool2d) else "avg",
        "kernel_size": list(layer.kernel_size),
        "stride": list(layer.stride or layer.kernel_size),
        "padding": list(layer.padding),
        "dilation": list(layer.dilation),
        "ceil_mode": layer.ceil_mode,
        "count_include_pad": layer.count_include_pad if isinstance(layer, L.AvgPool2d) else True,
    }


@router.post("/stack/activation", response_model=ActivationResponse, responses=STORE_ERRORS)
async def post_stack_activation(request: ActivationRequest, http: Request, settings: SettingsDep) -> Response:
    """Store the real input of one Conv2d of a stack (the previous layer's activation), so that every
    single-layer endpoint (conv, conv.png, im2col, explain, backward, ...) can compute that layer on it.

    Answers ``id`` (``act:<sha256>``, to use as ``image``; ``color`` does not apply to it and it is never
    resized), the activation's ``(C, H, W)`` shape and range, and the layer's settings resolved on its input
    with its weights. An evicted activation is a 404 like an evicted upload: ask again.
    """
    start = time.perf_counter()
    payload = await admission.gate("light", settings).run(http, activation_payload, request, settings)
    timing = {"total": elapsed_ms(start)}
    return body_response(json_bytes(payload), None, {"Server-Timing": server_timing(timing)})


# ------------------------------------------------------------------------------------------- field


def _check_unit(request: FieldRequest, acts: L.Activations) -> None:
    count = len(acts.maps) - 1
    if request.layer >= count:
        raise BodyError(
            "layer", f"layer must be in 0..{count - 1} (the stack has {count} layers), got {request.layer}"
        )
    _, c, h, w = acts.maps[request.layer + 1].shape
    for name, value, limit in (("channel", request.channel, c), ("y", request.y, h), ("x", request.x, w)):
        if value >= limit:
            raise BodyError(
                name,
                f"{name} must be in 0..{limit - 1}: layer {request.layer}'s output is {c}×{h}×{w}, "
                f"got {value}",
            )


def _depth_curve(
    prepared: PreparedStack, acts: L.Activations, request: FieldRequest, centre: tuple[float, float]
) -> list[dict[str, Any]]:
    """r and the ERF radius against depth, above the same input point as the chosen unit.

    For every convolution and pooling layer up to the chosen one (and the chosen layer itself): the unit
    whose centre is nearest ``centre``, in the chosen channel at the chosen layer and elsewhere in the
    channel that responds most there (a unit switched off by a ReLU has no gradient, hence no ERF).
    ``erf_radius`` is None when the unit's gradient is zero.
    """
    size = prepared.x.shape[2:]
    table = field_table(prepared.layers, size)
    out = []
    for index in range(request.layer + 1):
        if isinstance(prepared.layers[index], L.ReLU) and index != request.layer:
            continue
        row = table[index]
        maps = acts.maps[index + 1][0]
        c, h, w = maps.shape
        y = int(np.clip(round((centre[0] - row.height.centre) / row.height.j), 0, h - 1))
        x = int(np.clip(round((centre[1] - row.width.centre) / row.width.j), 0, w - 1))
        channel = request.channel if index == request.layer else int(np.argmax(np.abs(maps[:, y, x])))
        grad = L.unit_gradient(prepared.layers, prepared.params, acts, index, channel, y, x)
        box = unit_box(prepared.layers, size, index, y, x)
        erf = effective_field(grad, (box.height.centre, box.width.centre))
        out.append(
            {
                "index": index,
                "name": row.name,
                "r": [row.height.r, row.width.r],
                "theoretical_radius": [(row.height.r - 1) / 2, (row.width.r - 1) / 2],
                "erf_radius": erf.radius if erf.total > 0 else None,
                "unit": [channel, y, x],
            }
        )
    return out


def field_payload(request: FieldRequest, settings: Settings, timing: dict[str, float]) -> dict[str, Any]:
    """The ``POST /api/stack/field`` body (``depth`` is None when not asked for or above the work budget)."""
    prepared = prepare_stack(request, settings)
    timing.update(prepared.timing)
    start = time.perf_counter()
    acts, cached = forward_cached(prepared)
    timing["forward_cached" if cached else "forward"] = elapsed_ms(start)
    _check_unit(request, acts)
    start = time.perf_counter()
    grad = L.unit_gradient(
        prepared.layers, prepared.params, acts, request.layer, request.channel, request.y, request.x
    )
    timing["gradient"] = elapsed_ms(start)
    size = prepared.x.shape[2:]
    box = unit_box(prepared.layers, size, request.layer, request.y, request.x)
    centre = (box.height.centre, box.width.centre)
    erf = effective_field(grad, centre)
    png, _, _, maximum = map_png(erf.density)
    depth = None
    # each point of the curve is one backward pass costing at most the forward work below it
    depth_work = sum(sum(prepared.macs[: index + 1]) for index in range(request.layer + 1))
    if request.depth and depth_work <= settings.max_macs:
        start = time.perf_counter()
        depth = _depth_curve(prepared, acts, request, centre)
        timing["depth"] = elapsed_ms(start)
    h, w = size
    row = field_table(prepared.layers, size)[request.layer]
    return {
        "unit": {"layer": request.layer, "channel": request.channel, "y": request.y, "x": request.x},
        "value": float(acts.maps[request.layer + 1][0, request.channel, request.y, request.x]),
        "box": box.as_dict(),
        "theoretical_radius": [(row.height.r - 1) / 2, (row.width.r - 1) / 2],
        "erf": {
            "png": data_url(png),
            "radius": erf.radius,
            "mass": erf.mass,
            "total": erf.total,
            "centre": list(centre),
            "max": maximum,
            "values": arr(erf.density) if h * w <= MAX_VALUES_FIELD else None,
        },
        "depth": depth,
    }


@router.post("/stack/field", response_model=FieldResponse, responses=CONV_ERRORS)
async def post_stack_field(request: FieldRequest, http: Request, settings: SettingsDep) -> Response:
    """One unit's receptive field: its theoretical box on the input (Distill's arithmetic, with the part in
    the padding and the exact box it depends on) and its effective receptive field (Luo et al.:
    ``|∂unit/∂input|`` normalised, as a PNG, with the radius of the square holding 95 % of it), plus r and the
    ERF radius against depth for the units above the same input point. The stack's forward pass is kept for
    the last few stacks, so hovering over a map costs only the backward passes.
    """
    start = time.perf_counter()
    timing: dict[str, float] = {}
    payload = await admission.gate("light", settings).run(http, field_payload, request, settings, timing)
    timing["total"] = elapsed_ms(start)
    payload["timing_ms"] = timing
    return body_response(json_bytes(payload), None, {"Server-Timing": server_timing(timing)})
