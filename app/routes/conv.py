"""``POST /api/conv`` (feature maps as JSON with PNG data URLs) and ``GET /api/conv.png`` (one PNG grid)."""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import ValidationError

from app.compute import Forward, Prepared
from app.errors import MAX_REPORTED_ERRORS, BodyError, QueryError, field_for
from app.image_source import image_info
from app.jobs import layer_body
from app.layer_cache import Layer, layer_for
from app.render import activation_png, data_url, grid_png, image_png
from app.response_cache import elapsed_ms, with_field
from app.responses import OrjsonResponse, arr, body_response, json_bytes, map_entry, server_timing
from app.schemas import MAX_VALUES_PER_MAP, ConvRequest, ConvResponse, ExplainRequest, Message
from app.settings import Settings, SettingsDep
from core.conv import conv2d

router = APIRouter(prefix="/api", tags=["convolution"])

BODY_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": Message, "description": "The body could not be parsed (not JSON / not UTF-8)."},
}
COMPUTE_ERRORS: dict[int | str, dict[str, Any]] = {
    **BODY_ERRORS,
    404: {"model": Message, "description": "Unknown image id."},
    410: {"model": Message, "description": "The stored image is corrupt."},
}

CONV_ERRORS: dict[int | str, dict[str, Any]] = {
    **COMPUTE_ERRORS,
    503: {"model": Message, "description": "The worker is busy (its queue is full): retry after Retry-After"},
}

Pictures = Literal["png", "levels"]
"""How an answer draws its maps: PNG data URLs, or 8-bit colour-map levels (:func:`app.render.levels`)."""

RENDER_VERSION = "1"
"""Part of the ETag of ``/api/conv.png``: bump when the pictures change for the same parameters."""


def _region_values(maps: np.ndarray, request: ConvRequest) -> tuple[dict[str, int] | None, slice, slice]:
    """The requested region clipped to the maps ``(F, OH, OW)``; 422 when it lies outside."""
    region = request.region
    if region is None:
        return None, slice(None), slice(None)
    _, oh, ow = maps.shape
    y0, y1, x0, x1 = region.y0, min(region.y1, oh), region.x0, min(region.x1, ow)
    if y0 >= oh or x0 >= ow:
        raise BodyError("region", f"region starts at ({y0}, {x0}) but the conv maps are only {oh}×{ow}")
    return {"y0": y0, "y1": y1, "x0": x0, "x1": x1}, slice(y0, y1), slice(x0, x1)


def conv_payload(
    request: ConvRequest,
    prepared: Prepared,
    result: Forward,
    timing: dict[str, float],
    pictures: Pictures = "png",
    explained: tuple[list[dict[str, Any]], list[str], dict[str, Any]] | None = None,
    with_input: bool = True,
) -> dict[str, Any]:
    """The ``POST /api/conv`` body (see the API contract); maps as PNGs or as ``levels``.

    ``explained``: the layer's steps, warnings and facts when already at hand (:meth:`Layer.explained`).
    ``with_input``: False leaves the input's PNG out (``input.png`` null): the page sends ``?input=shape``
    once it has drawn this image at this size, so a slider step does not carry the same picture again.
    """
    start = time.perf_counter()
    x = prepared.x
    maps = result.conv[0]
    f, oh, ow = maps.shape
    small = request.values and oh * ow <= MAX_VALUES_PER_MAP
    region, rows, cols = _region_values(maps, request)
    conv_maps = []
    for index in range(f):
        entry = map_entry(index, maps[index], small, pictures)
        if region is not None:
            entry["values"] = arr(maps[index, rows, cols])
        conv_maps.append(entry)
    pool_block = None
    if result.pooled is not None and request.pool is not None:
        pooled = result.pooled[0]
        pf, ph, pw = pooled.shape
        pool_small = request.values and ph * pw <= MAX_VALUES_PER_MAP
        pool_maps = []
        for index in range(pf):
            entry = map_entry(index, pooled[index], pool_small, pictures)
            entry["argmax"] = (
                arr(result.argmax[0, index]) if pool_small and result.argmax is not None else None
            )
            pool_maps.append(entry)
        pool_block = {"shape": list(result.pooled.shape), "mode": request.pool.mode, "maps": pool_maps}
    input_png = input_data_url(x, request.image.startswith("act:")) if with_input else None
    timing["encode"] = (time.perf_counter() - start) * 1000
    explanation = prepared.explanation
    if explained is None:
        explained = (
            [s.as_dict() for s in explanation.steps],
            list(explanation.warnings),
            {k: v for k, v in explanation.facts.items() if k != "padding"},
        )
    steps, warnings, facts = list(explained[0]), list(explained[1]), explained[2]
    if result.pool_explanation is not None:
        steps += [s.as_dict() for s in result.pool_explanation.steps]
        warnings += result.pool_explanation.warnings
    return {
        "input": {"shape": list(x.shape), "png": input_png},
        "padding": explanation.facts["padding"],
        "conv": {
            "shape": list(result.conv.shape),
            "activation": request.activation,
            "maps": conv_maps,
            "region": region,
        },
        "pool": pool_block,
        "steps": steps,
        "warnings": warnings,
        "facts": facts,
        "timing_ms": timing,
    }


_input_pngs: OrderedDict[int, tuple[np.ndarray, str]] = OrderedDict()
_input_lock = threading.Lock()


def input_data_url(x: np.ndarray, activation: bool = False) -> str:
    """The input ``(1, C, H, W)`` as a PNG data URL, kept for the few arrays used last.

    The arrays come from :func:`app.image_source.load_array`'s cache (read-only, one object per image and
    size), so a slider step on the same image does not encode the same PNG again. An ``activation`` (any
    values, C channels) is drawn by :func:`app.render.activation_png` (the mean of its channels).
    """
    with _input_lock:
        known = _input_pngs.get(id(x))
        if known is not None and known[0] is x:
            _input_pngs.move_to_end(id(x))
            return known[1]
    url = data_url(activation_png(x[0]) if activation else image_png(x[0]))
    if not x.flags.writeable:
        with _input_lock:
            _input_pngs[id(x)] = (x, url)
            while len(_input_pngs) > 8:
                _input_pngs.popitem(last=False)
    return url


def check_pictures(count: int, settings: Settings) -> None:
    """Refuse (422) an answer drawing more than ``max_picture_pixels`` map pixels, saying what to reduce."""
    if count > settings.max_picture_pixels:
        raise BodyError(
            "max_side",
            f"this answer would draw {count:,} map pixels, more than the limit of "
            f"{settings.max_picture_pixels:,}; reduce max_side (image size) or the number of filters, or "
            "raise the stride",
        )


def conv_pixels(prepared: Prepared, pooled: bool) -> int:
    """Map pixels a conv answer draws: every conv map, and about a quarter more with pooling."""
    _, f, oh, ow = prepared.output_shape
    return f * oh * ow * (2 if pooled else 1)


def run_conv(request: ConvRequest, settings: Settings) -> tuple[Prepared, Forward, dict[str, float]]:
    """Prepare and run convolution → activation → pooling."""
    layer = layer_for(request, settings)
    timing = dict(layer.prepared.timing)
    check_pictures(conv_pixels(layer.prepared, request.pool is not None), settings)
    result = layer.forward(request.activation, request.pool, timing)
    return layer.prepared, result, timing


@router.post("/conv", response_model=ConvResponse, responses=CONV_ERRORS)
async def post_conv(
    request: ConvRequest,
    http: Request,
    settings: SettingsDep,
    pictures: Pictures = Query(
        default="png",
        description="How maps are drawn: 'png' (a PNG data URL per map, field `png`) or 'levels' (8-bit "
        "colour-map levels, base64, field `levels`: what the page uses; no PNG is encoded).",
    ),
    explain: str | None = Query(
        default=None,
        max_length=40,
        pattern=r"^\d{1,6},\d{1,6},\d{1,6}$",
        description="'f,y,x': also answer POST /api/explain for this output position, under `explain` "
        "(null when the position is outside the output), saving the page a request per step.",
    ),
    channels: int | None = Query(
        default=None,
        ge=0,
        le=4096,
        description="A filter f: also send, under `channels`, the contribution of each of its input channels "
        "(the convolution of that channel alone with w[f, c], no bias, no activation) as conv maps.",
    ),
    input_picture: Literal["png", "shape"] = Query(
        default="png",
        alias="input",
        description="'png': `input.png` is the input as a PNG data URL; 'shape': `input.png` is null (for a "
        "client that already drew this image at this max_side and color: a slider step then does not carry "
        "the same picture again).",
    ),
) -> Response:
    """Convolution (+ bias), activation and pooling of an image: every map as a picture with its range.

    Exact values come with ``values: true`` for maps up to 64×64, or for a ``region`` of every conv map.
    Per-stage timings are in ``timing_ms`` and in the ``Server-Timing`` header.
    """
    start = time.perf_counter()
    timing: dict[str, float] = {}

    def build(req: ConvRequest, st: Settings, layer: Layer) -> bytes:
        stages = dict(layer.prepared.timing)
        check_pictures(conv_pixels(layer.prepared, req.pool is not None), st)
        result = layer.forward(req.activation, req.pool, stages)
        payload = conv_payload(
            req, layer.prepared, result, stages, pictures, layer.explained(), input_picture == "png"
        )
        if explain is not None:
            payload["explain"] = explained_at(req, st, layer, [int(v) for v in explain.split(",")])
        if channels is not None:
            payload["channels"] = channel_maps(req, layer, channels, pictures)
        timing.update(payload.pop("timing_ms"))  # this request's, attached below (not cached)
        return json_bytes(payload)

    plain = pictures == "png" and explain is None and channels is None and input_picture == "png"
    extra: tuple[Any, ...] = () if plain else (pictures, explain, channels, input_picture)
    body, state = await layer_body("POST /api/conv", request, http, settings, build, extra=extra)
    if state == "hit":
        timing["cache"] = elapsed_ms(start)
    timing["total"] = elapsed_ms(start)
    return body_response(body_with_timing(body, timing), state, {"Server-Timing": server_timing(timing)})


def explained_at(
    request: ConvRequest, settings: Settings, layer: Layer, position: list[int]
) -> dict[str, Any] | None:
    """The ``POST /api/explain`` answer at ``position`` on this layer, or None outside the output."""
    from app.routes.explain import explain_payload  # late: explain imports this module

    # the request is validated already and the position matched ^\d{1,6},\d{1,6},\d{1,6}$: build the explain
    # request from the validated fields instead of validating the weights a second time
    fields = {name: getattr(request, name) for name in type(request).model_fields}
    explain = ExplainRequest.model_construct(
        **{**fields, "values": False, "region": None, "pool": None}, position=position
    )
    try:
        return explain_payload(explain, settings, layer)
    except (BodyError, ValidationError):
        return None


def channel_maps(request: ConvRequest, layer: Layer, f: int, pictures: Pictures) -> dict[str, Any] | None:
    """Filter ``f``'s per-channel contributions: map ``c`` is channel ``g·C/G + c`` convolved alone with
    ``w[f, c]`` (stride, padding and dilation of the layer; no bias, no activation). Their sum plus the bias
    is the filter's map before the activation. None when ``f`` is not a filter."""
    prepared = layer.prepared
    weight = prepared.weight
    filters, per_group = weight.shape[0], weight.shape[1]
    if f >= filters:
        return None
    first = (f // (filters // prepared.groups)) * per_group
    kwargs = {**prepared.conv_kwargs, "groups": 1}
    maps = np.concatenate(
        [
            conv2d(prepared.x[:, first + c : first + c + 1], weight[f : f + 1, c : c + 1], None, **kwargs)
            for c in range(per_group)
        ],
        axis=1,
    )[0]
    _, oh, ow = maps.shape
    small = request.values and oh * ow <= MAX_VALUES_PER_MAP
    return {
        "filter": f,
        "conv": {
            "shape": [1, per_group, oh, ow],
            "maps": [map_entry(c, maps[c], small, pictures) for c in range(per_group)],
        },
    }


def body_with_timing(body: bytes, timing: dict[str, float]) -> bytes:
    """The conv body (cached without it) with this request's ``timing_ms`` as its last member."""
    return with_field(body, "timing_ms", timing)


# ------------------------------------------------------------------------------------- GET conv.png


_INT = re.compile(r"^-?[0-9]{1,9}$")

QUERY_NAMES = {
    ("pool", "mode"): "pool",
    ("pool", "kernel_size"): "pool_kernel",
    ("pool", "stride"): "pool_stride",
    ("pool", "padding"): "pool_padding",
    ("pool", "ceil_mode"): "ceil_mode",
    ("pool", "count_include_pad"): "pool",
}
"""Fields of ``ConvRequest`` whose query parameter has another name."""


def query_name(loc: list[Any] | tuple[Any, ...], message: str = "") -> str:
    """The query parameter an error location of ``ConvRequest`` is about.

    ``("pool", "stride")`` → ``"pool_stride"``, ``("weight", 0, 1)`` → ``"weight"``; an error about the
    whole ``("pool",)`` is put on the pool parameter its sentence names.
    """
    parts = [str(p) for p in loc if p != "body"]
    if not parts:
        return "weight"
    if parts == ["pool"]:
        for word, name in (("padding", "pool_padding"), ("stride", "pool_stride"), ("kernel", "pool_kernel")):
            if word in message.lower():
                return name
    return QUERY_NAMES.get((parts[0], parts[1]) if len(parts) > 1 else (parts[0], ""), parts[0])


def _split(text: str | None, name: str, words: bool = False) -> Any:
    """Query text → int, list of ints, or (with ``words``) a word or list of words.

    ``"2"`` → 2, ``"1,2"`` → [1, 2], ``"same"`` → "same", ``"[[1, 0], [0, -1]]"`` → the JSON list.

    Raises
    ------
    QueryError
        422 naming ``name`` when the text is none of these (``--5``, a JSON list nested too deep ...).
    """
    if text is None:
        return None
    text = text.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except RecursionError:
            raise QueryError(name, f"{name} is a JSON list nested too deeply; at most 4 levels") from None
        except ValueError:
            raise QueryError(name, f"{name} starts with '[' but is not a JSON list") from None
    parts = [p.strip() for p in text.split(",")]
    if all(_INT.match(p) for p in parts):
        numbers = [int(p) for p in parts]
        return numbers[0] if len(numbers) == 1 else numbers
    if not words:
        raise QueryError(
            name, f"{name} must be an integer or comma-separated integers (like 2 or 1,2), got {text[:40]!r}"
        )
    return parts[0] if len(parts) == 1 else parts


def conv_query(
    image: str = Query(description="An upload's SHA-256, 'mnist:N' or 'sample:NAME'.", max_length=80),
    weight: str = Query(
        default="identity",
        max_length=20_000,
        description="A preset, comma-separated presets, or a JSON (KH, KW) / (F, C/groups, KH, KW) list.",
    ),
    color: str = Query(default="gray", max_length=8),
    max_side: int | None = Query(default=None),
    bias: str | None = Query(default=None, max_length=2000, description="Comma-separated, one per filter."),
    stride: str = Query(default="1", max_length=40),
    padding: str = Query(
        default="0", max_length=40, description="int, 'h,w', 't,b,l,r', valid, same or full"
    ),
    padding_mode: str = Query(
        default="zeros", max_length=12, description="zeros, reflect, replicate or circular"
    ),
    dilation: str = Query(default="1", max_length=40),
    groups: int = Query(default=1),
    activation: str = Query(default="none", max_length=8),
    pool: str | None = Query(default=None, max_length=8, description="max or avg"),
    pool_kernel: str = Query(default="2", max_length=40),
    pool_stride: str | None = Query(default=None, max_length=40),
    pool_padding: str = Query(default="0", max_length=40),
    ceil_mode: bool = Query(default=False),
) -> dict[str, Any]:
    """The query of ``/api/conv.png`` (and the animations) as the fields of a ``ConvRequest`` body.

    Validated by the route with :func:`validate_conv_query`, so that errors name the query parameter.
    """
    fields: dict[str, Any] = {
        "image": image,
        "weight": _split(weight, "weight", words=True) if weight.strip().startswith("[") or "," in weight
        else weight,
        "color": color,
        "max_side": max_side,
        "stride": _split(stride, "stride"),
        "padding": _split(padding, "padding", words=True),
        "padding_mode": padding_mode,
        "dilation": _split(dilation, "dilation"),
        "groups": groups,
        "activation": activation,
    }
    if bias is not None:
        fields["bias"] = [part.strip() for part in bias.split(",")]
    if pool:
        fields["pool"] = {
            "mode": pool,
            "kernel_size": _split(pool_kernel, "pool_kernel"),
            "stride": _split(pool_stride, "pool_stride"),
            "padding": _split(pool_padding, "pool_padding"),
            "ceil_mode": ceil_mode,
        }
    return fields


def validate_conv_query(fields: dict[str, Any]) -> ConvRequest | OrjsonResponse:
    """``ConvRequest`` from :func:`conv_query`'s fields, or a 422 whose locations are query parameters."""
    try:
        return ConvRequest.model_validate(fields)
    except ValidationError as exc:
        detail = [
            {"loc": ["query", query_name(e["loc"], e["msg"])], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors()[:MAX_REPORTED_ERRORS]
        ]
        return OrjsonResponse({"detail": detail}, status_code=422)


@router.get(
    "/conv.png",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}}, "description": "The feature maps as one PNG grid."},
        304: {"description": "Not modified (If-None-Match matched the ETag)."},
        **COMPUTE_ERRORS,
    },
)
async def get_conv_png(
    http: Request,
    settings: SettingsDep,
    fields: Annotated[dict[str, Any], Depends(conv_query)],
    stage: str = Query(default="conv", max_length=8, description="conv or pool: which maps to draw"),
    columns: int | None = Query(default=None, ge=1, le=64, description="Maps per row."),
    if_none_match: str | None = Header(default=None),
) -> Response:
    """The feature maps of the same parameters as ``POST /api/conv`` as one PNG grid, for slides.

    Cacheable: the ETag is derived from the normalised parameters and the image id.
    """
    request = validate_conv_query(fields)
    if isinstance(request, OrjsonResponse):
        return request
    if stage not in ("conv", "pool"):
        raise QueryError("stage", f"stage must be 'conv' or 'pool', got {stage!r}")
    with query_errors():
        await run_in_threadpool(image_info, request.image, settings)  # 404 before anything else
        key = json.dumps([RENDER_VERSION, request.model_dump(mode="json"), stage, columns], sort_keys=True)
        etag = '"' + hashlib.sha256(key.encode()).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=3600"}
        if if_none_match and etag in [t.strip() for t in if_none_match.split(",")]:
            return Response(status_code=304, headers=headers)

        def build(req: ConvRequest, st: Settings, layer: Layer) -> bytes:
            check_pictures(conv_pixels(layer.prepared, req.pool is not None), st)
            result = layer.forward(req.activation, req.pool, {})
            maps = result.pooled if stage == "pool" and result.pooled is not None else result.conv
            return grid_png(maps[0], columns=columns)

        png, _ = await layer_body("GET /api/conv.png", request, http, settings, build, cache=False)
        return Response(png, media_type="image/png", headers=headers)


@contextlib.contextmanager
def query_errors() -> Iterator[None]:
    """Re-address a 422 about a body field (from ``core`` or a check) to its query parameter."""
    try:
        yield
    except QueryError:
        raise
    except BodyError as exc:
        raise QueryError(query_name(exc.loc[1:], exc.message), exc.message) from None
    except ValueError as exc:
        message = str(exc) or exc.__class__.__name__
        raise QueryError(field_for(message), message) from None
