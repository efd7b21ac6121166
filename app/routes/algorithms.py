"""``POST /api/algorithms``: every implementation of the current layer side by side (agreement, time,
memory, source), and ``POST /api/algorithms/sweep``: time against image or kernel size, for a chart.

Timings are measured on the server for each request (never cached). The work budget of
:func:`app.compute.prepare` applies to the layer; a method named in ``methods`` that would exceed its own
budget (naive loops on a large image, FFT with a stride) is refused with a 422 saying why, and the methods
not named are reported with ``available: false`` and the reason.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, ConfigDict, Field

from app.compute import pool_args, prepare
from app.errors import BodyError
from app.responses import body_response, json_bytes
from app.routes.conv import BODY_ERRORS, COMPUTE_ERRORS
from app.schemas import ConvRequest
from app.settings import SettingsDep
from core.algorithms import (
    CONV_METHODS,
    compare_col2im,
    compare_conv,
    compare_maxpool,
    conv_refusal,
    padded_input,
    sweep,
)
from core.conv import conv2d
from core.im2col import im2col_geometry
from core.pool import PoolGeometry
from core.shapes import conv_geometry

router = APIRouter(prefix="/api", tags=["algorithms"])

ConvMethod = Literal[
    "default", "naive", "indices", "dlfs_rows", "slices", "windows", "view", "tensordot", "einsum", "fft"
]
SWEEP_METHODS: tuple[ConvMethod, ...] = ("default", "dlfs_rows", "view", "tensordot", "fft")
MAX_REPEATS = 20
BUDGET_MS = 200.0
"""Timing budget of ``POST /api/algorithms`` for all convolution methods together (each runs at least
once); col2im and pooling get a fifth of it each."""
SWEEP_BUDGET_MS = 1500.0
SWEEP_SIZES = (16, 32, 64, 128, 256)
SWEEP_KERNELS = (1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21)


class AlgorithmsRequest(ConvRequest):
    """``POST /api/algorithms``: the layer of ``POST /api/conv`` plus which methods and how many runs."""

    methods: Annotated[list[ConvMethod], Field(min_length=1, max_length=len(CONV_METHODS))] | None = Field(
        default=None, description="Convolution methods to run; all by default (refused ones are listed)."
    )
    repeats: Annotated[int, Field(ge=1, le=MAX_REPEATS)] = Field(
        default=5, description="Timed runs per method (fewer when the time budget runs out)."
    )


class SweepRequest(BaseModel):
    """``POST /api/algorithms/sweep``: seeded random data, stride 1, padding k // 2."""

    model_config = ConfigDict(extra="forbid")

    axis: Literal["size", "kernel"] = "kernel"
    values: (
        Annotated[list[Annotated[int, Field(ge=1, le=256)]], Field(min_length=1, max_length=11)] | None
    ) = Field(default=None, description="Image sides (axis size, 8..256) or odd kernel sides (1..21).")
    methods: Annotated[list[ConvMethod], Field(min_length=1, max_length=len(CONV_METHODS))] = Field(
        default_factory=lambda: list(SWEEP_METHODS)
    )
    size: Annotated[int, Field(ge=8, le=256)] = 96
    kernel: Annotated[int, Field(ge=1, le=21)] = 3
    channels: Literal[1, 3] = 1
    filters: Annotated[int, Field(ge=1, le=8)] = 1


class MethodRow(BaseModel):
    name: str
    title: str
    description: str
    source: str
    available: bool
    reason: str | None
    max_abs_diff: float | None
    median_ms: float | None
    repeats: int
    peak_bytes: int | None
    intermediate_bytes: dict[str, int]


class AlgorithmsResponse(BaseModel):
    layer: dict[str, Any]
    conv: list[MethodRow]
    col2im: list[MethodRow]
    pool: dict[str, Any]
    budget_ms: float
    timing_ms: dict[str, float]


class SweepResponse(BaseModel):
    axis: Literal["size", "kernel"]
    values: list[int]
    series: dict[str, list[float | None]]
    skipped: dict[str, str]
    budget_ms: float


@router.post("/algorithms", response_model=AlgorithmsResponse, responses=COMPUTE_ERRORS)
def post_algorithms(request: AlgorithmsRequest, settings: SettingsDep) -> Response:
    """Run the current layer by every implementation in ``core.algorithms`` and compare them.

    Per method: max |difference| from the default ``core.conv.conv2d``, the median time of up to ``repeats``
    runs (the count used is returned), the bytes of its intermediates (named, by shape) and the peak NumPy
    memory measured with ``tracemalloc``, and the source of the functions that ran (``inspect``). The same
    for col2im (slice ``+=`` against ``np.add.at``) and max pooling (running maximum against im2col +
    argmax) on this layer's columns and feature maps.
    """
    start = time.perf_counter()
    prepared = prepare(request, settings)
    kwargs = prepared.conv_kwargs
    geometry = conv_geometry(prepared.x.shape, prepared.weight.shape, **kwargs)
    itemsize = prepared.x.dtype.itemsize
    for name in request.methods or []:
        reason = conv_refusal(name, geometry, itemsize)
        if reason:
            raise BodyError("methods", f"method {name!r} refused on this layer: {reason}")
    timing: dict[str, float] = {"prepare": (time.perf_counter() - start) * 1000}
    mark = time.perf_counter()
    conv_rows = compare_conv(
        prepared.x,
        prepared.weight,
        methods=list(request.methods) if request.methods else None,
        repeats=request.repeats,
        budget_ms=BUDGET_MS,
        **kwargs,
    )
    timing["conv"] = (time.perf_counter() - mark) * 1000
    mark = time.perf_counter()
    xp, window = padded_input(prepared.x, geometry)
    cols = im2col_geometry(xp, window, "view")
    col2im_rows = compare_col2im(cols, xp.shape, window, request.repeats, BUDGET_MS / 5)
    timing["col2im"] = (time.perf_counter() - mark) * 1000
    mark = time.perf_counter()
    maps = conv2d(prepared.x, prepared.weight, prepared.bias, **kwargs)
    pool_spec = pool_args(request.pool) if request.pool is not None and request.pool.mode == "max" else None
    if pool_spec is None:
        pool_spec = {"kernel_size": (2, 2), "stride": (2, 2), "padding": (0, 0), "ceil_mode": False}
        note = "max pooling 2×2, stride 2 of the feature maps (the layer has no max pooling)"
    else:
        note = "the layer's max pooling of its feature maps"
    try:
        pool_geometry = PoolGeometry(
            maps.shape[2:],
            pool_spec["kernel_size"],
            pool_spec["stride"],
            pool_spec["padding"],
            1,
            pool_spec["ceil_mode"],
        )
        pool_rows = compare_maxpool(maps, pool_geometry, request.repeats, BUDGET_MS / 5)
        pool_block: dict[str, Any] = {"note": note, "methods": pool_rows}
    except ValueError as exc:  # the default 2×2 may not fit a 1-pixel map
        pool_block = {"note": f"pooling not compared: {exc}", "methods": []}
    timing["pool"] = (time.perf_counter() - mark) * 1000
    timing["total"] = (time.perf_counter() - start) * 1000
    window_full = geometry.window
    payload = {
        "layer": {
            "input_shape": list(prepared.x.shape),
            "weight_shape": list(prepared.weight.shape),
            "output_shape": list(prepared.output_shape),
            "padding": window_full.padding._asdict(),
            "padding_mode": window_full.padding_mode,
            "stride": list(window_full.stride),
            "dilation": list(window_full.dilation),
            "groups": prepared.groups,
            "dtype": str(prepared.x.dtype),
        },
        "conv": conv_rows,
        "col2im": col2im_rows,
        "pool": pool_block,
        "budget_ms": BUDGET_MS,
        "timing_ms": timing,
    }
    return body_response(json_bytes(payload), None, {"Cache-Control": "no-store"})


@router.post("/algorithms/sweep", response_model=SweepResponse, responses=BODY_ERRORS)
def post_sweep(request: SweepRequest) -> Response:
    """Median time of each method against the image side (``axis: size``) or the kernel side
    (``axis: kernel``), on seeded random float32 data, stride 1, padding ``k // 2``.

    Bounded: at most 11 points, sides up to 256, kernels up to 21, and about 1.5 s of measuring in all;
    points past the budget, and larger points of a method that already took over a quarter of it, are
    ``null`` (with the reason in ``skipped``). With ``axis: kernel`` the FFT's flat cost crosses the
    im2col methods' ``KH·KW`` growth.
    """
    if request.axis == "size":
        values = request.values or list(SWEEP_SIZES)
        if min(values) < 8:
            raise BodyError("values", f"image sides must be at least 8, got {min(values)}")
    else:
        values = request.values or list(SWEEP_KERNELS)
        if max(values) > 21 or any(v % 2 == 0 for v in values):
            raise BodyError("values", f"kernel sides must be odd and at most 21, got {values}")
    values = sorted(set(values))
    if request.axis == "kernel" and max(values) > request.size:
        raise BodyError("values", f"kernel {max(values)} is larger than the image side {request.size}")
    result = sweep(
        request.axis,
        values,
        list(dict.fromkeys(request.methods)),
        size=request.size,
        kernel=request.kernel,
        channels=request.channels,
        filters=request.filters,
        budget_ms=SWEEP_BUDGET_MS,
        seed=0,
    )
    result["budget_ms"] = SWEEP_BUDGET_MS
    return body_response(json_bytes(result), None, {"Cache-Control": "no-store"})
