"""Every limit at its edge: exactly at the limit passes, one over is refused with its status and sentence.

Limits are read at test time (``GET /api/limits`` or the ``Settings`` a test builds with a small override),
never copied from the defaults, so the tests hold when a budget is retuned. The expected sizes (multiply-adds,
im2col bytes, output sizes) are worked out here from the textbook formulas.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import io
import json
import os
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from textbook import conv_out

from app.main import create_app
from app.routes.images import MULTIPART_OVERHEAD
from app.settings import Settings
from app.store import StoreFull, UploadStore
from core import network


@pytest.fixture
def make_client(tmp_path):
    """``make_client(**overrides)``: a TestClient whose settings differ from the defaults by those."""
    clients = []

    def build(**overrides) -> TestClient:
        client = TestClient(create_app(Settings(store_dir=tmp_path / f"store{len(clients)}", **overrides)))
        clients.append(client.__enter__())
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


def assert_refused(response, status: int, *words: str, field: str | None = None) -> str:
    """The status, and a message naming the limit; for a 422, the field it is about."""
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    if isinstance(detail, list):
        if field is not None:
            assert any(d["loc"][:2] == ["body", field] for d in detail), detail
        text = " ".join(d["msg"] for d in detail)
    else:
        text = detail
    for word in words:
        assert word in text, text
    return text


def png_of(width: int, height: int, seed: int = 0) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return buffer.getvalue()


# --------------------------------------------------------------------------------------------- JSON bytes


def _json_body_of_exactly(size: int) -> bytes:
    """A valid conv request padded with trailing whitespace (still valid JSON) to exactly ``size`` bytes."""
    body = json.dumps({"image": "mnist:0", "weight": "sobel_x"}).encode()
    assert len(body) <= size
    return body + b" " * (size - len(body))


@pytest.mark.parametrize("streamed", [False, True], ids=["content-length", "chunked"])
def test_json_body_at_the_limit_passes_and_one_byte_over_is_413(make_client, streamed):
    limit = 4096
    client = make_client(max_json_bytes=limit)
    headers = {"content-type": "application/json"}
    for size, status in ((limit, 200), (limit + 1, 413)):
        body = _json_body_of_exactly(size)
        content = iter([body[: size // 2], body[size // 2 :]]) if streamed else body
        response = client.post("/api/conv", content=content, headers=headers)
        if status == 200:
            assert response.status_code == 200, response.text
        else:
            assert_refused(response, 413, f"larger than {limit} bytes, the limit for JSON requests")


def post_endless(app, path: str, content_type: bytes, head: bytes, chunk: int, chunks: int, headers=()):
    """POST a body with no Content-Length straight to the ASGI app, one ``chunk`` of filler at a time,
    up to ``chunks`` of them; returns the status, the response body and how many filler bytes were pulled
    (and keeps the response headers in ``post_endless.headers``).

    (The TestClient reads a whole body before the app sees it, so it cannot show where reading stops.)
    """
    pulled = 0
    sent_head = False
    status = 0
    body = b""

    async def receive():
        nonlocal pulled, sent_head
        if not sent_head:
            sent_head = True
            return {"type": "http.request", "body": head, "more_body": True}
        if pulled >= chunk * chunks:
            return {"type": "http.request", "body": b"", "more_body": False}
        pulled += chunk
        return {"type": "http.request", "body": b" " * chunk, "more_body": True}

    async def send(message):
        nonlocal status, body
        if message["type"] == "http.response.start":
            status = message["status"]
            post_endless.headers = list(message.get("headers", []))
        elif message["type"] == "http.response.body":
            body += message.get("body", b"")

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", content_type), *headers],
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
    }
    # a thread of its own: after the browser tests, Playwright's sync API leaves a loop running in this one
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, app(scope, receive, send)).result()
    return status, json.loads(body), pulled


def test_a_declared_length_over_the_limit_is_refused_before_reading(tmp_path):
    """Content-Length one byte over the limit: 413 at once, not one byte of the body pulled."""
    limit = 4096
    app = create_app(Settings(store_dir=tmp_path, max_json_bytes=limit))
    declared = [(b"content-length", str(limit + 1).encode())]
    status, body, pulled = post_endless(app, "/api/conv", b"application/json", b"{", 1024, 10, declared)
    assert status == 413 and f"larger than {limit} bytes" in body["detail"]
    assert pulled == 0
    # at the limit it is read (and judged as JSON: here a truncated one, so a 422, not a 413)
    declared = [(b"content-length", str(limit).encode())]
    status, _, pulled = post_endless(app, "/api/conv", b"application/json", b"{", 1023, 4, declared)
    assert status == 422 and pulled == 4 * 1023


def test_an_endless_json_body_is_abandoned_at_the_limit(tmp_path):
    """The body is read only until it passes the limit: the rest of an endless stream is never pulled."""
    limit = 4096
    app = create_app(Settings(store_dir=tmp_path, max_json_bytes=limit))
    status, body, pulled = post_endless(
        app, "/api/conv", b"application/json", b'{"image": "mnist:0", "weight": "sobel_x"', 1024, 20_000
    )
    assert status == 413 and f"larger than {limit} bytes" in body["detail"]
    assert pulled <= limit + 1024
    # ASGI header names are lower-case bytes; the length is the body's
    headers = dict(post_endless.headers)
    assert headers[b"content-type"] == b"application/json"
    assert headers[b"content-length"] == str(len(json.dumps(body, separators=(",", ":")).encode())).encode()


# ------------------------------------------------------------------------------------------- upload bytes


def test_upload_at_the_byte_limit_passes_and_one_byte_over_is_413(make_client):
    data = png_of(20, 10)
    at_limit = make_client(max_upload_bytes=len(data))
    response = at_limit.post("/api/images", files={"file": ("a.png", data, "image/png")})
    assert response.status_code == 201, response.text
    over = make_client(max_upload_bytes=len(data) - 1)
    response = over.post("/api/images", files={"file": ("a.png", data, "image/png")})
    assert_refused(response, 413, f"the image is {len(data)} bytes; the limit is {len(data) - 1} bytes")


def test_an_endless_upload_body_is_abandoned_at_the_cap(tmp_path):
    """No Content-Length, a stream that never ends: the route must stop reading once it passes the cap
    (the upload limit plus the multipart overhead) instead of buffering all of it."""
    limit, chunk = 1000, 8 * 1024
    app = create_app(Settings(store_dir=tmp_path, max_upload_bytes=limit))
    head = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    status, body, pulled = post_endless(
        app, "/api/images", b"multipart/form-data; boundary=b", head, chunk, 2_000
    )
    assert status == 413 and f"larger than the limit of {limit} bytes" in body["detail"]
    assert pulled <= limit + MULTIPART_OVERHEAD + chunk


def test_upload_pixels_at_the_limit_pass_and_one_more_is_413(make_client):
    client = make_client(max_pixels=200)
    ok = client.post("/api/images", files={"file": ("a.png", png_of(20, 10), "image/png")})
    assert ok.status_code == 201, ok.text
    over = client.post("/api/images", files={"file": ("b.png", png_of(201, 1), "image/png")})
    assert_refused(over, 413, "200")


# -------------------------------------------------------------------------------- work and memory budgets


def _conv_request(filters: int, kernel: int) -> dict:
    weight = np.ones((filters, 1, kernel, kernel)).tolist()
    return {"image": "mnist:0", "weight": weight}


def test_multiply_adds_at_the_budget_pass_and_one_over_is_422(make_client):
    filters, kernel = 2, 3
    oh, ow = conv_out((28, 28), kernel)
    macs = 1 * filters * oh * ow * 1 * kernel * kernel  # N·F·OH·OW·(C/groups)·KH·KW
    request = _conv_request(filters, kernel)
    at = make_client(max_macs=macs)
    assert at.get("/api/limits").json()["max_macs"] == macs
    response = at.post("/api/conv", json=request)
    assert response.status_code == 200, response.text
    assert response.json()["facts"]["macs"] == macs
    over = make_client(max_macs=macs - 1)
    assert_refused(
        over.post("/api/conv", json=request),
        422,
        f"{macs:,} multiply-adds",
        f"{macs - 1:,}",
        field="max_side",
    )


def test_im2col_bytes_at_the_budget_pass_and_one_over_is_422(make_client):
    filters, kernel = 1, 5
    oh, ow = conv_out((28, 28), kernel)
    col_bytes = 1 * (1 * kernel * kernel) * (oh * ow) * 4  # N·C·KH·KW·OH·OW·float32
    request = _conv_request(filters, kernel)
    at = make_client(max_im2col_bytes=col_bytes)
    response = at.post("/api/conv", json=request)
    assert response.status_code == 200, response.text
    over = make_client(max_im2col_bytes=col_bytes - 1)
    assert_refused(
        over.post("/api/conv", json=request),
        422,
        f"{col_bytes:,} bytes",
        f"{col_bytes - 1:,}",
        field="max_side",
    )


# --------------------------------------------------------------------------------------------- the region


def test_region_at_the_size_limit_passes_and_one_value_more_is_422(client):
    most = client.get("/api/limits").json()["max_values_per_map"]
    side = int(np.sqrt(most))
    assert side * side == most
    base = {"image": "sample:camera", "max_side": 256, "weight": "sobel_x"}
    response = client.post("/api/conv", json={**base, "region": {"y0": 0, "y1": side, "x0": 0, "x1": side}})
    assert response.status_code == 200, response.text
    conv = response.json()["conv"]
    assert conv["region"] == {"y0": 0, "y1": side, "x0": 0, "x1": side}
    assert np.array(conv["maps"][0]["values"]).shape == (side, side)
    # one value more than the limit: a rectangle of exactly most + 1 values (17 × 241 for 4096)
    over = most + 1
    rows = next(d for d in range(2, over) if over % d == 0)
    region = {"y0": 0, "y1": rows, "x0": 0, "x1": over // rows}
    assert_refused(
        client.post("/api/conv", json={**base, "max_side": 512, "region": region}),
        422,
        f"region covers {over} values per map; at most {most}",
        field="region",
    )


@pytest.mark.parametrize(
    "region",
    [
        {"y0": 3, "y1": 3, "x0": 0, "x1": 4},
        {"y0": 0, "y1": 4, "x0": 5, "x1": 5},
        {"y0": 4, "y1": 2, "x0": 0, "x1": 1},
    ],
)
def test_an_empty_region_is_422(client, region):
    response = client.post("/api/conv", json={"image": "mnist:0", "weight": "sobel_x", "region": region})
    assert_refused(response, 422, "region must have y0 < y1 and x0 < x1", field="region")


def test_a_region_of_one_value_at_the_last_row_and_column(client):
    oh, ow = conv_out((28, 28), 3)
    base = {"image": "mnist:0", "weight": "sobel_x"}
    last = {"y0": oh - 1, "y1": oh, "x0": ow - 1, "x1": ow}
    response = client.post("/api/conv", json={**base, "values": False, "region": last})
    assert response.status_code == 200, response.text
    conv = response.json()["conv"]
    assert conv["region"] == last
    assert conv["maps"][0]["values"] == [[conv["maps"][0]["values"][0][0]]]
    past = {"y0": oh, "y1": oh + 1, "x0": 0, "x1": 1}
    assert_refused(
        client.post("/api/conv", json={**base, "region": past}),
        422,
        f"region starts at ({oh}, 0) but the conv maps are only {oh}×{ow}",
        field="region",
    )


# -------------------------------------------------------------------------------------- the request fields


def _field_edge_cases(limits: dict) -> list[tuple[str, dict, dict, str]]:
    """(field, request at the limit, request one over, the number the refusal names)."""
    most_filters = limits["max_filters_api"]
    k = limits["max_kernel"]
    d = limits["max_dilation"]
    s = limits["max_stride"]
    p = limits["max_padding"]
    side, least = limits["max_side"], limits["min_side"]
    image = {"image": "sample:camera"}
    return [
        (
            "weight",
            {**image, "max_side": 32, "weight": np.ones((most_filters, 1, 1, 1)).tolist()},
            {**image, "max_side": 32, "weight": np.ones((most_filters + 1, 1, 1, 1)).tolist()},
            str(most_filters),
        ),
        (
            "weight",
            {**image, "max_side": 32, "weight": np.ones((k, k)).tolist()},
            {**image, "max_side": 32, "weight": np.ones((k + 1, k + 1)).tolist()},
            str(k),
        ),
        (
            "stride",
            {**image, "max_side": 32, "stride": s},
            {**image, "max_side": 32, "stride": s + 1},
            str(s),
        ),
        (
            "dilation",
            {**image, "max_side": 32, "weight": "sobel_x", "dilation": d},
            {**image, "max_side": 32, "weight": "sobel_x", "dilation": d + 1},
            str(d),
        ),
        (
            "padding",
            {**image, "max_side": 32, "padding": p},
            {**image, "max_side": 32, "padding": p + 1},
            str(p),
        ),
        ("max_side", {**image, "max_side": side}, {**image, "max_side": side + 1}, str(side)),
        ("max_side", {**image, "max_side": least}, {**image, "max_side": least - 1}, str(least)),
        (
            "bias",
            {
                **image,
                "max_side": 32,
                "weight": np.ones((most_filters, 1, 1, 1)).tolist(),
                "bias": [0.0] * most_filters,
            },
            {**image, "max_side": 32, "bias": [0.0] * (most_filters + 1)},
            str(most_filters),
        ),
    ]


def test_every_request_field_at_its_limit_passes_and_one_over_is_422(client):
    limits = client.get("/api/limits").json()
    for field, at, over, number in _field_edge_cases(limits):
        response = client.post("/api/conv", json=at)
        assert response.status_code == 200, (field, at.get(field), response.text)
        assert_refused(client.post("/api/conv", json=over), 422, number, field=field)


def test_groups_one_over_the_limit_is_422(client):
    most = client.get("/api/limits").json()["max_groups"]
    response = client.post("/api/conv", json={"image": "mnist:0", "groups": most + 1})
    assert_refused(response, 422, str(most), field="groups")


# ------------------------------------------------------------------------------------------ the store size


def test_store_filled_to_exactly_its_size_keeps_everything_and_one_byte_more_is_507(tmp_path):
    first, second = b"a" * 1000, b"b" * 500
    store = UploadStore(tmp_path / "s", max_bytes=len(first) + len(second), retention_seconds=3600)
    one = store.save(first)
    two = store.save(second)
    assert one.created and two.created
    assert store.total_bytes() == store.max_bytes
    with pytest.raises(StoreFull) as refused:
        store.save(b"c")
    assert refused.value.status_code == 507
    assert f"1 more bytes would exceed its limit of {len(first) + len(second)} bytes" in refused.value.message
    assert store.exists(one.image_id) and store.exists(two.image_id)


def test_store_one_byte_over_evicts_the_least_recently_used_when_retention_allows(tmp_path):
    first, second = b"a" * 1000, b"b" * 500
    store = UploadStore(tmp_path / "s", max_bytes=len(first) + len(second), retention_seconds=0)
    one = store.save(first)
    old = time.time() - 100
    os.utime(store.path_for(one.image_id), (old, old))
    two = store.save(second)
    three = store.save(b"c")
    assert not store.exists(one.image_id)
    assert store.exists(two.image_id) and store.exists(three.image_id)
    assert store.total_bytes() == len(second) + 1


# ---------------------------------------------------------------------------------- weights from a .npz


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values_in_a_weights_file_are_refused(tmp_path, bad):
    params, metadata = network.load_weights()
    for name in params:
        broken = {k: v.copy() for k, v in params.items()}
        broken[name].flat[-1] = bad
        path = tmp_path / f"{name}.npz"
        np.savez(path, **broken)
        with pytest.raises(ValueError, match=f"parameter {name} holds non-finite values"):
            network.load_weights(path)
    np.savez(tmp_path / "good.npz", **params)
    loaded, _ = network.load_weights(tmp_path / "good.npz")
    assert set(loaded) == set(params)


def test_a_ragged_weight_is_one_sentence_naming_the_lengths(client):
    response = client.post("/api/conv", json={"image": "mnist:0", "weight": [[1, 2, 3], [1, 2], [1]]})
    assert_refused(
        response,
        422,
        "weight is ragged: lists at the same depth have different lengths (1, 2, 3); every filter needs the "
        "same number of channels, rows and columns",
        field="weight",
    )


def test_a_weight_three_lists_deep_is_judged_as_a_full_weight(client):
    """Depth 2 is one (KH, KW) kernel, depth 4 the full (F, C/groups, KH, KW); a depth-3 weight is a full
    weight missing a level, and its errors say so (at weight → full), not those of a kernel."""
    for weight in ([[1, 2], [3, 4]], [[[[1, 2], [3, 4]]]]):
        assert client.post("/api/conv", json={"image": "mnist:0", "weight": weight}).status_code == 200
    response = client.post("/api/conv", json={"image": "mnist:0", "weight": [[[1, 2], [3, 4]]]})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert detail and all(d["loc"][:3] == ["body", "weight", "full"] for d in detail), detail


def test_the_json_limit_counts_the_body_of_a_bare_asgi_scope():
    """Driven directly with a scope that carries no ``headers`` (so no declared length), the middleware
    still counts the streamed body: at the limit the app answers, one byte over it is the 413."""
    from app.body_limit import JsonBodyLimitMiddleware

    async def count_body(scope, receive, send):
        size, more = 0, True
        while more:
            message = await receive()
            size, more = size + len(message.get("body", b"")), message.get("more_body", False)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": str(size).encode()})

    def post(body: bytes) -> tuple[int, bytes]:
        chunks, sent = [body[:4], body[4:]], []

        async def receive():
            return {"type": "http.request", "body": chunks.pop(0), "more_body": bool(chunks)}

        async def send(message):
            sent.append(message)

        bare_scope = {"type": "http", "path": "/api/conv"}
        call = JsonBodyLimitMiddleware(count_body, limit=10)(bare_scope, receive, send)
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:  # a loop of its own (post_endless)
            pool.submit(asyncio.run, call).result()
        return sent[0]["status"], sent[1]["body"]

    assert post(b"x" * 10) == (200, b"10")
    status, body = post(b"x" * 11)
    assert status == 413 and b"larger than 10 bytes" in body
