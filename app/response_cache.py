"""A bounded in-process cache of computed response bodies (``/api/conv``, ``/api/explain``, ...).

A class works on the same samples, digits and presets, and a slider dragged back and forth asks the
same question again, so the service keeps the JSON bytes it computed, keyed by the *normalised*
request, and answers a repeated question without recomputing it.

- **Key**: the endpoint, a fingerprint of the settings (store folder, size limits, ...) and the
  validated request as canonical JSON (``model_dump(mode="json")``, keys sorted): defaults filled in,
  numbers parsed. The key is the full text, not a hash of it, so two different requests can never
  share an entry (a different spelling of the same request, e.g. ``stride: 1`` and ``[1, 1]``, is a
  separate entry — a miss, never a wrong answer).
- **Why the image id is a safe key**: an upload's id is the SHA-256 of its stored bytes (an id names
  one image forever) and the built-in ``mnist:N`` / ``sample:NAME`` images never change while the
  process runs. Only successful answers are stored, so no error is ever replayed.
- **Integrity**: a hit on an upload still reads the stored file and checks its hash
  (:meth:`app.store.UploadStore.read`): a file that was deleted gives 404 and a file that no longer
  matches its hash gives 410, exactly as without the cache — and the same answer from every worker,
  whichever one happens to hold the entry. (A cached body was computed from bytes that did match the
  hash, so the cache could never serve a tampered image; the check keeps it from hiding one.)
- **Budget**: least recently used entries go first once the bytes held (bodies + keys) exceed
  ``CONVLENS_RESPONSE_CACHE_BYTES`` (per worker process; 0 disables the cache). A body larger than a
  quarter of the budget is not stored, so one huge answer cannot flush the rest.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import orjson
from fastapi import Response
from pydantic import BaseModel

from app.responses import body_response, json_bytes
from app.schemas import ConvRequest
from app.settings import Settings
from app.store import is_stored_id

CACHE_HEADER = "X-Convlens-Cache"
"""Response header: ``hit`` or ``miss`` (absent when the cache is disabled)."""

FORMAT_VERSION = b"1"
"""Part of every key: bump when the bodies change for the same request (new fields, new pictures)."""


class ResponseCache:
    """A thread-safe LRU map ``key bytes → body bytes`` holding at most ``budget`` bytes.

    Parameters
    ----------
    budget : int
        Bytes of keys + bodies to hold; 0 holds nothing.

    Attributes
    ----------
    hits, misses : int
        Lookups answered / not answered since the start (or :meth:`clear`).
    """

    def __init__(self, budget: int) -> None:
        self._entries: OrderedDict[bytes, bytes] = OrderedDict()
        self._lock = threading.Lock()
        self._budget = max(0, int(budget))
        self.size = 0
        self.hits = 0
        self.misses = 0

    @property
    def budget(self) -> int:
        """Bytes the cache may hold."""
        return self._budget

    @budget.setter
    def budget(self, value: int) -> None:
        with self._lock:
            self._budget = max(0, int(value))
            self._shrink()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: bytes) -> bytes | None:
        """The body stored under ``key`` (and mark it as just used), or None."""
        with self._lock:
            body = self._entries.get(key)
            if body is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: bytes, body: bytes) -> bool:
        """Store ``body`` under ``key``, evicting the least recently used; False when it is too large."""
        cost = len(key) + len(body)
        with self._lock:
            if cost > self._budget // 4:
                return False
            old = self._entries.pop(key, None)
            if old is not None:
                self.size -= len(key) + len(old)
            self._entries[key] = body
            self.size += cost
            self._shrink()
            return True

    def clear(self) -> None:
        """Forget every entry and the counters."""
        with self._lock:
            self._entries.clear()
            self.size = self.hits = self.misses = 0

    def _shrink(self) -> None:
        while self.size > self._budget and self._entries:
            key, body = self._entries.popitem(last=False)
            self.size -= len(key) + len(body)


_cache = ResponseCache(0)
_fingerprints: dict[int, tuple[Settings, bytes]] = {}


def process_cache() -> ResponseCache:
    """The one cache of this process (whatever its budget; tests inspect and clear it)."""
    return _cache


def cache_for(settings: Settings) -> ResponseCache | None:
    """The process-wide cache with ``settings.response_cache_bytes`` as its budget; None when that is 0."""
    if settings.response_cache_bytes <= 0:
        return None
    if _cache.budget != settings.response_cache_bytes:
        _cache.budget = settings.response_cache_bytes
    return _cache


def settings_fingerprint(settings: Settings) -> bytes:
    """Every setting as canonical JSON: answers computed under other settings never match."""
    known = _fingerprints.get(id(settings))
    if known is not None and known[0] is settings:
        return known[1]
    fingerprint = orjson.dumps(settings.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    if len(_fingerprints) > 64:  # tests build many Settings objects; a server has one
        _fingerprints.clear()
    _fingerprints[id(settings)] = (settings, fingerprint)
    return fingerprint


def cache_key(endpoint: str, request: BaseModel, settings: Settings, *extra: Any) -> bytes:
    """``endpoint NUL settings NUL request JSON NUL extra JSON`` (canonical: keys sorted).

    Parameters
    ----------
    endpoint : str
        E.g. ``"POST /api/conv"``.
    request : BaseModel
        The validated request.
    settings : Settings
    *extra
        Anything else the body depends on (JSON-serialisable).
    """
    body = orjson.dumps(request.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    tail = orjson.dumps(list(extra), option=orjson.OPT_SORT_KEYS)
    return b"\0".join((FORMAT_VERSION, endpoint.encode(), settings_fingerprint(settings), body, tail))


def check_image(image_id: str, settings: Settings) -> None:
    """What a fresh computation would check before a cached body is reused: the stored upload is still
    there (else 404) and still matches its hash (else 410); so is a stored activation. Built-in images
    never change."""
    if is_stored_id(image_id):
        from app.image_source import store_for  # late: image_source imports heavier modules

        store_for(settings).read(image_id)


def cached_body(
    endpoint: str,
    request: BaseModel,
    image_id: str,
    settings: Settings,
    compute: Callable[[], bytes],
    *extra: Any,
) -> tuple[bytes, str | None]:
    """The body for ``request``: from the cache when held (after :func:`check_image`), else ``compute()``.

    Returns
    -------
    body : bytes
    state : {"hit", "miss"} or None
        None when the cache is disabled.
    """
    cache = cache_for(settings)
    if cache is None:
        return compute(), None
    key = cache_key(endpoint, request, settings, *extra)
    body = cache.get(key)
    if body is not None:
        check_image(image_id, settings)
        return body, "hit"
    body = compute()
    cache.put(key, body)
    return body, "miss"


def cached_json_response(
    endpoint: str,
    request: ConvRequest,
    settings: Settings,
    build: Callable[[Any, Settings], dict[str, Any]],
) -> Response:
    """The JSON answer ``build(request, settings)``, served from the cache when held.

    The whole route of an endpoint whose body depends only on the request, its image and the settings
    (explain, im2col, backward); ``X-Convlens-Cache`` says whether it was a hit.
    """
    body, state = cached_body(
        endpoint, request, request.image, settings, lambda: json_bytes(build(request, settings))
    )
    return body_response(body, state)


def with_field(body: bytes, name: str, value: Any) -> bytes:
    """A JSON object's bytes with ``"name": value`` appended as its last member.

    Used to attach this request's ``timing_ms`` to a cached body. ``body`` must be a JSON object with at
    least one member (as orjson writes it: ``{...}`` with no trailing whitespace).
    """
    if not (body.startswith(b"{") and body.endswith(b"}")) or body == b"{}":
        raise ValueError("with_field needs a non-empty JSON object")
    return b"".join((body[:-1], b",", orjson.dumps(name), b":", orjson.dumps(value), b"}"))


def elapsed_ms(start: float) -> float:
    """Milliseconds since ``start`` (a ``time.perf_counter()`` value)."""
    return (time.perf_counter() - start) * 1000
