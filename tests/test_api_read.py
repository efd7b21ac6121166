"""The read endpoints: health, limits, kernels, MNIST and sample lists, image metadata and PNGs; headers."""

from __future__ import annotations

import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from core.kernels import list_presets
from core.mnist import load_mnist

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"
)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("path", ["/healthz", "/api/limits", "/api/images/mnist:0.png", "/api/images/nope"])
def test_security_headers_on_every_response(client, path):
    response = client.get(path)
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"


def test_no_cors_by_default(client):
    response = client.get("/api/limits", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = client.options(
        "/api/conv", headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_when_configured(tmp_path):
    settings = Settings(store_dir=tmp_path, cors_origins="http://school.example, http://other.example")
    with TestClient(create_app(settings)) as client:
        allowed = client.get("/api/limits", headers={"Origin": "http://school.example"})
        assert allowed.headers["access-control-allow-origin"] == "http://school.example"
        refused = client.get("/api/limits", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in refused.headers


def test_limits_follow_settings(tmp_path):
    settings = Settings(store_dir=tmp_path, max_side=256, max_upload_bytes=1234, max_macs=99)
    with TestClient(create_app(settings)) as client:
        limits = client.get("/api/limits").json()
    assert limits["max_side"] == 256
    assert limits["max_upload_bytes"] == 1234
    assert limits["max_macs"] == 99
    assert limits["side_choices"] == [28, 64, 128, 256]
    assert (limits["max_kernel"], limits["max_stride"], limits["max_padding"], limits["max_dilation"]) == (
        11,
        8,
        10,
        5,
    )
    assert limits["max_filters"] == 16


def test_kernels_match_core(client):
    kernels = client.get("/api/kernels").json()["kernels"]
    presets = list_presets()
    assert [k["name"] for k in kernels] == [p.name for p in presets]
    for entry, preset in zip(kernels, presets, strict=True):
        assert entry["description"] == preset.description
        np.testing.assert_array_equal(np.array(entry["weights"]), preset.weights)
        assert entry["size"] == list(preset.weights.shape)


def test_mnist_list_filter_and_paging(client):
    images, labels = load_mnist()
    body = client.get("/api/mnist", params={"label": 7, "offset": 5, "limit": 3}).json()
    sevens = np.flatnonzero(labels == 7)
    assert body["total"] == len(sevens)
    assert body["offset"] == 5 and body["limit"] == 3
    assert [item["index"] for item in body["items"]] == list(sevens[5:8])
    assert all(item["label"] == 7 and item["id"] == f"mnist:{item['index']}" for item in body["items"])
    everything = client.get("/api/mnist").json()
    assert everything["total"] == len(labels) == 10000
    assert len(everything["items"]) == 100
    assert client.get("/api/mnist", params={"limit": 501}).status_code == 422
    assert client.get("/api/mnist", params={"label": 10}).status_code == 422
    past_end = client.get("/api/mnist", params={"offset": 20000}).json()
    assert past_end["items"] == [] and past_end["total"] == 10000


def test_samples_listed_with_credits(client):
    samples = client.get("/api/samples").json()["samples"]
    names = {s["name"] for s in samples}
    assert names == {"astronaut", "camera", "coffee", "chelsea", "brick", "rocket"}
    for sample in samples:
        assert sample["credit"] and sample["licence"] and sample["description"]
        assert max(sample["width"], sample["height"]) <= 512
    camera = next(s for s in samples if s["name"] == "camera")
    assert (camera["width"], camera["height"], camera["channels"]) == (512, 512, 1)


def test_mnist_image_metadata_and_png(client):
    images, labels = load_mnist()
    meta = client.get("/api/images/mnist:42").json()
    assert meta == {
        "id": "mnist:42",
        "kind": "mnist",
        "width": 28,
        "height": 28,
        "channels": 1,
        "original_width": 28,
        "original_height": 28,
        "downscaled": False,
        "label": int(labels[42]),
    }
    response = client.get("/api/images/mnist:42.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    picture = np.asarray(Image.open(io.BytesIO(response.content)))
    np.testing.assert_array_equal(picture, images[42])


def test_sample_downscaled_to_max_side(client):
    meta = client.get("/api/images/sample:rocket").json()
    assert (meta["original_width"], meta["original_height"]) == (640, 427)
    assert (meta["width"], meta["height"]) == (512, 342)
    assert meta["downscaled"] is True and meta["channels"] == 3 and meta["label"] is None
    picture = Image.open(io.BytesIO(client.get("/api/images/sample:rocket.png").content))
    assert picture.size == (512, 342) and picture.mode == "RGB"


@pytest.mark.parametrize(
    "image_id",
    [
        "mnist:10000",
        "mnist:-1",
        "sample:nope",
        "Mnist:1",
        "a" * 64,
        "A" * 64,
        "..",
        "%2e%2e%2fetc%2fpasswd",
        "x",
    ],
)
def test_unknown_ids_are_404(client, image_id):
    for path in (f"/api/images/{image_id}", f"/api/images/{image_id}.png"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert isinstance(response.json()["detail"], str)
        if ".." not in image_id and "%" not in image_id:  # those never reach the route (normalised paths)
            assert "unknown image id" in response.json()["detail"]


def test_openapi_and_docs(client):
    spec = client.get("/openapi.json").json()
    for path in (
        "/api/conv",
        "/api/im2col",
        "/api/explain",
        "/api/backward",
        "/api/transpose",
        "/api/shape",
        "/api/images",
        "/api/conv.png",
        "/api/limits",
        "/api/kernels",
        "/api/mnist",
        "/api/samples",
    ):
        assert path in spec["paths"], path
    docs = client.get("/docs")
    assert docs.status_code == 200


def test_index_page_never_references_another_host(client):
    response = client.get("/")
    assert response.status_code == 200  # the template ships with the repository: a 503 is a failure
    assert 'type="module"' in response.text and "/static/" in response.text
    text = response.text.lower()
    assert "http://" not in text and "https://" not in text
    assert response.headers["content-security-policy"] == CSP
