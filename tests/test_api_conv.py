"""POST /api/conv and GET /api/conv.png: numbers equal to core and to PyTorch; errors are clear 4xx."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from textbook import padding_tblr

from app.image_source import load_array
from core.conv import conv2d
from core.kernels import get_preset
from core.mnist import load_mnist
from core.pool import avg_pool2d, max_pool2d


def image_array(image_id: str, color: str, max_side=None) -> np.ndarray:
    """The input the API documents, rebuilt independently from Pillow (mode "L" or "RGB" / 255)."""
    if image_id.startswith("mnist:"):
        digit = load_mnist()[0][int(image_id.split(":")[1])]
        picture = Image.fromarray(np.ascontiguousarray(digit), "L")
    else:
        from app.image_source import SAMPLES, SAMPLES_DIR

        picture = Image.open(SAMPLES_DIR / SAMPLES[image_id.split(":")[1]].filename)
        picture.load()
        longest = max(picture.size)
        if longest > 512:
            scale = 512 / longest
            picture = picture.resize(
                (max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
                Image.Resampling.LANCZOS,
            )
    if max_side is not None and max(picture.size) > max_side:
        scale = max_side / max(picture.size)
        picture = picture.resize(
            (max(1, round(picture.width * scale)), max(1, round(picture.height * scale))),
            Image.Resampling.LANCZOS,
        )
    if color == "gray":
        return (np.asarray(picture.convert("L"), dtype=np.float32) / np.float32(255))[None, None]
    rgb = np.asarray(picture.convert("RGB"), dtype=np.float32) / np.float32(255)
    return np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])


def decode_png(url: str) -> Image.Image:
    assert url.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def conv_values(body: dict) -> np.ndarray:
    return np.array([m["values"] for m in body["conv"]["maps"]], dtype=np.float32)[None]


def test_input_array_is_documented_formula(settings):
    for image_id, color in [("mnist:3", "gray"), ("sample:chelsea", "rgb"), ("sample:chelsea", "gray")]:
        np.testing.assert_array_equal(
            load_array(image_id, color, 40, settings), image_array(image_id, color, 40)
        )


def test_conv_response_shape_and_pictures(client):
    body = client.post(
        "/api/conv",
        json={
            "image": "mnist:0",
            "weight": ["sobel_x", "sobel_y"],
            "padding": 1,
            "pool": {"mode": "max", "kernel_size": 2},
            "values": True,
        },
    ).json()
    assert body["input"]["shape"] == [1, 1, 28, 28]
    assert body["padding"] == {"top": 1, "bottom": 1, "left": 1, "right": 1}
    assert body["conv"]["shape"] == [1, 2, 28, 28] and body["conv"]["activation"] == "none"
    assert body["pool"]["shape"] == [1, 2, 14, 14] and body["pool"]["mode"] == "max"
    for block in (body["conv"], body["pool"]):
        for index, entry in enumerate(block["maps"]):
            values = np.array(entry["values"])
            assert entry["index"] == index
            assert entry["min"] == values.min() and entry["max"] == values.max()
            assert entry["colormap"] == ("diverging" if values.min() < 0 else "sequential")
            picture = decode_png(entry["png"])
            assert picture.size == (values.shape[1], values.shape[0])
    assert decode_png(body["input"]["png"]).size == (28, 28)
    quantities = [s["quantity"] for s in body["steps"]]
    assert "output height" in quantities and "pooled height" in quantities
    assert body["facts"]["params"] == 2 * 9  # no bias given, so none counted
    assert body["facts"]["macs"] == 2 * 28 * 28 * 9
    assert set(body["timing_ms"]) == {"load", "conv", "pool", "encode", "total"}


def test_server_timing_header(client):
    response = client.post("/api/conv", json={"image": "mnist:1", "weight": "identity"})
    assert response.status_code == 200
    names = [part.split(";")[0].strip() for part in response.headers["server-timing"].split(",")]
    assert names == ["load", "conv", "pool", "encode", "total"]


def test_diverging_picture_is_white_at_zero_and_ends_red_or_blue(client):
    """A Sobel filter and its negation: one map's largest |value| is positive, the other's negative, so the
    red end (180, 0, 0) and the blue end (0, 255·0.3 ± ½, 180) are both checked, whatever the image."""
    sobel = get_preset("sobel_x").weights
    weight = np.stack([sobel, -sobel])[:, None].tolist()
    body = client.post("/api/conv", json={"image": "mnist:0", "weight": weight, "values": True}).json()
    ends = set()
    for entry in body["conv"]["maps"]:
        values = np.array(entry["values"], dtype=np.float32)
        picture = np.asarray(decode_png(entry["png"]).convert("RGB")).astype(int)
        zero = np.argwhere(values == 0)[0]
        np.testing.assert_array_equal(picture[zero[0], zero[1]], [255, 255, 255])
        peak = np.unravel_index(np.argmax(np.abs(values)), values.shape)
        red, green, blue = picture[peak]
        if values[peak] > 0:
            assert (red, green, blue) == (180, 0, 0)
            ends.add("red")
        else:
            assert red == 0 and blue == 180 and abs(green - 0.3 * 255) <= 0.5
            ends.add("blue")
    assert ends == {"red", "blue"}


PADDINGS = [0, 2, [1, 2], [0, 1, 2, 3], "valid", "same", "full"]


@pytest.mark.parametrize("padding", PADDINGS)
@pytest.mark.parametrize("color", ["gray", "rgb"])
def test_conv_equals_core_for_every_padding(client, padding, color):
    rng = np.random.default_rng(7)
    channels = 1 if color == "gray" else 3
    weight = rng.standard_normal((2, channels, 3, 2)).astype(np.float32)
    bias = [0.5, -0.25]
    body = client.post(
        "/api/conv",
        json={
            "image": "sample:chelsea",
            "color": color,
            "max_side": 24,
            "weight": weight.tolist(),
            "bias": bias,
            "padding": padding,
            "stride": [2, 1],
            "values": True,
        },
    ).json()
    x = image_array("sample:chelsea", color, 24)
    pad = tuple(padding) if isinstance(padding, list) else padding
    expected = conv2d(x, weight, np.array(bias, np.float32), stride=(2, 1), padding=pad)
    np.testing.assert_array_equal(conv_values(body), expected)


def torch_functional():
    torch = pytest.importorskip("torch")
    return torch, torch.nn.functional


@pytest.mark.parametrize(
    "case",
    [
        {"color": "gray", "stride": 1, "padding": 1, "dilation": 1, "groups": 1, "filters": 3},
        {"color": "gray", "stride": 2, "padding": 0, "dilation": 2, "groups": 1, "filters": 2},
        {"color": "rgb", "stride": [1, 2], "padding": [2, 1], "dilation": [1, 2], "groups": 1, "filters": 4},
        {"color": "rgb", "stride": 1, "padding": "same", "dilation": 1, "groups": 3, "filters": 3},
        {"color": "rgb", "stride": 3, "padding": 1, "dilation": 1, "groups": 3, "filters": 6},
        {"color": "gray", "stride": [2, 3], "padding": "same", "dilation": [1, 2], "groups": 1, "filters": 2},
        {"color": "rgb", "stride": 2, "padding": "full", "dilation": [2, 1], "groups": 1, "filters": 2},
        {"color": "gray", "stride": 1, "padding": [0, 1, 2, 3], "dilation": 1, "groups": 1, "filters": 2},
        {"color": "rgb", "stride": [1, 2], "padding": "valid", "dilation": 2, "groups": 3, "filters": 6},
    ],
)
def test_conv_equals_torch(client, case):
    """Padding goes to PyTorch as it is where PyTorch takes it; 'same' with a stride, 'full' and
    (top, bottom, left, right) through F.pad with the tuple worked out in tests/textbook.py."""
    torch, F = torch_functional()
    rng = np.random.default_rng(11)
    channels = 1 if case["color"] == "gray" else 3
    weight = rng.standard_normal((case["filters"], channels // case["groups"], 3, 3)).astype(np.float32)
    bias = rng.standard_normal(case["filters"]).astype(np.float32)
    body = client.post(
        "/api/conv",
        json={
            "image": "sample:astronaut",
            "color": case["color"],
            "max_side": 32,
            "weight": weight.tolist(),
            "bias": bias.tolist(),
            "stride": case["stride"],
            "padding": case["padding"],
            "dilation": case["dilation"],
            "groups": case["groups"],
            "values": True,
        },
    ).json()
    x = torch.from_numpy(image_array("sample:astronaut", case["color"], 32))
    pad = case["padding"]
    four = isinstance(pad, list) and len(pad) == 4
    if pad == "full" or (pad == "same" and case["stride"] != 1) or four:
        top, bottom, left, right = padding_tblr(pad, tuple(x.shape[2:]), 3, case["stride"], case["dilation"])
        x, pad = F.pad(x, (left, right, top, bottom)), 0
    expected = F.conv2d(
        x,
        torch.from_numpy(weight),
        torch.from_numpy(bias),
        stride=case["stride"],
        padding=pad,
        dilation=case["dilation"],
        groups=case["groups"],
    ).numpy()
    assert body["conv"]["shape"] == list(expected.shape)
    np.testing.assert_allclose(conv_values(body), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "pool",
    [
        {"mode": "max", "kernel_size": 2},
        {"mode": "max", "kernel_size": 3, "stride": 2, "padding": 1},
        {"mode": "max", "kernel_size": [2, 3], "stride": [2, 2], "ceil_mode": True},
        {"mode": "avg", "kernel_size": 2},
        {"mode": "avg", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        {"mode": "avg", "kernel_size": 3, "stride": 2, "padding": 1, "count_include_pad": False},
    ],
)
def test_pooling_equals_torch_and_core(client, pool):
    torch, F = torch_functional()
    body = client.post(
        "/api/conv",
        json={
            "image": "mnist:7",
            "weight": ["sobel_x", "sobel_y"],
            "activation": "relu",
            "pool": pool,
            "values": True,
        },
    ).json()
    x = torch.from_numpy(image_array("mnist:7", "gray"))
    w = torch.from_numpy(
        np.stack([get_preset("sobel_x").weights, get_preset("sobel_y").weights])[:, None].astype(np.float32)
    )
    conv = F.relu(F.conv2d(x, w))
    stride = pool.get("stride") or pool["kernel_size"]
    padding = pool.get("padding", 0)
    ceil_mode = pool.get("ceil_mode", False)
    pooled_values = np.array([m["values"] for m in body["pool"]["maps"]], dtype=np.float32)[None]
    if pool["mode"] == "max":
        expected, indices = F.max_pool2d(
            conv, pool["kernel_size"], stride, padding, ceil_mode=ceil_mode, return_indices=True
        )
        np.testing.assert_array_equal(pooled_values, expected.numpy())
        argmax = np.array([m["argmax"] for m in body["pool"]["maps"]])[None]
        # ties may pick a different (equal) element; the value at our argmax must be the max
        flat = conv.numpy().reshape(1, 2, -1)
        picked = np.take_along_axis(flat, argmax.reshape(1, 2, -1), axis=2).reshape(argmax.shape)
        np.testing.assert_array_equal(picked, expected.numpy())
        core = max_pool2d(conv.numpy(), pool["kernel_size"], stride, padding, ceil_mode=ceil_mode)
        np.testing.assert_array_equal(pooled_values, core)
    else:
        include = pool.get("count_include_pad", True)
        expected = F.avg_pool2d(
            conv, pool["kernel_size"], stride, padding, ceil_mode=ceil_mode, count_include_pad=include
        )
        np.testing.assert_allclose(pooled_values, expected.numpy(), rtol=1e-6, atol=1e-7)
        core = avg_pool2d(
            conv.numpy(), pool["kernel_size"], stride, padding, ceil_mode=ceil_mode, count_include_pad=include
        )
        np.testing.assert_array_equal(pooled_values, core)
    assert body["pool"]["shape"] == list(expected.shape)


def test_preset_forms(client):
    x = image_array("sample:coffee", "rgb", 20)
    sobel = get_preset("sobel_x").weights.astype(np.float32)
    one = client.post(
        "/api/conv",
        json={"image": "sample:coffee", "color": "rgb", "max_side": 20, "weight": "sobel_x", "values": True},
    ).json()
    expected = conv2d(x, np.broadcast_to(sobel, (1, 3, 3, 3)))
    np.testing.assert_array_equal(conv_values(one), expected)
    as_list = client.post(
        "/api/conv",
        json={
            "image": "sample:coffee",
            "color": "rgb",
            "max_side": 20,
            "weight": sobel.tolist(),
            "values": True,
        },
    ).json()
    np.testing.assert_array_equal(conv_values(as_list), expected)


def test_values_only_for_small_maps_and_region(client):
    big = client.post(
        "/api/conv", json={"image": "sample:camera", "max_side": 100, "weight": "sobel_x", "values": True}
    ).json()
    assert big["conv"]["maps"][0]["values"] is None  # 98×98 > 64×64
    region = client.post(
        "/api/conv",
        json={
            "image": "sample:camera",
            "max_side": 100,
            "weight": "sobel_x",
            "region": {"y0": 10, "y1": 20, "x0": 90, "x1": 200},
        },
    ).json()
    assert region["conv"]["region"] == {"y0": 10, "y1": 20, "x0": 90, "x1": 98}
    values = np.array(region["conv"]["maps"][0]["values"], dtype=np.float32)
    full = conv2d(
        image_array("sample:camera", "gray", 100),
        get_preset("sobel_x").weights[None, None].astype(np.float32),
    )
    np.testing.assert_array_equal(values, full[0, 0, 10:20, 90:98])
    outside = client.post(
        "/api/conv", json={"image": "mnist:0", "region": {"y0": 30, "y1": 31, "x0": 0, "x1": 1}}
    )
    assert outside.status_code == 422
    assert outside.json()["detail"][0]["loc"] == ["body", "region"]


def assert_422(response, field: str, *words: str):
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert isinstance(detail, list) and detail
    assert any(d["loc"][:2] == ["body", field] for d in detail), detail
    text = " ".join(d["msg"] for d in detail)
    for word in words:
        assert word in text, text


def test_kernel_larger_than_padded_input(client):
    response = client.post(
        "/api/conv", json={"image": "mnist:0", "max_side": 8, "weight": [[1] * 5] * 5, "dilation": 3}
    )
    assert_422(response, "weight", "kernel 5 with dilation 3 spans 13 pixels", "only 8")


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"weight": [[[[1.0]]]], "color": "rgb"}, "weight", ("3 channels",)),
        ({"weight": ["sobel_x", "gaussian_5"]}, "weight", ("one size",)),
        ({"weight": "no_such_kernel"}, "weight", ("unknown kernel",)),
        ({"weight": "Sobel X"}, "weight", ()),
        ({"weight": [[1, 2], [3]]}, "weight", ("ragged",)),
        ({"weight": [[1, 2e7]]}, "weight", ()),
        ({"weight": [[]]}, "weight", ()),
        ({"bias": [1, 2]}, "bias", ("2 values", "1 filters")),
        ({"stride": 0}, "stride", ()),
        ({"stride": 9}, "stride", ()),
        ({"padding": -1}, "padding", ()),
        ({"padding": [1, 2, 3]}, "padding", ()),
        ({"padding": "circular"}, "padding", ()),
        ({"dilation": 6}, "dilation", ()),
        ({"groups": 2}, "groups", ("groups (2)",)),
        ({"pool": {"kernel_size": 2, "padding": 2}}, "pool", ("at most half",)),
        ({"pool": {"mode": "median"}}, "pool", ()),
        ({"color": "cmyk"}, "color", ()),
        ({"max_side": 4}, "max_side", ()),
        ({"image": "../etc/passwd"}, "image", ()),
        ({"activation": "tanh"}, "activation", ()),
    ],
)
def test_invalid_requests_are_422_naming_the_field(client, body, field, words):
    response = client.post("/api/conv", json={"image": "mnist:0", **body})
    assert_422(response, field, *words)


def test_nan_and_infinite_weights_are_422(client):
    for token in ("NaN", "Infinity", "-Infinity"):
        raw = '{"image": "mnist:0", "weight": [[1, ' + token + "]]}"
        response = client.post("/api/conv", content=raw, headers={"content-type": "application/json"})
        assert_422(response, "weight")


def test_unknown_image_is_404(client):
    response = client.post("/api/conv", json={"image": "mnist:10000"})
    assert response.status_code == 404
    response = client.post("/api/conv", json={"image": "0" * 64})
    assert response.status_code == 404 and "unknown image id" in response.json()["detail"]


def test_wrong_content_type_is_4xx(client):
    response = client.post("/api/conv", content=b"image=mnist:0", headers={"content-type": "text/plain"})
    assert 400 <= response.status_code < 500
    response = client.post("/api/conv", content=b"{not json", headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_work_budget(tmp_path):
    from fastapi.testclient import TestClient

    from app.main import create_app
    from app.settings import Settings

    with TestClient(create_app(Settings(store_dir=tmp_path, max_macs=10_000))) as small:
        response = small.post("/api/conv", json={"image": "mnist:0", "weight": ["sobel_x", "sobel_y"]})
        assert_422(response, "max_side", "multiply-adds", "reduce")
        assert (
            small.post(
                "/api/conv", json={"image": "mnist:0", "max_side": 16, "weight": "sobel_x"}
            ).status_code
            == 200
        )
    with TestClient(create_app(Settings(store_dir=tmp_path, max_im2col_bytes=1000))) as small:
        response = small.post("/api/conv", json={"image": "mnist:0", "weight": "sobel_x"})
        assert_422(response, "max_side", "im2col")


def test_conv_png_grid_etag_and_304(client):
    params = {"image": "mnist:0", "weight": "sobel_x,sobel_y", "padding": "1", "pool": "max", "stage": "pool"}
    response = client.get("/api/conv.png", params=params)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    picture = Image.open(io.BytesIO(response.content))
    assert picture.size == (14 * 2 + 2, 14)
    etag = response.headers["etag"]
    again = client.get("/api/conv.png", params=params, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    other = client.get("/api/conv.png", params={**params, "padding": "0"})
    assert other.headers["etag"] != etag
    json_weight = client.get(
        "/api/conv.png", params={"image": "mnist:0", "weight": "[[0,1,0],[1,-4,1],[0,1,0]]"}
    )
    assert json_weight.status_code == 200
    bad = client.get("/api/conv.png", params={"image": "mnist:0", "stride": "0"})
    assert bad.status_code == 422
    assert client.get("/api/conv.png", params={"image": "mnist:99999"}).status_code == 404


def test_input_picture_is_the_input_array(client):
    body = client.post("/api/conv", json={"image": "sample:astronaut", "color": "rgb", "max_side": 64}).json()
    picture = np.asarray(decode_png(body["input"]["png"]))
    expected = (
        np.rint(image_array("sample:astronaut", "rgb", 64)[0] * 255).astype(np.uint8).transpose(1, 2, 0)
    )
    np.testing.assert_array_equal(picture, expected)


def test_input_shape_leaves_out_only_the_input_picture(client):
    """``?input=shape`` (a slider step whose page already drew this input): ``input.png`` is null, and the
    maps, steps and the rest are the same as with the picture — also when the answer is a cache hit."""
    request = {"image": "sample:astronaut", "color": "rgb", "max_side": 64, "weight": ["sobel_x", "emboss"]}
    full = client.post("/api/conv?pictures=levels&explain=0,3,4", json=request).json()
    for _ in range(2):  # the second answer comes from the response cache
        bare = client.post("/api/conv?pictures=levels&explain=0,3,4&input=shape", json=request).json()
        assert bare["input"] == {"shape": [1, 3, 64, 64], "png": None}
        for name in ("conv", "pool", "padding", "steps", "warnings", "facts", "explain"):
            assert bare[name] == full[name], name
    # and asking for the picture after a bare answer still gets it (the cache keys the two apart)
    again = client.post("/api/conv?pictures=levels&explain=0,3,4", json=request).json()
    assert again["input"]["png"] == full["input"]["png"]
    assert again["input"]["png"].startswith("data:image/png")


def test_input_query_refuses_other_words(client):
    response = client.post("/api/conv?input=none", json={"image": "mnist:0"})
    assert response.status_code == 422
    assert "input" in response.text and "'png' or 'shape'" in response.text
