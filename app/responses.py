"""JSON responses through orjson (numpy arrays serialise directly, float32 with its shortest repr)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
from fastapi import Response
from fastapi.responses import JSONResponse

from app.render import data_url, levels, map_png

MAX_JSON_INT = 2**53 - 1


class OrjsonResponse(JSONResponse):
    """``application/json`` rendered by orjson with numpy support."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json_bytes(content)


def json_bytes(content: Any) -> bytes:
    """JSON bytes as :class:`OrjsonResponse` writes them (numpy arrays included)."""
    return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)


def body_response(body: bytes, cache_state: str | None, headers: dict[str, str] | None = None) -> Response:
    """An ``application/json`` response of ready-made bytes, saying whether they came from the cache."""
    out = dict(headers or {})
    if cache_state is not None:
        out["X-Convlens-Cache"] = cache_state
    return Response(body, media_type="application/json", headers=out)


def arr(values: np.ndarray) -> np.ndarray:
    """A C-contiguous copy-if-needed (what orjson's numpy support requires)."""
    return np.ascontiguousarray(values)


def json_safe(value: Any) -> Any:
    """Ints beyond what JSON readers hold exactly (2^53) become floats; recursive over dicts and lists."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return float(value) if abs(value) > MAX_JSON_INT else value
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def map_entry(index: int, values: np.ndarray, include_values: bool, pictures: str = "png") -> dict[str, Any]:
    """One feature map for the JSON: index, min, max, colour map, picture and (optionally) values.

    Parameters
    ----------
    index : int
    values : ndarray, shape (H, W)
    include_values : bool
    pictures : {"png", "levels"}
        ``png``: a PNG data URL under ``png``; ``levels``: 8-bit colour-map levels under ``levels``
        (:func:`app.render.levels`) and no ``png``.
    """
    lo, hi = values.min(), values.max()  # numpy scalars: orjson writes float32 with its shortest text
    entry: dict[str, Any] = {"index": index, "min": lo, "max": hi}
    if pictures == "levels":
        picture = levels(values, float(lo), float(hi))
        entry["colormap"] = picture["colormap"]
        entry["levels"] = picture
    else:
        png, colormap, _, _ = map_png(values)
        entry["colormap"] = colormap
        entry["png"] = data_url(png)
    entry["values"] = arr(values) if include_values else None
    return entry


def server_timing(timing: dict[str, float]) -> str:
    """A ``Server-Timing`` header value, e.g. ``load;dur=0.2, conv;dur=1.3``."""
    return ", ".join(f"{name};dur={ms:.2f}" for name, ms in timing.items())
