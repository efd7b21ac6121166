"""``POST /api/backward``: gradients of the convolution (and pooling) for a chosen upstream gradient."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Response

from app.compute import forward, pool_args, prepare
from app.errors import BodyError
from app.render import data_url, grid_png, map_png
from app.response_cache import cached_json_response
from app.responses import arr
from app.routes.conv import COMPUTE_ERRORS
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


def picture(values: np.ndarray, include_values: bool) -> dict[str, Any]:
    """``(C, H, W)`` maps side by side in one PNG with one shared scale, plus range and values."""
    if values.shape[0] == 1:
        png, _, _, _ = map_png(values[0])
    else:
        png = grid_png(values, columns=values.shape[0], shared_scale=True)
    return {
        "shape": [1, *values.shape],
        "png": data_url(png),
        "min": values.min(),
        "max": values.max(),
        "values": arr(values) if include_values else None,
    }


@router.post("/backward", response_model=BackwardResponse, responses=COMPUTE_ERRORS)
def post_backward(request: BackwardRequest, settings: SettingsDep) -> Response:
    """grad_x (col2im of W_colᵀ·G), grad_weight, grad_bias and the overlap count (windows per pixel).

    ``target: "conv"`` puts the upstream gradient on the (activated) conv output; ``"pool"`` puts it on
    the pooled output and routes it back through the pool (argmax for max, shared for average) first.
    The activation's backward step (ReLU: zero where the pre-activation ≤ 0) is applied in both cases.
    """
    return cached_json_response("POST /api/backward", request, settings, backward_payload)


def backward_payload(request: BackwardRequest, settings: Settings) -> dict[str, Any]:
    """The ``POST /api/backward`` body."""
    prepared = prepare(request, settings)
    if request.target == "pool" and request.pool is None:
        raise BodyError("target", "target 'pool' needs a pool")
    timing: dict[str, float] = {}
    result = forward(prepared, request.activation, request.pool if request.target == "pool" else None, timing)
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
        pool_grad = picture(grad_conv[0], request.values and oh * ow <= MAX_VALUES_PER_MAP)
    else:
        upstream = upstream_gradient(request.upstream, result.conv.shape)
        grad_conv = upstream
    if request.activation == "relu":
        grad_conv = relu_backward(grad_conv, result.pre_activation)
    grad_x, grad_weight, grad_bias = conv2d_backward(
        grad_conv, prepared.x, prepared.weight, **prepared.conv_kwargs
    )
    _, c, h, w = prepared.x.shape
    kernel = prepared.weight.shape[2:]
    counts = overlap_count(
        (h, w), kernel, prepared.stride, prepared.padding, prepared.dilation, prepared.padding_mode
    )
    overlap_png, _, _, _ = map_png(counts.astype(np.float32))
    _, _, uh, uw = upstream.shape
    payload = {
        "upstream": picture(upstream[0], False),
        "grad_x": picture(grad_x[0], request.values and h * w <= MAX_VALUES_PER_MAP),
        "grad_weight": {"shape": list(grad_weight.shape), "values": arr(grad_weight)},
        "grad_bias": {"shape": list(grad_bias.shape), "values": arr(grad_bias)},
        "overlap": {
            "shape": [h, w],
            "max": int(counts.max()),
            "png": data_url(overlap_png),
            "values": arr(counts) if h * w <= MAX_VALUES_PER_MAP else None,
        },
        "pool_grad": pool_grad,
    }
    return payload
