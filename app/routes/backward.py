"""``POST /api/backward``: gradients of the convolution (and pooling) for a chosen upstream gradient."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Query, Request, Response

from app.compute import pool_args
from app.errors import BodyError
from app.jobs import layer_body
from app.layer_cache import Layer, layer_for
from app.render import data_url, grid_png, levels, map_png
from app.responses import arr, body_response, json_bytes
from app.routes.conv import CONV_ERRORS, Pictures, check_pictures
from app.schemas import MAX_VALUES_PER_MAP, BackwardRequest, BackwardResponse, Upstream
from app.settings import Settings, SettingsDep
from core.activations import relu_backward
from core.conv import conv2d_backward
from core.im2col import overlap_count
from core.pool import avg_pool2d_backward, max_pool2d_backward

router = APIRouter(prefix="/api", tags=["backward"])


def upstream_gradient(upstream: Upstream, shape: tuple[int, ...]) -> np.ndarray:
    """The gradient arriving from above, float32 of ``shape = (1, F, H, W)``.

    ones: all ones (∂(sum of outputs)); onehot: 1 at ``position = [f, y, x]``; random: standard normal
    from ``np.random.default_rng(seed)``.
    """
    if upstream.kind == "ones":
        return np.ones(shape, dtype=np.float32)
    if upstream.kind == "random":
        return np.random.default_rng(upstream.seed).standard_normal(shape).astype(np.float32)
    assert upstream.position is not None
    f, y, x = upstream.position
    _, fs, hs, ws = shape
    if f >= fs or y >= hs or x >= ws:
        raise BodyError(
            ("upstream", "position"),
            f"position (f={f}, y={y}, x={x}) is outside the upstream gradient of shape "
            f"({fs}, {hs}, {ws}) (filters, rows, columns)",
        )
    grad = np.zeros(shape, dtype=np.float32)
    grad[0, f, y, x] = 1.0
    return grad


def picture(values: np.ndarray, include_values: bool, pictures: str = "png") -> dict[str, Any]:
    """``(C, H, W)`` maps side by side in one picture with one shared scale, plus range and values.

    ``pictures="levels"``: 8-bit levels of all C maps (``levels``, :func:`app.render.levels`) that the
    page lays side by side as ``grid_png`` does (2 white pixels between maps), instead of the PNG.
    """
    lo, hi = values.min(), values.max()
    out: dict[str, Any] = {"shape": [1, *values.shape]}
    if pictures == "levels":
        out["levels"] = levels(values, float(lo), float(hi))
    else:
        if values.shape[0] == 1:
            png, _, _, _ = map_png(values[0])
        else:
            png = grid_png(values, columns=values.shape[0], shared_scale=True)
        out["png"] = data_url(png)
    out.update({"min": lo, "max": hi, "values": arr(values) if include_values else None})
    return out


BACKWARD_PASSES = 3
"""A backward pass costs about three forward convolutions: the forward, ∂W and ∂x."""


def check_backward_budget(request: BackwardRequest, layer: Layer, settings: Settings) -> None:
    """Refuse (422) a backward pass above the work, memory or reply budget, saying what to reduce.

    Work: 3 × the forward's multiply-adds ≤ ``max_macs``. Memory: the columns of x and of ∂x exist
    together, 2 × im2col bytes ≤ ``max_im2col_bytes``. Reply: the pictures (upstream F maps, ∂x C maps,
    the pooled gradient's F maps and the overlap) ≤ ``max_picture_pixels``.
    """
    facts = layer.prepared.explanation.facts
    macs = BACKWARD_PASSES * int(facts["macs"])
    if macs > settings.max_macs:
        raise BodyError(
            "max_side",
            f"this backward pass needs about {macs:,} multiply-adds (3 × the convolution's), more than "
            f"the limit of {settings.max_macs:,} per request; reduce max_side (image size), the number of "
            "filters or the kernel size, or raise the stride",
        )
    col_bytes = 2 * int(facts["im2col_bytes"])
    if col_bytes > settings.max_im2col_bytes:
        raise BodyError(
            "max_side",
            f"this backward pass needs two im2col matrices of {col_bytes // 2:,} bytes each, more than the "
            f"limit of {settings.max_im2col_bytes:,} together; reduce max_side (image size), the kernel "
            "size, the dilation or the padding, or raise the stride",
        )
    _, c, h, w = layer.prepared.x.shape
    _, f, oh, ow = layer.prepared.output_shape
    pixels = f * oh * ow * (2 if request.target == "pool" else 1) + c * h * w + h * w
    check_pictures(pixels, settings)


def backward_cost(layer: Layer) -> int:
    """Multiply-adds of a backward job (for the heavy gate)."""
    return BACKWARD_PASSES * layer.macs


@router.post("/backward", response_model=BackwardResponse, responses=CONV_ERRORS)
async def post_backward(
    request: BackwardRequest,
    http: Request,
    settings: SettingsDep,
    pictures: Pictures = Query(default="png", description="'png' (data URLs) or 'levels' (as /api/conv)."),
) -> Response:
    """grad_x (col2im of W_colᵀ·G), grad_weight, grad_bias and the overlap count (windows per pixel).

    ``target: "conv"`` puts the upstream gradient on the (activated) conv output; ``"pool"`` puts it on
    the pooled output and routes it back through the pool (argmax for max, shared for average) first.
    The activation's backward step (ReLU: zero where the pre-activation ≤ 0) is applied in both cases.
    """

    def build(req: BackwardRequest, st: Settings, layer: Layer) -> bytes:
        return json_bytes(backward_payload(req, st, layer, pictures))

    extra: tuple[Any, ...] = () if pictures == "png" else (pictures,)
    body, state = await layer_body(
        "POST /api/backward", request, http, settings, build, cost=backward_cost, extra=extra
    )
    return body_response(body, state)


def backward_payload(
    request: BackwardRequest, settings: Settings, layer: Layer | None = None, pictures: str = "png"
) -> dict[str, Any]:
    """The ``POST /api/backward`` body (``layer``: the prepared layer, when already at hand)."""
    layer = layer or layer_for(request, settings)
    prepared = layer.prepared
    if request.target == "pool" and request.pool is None:
        raise BodyError("target", "target 'pool' needs a pool")
    check_backward_budget(request, layer, settings)
    timing: dict[str, float] = {}
    result = layer.forward(request.activation, request.pool if request.target == "pool" else None, timing)
    pool_grad = None
    if request.target == "pool":
        assert result.pooled is not None and request.pool is not None
        upstream = upstream_gradient(request.upstream, result.pooled.shape)
        args = pool_args(request.pool)
        if request.pool.mode == "max":
            grad_conv = max_pool2d_backward(upstream, result.conv, indices=result.argmax, **args)
        else:
            grad_conv = avg_pool2d_backward(
                upstream, result.conv, count_include_pad=request.pool.count_include_pad, **args
            )
        _, _, oh, ow = grad_conv.shape
        pool_grad = picture(grad_conv[0], request.values and oh * ow <= MAX_VALUES_PER_MAP, pictures)
    else:
        upstream = upstream_gradient(request.upstream, result.conv.shape)
        grad_conv = upstream
    if request.activation == "relu":
        grad_conv = relu_backward(grad_conv, result.pre_activation)
    grad_x, grad_weight, grad_bias = conv2d_backward(
        grad_conv, prepared.x, prepared.weight, **prepared.conv_kwargs
    )
    del grad_conv
    _, c, h, w = prepared.x.shape
    kernel = prepared.weight.shape[2:]
    counts = overlap_count(
        (h, w), kernel, prepared.stride, prepared.padding, prepared.dilation, prepared.padding_mode
    )
    overlap: dict[str, Any] = {"shape": [h, w], "max": int(counts.max())}
    if pictures == "levels":
        overlap["levels"] = levels(counts.astype(np.float32))
    else:
        overlap_png, _, _, _ = map_png(counts.astype(np.float32))
        overlap["png"] = data_url(overlap_png)
    overlap["values"] = arr(counts) if h * w <= MAX_VALUES_PER_MAP else None
    payload = {
        "upstream": picture(upstream[0], False, pictures),
        "grad_x": picture(grad_x[0], request.values and h * w <= MAX_VALUES_PER_MAP, pictures),
        "grad_weight": {"shape": list(grad_weight.shape), "values": arr(grad_weight)},
        "grad_bias": {"shape": list(grad_bias.shape), "values": arr(grad_bias)},
        "overlap": overlap,
        "pool_grad": pool_grad,
    }
    return payload
