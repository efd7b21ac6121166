"""POST /api/explain, /api/im2col, /api/backward, /api/transpose and /api/shape against core and PyTorch."""

from __future__ import annotations

import numpy as np
import pytest
from test_api_conv import assert_422, image_array

from core.kernels import get_preset


def f32(values) -> np.ndarray:
    return np.array(values, dtype=np.float32)


def torch_functional():
    torch = pytest.importorskip("torch")
    return torch, torch.nn.functional


# ---------------------------------------------------------------------------------------------- explain


@pytest.mark.parametrize(
    "case",
    [
        {
            "image": "mnist:0",
            "color": "gray",
            "padding": 1,
            "stride": 1,
            "dilation": 1,
            "groups": 1,
            "position": [1, 0, 0],
        },
        {
            "image": "mnist:0",
            "color": "gray",
            "padding": "same",
            "stride": 2,
            "dilation": 2,
            "groups": 1,
            "position": [0, 9, 9],
        },
        {
            "image": "sample:chelsea",
            "color": "rgb",
            "padding": [0, 2, 1, 0],
            "stride": [1, 2],
            "dilation": 1,
            "groups": 1,
            "position": [2, 4, 3],
        },
        {
            "image": "sample:chelsea",
            "color": "rgb",
            "padding": 1,
            "stride": 1,
            "dilation": 1,
            "groups": 3,
            "position": [1, 0, 5],
        },
    ],
)
@pytest.mark.parametrize("activation", ["none", "relu"])
def test_explain_value_equals_conv_value(client, case, activation):
    rng = np.random.default_rng(3)
    channels = 1 if case["color"] == "gray" else 3
    filters = 3
    weight = rng.standard_normal((filters, channels // case["groups"], 3, 3)).astype(np.float32)
    bias = rng.standard_normal(filters).astype(np.float32)
    common = {k: v for k, v in case.items() if k != "position"}
    common.update(
        {"max_side": 20, "weight": weight.tolist(), "bias": bias.tolist(), "activation": activation}
    )
    conv = client.post("/api/conv", json={**common, "values": True}).json()
    body = client.post("/api/explain", json={**common, "position": case["position"]}).json()
    f, y, x = case["position"]
    assert body["value"] == conv["conv"]["maps"][f]["values"][y][x]
    out_w = conv["conv"]["shape"][3]
    assert body["column"] == y * out_w + x
    # the shown arithmetic: products = window · kernel, sum of products + bias = pre-activation (to float32)
    window, kernel, products = f32(body["window"]), f32(body["kernel"]), f32(body["products"])
    np.testing.assert_array_equal(products, window * kernel)
    np.testing.assert_array_equal(kernel, weight[f])
    np.testing.assert_allclose(f32(body["channel_sums"]), products.sum(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    assert body["bias"] == pytest.approx(float(bias[f]))
    assert body["sum"] + body["bias"] == pytest.approx(body["pre_activation"], rel=1e-5, abs=1e-5)
    expected_value = max(body["pre_activation"], 0.0) if activation == "relu" else body["pre_activation"]
    assert body["value"] == pytest.approx(expected_value)
    # the window read directly from the (independently rebuilt) input at the unpadded tap coordinates
    x_in = image_array(case["image"], case["color"], 20)[0]
    g = body["group"]
    assert body["channels"] == list(range(g * weight.shape[1], (g + 1) * weight.shape[1]))
    taps = body["taps"]
    for ci, c in enumerate(body["channels"]):
        for i, r in enumerate(taps["input_rows"]):
            for j, q in enumerate(taps["input_cols"]):
                inside = 0 <= r < x_in.shape[1] and 0 <= q < x_in.shape[2]
                assert taps["in_padding"][i][j] is (not inside)
                assert window[ci, i, j] == (x_in[c, r, q] if inside else 0.0)


def test_explain_position_outside_is_422(client):
    response = client.post(
        "/api/explain", json={"image": "mnist:0", "weight": "sobel_x", "position": [0, 26, 0]}
    )
    assert_422(response, "position", "outside")
    response = client.post(
        "/api/explain", json={"image": "mnist:0", "weight": "sobel_x", "position": [1, 0, 0]}
    )
    assert_422(response, "position")


def test_explain_padding_taps(client):
    body = client.post(
        "/api/explain", json={"image": "mnist:0", "weight": "sobel_x", "padding": 1, "position": [0, 0, 0]}
    ).json()
    assert body["taps"]["rows"] == [0, 1, 2] and body["taps"]["input_rows"] == [-1, 0, 1]
    assert body["taps"]["in_padding"][0] == [True, True, True]
    assert body["taps"]["in_padding"][1] == [True, False, False]


# ---------------------------------------------------------------------------------------------- im2col


@pytest.mark.parametrize(
    "case",
    [
        {"color": "gray", "padding": 1, "stride": 1, "dilation": 1},
        {"color": "rgb", "padding": [1, 0], "stride": [2, 1], "dilation": [1, 2]},
        {"color": "rgb", "padding": "same", "stride": 1, "dilation": 2},
    ],
)
def test_im2col_equals_torch_unfold(client, case):
    torch, F = torch_functional()
    body = client.post(
        "/api/im2col",
        json={"image": "sample:coffee", "max_side": 16, "weight": "sobel_x", "indices": True, **case},
    ).json()
    x = image_array("sample:coffee", case["color"], 16)
    padding = case["padding"]
    if isinstance(padding, str):  # 'same' with stride 1: kernel 3 → (k − 1)·d / 2 each side
        padding = case["dilation"]
    expected = F.unfold(
        torch.from_numpy(x), 3, dilation=case["dilation"], padding=padding, stride=case["stride"]
    ).numpy()
    assert body["shape"] == list(expected.shape)
    np.testing.assert_array_equal(f32(body["values"]), expected[0])
    channels = x.shape[1]
    assert body["row_labels"] == [[c, i, j] for c in range(channels) for i in range(3) for j in range(3)]
    # the (k, i, j) indices gather the same matrix from the padded input
    pad_h, pad_w = (padding, padding) if isinstance(padding, int) else padding
    padded = np.pad(x[0], ((0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    k = np.array(body["indices"]["k"])[:, None]
    gathered = padded[k, np.array(body["indices"]["i"]), np.array(body["indices"]["j"])]
    np.testing.assert_array_equal(gathered, expected[0])
    # W_col · X_col is the convolution
    w_col = f32(body["w_col"])
    np.testing.assert_allclose(f32(body["product"]["values"]), w_col @ expected[0], rtol=1e-5, atol=1e-5)
    assert body["duplication"] == pytest.approx(expected[0].size / x.size, rel=1e-3)
    assert body["im2col_bytes"] == expected[0].size * 4 and body["input_bytes"] == x.size * 4


def test_im2col_large_gives_picture_and_column_range(client):
    body = client.post(
        "/api/im2col",
        json={"image": "sample:camera", "weight": "sobel_x", "padding": 1, "columns": [1000, 1010]},
    ).json()
    assert body["rows"] == 9 and body["cols"] == 512 * 512
    assert body["values"] is None and body["indices"] is None
    assert body["png_column_step"] == 128 and body["png"].startswith("data:image/png;base64,")
    x = image_array("sample:camera", "gray")
    padded = np.pad(x[0, 0], 1)
    for offset, column in enumerate(range(1000, 1010)):
        oh, ow = divmod(column, 512)
        np.testing.assert_array_equal(
            f32(body["columns"]["values"])[:, offset], padded[oh : oh + 3, ow : ow + 3].ravel()
        )
    bad = client.post("/api/im2col", json={"image": "mnist:0", "columns": [5, 2000]})
    assert_422(bad, "columns")


# ---------------------------------------------------------------------------------------------- backward


@pytest.mark.parametrize(
    "case",
    [
        {
            "color": "gray",
            "padding": 1,
            "stride": 1,
            "dilation": 1,
            "groups": 1,
            "activation": "none",
            "upstream": {"kind": "ones"},
        },
        {
            "color": "rgb",
            "padding": [2, 1],
            "stride": 2,
            "dilation": [2, 1],
            "groups": 1,
            "activation": "relu",
            "upstream": {"kind": "random", "seed": 5},
        },
        {
            "color": "rgb",
            "padding": "same",
            "stride": 1,
            "dilation": 1,
            "groups": 3,
            "activation": "none",
            "upstream": {"kind": "onehot", "position": [2, 3, 4]},
        },
        {
            "color": "gray",
            "padding": 1,
            "stride": 1,
            "dilation": 1,
            "groups": 1,
            "activation": "relu",
            "upstream": {"kind": "random", "seed": 1},
            "target": "pool",
            "pool": {"mode": "max", "kernel_size": 2},
        },
        {
            "color": "rgb",
            "padding": 0,
            "stride": 1,
            "dilation": 1,
            "groups": 1,
            "activation": "none",
            "upstream": {"kind": "ones"},
            "target": "pool",
            "pool": {"mode": "avg", "kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        },
    ],
)
def test_backward_equals_torch_autograd(client, case):
    torch, F = torch_functional()
    rng = np.random.default_rng(9)
    channels = 1 if case["color"] == "gray" else 3
    weight = rng.standard_normal((3, channels // case["groups"], 3, 3)).astype(np.float32)
    bias = rng.standard_normal(3).astype(np.float32)
    body = client.post(
        "/api/backward",
        json={
            "image": "sample:astronaut",
            "max_side": 12,
            "weight": weight.tolist(),
            "bias": bias.tolist(),
            "values": True,
            **case,
        },
    ).json()
    x = torch.from_numpy(image_array("sample:astronaut", case["color"], 12)).requires_grad_(True)
    w = torch.from_numpy(weight).requires_grad_(True)
    b = torch.from_numpy(bias).requires_grad_(True)
    padding = case["padding"]
    out = F.conv2d(
        x, w, b, stride=case["stride"], padding=padding, dilation=case["dilation"], groups=case["groups"]
    )
    if case["activation"] == "relu":
        out = F.relu(out)
    if case.get("target") == "pool":
        pool = case["pool"]
        if pool["mode"] == "max":
            out = F.max_pool2d(out, pool["kernel_size"])
        else:
            out = F.avg_pool2d(
                out, pool["kernel_size"], pool["stride"], pool["padding"], ceil_mode=pool["ceil_mode"]
            )
    upstream = case["upstream"]
    if upstream["kind"] == "ones":
        grad = torch.ones_like(out)
    elif upstream["kind"] == "random":
        grad = torch.from_numpy(
            np.random.default_rng(upstream["seed"]).standard_normal(out.shape).astype(np.float32)
        )
    else:
        grad = torch.zeros_like(out)
        f, y, xx = upstream["position"]
        grad[0, f, y, xx] = 1
    out.backward(grad)
    assert body["upstream"]["shape"] == list(out.shape)
    np.testing.assert_allclose(f32(body["grad_x"]["values"]), x.grad.numpy()[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(f32(body["grad_weight"]["values"]), w.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(f32(body["grad_bias"]["values"]), b.grad.numpy(), rtol=1e-4, atol=1e-4)
    assert (body["pool_grad"] is None) == (case.get("target") != "pool")


def test_overlap_count_by_loops(client):
    body = client.post(
        "/api/backward", json={"image": "mnist:0", "weight": [[1] * 3] * 3, "stride": 2, "padding": 0}
    ).json()
    counts = np.zeros((28, 28), dtype=int)
    for oh in range(13):
        for ow in range(13):
            counts[oh * 2 : oh * 2 + 3, ow * 2 : ow * 2 + 3] += 1
    np.testing.assert_array_equal(np.array(body["overlap"]["values"]), counts)
    assert body["overlap"]["max"] == 4


def test_backward_errors(client):
    response = client.post("/api/backward", json={"image": "mnist:0", "target": "pool"})
    assert_422(response, "target", "needs a pool")
    response = client.post("/api/backward", json={"image": "mnist:0", "upstream": {"kind": "onehot"}})
    assert_422(response, "upstream", "position")
    response = client.post(
        "/api/backward", json={"image": "mnist:0", "upstream": {"kind": "onehot", "position": [0, 99, 0]}}
    )
    assert_422(response, "upstream", "outside")


# ---------------------------------------------------------------------------------------------- transpose


@pytest.mark.parametrize(
    "case",
    [
        {
            "x": (4, 5),
            "weight": (3, 3),
            "stride": 2,
            "padding": 1,
            "output_padding": 1,
            "dilation": 1,
            "groups": 1,
        },
        {
            "x": (2, 3, 3),
            "weight": (2, 3, 2, 2),
            "stride": [2, 1],
            "padding": [0, 1],
            "output_padding": 0,
            "dilation": [1, 2],
            "groups": 1,
        },
        {
            "x": (4, 3, 3),
            "weight": (4, 1, 3, 3),
            "stride": 3,
            "padding": 0,
            "output_padding": [2, 1],
            "dilation": 1,
            "groups": 2,
        },
    ],
)
def test_transpose_equals_torch(client, case):
    torch, F = torch_functional()
    rng = np.random.default_rng(2)
    x = rng.standard_normal(case["x"]).astype(np.float32)
    weight = rng.standard_normal(case["weight"]).astype(np.float32)
    body = client.post("/api/transpose", json={**case, "x": x.tolist(), "weight": weight.tolist()}).json()
    tx = torch.from_numpy(x[None, None] if x.ndim == 2 else x[None])
    tw = torch.from_numpy(weight[None, None] if weight.ndim == 2 else weight)
    expected = F.conv_transpose2d(
        tx,
        tw,
        stride=case["stride"],
        padding=case["padding"],
        output_padding=case["output_padding"],
        groups=case["groups"],
        dilation=case["dilation"],
    ).numpy()
    assert body["output"]["shape"] == list(expected.shape)
    np.testing.assert_allclose(f32(body["output"]["values"]), expected[0], rtol=1e-5, atol=1e-5)
    assert [s["value"] for s in body["steps"]] == list(expected.shape[2:])
    c_out = expected.shape[1]
    kh, kw = weight.shape[-2:]
    assert body["columns"]["shape"] == [c_out * kh * kw, tx.shape[2] * tx.shape[3]]


def test_transpose_errors(client):
    response = client.post("/api/transpose", json={"x": [[1, 2], [3]], "weight": [[1]]})
    assert_422(response, "x", "ragged")
    response = client.post("/api/transpose", json={"x": [[1] * 17], "weight": [[1]]})
    assert_422(response, "x")
    response = client.post("/api/transpose", json={"x": [[1, 2]], "weight": [[1, 1]], "output_padding": 1})
    assert_422(response, "output_padding", "smaller than the stride")


# ---------------------------------------------------------------------------------------------- shape


def test_shape_textbook_numbers(client):
    body = client.post(
        "/api/shape",
        json={
            "input_size": [32, 32],
            "channels": 3,
            "filters": 16,
            "kernel_size": 3,
            "padding": "valid",
            "stride": 2,
        },
    ).json()
    assert body["conv"]["output_shape"] == [1, 16, 15, 15]
    assert body["conv"]["params"] == 448
    assert body["conv"]["im2col_shape"] == [1, 27, 225]
    mnist = client.post(
        "/api/shape", json={"input_size": 28, "kernel_size": 5, "pool": {"kernel_size": 2, "stride": 2}}
    ).json()
    assert mnist["conv"]["output_shape"] == [1, 1, 24, 24]
    assert mnist["pool"]["output_shape"] == [1, 1, 12, 12]


def test_shape_warnings_and_huge_sizes(client):
    body = client.post("/api/shape", json={"input_size": 10, "kernel_size": 3, "stride": 4}).json()
    assert any("does not fit" in w for w in body["warnings"])
    huge = client.post(
        "/api/shape",
        json={
            "input_size": [1_000_000, 1_000_000],
            "channels": 1_000_000,
            "filters": 1_000_000,
            "kernel_size": 1000,
        },
    )
    assert huge.status_code == 200
    assert huge.json()["conv"]["output_shape"] == [1, 1_000_000, 999_001, 999_001]
    too_big = client.post("/api/shape", json={"input_size": 5, "kernel_size": 7})
    assert_422(too_big, "kernel_size", "spans 7 pixels")
    assert_422(client.post("/api/shape", json={"input_size": 5, "channels": 3, "groups": 2}), "groups")
    assert_422(client.post("/api/shape", json={"input_size": 1_000_001}), "input_size")


def test_preset_kernels_used(client):
    body = client.post("/api/im2col", json={"image": "mnist:0", "weight": ["sobel_x", "sobel_y"]}).json()
    np.testing.assert_array_equal(
        f32(body["w_col"]),
        np.stack([get_preset("sobel_x").weights.ravel(), get_preset("sobel_y").weights.ravel()]),
    )
