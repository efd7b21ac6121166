"""Running one layer computation: response cache → admission gate → shared layer → body bytes.

Every endpoint computing on an image layer (conv, explain, im2col, backward, conv.png) goes through
:func:`layer_body`:

1. a response-cache hit is answered at once (after the upload integrity check);
2. otherwise the job waits for the worker's ``light`` gate (:mod:`app.admission`), prepares the layer
   (or takes it from :mod:`app.layer_cache`) and checks the budgets;
3. a job whose work is above ``Settings.heavy_macs`` leaves the light gate and runs behind the ``heavy``
   gate, on the worker's low-priority thread;
4. the body is built, cached and returned.

A job that is certainly tiny (an MNIST digit, a few small filters: :func:`tiny`) skips the gate and the hop
to a thread and runs on the event loop at once: it takes less time than the hop itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi.concurrency import run_in_threadpool
from starlette.requests import Request

from app.admission import gate
from app.layer_cache import Layer, after_use, layer_for
from app.response_cache import cache_for, cache_key, check_image
from app.settings import Settings
from app.store import is_stored_id
from core.kernels import PRESETS

Build = Callable[[Any, Settings, Layer], bytes]

TINY_MACS = 300_000
"""A job below this many multiply-adds (estimated from the request alone) runs inline on the event loop."""
MNIST_SIDE = 28


def _ints(value: Any) -> list[int] | None:
    if isinstance(value, int):
        return [value]
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return list(value)
    return None


def tiny(request: Any, factor: int = 1) -> bool:
    """Whether ``request`` is certainly below :data:`TINY_MACS` × ``factor``: an MNIST digit (28×28, one
    channel), a numeric padding, and at most that many multiply-adds with every output position counted."""
    if not str(request.image).startswith("mnist:") or request.color != "gray":
        return False
    padding = _ints(request.padding)
    if padding is None:
        return False
    weight = request.weight
    if isinstance(weight, str):
        preset = PRESETS.get(weight)
        taps = len(preset.weights) * len(preset.weights[0]) if preset else 10**9
    elif weight and isinstance(weight[0], str):
        sizes = [PRESETS[n].weights for n in weight if n in PRESETS]
        taps = sum(len(k) * len(k[0]) for k in sizes) if len(sizes) == len(weight) else 10**9
    else:
        taps = int(np.asarray(weight, dtype=np.float32).size)
    side = MNIST_SIDE + 2 * max(padding)
    return taps * side * side * factor < TINY_MACS


class _Heavy:
    """A prepared layer whose work is too large for the light gate."""

    def __init__(self, layer: Layer) -> None:
        self.layer = layer


async def layer_body(
    endpoint: str,
    request: Any,
    http: Request | None,
    settings: Settings,
    build: Build,
    cost: Callable[[Layer], int] | None = None,
    extra: tuple[Any, ...] = (),
    cache: bool = True,
) -> tuple[bytes, str | None]:
    """The body of ``build(request, settings, layer)``, cached and admitted.

    Parameters
    ----------
    endpoint : str
        Part of the cache key, e.g. ``"POST /api/conv"``.
    request : ConvRequest (or a subclass)
    http : Request or None
        To skip the work when the client has gone.
    settings : Settings
    build : callable
        ``(request, settings, layer) → bytes``; runs on a worker thread.
    cost : callable, optional
        ``layer → multiply-adds`` of the whole job (default: the forward's); above
        ``settings.heavy_macs`` the job is heavy.
    extra : tuple
        Anything else the body depends on (cache key).
    cache : bool
        Use the response cache.

    Returns
    -------
    body : bytes
    state : {"hit", "miss"} or None
    """
    store = cache_for(settings) if cache else None
    key = b""
    if store is not None:
        key = cache_key(endpoint, request, settings, *extra)
        body = store.get(key)
        if body is not None:
            if is_stored_id(request.image):
                await run_in_threadpool(check_image, request.image, settings)
            return body, "hit"
    measure = cost or (lambda layer: layer.macs)

    def light() -> bytes | _Heavy:
        layer = layer_for(request, settings)
        if measure(layer) > settings.heavy_macs:
            return _Heavy(layer)
        try:
            return build(request, settings, layer)
        finally:
            after_use(layer)

    def heavy(layer: Layer) -> bytes:
        try:
            return build(request, settings, layer)
        finally:
            after_use(layer)

    if settings.heavy_macs >= TINY_MACS and tiny(request, 3 if cost is not None else 1):
        out = light()
    else:
        out = await gate("light", settings).run(http, light)
    if isinstance(out, _Heavy):
        out = await gate("heavy", settings).run(http, heavy, out.layer)
    if store is not None:
        store.put(key, out)
    return out, (None if store is None else "miss")
