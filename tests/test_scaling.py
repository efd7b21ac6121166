"""Scaling past one process (issue 6): the service is stateless except for the content-addressed store.

Two uvicorn servers (separate processes on separate ports, standing in for two containers behind a load
balancer) share one store folder: an image uploaded through one is served and computed on by the other; the
same image uploaded through both at once is stored once; a restart keeps every upload; and a stored file that
no longer matches its hash is reported, never served.
"""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from live_server import LiveServer
from PIL import Image


def photo_png(seed: int, width: int = 48, height: int = 32) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "PNG")
    return buf.getvalue()


def stored_path(store: Path, image_id: str) -> Path:
    matches = list(store.rglob(f"{image_id}.png"))
    assert len(matches) == 1, f"expected one stored file for {image_id}, found {matches}"
    return matches[0]


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared-store")


@pytest.fixture(scope="module")
def pair(store):
    """Two servers on one store."""
    env = {"CONVLENS_STORE_DIR": str(store)}
    with LiveServer(env=env) as first, LiveServer(env=env) as second:
        yield first, second


def upload(client, data: bytes) -> dict:
    response = client.post("/api/images", files={"file": ("photo.png", data, "image/png")})
    assert response.status_code in (200, 201), response.text
    return response.json()


def test_an_upload_through_one_server_is_served_by_the_other(pair):
    first, second = pair
    with first.client() as a, second.client() as b:
        meta = upload(a, photo_png(1))
        image_id = meta["id"]
        assert b.get(f"/api/images/{image_id}").json()["width"] == 48
        png_a, png_b = a.get(f"/api/images/{image_id}.png"), b.get(f"/api/images/{image_id}.png")
        assert png_b.status_code == 200 and png_b.content == png_a.content
        request = {"image": image_id, "color": "rgb", "weight": "sobel_x", "padding": 1}
        conv = b.post("/api/conv", json=request)
        assert conv.status_code == 200, conv.text
        assert conv.json()["conv"]["shape"] == [1, 1, 32, 48]
        assert conv.json()["input"]["shape"] == [1, 3, 32, 48]


def test_the_same_image_through_both_servers_at_once_is_stored_once(pair, store):
    first, second = pair
    data = photo_png(2)

    def post(server: LiveServer) -> dict:
        with server.client() as client:
            return upload(client, data)

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(post, [first, second] * 5))
    ids = {answer["id"] for answer in answers}
    assert len(ids) == 1
    stored_path(store, ids.pop())


def test_a_restart_keeps_every_upload(store):
    env = {"CONVLENS_STORE_DIR": str(store)}
    with LiveServer(env=env) as live, live.client() as client:
        ids = [upload(client, photo_png(seed))["id"] for seed in (10, 11, 12)]
        before = {image_id: client.get(f"/api/images/{image_id}.png").content for image_id in ids}
    with LiveServer(env=env) as live, live.client() as client:
        for image_id in ids:
            response = client.get(f"/api/images/{image_id}.png")
            assert response.status_code == 200 and response.content == before[image_id]


def test_a_tampered_store_file_is_reported_not_served(pair, store):
    first, second = pair
    with first.client() as a, second.client() as b:
        image_id = upload(a, photo_png(3))["id"]
        path = stored_path(store, image_id)
        # A valid PNG, so only the hash check (not a decoder error) can tell it is not the upload.
        forged = io.BytesIO()
        Image.new("RGB", (48, 32), "red").save(forged, "PNG")
        path.write_bytes(forged.getvalue())
        for client in (a, b):
            for response in (client.get(f"/api/images/{image_id}.png"),
                             client.get(f"/api/images/{image_id}"),
                             client.post("/api/conv", json={"image": image_id, "weight": "sobel_x"})):
                assert 400 <= response.status_code < 600 and response.status_code != 500, (
                    response.status_code, response.text[:300])
                assert response.content != forged.getvalue()
                detail = response.json()["detail"]
                assert isinstance(detail, str) and len(detail) >= 10
        # Uploading the original again repairs the store; both servers serve it again.
        assert upload(b, photo_png(3))["id"] == image_id
        for client in (a, b):
            repaired = client.get(f"/api/images/{image_id}.png")
            assert repaired.status_code == 200 and repaired.content == path.read_bytes()
