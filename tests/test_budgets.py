"""Work, memory and reply budgets at their edges: exactly at the limit passes, one over is a 422 saying
what to reduce. The sizes are worked out here by hand for an MNIST digit (28×28, one channel)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

# one 3×3 filter, no padding, stride 1 on 28×28: a 26×26 output
OUT = 26 * 26
MACS = OUT * 9  # 6084 multiply-adds
COLUMNS_BYTES = 9 * OUT * 4  # im2col (C·KH·KW, OH·OW) float32: 24,336 bytes
BODY = {"image": "mnist:3", "weight": "sobel_x"}
BACKWARD = {**BODY, "upstream": {"kind": "ones"}}


def client_with(tmp_path, **limits) -> TestClient:
    return TestClient(create_app(Settings(store_dir=tmp_path / "s", response_cache_bytes=0, **limits)))


def detail(response) -> str:
    body = response.json()["detail"]
    return body if isinstance(body, str) else body[0]["msg"]


@pytest.mark.parametrize(
    ("path", "body", "limit", "value", "words"),
    [
        ("/api/conv", BODY, "max_macs", MACS, "multiply-adds"),
        ("/api/conv", BODY, "max_im2col_bytes", COLUMNS_BYTES, "im2col"),
        ("/api/conv", BODY, "max_picture_pixels", OUT, "map pixels"),
        ("/api/explain", {**BODY, "position": [0, 1, 1]}, "max_macs", MACS, "multiply-adds"),
        ("/api/im2col", BODY, "max_im2col_bytes", COLUMNS_BYTES, "im2col"),
        # backward: three convolutions' work, two im2col matrices, and upstream + grad_x + overlap pictures
        ("/api/backward", BACKWARD, "max_macs", 3 * MACS, "multiply-adds"),
        ("/api/backward", BACKWARD, "max_im2col_bytes", 2 * COLUMNS_BYTES, "im2col"),
        ("/api/backward", BACKWARD, "max_picture_pixels", OUT + 2 * 28 * 28, "map pixels"),
    ],
)
def test_a_budget_passes_at_its_limit_and_refuses_one_over(tmp_path, path, body, limit, value, words) -> None:
    with client_with(tmp_path, **{limit: value}) as client:
        assert client.post(path, json=body).status_code == 200
    with client_with(tmp_path, **{limit: value - 1}) as client:
        response = client.post(path, json=body)
    assert response.status_code == 422
    message = detail(response)
    assert words in message and f"{value - 1:,}" in message
    assert "reduce" in message  # says what to change


def test_pooled_backward_counts_the_pooled_gradient_picture(tmp_path) -> None:
    body = {**BACKWARD, "pool": {"mode": "max", "kernel_size": 2}, "target": "pool"}
    pixels = 2 * OUT + 2 * 28 * 28  # the pooled route also draws the gradient reaching the conv maps
    with client_with(tmp_path, max_picture_pixels=pixels) as client:
        assert client.post("/api/backward", json=body).status_code == 200
    with client_with(tmp_path, max_picture_pixels=pixels - 1) as client:
        assert client.post("/api/backward", json=body).status_code == 422


def test_the_default_budgets_refuse_the_old_heaviest_backward(tmp_path) -> None:
    """20 filters 11×11 on the 256-px RGB photo, padding 10: 1.5 G multiply-adds for a backward pass —
    seconds of CPU and about 200 MB of columns — is now refused with a sentence."""
    weight = [[[[0.01] * 11] * 11] * 3] * 20
    body = {
        "image": "sample:astronaut",
        "color": "rgb",
        "max_side": 256,
        "weight": weight,
        "padding": 10,
        "upstream": {"kind": "ones"},
    }
    with TestClient(create_app(Settings(store_dir=tmp_path / "s"))) as client:
        response = client.post("/api/backward", json=body)
    assert response.status_code == 422
    assert "reduce" in detail(response)
