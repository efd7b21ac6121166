"""A short-lived, bounded per-worker cache of prepared layers, shared by one slider step's requests.

One step of the page is ``POST /api/conv`` and then, for the panels on screen, explain, im2col and
backward with the *same* image, weights and geometry. Each of those used to load the image, resolve the
weights, check the layer and run the forward convolution again. A :class:`Layer` does that once: it holds
the :class:`~app.compute.Prepared` arrays and, computed on first use, the convolution output before the
activation. The follow-ups (usually answered by the same worker over the browser's keep-alive connection)
reuse it.

- **Key**: the fields that define the layer (image, color, max_side, weight, bias, stride, padding,
  dilation, groups) as canonical JSON, plus the settings' fingerprint — so activation, pooling,
  positions and upstream gradients, which are cheap, vary freely over one entry.
- **Integrity**: a hit on an upload re-reads and re-hashes the stored file, as the response cache does
  (404 if it was evicted, 410 if it no longer matches its hash).
- **Bounds**: at most ``Settings.layer_cache_bytes`` per worker (an entry above a quarter of it is not
  kept) and ``Settings.layer_cache_seconds`` after the last use; least recently used first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np
import orjson

from app.compute import Forward, Prepared, forward, prepare
from app.response_cache import check_image, settings_fingerprint
from app.schemas import ConvRequest, PoolSpec
from app.settings import Settings
from core.conv import conv2d

NOT_LAYER_FIELDS = frozenset({"activation", "pool", "values", "region"})
"""``ConvRequest`` fields applied after the convolution; every other field defines the prepared layer, so a
field added to ``ConvRequest`` later (as ``padding_mode`` was) is part of the cache key unless listed here."""
LAYER_FIELDS = tuple(name for name in ConvRequest.model_fields if name not in NOT_LAYER_FIELDS)
"""The request fields that define a prepared layer."""


class Layer:
    """A prepared layer and its convolution output, computed at most once.

    Parameters
    ----------
    prepared : Prepared
    """

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self.key: bytes | None = None
        self.load_ms = prepared.timing.get("load", 0.0)
        self._pre: np.ndarray | None = None
        self._steps: tuple[list[dict[str, Any]], list[str], dict[str, Any]] | None = None
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """Bytes held (input, weights, convolution output once computed)."""
        p = self.prepared
        held = p.x.nbytes + p.weight.nbytes
        return held + (self._pre.nbytes if self._pre is not None else 0)

    @property
    def macs(self) -> int:
        """Multiply-adds of the forward convolution."""
        return int(self.prepared.explanation.facts["macs"])

    def pre_activation(self) -> np.ndarray:
        """Convolution + bias, shape (1, F, OH, OW), float32, read-only (computed on first use)."""
        with self._lock:
            if self._pre is None:
                p = self.prepared
                pre = conv2d(p.x, p.weight, p.bias, **p.conv_kwargs)
                pre.setflags(write=False)
                self._pre = pre
            return self._pre

    def explained(self) -> tuple[list[dict[str, Any]], list[str], dict[str, Any]]:
        """The explanation's steps (as dicts), warnings and facts (without padding), computed once.

        Shared by every answer on this layer: callers must not modify them.
        """
        if self._steps is None:
            explanation = self.prepared.explanation
            self._steps = (
                [s.as_dict() for s in explanation.steps],
                list(explanation.warnings),
                {k: v for k, v in explanation.facts.items() if k != "padding"},
            )
        return self._steps

    def forward(self, activation: str, pool: PoolSpec | None, timing: dict[str, float]) -> Forward:
        """:func:`app.compute.forward` on the shared convolution output."""
        return forward(self.prepared, activation, pool, timing, pre=self.pre_activation)


class LayerCache:
    """Thread-safe LRU ``key → Layer`` bounded in bytes, in entries and in age.

    Parameters
    ----------
    budget : int
        Bytes; 0 keeps nothing.
    seconds : float
        An entry unused for this long is dropped.
    entries : int
        Most layers kept (one step's follow-ups need one; a class on one worker a few dozen).
    """

    def __init__(self, budget: int, seconds: float, entries: int = 128) -> None:
        self.budget = budget
        self.seconds = seconds
        self.entries = entries
        self._entries: OrderedDict[bytes, tuple[Layer, float, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.size = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> Layer | None:
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries[key] = (found[0], now, found[2])
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: bytes, layer: Layer) -> None:
        cost = layer.nbytes + len(key)
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= old[2]
            if cost > self.budget // 4:
                return
            self._entries[key] = (layer, time.monotonic(), cost)
            self.size += cost
            self._shrink()

    def grew(self, key: bytes, layer: Layer) -> None:
        """Account for a layer's output computed since it was stored; shrink to the budget."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] is not layer:
                return
            cost = layer.nbytes + len(key)
            self.size += cost - found[2]
            self._entries[key] = (layer, found[1], cost)
            if cost > self.budget // 4:
                del self._entries[key]
                self.size -= cost
            self._expire(time.monotonic())
            self._shrink()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.size = self.hits = self.misses = 0

    def _expire(self, now: float) -> None:
        while self._entries:
            key, (_, used, cost) = next(iter(self._entries.items()))
            if now - used <= self.seconds:
                break
            del self._entries[key]
            self.size -= cost

    def _shrink(self) -> None:
        while self._entries and (self.size > self.budget or len(self._entries) > self.entries):
            _, (_, _, cost) = self._entries.popitem(last=False)
            self.size -= cost


_cache = LayerCache(0, 0.0)


def process_layers() -> LayerCache:
    """This worker's layer cache (tests inspect and clear it)."""
    return _cache


def layer_key(request: ConvRequest, settings: Settings) -> bytes:
    """Canonical JSON of the layer-defining fields and the settings' fingerprint."""
    dumped = request.model_dump(mode="json", include=set(LAYER_FIELDS))
    return orjson.dumps(dumped, option=orjson.OPT_SORT_KEYS) + b"\0" + settings_fingerprint(settings)


def layer_for(request: ConvRequest, settings: Settings) -> Layer:
    """The prepared layer of ``request``: from this worker's cache when held, else :func:`prepare` d.

    Raises
    ------
    ApiError, BodyError
        As :func:`app.compute.prepare` (never cached).
    """
    if settings.layer_cache_bytes <= 0:
        return Layer(prepare(request, settings))
    _cache.budget, _cache.seconds = settings.layer_cache_bytes, settings.layer_cache_seconds
    key = layer_key(request, settings)
    layer = _cache.get(key)
    if layer is not None:
        check_image(request.image, settings)
        return layer
    layer = Layer(prepare(request, settings))
    layer.key = key
    _cache.put(key, layer)
    return layer


def after_use(layer: Layer) -> None:
    """Keep the cache within its budget once ``layer`` has grown by its output."""
    if layer.key is not None:
        _cache.grew(layer.key, layer)


__all__ = ["Layer", "LayerCache", "after_use", "layer_for", "layer_key", "process_layers"]
