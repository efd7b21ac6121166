"""``POST /api/im2col``: the patch matrix of an image, the filter rows W_col and their product."""

from __future__ import annotations

from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response

from app.errors import BodyError
from app.jobs import layer_body
from app.layer_cache import Layer, layer_for
from app.render import data_url, map_png
from app.responses import arr, body_response, json_bytes
from app.routes.conv import CONV_ERRORS
from app.schemas import MAX_MATRIX_VALUES, Im2colRequest, Im2colResponse
from app.settings import Settings, SettingsDep
from core.conv import conv2d_gemm
from core.im2col import im2col_indices

router = APIRouter(prefix="/api", tags=["im2col"])

MAX_PICTURE_COLUMNS = 2048
"""A heat map wider than this shows every n-th column (``png_column_step``)."""


def matrix_picture(matrix: np.ndarray) -> dict[str, Any]:
    """A (rows, cols) matrix as a heat-map data URL, thinned to at most 2048 columns, with its range."""
    step = max(1, -(-matrix.shape[1] // MAX_PICTURE_COLUMNS))
    png, _, _, _ = map_png(matrix[:, ::step])
    return {
        "png": data_url(png),
        "png_column_step": step,
        "min": matrix.min(),
        "max": matrix.max(),
    }


@router.post("/im2col", response_model=Im2colResponse, responses=CONV_ERRORS)
async def post_im2col(request: Im2colRequest, http: Request, settings: SettingsDep) -> Response:
    """im2col of the image (equal to ``torch.nn.functional.unfold``: rows (c, kh, kw), columns (oh, ow)).

    Exact values when the matrix has at most 50,000 entries (else a heat map only, plus the exact values
    of a requested ``columns`` range); the (k, i, j) index arrays on request; W_col and the GEMM product.
    """
    body, state = await layer_body(
        "POST /api/im2col",
        request,
        http,
        settings,
        lambda r, s, layer: json_bytes(im2col_payload(r, s, layer)),
    )
    return body_response(body, state)


def im2col_payload(request: Im2colRequest, settings: Settings, layer: Layer | None = None) -> dict[str, Any]:
    """The ``POST /api/im2col`` body (``layer``: the prepared layer, when already at hand)."""
    prepared = (layer or layer_for(request, settings)).prepared
    gemm = conv2d_gemm(prepared.x, prepared.weight, None, **prepared.conv_kwargs)
    x_col = gemm.x_col[0]  # (C·KH·KW, OH·OW)
    rows, cols = x_col.shape
    window = gemm.geometry.window
    kh, kw = window.kernel
    channels = prepared.x.shape[1]
    small = rows * cols <= MAX_MATRIX_VALUES
    row_labels = np.stack(np.unravel_index(np.arange(rows), (channels, kh, kw)), axis=1)
    columns = None
    if request.columns is not None:
        start, stop = request.columns
        if not 0 <= start < stop <= cols:
            raise BodyError(
                "columns", f"columns must satisfy 0 ≤ start < stop ≤ {cols}, got [{start}, {stop}]"
            )
        if rows * (stop - start) > MAX_MATRIX_VALUES:
            most = MAX_MATRIX_VALUES // rows
            raise BodyError(
                "columns",
                f"at most {most} columns ({MAX_MATRIX_VALUES} values) per request, got {stop - start}",
            )
        columns = {"start": start, "stop": stop, "values": arr(x_col[:, start:stop])}
    indices = None
    if request.indices and small:
        k, i, j = im2col_indices(
            prepared.x.shape, (kh, kw), prepared.stride, prepared.padding, prepared.dilation
        )
        indices = {"k": arr(k.ravel()), "i": arr(i), "j": arr(j)}
    picture = matrix_picture(x_col)
    product = gemm.product[0]  # (F, OH·OW)
    product_picture = matrix_picture(product)
    f = prepared.weight.shape[0]
    facts = prepared.explanation.facts
    payload = {
        "shape": list(gemm.x_col.shape),
        "rows": rows,
        "cols": cols,
        "row_labels": arr(row_labels),
        "out_size": list(window.output),
        "values": arr(x_col) if small else None,
        "png": picture["png"],
        "png_column_step": picture["png_column_step"],
        "min": picture["min"],
        "max": picture["max"],
        "columns": columns,
        "indices": indices,
        "w_col": arr(gemm.w_col.reshape(f, -1)),
        "groups": prepared.groups,
        "product": {
            "shape": list(product.shape),
            "values": arr(product) if product.size <= MAX_MATRIX_VALUES else None,
            "png": product_picture["png"],
            "min": product_picture["min"],
            "max": product_picture["max"],
            "png_column_step": product_picture["png_column_step"],
        },
        "duplication": facts["duplication"],
        "im2col_bytes": facts["im2col_bytes"],
        "input_bytes": facts["input_bytes"],
    }
    return payload
