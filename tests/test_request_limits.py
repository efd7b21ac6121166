"""Hostile JSON requests: oversized bodies are refused before parsing; 422s never echo huge or NaN input."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

LIMIT = 64 * 1024


@pytest.fixture
def small_client(tmp_path) -> TestClient:
    return TestClient(create_app(Settings(store_dir=tmp_path / "uploads", max_json_bytes=LIMIT)))


def _huge_weight_body(numbers: int) -> bytes:
    return b'{"image": "mnist:0", "weight": [' + b"1," * numbers + b"1]}"


def test_declared_oversized_body_is_413_with_the_limit(small_client: TestClient) -> None:
    body = _huge_weight_body(100_000)
    assert len(body) > LIMIT
    response = small_client.post("/api/conv", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert str(LIMIT) in response.json()["detail"]


def test_streamed_oversized_body_is_413(small_client: TestClient) -> None:
    def chunks():
        yield b'{"image": "mnist:0", "weight": ['
        for _ in range(50):
            yield b"1," * 1000
        yield b"1]}"

    response = small_client.post("/api/conv", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413


def test_a_body_under_the_limit_still_works(small_client: TestClient) -> None:
    response = small_client.post("/api/conv", json={"image": "mnist:0", "weight": "sobel_x"})
    assert response.status_code == 200
    assert response.json()["conv"]["shape"] == [1, 1, 26, 26]


def test_uploads_keep_their_own_larger_limit(small_client: TestClient) -> None:
    # 100 kB of not-an-image: over the JSON limit, under the upload limit, so the upload route judges it.
    response = small_client.post("/api/images", files={"file": ("a.png", b"x" * 100_000, "image/png")})
    assert response.status_code == 415


def test_non_finite_weight_is_a_clear_422(client: TestClient) -> None:
    body = b'{"image": "mnist:0", "weight": [[NaN, 1]]}'
    response = client.post("/api/conv", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert any(d["type"] == "finite_number" and "finite" in d["msg"] for d in detail), detail
    json.dumps(response.json(), allow_nan=False)  # the body itself is valid JSON


def test_a_422_does_not_echo_a_huge_input(client: TestClient) -> None:
    body = _huge_weight_body(50_000)
    response = client.post("/api/conv", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422
    assert len(response.content) < 5_000
    assert response.json()["detail"][0]["loc"][:2] == ["body", "weight"]


def test_shape_errors_name_the_kernel_size_field(client: TestClient) -> None:
    response = client.post("/api/shape", json={"input_size": [5, 5], "kernel_size": 7})
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "kernel_size"]
    assert "spans 7 pixels but the padded input is only 5" in detail["msg"]


@pytest.mark.parametrize(
    ("padding", "sentence"),
    [
        ("half", "padding 'half' is not understood; padding must be an int"),
        ([1, 2, 3], "2 values (pad_h, pad_w) or 4"),
    ],
)
def test_an_unknown_padding_form_is_one_sentence(client: TestClient, padding, sentence) -> None:
    response = client.post("/api/conv", json={"image": "mnist:0", "weight": "sobel_x", "padding": padding})
    assert response.status_code == 422
    detail = response.json()["detail"]
    assert len(detail) == 1 and detail[0]["loc"] == ["body", "padding"]
    assert sentence in detail[0]["msg"]
