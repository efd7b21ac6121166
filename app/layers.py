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

LAYER_FIELDS = ("image", "color", "max_side", "weight", "bias", "stride", "padding", "dilation", "groups")
"""The request fields that define a prepared layer."""


class Layer:
    """A prepared layer and its convolution output, computed at most once.

    Parameters
    ----------
    prepared : Prepared
    """

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared
        self._pre: np.ndarray | None = None
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

    def forward(self, activation: str, pool: PoolSpec | None, timing: dict[str, float]) -> Forward:
        """:func:`app.compute.forward` on the shared convolution output."""
        return forward(self.prepared, activation, pool, timing, pre=self.pre_activation)


class LayerCache:
    """Thread-safe LRU ``key → Layer`` bounded in bytes and in age.

    Parameters
    ----------
    budget : int
        Bytes; 0 keeps nothing.
    seconds : float
        An entry unused for this long is dropped.
    """

    def __init__(self, budget: int, seconds: float) -> None:
        self.budget = budget
        self.seconds = seconds
        self._entries: OrderedDict[bytes, tuple[Layer, float]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def size(self) -> int:
        """Bytes held now."""
        with self._lock:
            return sum(layer.nbytes + len(key) for key, (layer, _) in self._entries.items())

    def get(self, key: bytes) -> Layer | None:
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            found = self._entries.get(key)
            if found is None:
                self.misses += 1
                return None
            self._entries[key] = (found[0], now)
            self._entries.move_to_end(key)
            self.hits += 1
            return found[0]

    def put(self, key: bytes, layer: Layer) -> None:
        with self._lock:
            self._entries[key] = (layer, time.monotonic())
            self._entries.move_to_end(key)
            self._shrink()

    def trim(self) -> None:
        """Drop expired entries and shrink to the budget (after a layer grew by its output)."""
        with self._lock:
            self._expire(time.monotonic())
            self._shrink()

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.hits = self.misses = 0

    def _expire(self, now: float) -> None:
        while self._entries:
            key, (_, used) = next(iter(self._entries.items()))
            if now - used <= self.seconds:
                break
            del self._entries[key]

    def _shrink(self) -> None:
        sizes = {key: layer.nbytes + len(key) for key, (layer, _) in self._entries.items()}
        total = sum(sizes.values())
        for key, size in list(sizes.items()):
            if total <= self.budget and size <= self.budget // 4:
                continue
            if key in self._entries:
                del self._entries[key]
                total -= size


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
        layer.prepared.timing = {"load": 0.0}
        return layer
    layer = Layer(prepare(request, settings))
    _cache.put(key, layer)
    return layer


def after_use() -> None:
    """Keep the cache within its budget once layers have grown by their outputs."""
    _cache.trim()


__all__: list[Any] = ["Layer", "LayerCache", "layer_for", "layer_key", "process_layers", "after_use"]
