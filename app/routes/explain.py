"""``POST /api/explain``: how one output value is computed — its receptive field, products and sum."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response

from app.errors import BodyError
from app.jobs import layer_body
from app.layer_cache import Layer, layer_for
from app.responses import arr, body_response, json_bytes
from app.routes.conv import CONV_ERRORS
from app.schemas import ExplainRequest, ExplainResponse
from app.settings import Settings, SettingsDep
from core.activations import relu
from core.im2col import border_index, pad_input
from core.shapes import conv_geometry

router = APIRouter(prefix="/api", tags=["explain"])


@router.post("/explain", response_model=ExplainResponse, responses=CONV_ERRORS)
async def post_explain(request: ExplainRequest, http: Request, settings: SettingsDep) -> Response:
    """The receptive field of output ``position = [f, y, x]`` and the arithmetic that gives its value.

    ``value`` is the convolution output itself (``core.conv.conv2d``, + bias, then the activation), so it
    equals ``conv.maps[f].values[y][x]`` of ``POST /api/conv``; ``sum`` is the sum of the shown
    products (float32; it can differ from the GEMM's sum in the last bit because the order differs).
    Numbers are float32 and serialised with their shortest float32 text, like the maps' values.
    """
    body, state = await layer_body(
        "POST /api/explain",
        request,
        http,
        settings,
        lambda r, s, layer: json_bytes(explain_payload(r, s, layer)),
    )
    return body_response(body, state)


def explain_payload(
    request: ExplainRequest, settings: Settings, layer: Layer | None = None
) -> dict[str, Any]:
    """The ``POST /api/explain`` body (``layer``: the prepared layer, when already at hand)."""
    layer = layer or layer_for(request, settings)
    prepared = layer.prepared
    _, f_count, oh, ow = prepared.output_shape
    f, y, x = request.position
    if f >= f_count or y >= oh or x >= ow:
        raise BodyError(
            "position",
            f"position (f={f}, y={y}, x={x}) is outside the output: filters 0..{f_count - 1}, "
            f"rows 0..{oh - 1}, columns 0..{ow - 1}",
        )
    weight = prepared.weight
    geometry = conv_geometry(prepared.x.shape, weight.shape, **prepared.conv_kwargs).window
    top, left = geometry.padding.top, geometry.padding.left
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    _, cg, kh, kw = weight.shape
    g = f // (f_count // prepared.groups)
    channels = list(range(g * cg, (g + 1) * cg))
    # padded coordinates of the taps: window origin (y·s) plus the dilated kernel offset (i·d)
    rows = [y * sh + i * dh for i in range(kh)]
    cols = [x * sw + j * dw for j in range(kw)]
    _, _, h, w = prepared.x.shape
    input_rows = [r - top for r in rows]
    input_cols = [c - left for c in cols]
    in_padding = [[not (0 <= r < h and 0 <= c < w) for c in input_cols] for r in input_rows]
    mode = geometry.padding_mode
    padded = pad_input(prepared.x, geometry.padding, padding_mode=mode)
    # the input row/column each tap reads (a border tap copies one unless the padding is zeros)
    if mode == "zeros":
        source_rows = [r if 0 <= r < h else None for r in input_rows]
        source_cols = [c if 0 <= c < w else None for c in input_cols]
    else:
        source_rows = border_index(h, geometry.padding.top, geometry.padding.bottom, mode)[rows].tolist()
        source_cols = border_index(w, geometry.padding.left, geometry.padding.right, mode)[cols].tolist()
    win = padded[0][np.ix_(channels, rows, cols)]
    kernel = weight[f]
    products = win * kernel
    channel_sums = products.sum(axis=(1, 2), dtype=np.float32)
    total = np.float32(products.sum(dtype=np.float32))
    pre = layer.pre_activation()[0, f, y, x]
    value = np.float32(relu(pre)) if request.activation == "relu" else pre
    bias = prepared.bias[f] if prepared.bias is not None else np.float32(0)
    payload: dict[str, Any] = {
        "position": [f, y, x],
        "column": y * ow + x,
        "group": g,
        "channels": channels,
        "taps": {
            "rows": rows,
            "cols": cols,
            "input_rows": input_rows,
            "input_cols": input_cols,
            "in_padding": in_padding,
            "source_rows": source_rows,
            "source_cols": source_cols,
            "padding_mode": mode,
        },
        "window": arr(win),
        "kernel": arr(kernel),
        "products": arr(products),
        "channel_sums": arr(channel_sums),
        "sum": total,
        "bias": bias,
        "pre_activation": pre,
        "value": value,
    }
    return payload
