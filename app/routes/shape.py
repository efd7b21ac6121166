"""``POST /api/shape``: every size of a convolution (and pooling) layer as worked steps, no image."""

from __future__ import annotations

from fastapi import APIRouter, Response

from app.compute import explain_or_422
from app.errors import BodyError
from app.responses import OrjsonResponse, json_safe
from app.routes.conv import BODY_ERRORS
from app.schemas import ShapeRequest, ShapeResponse, as_tuple
from core.shapes import as_pair, explain_conv, explain_pool

router = APIRouter(prefix="/api", tags=["shape"])

SHAPE_FIELDS = {"weight": "kernel_size"}
"""Fields of a conv request that this request calls differently."""


@router.post("/shape", responses=BODY_ERRORS, response_model=ShapeResponse)
def post_shape(request: ShapeRequest) -> Response:
    """Output sizes, parameters, multiply-adds and im2col size for any sizes up to 1,000,000.

    Warnings name the rows/columns that no window reaches (a stride that does not fit) and kernels
    larger than the input. Integers above 2^53 are given as floats.
    """
    if request.channels % request.groups:
        raise BodyError(
            "groups", f"groups ({request.groups}) must divide the input channels ({request.channels})"
        )
    h, w = as_pair(as_tuple(request.input_size), "input_size")
    kh, kw = as_pair(as_tuple(request.kernel_size), "kernel_size")
    try:
        conv = explain_or_422(
            explain_conv,
            (request.batch, request.channels, h, w),
            (request.filters, request.channels // request.groups, kh, kw),
            as_tuple(request.stride),
            as_tuple(request.padding),
            as_tuple(request.dilation),
            request.groups,
            bias=request.bias,
        )
    except BodyError as exc:
        # This request names the kernel by its size: point at that field, not at a "weight" it lacks.
        exc.loc = ["body", SHAPE_FIELDS.get(exc.loc[-1], exc.loc[-1])]
        raise
    warnings = list(conv.warnings)
    pool = None
    if request.pool is not None:
        p = request.pool
        pooled = explain_or_422(
            explain_pool,
            conv.output_shape,
            as_tuple(p.kernel_size),
            as_tuple(p.stride),
            as_tuple(p.padding),
            1,
            p.ceil_mode,
            field_name="pool",
        )
        warnings += pooled.warnings
        pool = pooled.as_dict()
    payload = {"conv": conv.as_dict(), "pool": pool, "warnings": warnings}
    return OrjsonResponse(json_safe(payload))
