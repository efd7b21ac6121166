"""The response cache (app/response_cache.py): exact hits, no collisions, the byte budget, and integrity.

References: every cached answer is compared with the same request answered by an app whose cache is
disabled (``response_cache_bytes=0``, a fresh computation), and conv values with ``core.conv.conv2d``
run here; the LRU is checked against a plain list model.
"""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator

import numpy as np
import orjson
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.image_source import clear_caches
from app.main import create_app
from app.response_cache import CACHE_HEADER, ResponseCache, process_cache, with_field
from app.settings import Settings
from core.conv import conv2d
from core.mnist import load_mnist

CONV = {"image": "mnist:7", "weight": "sobel_x", "padding": 1, "activation": "relu", "values": True,
        "pool": {"mode": "max", "kernel_size": 2}}


@pytest.fixture(autouse=True)
def fresh_caches() -> Iterator[None]:
    process_cache().clear()
    clear_caches()
    yield
    process_cache().clear()
    clear_caches()


@pytest.fixture
def cached(tmp_path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store_dir=tmp_path / "store"))) as client:
        yield client


@pytest.fixture
def uncached(tmp_path) -> Iterator[TestClient]:
    """The same store, no response cache: every answer is computed."""
    settings = Settings(store_dir=tmp_path / "store", response_cache_bytes=0)
    with TestClient(create_app(settings)) as client:
        yield client


def without_timing(response) -> dict:
    body = response.json()
    body.pop("timing_ms", None)
    return body


def photo_png(seed: int, width: int = 40, height: int = 30) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


def upload(client: TestClient, data: bytes) -> str:
    response = client.post("/api/images", files={"file": ("p.png", data, "image/png")})
    assert response.status_code in (200, 201), response.text
    return str(response.json()["id"])


# ------------------------------------------------------------------------------------------ the LRU


def test_lru_keeps_the_budget_and_evicts_least_recently_used_first():
    rng = np.random.default_rng(0)
    cache = ResponseCache(budget=4000)
    model: list[tuple[bytes, bytes]] = []  # least recently used first
    for step in range(400):
        key = f"k{rng.integers(0, 30)}".encode()
        if rng.random() < 0.5:
            got = cache.get(key)
            held = [body for k, body in model if k == key]
            assert got == (held[0] if held else None)
            if held:
                model = [(k, b) for k, b in model if k != key] + [(key, held[0])]
        else:
            body = bytes([step % 256]) * int(rng.integers(1, 1100))
            stored = cache.put(key, body)
            assert stored == (len(key) + len(body) <= 1000)  # at most a quarter of the budget
            if stored:
                model = [(k, b) for k, b in model if k != key] + [(key, body)]
                while sum(len(k) + len(b) for k, b in model) > 4000:
                    model.pop(0)
        assert cache.size == sum(len(k) + len(b) for k, b in model) <= 4000
        assert len(cache) == len(model)


def test_shrinking_the_budget_evicts_and_zero_holds_nothing():
    cache = ResponseCache(budget=10_000)
    for i in range(10):
        assert cache.put(f"{i}".encode(), b"x" * 900)
    cache.budget = 2000
    assert cache.size <= 2000 and cache.get(b"9") is not None and cache.get(b"0") is None
    cache.budget = 0
    assert cache.size == 0 and len(cache) == 0 and not cache.put(b"a", b"b")


def test_with_field_appends_a_member():
    joined = orjson.loads(with_field(b'{"a":1}', "timing_ms", {"total": 1.5}))
    assert joined == {"a": 1, "timing_ms": {"total": 1.5}}
    with pytest.raises(ValueError, match="with_field needs a non-empty JSON object"):
        with_field(b"{}", "x", 1)


# ------------------------------------------------------------------------------------ exact hits


def test_a_repeated_conv_is_a_hit_with_the_same_bytes_and_fresh_timing(cached, uncached):
    first = cached.post("/api/conv", json=CONV)
    second = cached.post("/api/conv", json=CONV)
    assert first.status_code == second.status_code == 200
    assert first.headers[CACHE_HEADER] == "miss" and second.headers[CACHE_HEADER] == "hit"
    # the bytes before this request's timing_ms are identical
    cut = first.content.rindex(b',"timing_ms":')
    assert second.content[:cut] == first.content[:cut] and second.content.rindex(b',"timing_ms":') == cut
    assert set(second.json()["timing_ms"]) == {"cache", "total"}
    assert "total;dur=" in second.headers["server-timing"]
    # and equal to a fresh computation, whose values equal core's
    fresh = uncached.post("/api/conv", json=CONV)
    assert CACHE_HEADER not in fresh.headers
    assert without_timing(second) == without_timing(fresh)
    x = (load_mnist()[0][7].astype(np.float32) / np.float32(255))[None, None]
    kernel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float32)[None, None]
    expected = np.maximum(conv2d(x, kernel, None, padding=1), 0)[0, 0]
    np.testing.assert_array_equal(np.array(second.json()["conv"]["maps"][0]["values"], np.float32), expected)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/explain", {**CONV, "padding": "same", "position": [0, 10, 11]}),
        ("/api/im2col", {"image": "mnist:7", "weight": "sobel_x", "padding": 1, "indices": True}),
        ("/api/backward", {**CONV, "target": "pool", "upstream": {"kind": "random", "seed": 3}}),
    ],
)
def test_other_endpoints_hit_with_identical_bytes(cached, uncached, path, body):
    first, second = cached.post(path, json=body), cached.post(path, json=body)
    assert first.status_code == 200 and second.status_code == 200
    assert (first.headers[CACHE_HEADER], second.headers[CACHE_HEADER]) == ("miss", "hit")
    assert second.content == first.content
    assert second.content == uncached.post(path, json=body).content


def test_the_cache_can_be_disabled(uncached):
    for _ in range(2):
        response = uncached.post("/api/conv", json=CONV)
        assert response.status_code == 200 and CACHE_HEADER not in response.headers
    assert len(process_cache()) == 0


# ---------------------------------------------------------------------------------- no collisions


def variants() -> list[tuple[str, dict]]:
    """Requests that differ from CONV (or from each other) in one field, some only in the last digit."""
    base = {k: v for k, v in CONV.items() if k != "pool"}
    kernel = [[0.1, 0.2, 0.3], [0.0, 1.0, 0.0], [-0.3, -0.2, -0.1]]
    nudged = [row[:] for row in kernel]
    nudged[1][1] = float(np.nextafter(np.float32(1.0), np.float32(2.0)))  # the next float32 after 1
    out: list[tuple[str, dict]] = [
        ("/api/conv", CONV),
        ("/api/conv", base),
        ("/api/conv", {**base, "stride": 2}),
        ("/api/conv", {**base, "padding": 0}),
        ("/api/conv", {**base, "padding": [1, 0]}),
        ("/api/conv", {**base, "padding": "same"}),
        ("/api/conv", {**base, "dilation": 2}),
        ("/api/conv", {**base, "activation": "none"}),
        ("/api/conv", {**base, "values": False}),
        ("/api/conv", {**base, "weight": "sobel_y"}),
        ("/api/conv", {**base, "weight": ["sobel_x", "sobel_y"]}),
        ("/api/conv", {**base, "weight": ["sobel_y", "sobel_x"]}),
        ("/api/conv", {**base, "weight": kernel}),
        ("/api/conv", {**base, "weight": nudged}),
        ("/api/conv", {**base, "weight": kernel, "bias": [0.5]}),
        ("/api/conv", {**base, "weight": kernel, "bias": [-0.5]}),
        ("/api/conv", {**base, "image": "mnist:8"}),
        ("/api/conv", {**base, "pool": {"mode": "avg", "kernel_size": 2}}),
        ("/api/conv", {**base, "pool": {"mode": "max", "kernel_size": 3}}),
        ("/api/conv", {**base, "region": {"y0": 0, "y1": 4, "x0": 0, "x1": 4}}),
        ("/api/conv", {"image": "sample:astronaut", "max_side": 32, "weight": "sobel_x"}),
        ("/api/conv", {"image": "sample:astronaut", "max_side": 33, "weight": "sobel_x"}),
        ("/api/conv", {"image": "sample:astronaut", "max_side": 32, "weight": "sobel_x", "color": "rgb"}),
        ("/api/explain", {**base, "position": [0, 5, 6]}),
        ("/api/explain", {**base, "position": [0, 6, 5]}),
        ("/api/im2col", {**base, "indices": True}),
        ("/api/im2col", {**base, "indices": False}),
        ("/api/im2col", {**base, "columns": [0, 10]}),
        ("/api/backward", {**base, "upstream": {"kind": "random", "seed": 1}}),
        ("/api/backward", {**base, "upstream": {"kind": "random", "seed": 2}}),
        ("/api/backward", {**base, "upstream": {"kind": "onehot", "position": [0, 3, 4]}}),
    ]
    return out


def test_different_requests_never_share_an_entry(cached, uncached):
    requests = variants()
    first = [cached.post(path, json=body) for path, body in requests]
    wrong = [(r.status_code, r.text[:200]) for r in first if r.headers.get(CACHE_HEADER) != "miss"]
    assert not wrong and all(r.status_code == 200 for r in first), wrong
    assert len(process_cache()) == len(requests)
    for (path, body), before in zip(requests, first, strict=True):
        again = cached.post(path, json=body)
        assert again.headers[CACHE_HEADER] == "hit"
        fresh = uncached.post(path, json=body)
        assert without_timing(again) == without_timing(before) == without_timing(fresh)


def test_answers_under_other_settings_are_not_reused(tmp_path):
    body = {"image": "sample:camera", "weight": "sobel_x"}
    shapes = []
    for side in (64, 48):
        with TestClient(create_app(Settings(store_dir=tmp_path, max_side=side))) as client:
            response = client.post("/api/conv", json=body)
            assert response.headers[CACHE_HEADER] == "miss"
            shapes.append(response.json()["input"]["shape"][2:])
    assert max(shapes[0]) == 64 and max(shapes[1]) == 48


# ------------------------------------------------------------------------------------ the budget


def test_the_budget_is_respected_by_the_service(tmp_path):
    budget = 200_000
    with TestClient(create_app(Settings(store_dir=tmp_path, response_cache_bytes=budget))) as client:
        for index in range(40):
            response = client.post("/api/conv", json={**CONV, "image": f"mnist:{index}"})
            assert response.status_code == 200
            assert process_cache().size <= budget
        held = len(process_cache())
        assert 0 < held < 40  # some were evicted
        # the newest is held, the oldest is not
        assert client.post("/api/conv", json={**CONV, "image": "mnist:39"}).headers[CACHE_HEADER] == "hit"
        assert client.post("/api/conv", json={**CONV, "image": "mnist:0"}).headers[CACHE_HEADER] == "miss"


def test_concurrent_requests_get_identical_answers(cached):
    bodies: list[bytes] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(5):
            response = cached.post("/api/explain", json={**CONV, "position": [0, 4, 4]})
            with lock:
                bodies.append(response.content)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(bodies) == 30 and len(set(bodies)) == 1


# ------------------------------------------------------------------------------------- integrity


def test_a_tampered_upload_is_410_even_when_its_answer_is_cached(cached, tmp_path):
    image_id = upload(cached, photo_png(1))
    requests = [
        ("/api/conv", {"image": image_id, "color": "rgb", "weight": "sobel_x", "values": True}),
        ("/api/explain", {"image": image_id, "weight": "sobel_x", "position": [0, 3, 3]}),
        ("/api/im2col", {"image": image_id, "weight": "sobel_x"}),
        ("/api/backward", {"image": image_id, "weight": "sobel_x"}),
    ]
    good = {}
    for path, body in requests:
        assert cached.post(path, json=body).headers[CACHE_HEADER] == "miss"
        hit = cached.post(path, json=body)
        assert hit.status_code == 200 and hit.headers[CACHE_HEADER] == "hit"
        good[path] = without_timing(hit)
    path_on_disk = tmp_path / "store" / f"{image_id}.png"
    original = path_on_disk.read_bytes()
    forged = io.BytesIO()
    Image.new("RGB", (40, 30), "red").save(forged, "PNG")  # a valid PNG: only the hash can tell
    path_on_disk.write_bytes(forged.getvalue())
    for path, body in requests:
        response = cached.post(path, json=body)
        assert response.status_code == 410, (path, response.status_code, response.text[:200])
        assert "corrupt" in response.json()["detail"]
    # a request not in the response cache, whose array is cached, is refused the same way
    other = cached.post("/api/conv", json={"image": image_id, "color": "rgb", "weight": "sobel_y"})
    assert other.status_code == 410
    # deleted: 404, as without the cache
    path_on_disk.unlink()
    assert cached.post(requests[0][0], json=requests[0][1]).status_code == 404
    # uploading the image again repairs the store; the cached answers are the right ones again
    assert upload(cached, photo_png(1)) == image_id and path_on_disk.read_bytes() == original
    for path, body in requests:
        response = cached.post(path, json=body)
        assert response.status_code == 200 and response.headers[CACHE_HEADER] == "hit"
        assert without_timing(response) == good[path]


def test_errors_are_not_cached(cached):
    data = photo_png(2)
    missing = hashlib.sha256(b"not yet").hexdigest()
    assert cached.post("/api/conv", json={"image": missing}).status_code == 404
    assert cached.post("/api/conv", json={**CONV, "weight": "no_such_kernel"}).status_code == 422
    assert len(process_cache()) == 0
    image_id = upload(cached, data)
    first = cached.post("/api/conv", json={"image": image_id})
    assert first.status_code == 200 and first.headers[CACHE_HEADER] == "miss"
