"""``GET /api/animation.gif`` and ``GET /api/animation.png`` (APNG): the convolution of the same parameters
as ``GET /api/conv.png`` animated for slides, or its pooling, or a transposed convolution of the input.

Deterministic: the same parameters give the same bytes, so the ETag is derived from the normalised
parameters (and ``If-None-Match`` answers 304). Bounded: at most ``MAX_FRAMES`` frames, ``MAX_WIDTH``
pixels wide and ``MAX_TOTAL_PIXELS`` pixels over all frames; beyond, a 422 says what to reduce.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, Field, ValidationError

from app.animation import (
    EMPTY,
    EMPTY_IMAGE,
    Frame,
    Grid,
    base_canvas,
    encode,
    image_colors,
    map_colors,
    padded_colors,
    plan_layout,
    positions,
    render,
    sliding_frames,
    still_png,
)
from app.compute import forward, prepare
from app.errors import BodyError
from app.image_source import load_array
from app.responses import OrjsonResponse
from app.routes.conv import COMPUTE_ERRORS, conv_query, query_errors, validate_conv_query
from app.schemas import MAX_TRANSPOSE_SIDE, ConvRequest
from app.settings import Settings, SettingsDep
from core.conv import conv_transpose2d
from core.im2col import border_index, pad_input
from core.pool import PoolGeometry
from core.shapes import conv_geometry

router = APIRouter(prefix="/api", tags=["animation"])

ANIMATION_VERSION = "1"
"""Part of the ETag: bump when the pictures change for the same parameters."""
MAX_FRAMES = 400
MAX_WIDTH = 1600
MIN_WIDTH = 160
MAX_TOTAL_PIXELS = 60_000_000
GRID_MAX_SIDE = 32
"""``style=auto`` draws the conv_arithmetic grid when both padded input and output are at most this."""


class AnimationOptions(BaseModel):
    """What the animation shows and how."""

    kind: Literal["conv", "pool", "transpose"] = "conv"
    style: Literal["auto", "grid", "image"] = "auto"
    filter: int = Field(default=0, ge=0, le=63)
    fps: float = Field(
        default=0, ge=0, le=30, description="Frames per second; 0: 3 for a grid, 12 otherwise."
    )
    width: int = Field(default=640, ge=MIN_WIDTH, le=MAX_WIDTH)
    step: int = Field(
        default=0, ge=0, le=1_000_000, description="Outputs per frame; 0: every one, at most frames."
    )
    frames: int = Field(default=0, ge=0, le=MAX_FRAMES, description="Most frames; 0: 150 grid / 48 image.")
    numbers: Literal["auto", "on", "off"] = "auto"
    poster: bool = Field(default=False, description="Only the last (complete) frame, as a PNG.")


@dataclass
class Scene:
    source: Grid
    output_label: str
    frames: list[Frame]
    gridlines: bool
    input_shape: tuple[int, int]
    output_shape: tuple[int, int]


def animation_query(
    kind: str = Query(default="conv", max_length=10, description="conv, pool or transpose"),
    style: str = Query(default="auto", max_length=6, description="auto, grid (conv_arithmetic) or image"),
    filter: int = Query(default=0, description="Which filter (feature map)."),
    fps: float = Query(default=0, description="Frames per second (0: 3 for a grid, 12 for an image)."),
    width: int = Query(default=640, description=f"Frame width in pixels, {MIN_WIDTH}..{MAX_WIDTH}."),
    step: int = Query(default=0, description="Output positions per frame (0: automatic)."),
    frames: int = Query(
        default=0, description=f"At most this many frames (0: 150 grid / 48 image; ≤ {MAX_FRAMES})."
    ),
    numbers: str = Query(default="auto", max_length=4, description="auto, on or off: values in the cells."),
    poster: bool = Query(default=False, description="Only the last frame, as a PNG."),
) -> dict[str, Any]:
    """The animation options as a dict (validated by the route)."""
    return {
        "kind": kind,
        "style": style,
        "filter": filter,
        "fps": fps,
        "width": width,
        "step": step,
        "frames": frames,
        "numbers": numbers,
        "poster": poster,
    }


def _validate(
    fields: dict[str, Any], options: dict[str, Any]
) -> tuple[ConvRequest, AnimationOptions] | Response:
    request = validate_conv_query(fields)
    if isinstance(request, Response):
        return request
    try:
        return request, AnimationOptions.model_validate(options)
    except ValidationError as exc:
        detail = [
            {"loc": ["query", *[str(p) for p in e["loc"]]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors()
        ]
        return OrjsonResponse({"detail": detail}, status_code=422)


def _auto_step(count: int, options: AnimationOptions, grid: bool) -> int:
    most = options.frames or (150 if grid else 48)
    if options.step:
        step = options.step
    else:
        step = max(1, -(-count // max(1, most - 1)))
    if len(positions(count, step)) + 1 > (options.frames or MAX_FRAMES):
        raise BodyError(
            "step",
            f"{count} output positions at step {step} give more than {options.frames or MAX_FRAMES} "
            "frames; raise step (or frames)",
        )
    return step


def _is_grid(options: AnimationOptions, input_shape: tuple[int, int], output_shape: tuple[int, int]) -> bool:
    if options.style != "auto":
        return options.style == "grid"
    return max(*input_shape, *output_shape) <= GRID_MAX_SIDE


def conv_scene(request: ConvRequest, options: AnimationOptions, settings: Settings) -> Scene:
    """The window of filter ``options.filter`` sliding over the (padded) input; the feature map filling."""
    prepared = prepare(request, settings)
    result = forward(prepared, request.activation, None, {})
    f = _filter(options, prepared.output_shape[1])
    window = conv_geometry(prepared.x.shape, prepared.weight.shape, **prepared.conv_kwargs).window
    x = prepared.x[0]
    pad = window.padding
    mode = window.padding_mode
    sources = None
    if mode != "zeros":
        sources = (
            border_index(window.height, pad.top, pad.bottom, mode),
            border_index(window.width, pad.left, pad.right, mode),
        )
    colors = padded_colors(image_colors(x), pad.top, pad.left, window.padded, sources)
    values = pad_input(x, pad, padding_mode=mode)[0] if x.shape[0] == 1 else None
    out = result.conv[0, f]
    grid = _is_grid(options, window.padded, out.shape)
    step = _auto_step(out.size, options, grid)
    (sh, sw), (dh, dw), (kh, kw) = window.stride, window.dilation, window.kernel

    def taps(r: int, c: int) -> list[tuple[int, int]]:
        return [(r * sh + i * dh, c * sw + j * dw) for i in range(kh) for j in range(kw)]

    numbers = _numbers(options, grid)
    frames = list(sliding_frames(out, map_colors(out), taps, step, numbers, EMPTY if grid else EMPTY_IMAGE))
    label = f"input {window.height}x{window.width}" + (f", {mode} padding" if any(pad) else "")
    return Scene(
        Grid(
            label,
            colors,
            values if numbers else None,
            (pad.top, pad.left, window.height, window.width) if any(pad) else None,
        ),
        f"output {out.shape[0]}x{out.shape[1]} (filter {f})",
        frames,
        grid,
        window.padded,
        out.shape,
    )


def pool_scene(request: ConvRequest, options: AnimationOptions, settings: Settings) -> Scene:
    """The pooling window sliding over feature map ``options.filter``; the pooled map filling."""
    if request.pool is None:
        raise BodyError("kind", "kind=pool needs pooling: add pool=max or pool=avg (and pool_kernel, ...)")
    prepared = prepare(request, settings)
    result = forward(prepared, request.activation, request.pool, {})
    f = _filter(options, prepared.output_shape[1])
    maps = result.conv[0, f]
    assert result.pooled is not None
    pooled = result.pooled[0, f]
    spec = request.pool
    geometry = PoolGeometry(
        maps.shape,
        _pair(spec.kernel_size),
        None if spec.stride is None else _pair(spec.stride),
        _pair(spec.padding),
        1,
        spec.ceil_mode,
    )
    ph, pw = geometry.padding
    buffer = geometry.buffer
    colors = padded_colors(map_colors(maps), ph, pw, buffer, None)
    grid = _is_grid(options, buffer, pooled.shape)
    step = _auto_step(pooled.size, options, grid)
    (sh, sw), (kh, kw) = geometry.stride, geometry.kernel

    def taps(r: int, c: int) -> list[tuple[int, int]]:
        return [
            (r * sh + i, c * sw + j)
            for i in range(kh)
            for j in range(kw)
            if r * sh + i < buffer[0] and c * sw + j < buffer[1]
        ]

    numbers = _numbers(options, grid)
    values = None
    if numbers:
        values = np.full(buffer, np.nan)
        values[ph : ph + maps.shape[0], pw : pw + maps.shape[1]] = maps
    frames = list(
        sliding_frames(pooled, map_colors(pooled), taps, step, numbers, EMPTY if grid else EMPTY_IMAGE)
    )
    return Scene(
        Grid(
            f"input: feature map {f}, {maps.shape[0]}x{maps.shape[1]}",
            colors,
            values,
            (ph, pw, *maps.shape) if ph or pw or buffer != maps.shape else None,
        ),
        f"output: {spec.mode} pool {pooled.shape[0]}x{pooled.shape[1]}",
        frames,
        grid,
        buffer,
        pooled.shape,
    )


def transpose_scene(request: ConvRequest, options: AnimationOptions, settings: Settings) -> Scene:
    """A transposed convolution of the (small) input by filter ``options.filter``'s first channel: each
    input cell spreads its kernel-weighted copy into the output, overlaps summing."""
    prepared = prepare(request, settings)
    x = prepared.x[0].mean(axis=0)  # gray (RGB averaged) input, (H, W)
    h, w = x.shape
    if max(h, w) > MAX_TRANSPOSE_SIDE:
        raise BodyError(
            "max_side",
            f"kind=transpose animates inputs up to {MAX_TRANSPOSE_SIDE}x{MAX_TRANSPOSE_SIDE}; this one "
            f"is {h}x{w}: use max_side={MAX_TRANSPOSE_SIDE} or less",
        )
    f = _filter(options, prepared.output_shape[1])
    kernel = prepared.weight[f, 0]
    padding = prepared.padding
    if isinstance(padding, str) or (isinstance(padding, tuple) and len(padding) == 4):
        raise BodyError(
            "padding",
            "kind=transpose takes padding as an int or (pad_h, pad_w), as PyTorch's conv_transpose2d",
        )
    stride, dilation = prepared.stride, prepared.dilation
    full = conv_transpose2d(x[None, None], kernel[None, None], None, stride, padding, 0, dilation)[0, 0]
    lo, hi = float(full.min()), float(full.max())
    grid = _is_grid(options, (h, w), full.shape)
    step = _auto_step(h * w, options, grid)
    numbers = _numbers(options, grid)
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    kh, kw = kernel.shape
    oh, ow = full.shape
    frames = []
    touched = np.zeros(full.shape, dtype=bool)
    done = -1
    for t in positions(h * w, step):
        masked = np.zeros_like(x)
        masked.reshape(-1)[: t + 1] = x.reshape(-1)[: t + 1]
        partial = conv_transpose2d(
            masked[None, None], kernel[None, None], None, stride, padding, 0, dilation
        )[0, 0]
        r, c = divmod(t, w)
        footprint = [(r * sh + i * dh - ph, c * sw + j * dw - pw) for i in range(kh) for j in range(kw)]
        footprint = [(a, b) for a, b in footprint if 0 <= a < oh and 0 <= b < ow]
        for q in range(done + 1, t + 1):  # the output cells reached by the input cells added since
            qr, qc = divmod(q, w)
            for i in range(kh):
                for j in range(kw):
                    a, b = qr * sh + i * dh - ph, qc * sw + j * dw - pw
                    if 0 <= a < oh and 0 <= b < ow:
                        touched[a, b] = True
        done = t
        colors = map_colors(partial, lo, hi)
        colors[~touched] = (255, 255, 255)
        values = np.where(touched, partial, np.nan) if numbers else None
        frames.append(Frame(colors, values, [(r, c)], footprint))
    frames.append(Frame(map_colors(full, lo, hi), full if numbers else None))
    return Scene(
        Grid(f"input {h}x{w}", image_colors(x[None]), x if numbers else None),
        f"output {oh}x{ow} (overlaps sum)",
        frames,
        grid,
        (h, w),
        full.shape,
    )


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, (list, tuple)):
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _filter(options: AnimationOptions, count: int) -> int:
    if options.filter >= count:
        raise BodyError("filter", f"filter {options.filter} does not exist: the layer has {count} filter(s)")
    return options.filter


def _numbers(options: AnimationOptions, grid: bool) -> bool:
    return options.numbers == "on" or (options.numbers == "auto" and grid)


def build(request: ConvRequest, options: AnimationOptions, settings: Settings, fmt: str) -> bytes:
    """The encoded animation (or poster PNG)."""
    scene = {"conv": conv_scene, "pool": pool_scene, "transpose": transpose_scene}[options.kind](
        request, options, settings
    )
    layout = plan_layout(
        scene.input_shape,
        scene.output_shape,
        options.width,
        scene.gridlines,
        options.numbers if scene.gridlines or options.numbers != "auto" else "off",
    )
    count = 1 if options.poster else len(scene.frames)
    total = count * layout.size[0] * layout.size[1]
    if layout.size[1] > MAX_WIDTH or total > MAX_TOTAL_PIXELS:
        raise BodyError(
            "width",
            f"{count} frames of {layout.size[1]}x{layout.size[0]} pixels are {total:,} pixels, more than "
            f"{MAX_TOTAL_PIXELS:,} (or wider than {MAX_WIDTH}); lower width, raise step, or use a smaller "
            "max_side",
        )
    if not layout.numbers:
        scene.source.values = None
        for frame in scene.frames:
            frame.output_values = None
    base = base_canvas(layout, scene.source, scene.output_label)
    if options.poster:
        return still_png(render(layout, base, scene.frames[-1]))
    pictures = [render(layout, base, frame) for frame in scene.frames]
    fps = options.fps or (3.0 if scene.gridlines else 12.0)
    return encode(pictures, fmt, fps)


RESPONSES: dict[int | str, dict[str, Any]] = {
    304: {"description": "Not modified (If-None-Match matched the ETag)."},
    **COMPUTE_ERRORS,
}


def _answer(
    fmt: str, fields: dict[str, Any], raw: dict[str, Any], settings: Settings, if_none_match: str | None
) -> Response:
    checked = _validate(fields, raw)
    if isinstance(checked, Response):
        return checked
    request, options = checked
    load_array(request.image, request.color, request.max_side, settings)  # 404 before anything else
    media = "image/png" if fmt == "png" or options.poster else "image/gif"
    key = json.dumps(
        [ANIMATION_VERSION, fmt, request.model_dump(mode="json"), options.model_dump(mode="json")],
        sort_keys=True,
    )
    etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
    if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=304, headers=headers)
    extension = "png" if media == "image/png" else "gif"
    headers["Content-Disposition"] = f'inline; filename="convlens_{options.kind}.{extension}"'
    with query_errors():  # every field of this GET is a query parameter
        content = build(request, options, settings, fmt)
    return Response(content, media_type=media, headers=headers)


@router.get(
    "/animation.gif",
    response_class=Response,
    responses={
        200: {"content": {"image/gif": {}}, "description": "The animation as a looping GIF."},
        **RESPONSES,
    },
)
def get_animation_gif(
    settings: SettingsDep,
    fields: dict[str, Any] = Depends(conv_query),
    options: dict[str, Any] = Depends(animation_query),
    if_none_match: str | None = Header(default=None),
) -> Response:
    """The layer of ``GET /api/conv.png``'s parameters animated: the window sliding over the padded input
    (padding cells distinct, dilated taps outlined) while the output fills in; ``kind=pool`` animates the
    pooling of a feature map, ``kind=transpose`` a transposed convolution of a small input.

    GIF colours are quantised to one 256-colour palette; ``/api/animation.png`` (APNG) is exact.
    """
    return _answer("gif", fields, options, settings, if_none_match)


@router.get(
    "/animation.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The animation as a looping APNG."},
        **RESPONSES,
    },
)
def get_animation_png(
    settings: SettingsDep,
    fields: dict[str, Any] = Depends(conv_query),
    options: dict[str, Any] = Depends(animation_query),
    if_none_match: str | None = Header(default=None),
) -> Response:
    """As ``/api/animation.gif``, as an animated PNG (lossless: the last frame's output grid is the map's
    picture exactly); with ``poster=true`` a still PNG of the last frame."""
    return _answer("png", fields, options, settings, if_none_match)
