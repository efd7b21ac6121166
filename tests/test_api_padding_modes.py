"""``padding_mode`` through the API: values equal to PyTorch, PyTorch's rules as 422s, explain's sources."""

from __future__ import annotations

import numpy as np
import pytest

from app.image_source import load_array


@pytest.mark.parametrize("mode", ["zeros", "reflect", "replicate", "circular"])
def test_conv_values_equal_pytorch_module(client, settings, mode):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    body = client.post(
        "/api/conv",
        json={
            "image": "sample:astronaut",
            "color": "rgb",
            "max_side": 16,
            "weight": weight.tolist(),
            "padding": [2, 1],
            "stride": [1, 2],
            "padding_mode": mode,
            "values": True,
        },
    )
    assert body.status_code == 200, body.text
    got = np.array([m["values"] for m in body.json()["conv"]["maps"]], dtype=np.float32)
    x = torch.from_numpy(load_array("sample:astronaut", "rgb", 16, settings).copy())
    layer = torch.nn.Conv2d(3, 2, 3, stride=(1, 2), padding=(2, 1), padding_mode=mode, bias=False)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(weight))
        expected = layer(x)[0].numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    assert body.json()["facts"]["padding_mode"] == mode


def test_backward_equals_pytorch_reflect(client, settings):
    torch = pytest.importorskip("torch")
    weight = np.arange(9, dtype=np.float32).reshape(1, 1, 3, 3) / 9
    body = client.post(
        "/api/backward",
        json={
            "image": "mnist:1",
            "max_side": 10,
            "weight": weight.tolist(),
            "padding": 3,
            "padding_mode": "reflect",
            "values": True,
        },
    ).json()
    x = torch.from_numpy(load_array("mnist:1", "gray", 10, settings).copy()).requires_grad_(True)
    out = torch.nn.functional.conv2d(
        torch.nn.functional.pad(x, (3, 3, 3, 3), mode="reflect"), torch.from_numpy(weight)
    )
    out.sum().backward()
    np.testing.assert_allclose(np.array(body["grad_x"]["values"]), x.grad[0].numpy(), rtol=1e-5, atol=1e-5)
    # the overlap count sums the windows that read every copy of a pixel: the corners are read most
    counts = np.array(body["overlap"]["values"])
    assert counts.sum() == 9 * out.shape[2] * out.shape[3]


@pytest.mark.parametrize(
    ("mode", "padding", "word"),
    [("reflect", 8, "smaller than the input"), ("circular", 9, "wrap around more than once")],
)
def test_pytorch_rules_are_422(client, mode, padding, word):
    response = client.post(
        "/api/conv",
        json={
            "image": "mnist:0",
            "max_side": 8,
            "weight": "box_blur_3",
            "padding": padding,
            "padding_mode": mode,
        },
    )
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "padding_mode"]
    assert word in detail["msg"] and "8" in detail["msg"]


def test_unknown_mode_is_422_listing_the_modes(client):
    response = client.post("/api/conv", json={"image": "mnist:0", "padding_mode": "mirror"})
    assert response.status_code == 422
    assert "reflect" in response.text and "circular" in response.text


def test_explain_names_each_taps_source(client):
    body = client.post(
        "/api/explain",
        json={
            "image": "mnist:0",
            "weight": "sobel_x",
            "padding": 1,
            "padding_mode": "reflect",
            "position": [0, 0, 27],
        },
    ).json()
    taps = body["taps"]
    # row −1 mirrors row 1; column 28 (one past the last, 27) mirrors column 26
    assert taps["input_rows"] == [-1, 0, 1] and taps["source_rows"] == [1, 0, 1]
    assert taps["input_cols"] == [26, 27, 28] and taps["source_cols"] == [26, 27, 26]
    zeros = client.post(
        "/api/explain", json={"image": "mnist:0", "weight": "sobel_x", "padding": 1, "position": [0, 0, 0]}
    ).json()
    assert zeros["taps"]["source_rows"] == [None, 0, 1]


def test_conv_png_takes_padding_mode(client):
    base = "/api/conv.png?image=mnist:0&weight=sobel_x&padding=2"
    zeros = client.get(base)
    circular = client.get(base + "&padding_mode=circular")
    assert zeros.status_code == circular.status_code == 200
    assert zeros.headers["etag"] != circular.headers["etag"] and zeros.content != circular.content
    bad = client.get("/api/conv.png?image=mnist:0&max_side=8&padding=9&padding_mode=circular")
    assert bad.status_code == 422 and "wrap around" in bad.text


def test_im2col_columns_equal_unfold_of_the_padded_input(client, settings):
    torch = pytest.importorskip("torch")
    body = client.post(
        "/api/im2col",
        json={
            "image": "mnist:2",
            "max_side": 10,
            "weight": "sobel_x",
            "padding": [2, 1, 0, 3],
            "padding_mode": "circular",
            "values": True,
        },
    )
    assert body.status_code == 200, body.text
    x = torch.from_numpy(load_array("mnist:2", "gray", 10, settings).copy())
    padded = torch.nn.functional.pad(x, (0, 3, 2, 1), mode="circular")
    expected = torch.nn.functional.unfold(padded, 3)[0].numpy()
    np.testing.assert_array_equal(np.array(body.json()["values"], dtype=np.float32), expected)
