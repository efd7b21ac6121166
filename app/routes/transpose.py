"""``POST /api/transpose``: a transposed convolution of a small input, as col2im of a GEMM."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Response

from app.compute import explain_or_422
from app.errors import BodyError
from app.responses import OrjsonResponse, arr
from app.routes.conv import BODY_ERRORS
from app.schemas import TransposeRequest, TransposeResponse, as_tuple
from core.conv import conv_transpose2d
from core.shapes import explain_conv_transpose

router = APIRouter(prefix="/api", tags=["transpose"])


@router.post("/transpose", responses=BODY_ERRORS, response_model=TransposeResponse)
def post_transpose(request: TransposeRequest) -> Response:
    """``conv_transpose2d`` (PyTorch's) of ``x`` by ``weight``, with its size steps and the columns Wᵀ·X.

    ``x`` is (H, W) or (C_in, H, W); ``weight`` is (KH, KW) — repeated for every input channel with one
    output channel — or (C_in, C_out/groups, KH, KW). ``columns`` is ``W_colᵀ · X`` of shape
    ``(C_out·KH·KW, H·W)``: the transposed convolution is col2im of it.
    """
    x = np.asarray(request.x, dtype=np.float32)
    x = x[None, None] if x.ndim == 2 else x[None]
    c_in = x.shape[1]
    weight = np.asarray(request.weight, dtype=np.float32)
    if weight.ndim == 2:
        weight = np.ascontiguousarray(np.broadcast_to(weight, (c_in, 1, *weight.shape)))
    elif weight.ndim != 4:
        raise BodyError(
            "weight", f"weight must be (KH, KW) or (C_in, C_out/groups, KH, KW), got {weight.ndim} dimensions"
        )
    stride, padding = as_tuple(request.stride), as_tuple(request.padding)
    output_padding, dilation = as_tuple(request.output_padding), as_tuple(request.dilation)
    explanation = explain_or_422(
        explain_conv_transpose,
        x.shape,
        weight.shape,
        stride,
        padding,
        output_padding,
        dilation,
        request.groups,
    )
    c_out = weight.shape[1] * request.groups
    bias = None
    if request.bias is not None:
        if len(request.bias) != c_out:
            raise BodyError(
                "bias", f"bias has {len(request.bias)} values but there are {c_out} output channels"
            )
        bias = np.asarray(request.bias, dtype=np.float32)
    output = explain_or_422(
        conv_transpose2d, x, weight, bias, stride, padding, output_padding, dilation, request.groups
    )
    g = request.groups
    _, _, h, w = x.shape
    _, cog, kh, kw = weight.shape
    # per group: W_col (C_in/G, C_out/G·KH·KW) transposed times X (C_in/G, H·W)
    w_col = weight.reshape(g, c_in // g, cog * kh * kw)
    columns = np.matmul(w_col.transpose(0, 2, 1), x.reshape(g, c_in // g, h * w)).reshape(
        c_out * kh * kw, h * w
    )
    payload = {
        "input": {"shape": list(x.shape), "values": arr(x[0])},
        "output": {"shape": list(output.shape), "values": arr(output[0])},
        "steps": [s.as_dict() for s in explanation.steps],
        "columns": {"shape": list(columns.shape), "values": arr(columns)},
    }
    return OrjsonResponse(payload)
