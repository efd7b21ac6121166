"""POST /api/stack and POST /api/stack/field: shapes, maps, fields and ERFs against core and hand values,
and the 422s naming the layer and field."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest

from app import stack_compute
from app.image_source import load_array
from core import layers as L
from core.stack_text import parse

LENET = "nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5))"


def _post(client, path, **body):
    body.setdefault("image", "mnist:0")
    body.setdefault("color", "gray")
    return client.post(path, json=body)


def test_stack_returns_every_layer_with_shapes_fields_and_maps(client, settings):
    response = _post(client, "/api/stack", text=LENET, values=True)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["input"]["shape"] == [1, 28, 28]
    assert [layer["shape"] for layer in body["layers"]] == [
        [6, 28, 28],
        [6, 28, 28],
        [6, 14, 14],
        [16, 10, 10],
    ]
    # Distill's recurrence by hand: 5 (start −2), ReLU, pool 2 → 6 (j 2), conv 5 → 6 + 4·2 = 14, start −2
    assert [(lay["height"]["r"], lay["height"]["j"], lay["height"]["start"]) for lay in body["layers"]] == [
        (5, 1, -2),
        (5, 1, -2),
        (6, 2, -2),
        (14, 2, -2),
    ]
    assert [len(layer["maps"]) for layer in body["layers"]] == [6, 6, 6, 16]
    assert body["layers"][3]["maps"][0]["png"].startswith("data:image/png;base64,")
    # the exact values are core's forward pass with the seeded Kaiming-uniform weights
    layers = parse(LENET)
    x = load_array("mnist:0", "gray", None, settings)
    acts = L.forward(layers, L.kaiming_uniform(layers, 0), x)
    np.testing.assert_allclose(
        np.array(body["layers"][3]["maps"][5]["values"]), acts.maps[4][0, 5], rtol=1e-6
    )
    assert body["layers"][3]["maps"][5]["min"] == pytest.approx(float(acts.maps[4][0, 5].min()), rel=1e-6)
    assert parse(body["text"]) == layers
    assert "model = nn.Sequential(" in body["pytorch"] and "copy_(torch.tensor(" in body["pytorch"]
    assert body["timing_ms"]["total"] > 0


def test_layers_json_and_text_give_the_same_answer(client):
    layers = [
        {"type": "Conv2d", "in_channels": 1, "out_channels": 6, "kernel_size": 5, "padding": 2},
        {"type": "ReLU"},
        {"type": "MaxPool2d", "kernel_size": 2},
        {"type": "Conv2d", "in_channels": 6, "out_channels": 16, "kernel_size": 5},
    ]
    a = _post(client, "/api/stack", layers=layers).json()
    b = _post(client, "/api/stack", text=LENET).json()
    assert [lay["maps"][0]["png"] for lay in a["layers"]] == [lay["maps"][0]["png"] for lay in b["layers"]]


def test_weights_npz_round_trip_and_mnist_preset(client, settings):
    body = _post(client, "/api/stack", text=LENET, weights={"source": "random", "seed": 3}).json()
    again = _post(
        client, "/api/stack", text=LENET, weights={"source": "npz", "npz": body["weights_npz"]}
    ).json()
    assert [m["png"] for m in again["layers"][3]["maps"]] == [m["png"] for m in body["layers"][3]["maps"]]
    other = _post(client, "/api/stack", text=LENET, weights={"source": "random", "seed": 4}).json()
    assert other["layers"][3]["maps"][0]["png"] != body["layers"][3]["maps"][0]["png"]
    mnist = _post(client, "/api/stack", preset="mnist", weights={"source": "mnist"}, values=True)
    assert mnist.status_code == 200, mnist.text
    from core import network

    params, _ = network.load_weights()
    x = load_array("mnist:0", "gray", None, settings)
    _, cache = network.forward(params, x)
    np.testing.assert_allclose(
        np.array(mnist.json()["layers"][2]["maps"][7]["values"]), cache.pool[0, 7], rtol=1e-6
    )


def test_preset_kernels_per_layer(client, settings):
    layers = [
        {
            "type": "Conv2d",
            "in_channels": 1,
            "out_channels": 2,
            "kernel_size": 3,
            "kernels": ["sobel_x", "sobel_y"],
        }
    ]
    body = _post(client, "/api/stack", layers=layers, values=True, image="mnist:1").json()
    from core.conv import conv2d
    from core.kernels import get_preset

    x = load_array("mnist:1", "gray", None, settings)
    expected = conv2d(x, get_preset("sobel_y").weights[None, None].astype(np.float32))
    np.testing.assert_allclose(
        np.array(body["layers"][0]["maps"][1]["values"]), expected[0, 0], rtol=1e-5, atol=1e-6
    )


def test_field_box_erf_and_depth_curve(client):
    response = _post(client, "/api/stack/field", text=LENET, layer=3, channel=2, y=0, x=9)
    assert response.status_code == 200, response.text
    body = response.json()
    # unit (0, 9) of the last conv: start −2 + 0·2 = −2 → rows −2..11 (2 in the padding);
    # columns −2 + 18 = 16..29,
    # of which 28, 29 fall in the padding (the image is 28 wide)
    height, width = body["box"]["height"], body["box"]["width"]
    assert (height["start"], height["stop"], height["pad_before"], height["pad_after"]) == (-2, 12, 2, 0)
    assert (width["start"], width["stop"], width["pad_before"], width["pad_after"]) == (16, 30, 0, 2)
    assert (width["clipped_start"], width["clipped_stop"]) == (16, 28)
    assert body["theoretical_radius"] == [6.5, 6.5]
    values = np.array(body["erf"]["values"])
    assert values.shape == (28, 28) and values.sum() == pytest.approx(1.0)
    rows, cols = np.nonzero(values)
    assert rows.min() >= height["exact_start"] and rows.max() < height["exact_stop"]
    assert cols.min() >= width["exact_start"] and cols.max() < width["exact_stop"]
    assert 0 < body["erf"]["radius"] <= 6.5 + 1
    assert [d["index"] for d in body["depth"]] == [0, 2, 3]
    assert [d["r"][0] for d in body["depth"]] == [5, 6, 14]
    # the value is the map's value
    stack = _post(client, "/api/stack", text=LENET, values=True).json()
    assert body["value"] == pytest.approx(stack["layers"][3]["maps"][2]["values"][0][9], rel=1e-6)


def test_field_reuses_the_forward_pass(client):
    stack_compute._activations.clear()
    first = _post(client, "/api/stack/field", text=LENET, layer=0, y=3, x=3).json()
    second = _post(client, "/api/stack/field", text=LENET, layer=0, y=4, x=3).json()
    assert "forward" in first["timing_ms"] and "forward_cached" in second["timing_ms"]


@pytest.mark.parametrize(
    "body, loc, words",
    [
        (
            {
                "layers": [
                    {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3},
                    {"type": "Conv2d", "in_channels": 3, "out_channels": 4, "kernel_size": 3},
                ]
            },
            ["body", "layers", 1, "in_channels"],
            ["layer 1", "in_channels=3", "4 channel"],
        ),
        (
            {
                "layers": [
                    {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 11, "dilation": 3}
                ]
            },
            ["body", "layers", 0, "kernel_size"],
            ["layer 0", "spans 31", "28"],
        ),
        (
            {"layers": [{"type": "MaxPool2d", "kernel_size": 2, "padding": 2}]},
            ["body", "layers", 0, "MaxPool2d"],
            ["half the kernel"],
        ),
        (
            {
                "layers": [
                    {"type": "Conv2d", "in_channels": 1, "out_channels": 4, "kernel_size": 3, "groups": 3}
                ]
            },
            ["body", "layers", 0, "Conv2d"],
            ["groups (3) must divide"],
        ),
        ({"layers": [{"type": "Linear"}]}, ["body", "layers", 0], ["Conv2d"]),
        (
            {"text": "nn.Sequential(nn.ReLU(), nn.Linear(3, 4))"},
            ["body", "text"],
            ["layer 1", "line 1", "not allowed"],
        ),
        (
            {"text": "nn.Sequential(nn.Conv2d(1, 4, 3), __import__('os'))"},
            ["body", "text"],
            ["layer 1", "not allowed"],
        ),
        ({"preset": "nope"}, ["body", "preset"], ["unknown stack preset", "lenet5"]),
        ({"text": LENET, "preset": "lenet5"}, ["body"], ["exactly one"]),
        ({"text": LENET, "weights": {"source": "npz", "npz": "@@@"}}, ["body", "weights", "npz"], ["base64"]),
        (
            {"text": LENET, "weights": {"source": "npz", "npz": base64.b64encode(b"junk").decode()}},
            ["body", "weights"],
            ["could not read the .npz"],
        ),
        ({"text": LENET, "weights": {"source": "mnist"}}, ["body", "text"], ["layer 0", "trained MNIST"]),
    ],
)
def test_stack_422s_name_the_layer_and_field(client, body, loc, words):
    response = _post(client, "/api/stack", **body)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"][: len(loc)] == loc, detail
    for word in words:
        assert word in detail["msg"], detail["msg"]


@pytest.mark.parametrize(
    "unit, field, words",
    [
        ({"layer": 4, "y": 0, "x": 0}, "layer", ["0..3"]),
        ({"layer": 3, "channel": 16, "y": 0, "x": 0}, "channel", ["0..15", "16×10×10"]),
        ({"layer": 2, "y": 14, "x": 0}, "y", ["0..13"]),
        ({"layer": 2, "y": 0, "x": 99}, "x", ["0..13"]),
    ],
)
def test_field_422s_name_the_unit_field(client, unit, field, words):
    response = _post(client, "/api/stack/field", text=LENET, **unit)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", field]
    for word in words:
        assert word in detail["msg"]


def test_budgets_refuse_too_much_work(client):
    heavy = "nn.Sequential(" + ", ".join(["nn.Conv2d(64, 64, 11, padding=5)"] * 8) + ")"
    layers = "nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), " + heavy[len("nn.Sequential(") :]
    response = _post(client, "/api/stack", image="sample:astronaut", color="rgb", max_side=512, text=layers)
    assert response.status_code == 422
    assert "multiply-adds" in response.json()["detail"][0]["msg"]
    many = "nn.Sequential(nn.Conv2d(1, 64, 1), " + ", ".join(["nn.ReLU()"] * 20) + ")"
    response = _post(client, "/api/stack", text=many)
    assert response.status_code == 422 and "1344 maps in all" in response.json()["detail"][0]["msg"]
    deep = "nn.Sequential(" + ", ".join(["nn.ReLU()"] * 33) + ")"
    response = _post(client, "/api/stack", text=deep)
    assert response.status_code == 422 and "33 layers; at most 32" in response.json()["detail"][0]["msg"]


def test_pytorch_snippet_from_the_api_runs(client, settings):
    torch = pytest.importorskip("torch")
    body = _post(client, "/api/stack", text=LENET, values=True, weights={"seed": 9}).json()
    scope: dict = {}
    exec(
        compile(body["pytorch"], "snippet", "exec"), scope
    )  # the answer's own script, as a user would run it
    x = load_array("mnist:0", "gray", None, settings)
    out = scope["model"](torch.from_numpy(np.array(x))).detach().numpy()
    np.testing.assert_allclose(
        out[0, 3], np.array(body["layers"][3]["maps"][3]["values"]), rtol=1e-5, atol=1e-5
    )
    archive = np.load(io.BytesIO(base64.b64decode(body["weights_npz"])), allow_pickle=False)
    assert sorted(archive.files) == ["0.bias", "0.weight", "3.bias", "3.weight"]


def test_presets_are_listed_and_each_runs_on_its_input(client):
    presets = client.get("/api/stack/presets").json()["presets"]
    assert [p["name"] for p in presets] == [
        "mnist",
        "lenet5",
        "vgg_block",
        "resnet_stem",
        "alexnet",
        "dilated",
    ]
    for preset in presets:
        c, h, _ = preset["input"]
        image, color = ("mnist:3", "gray") if c == 1 else ("sample:astronaut", "rgb")
        weights = {"source": "mnist"} if preset["name"] == "mnist" else {"source": "random"}
        size = 64 if c == 3 and h < 224 else (256 if c == 3 else None)
        body = {"image": image, "color": color, "preset": preset["name"], "weights": weights}
        if size:
            body["max_side"] = size
        response = client.post("/api/stack", json=body)
        assert response.status_code == 200, (preset["name"], response.text)
        assert parse(response.json()["text"]) == parse(preset["text"])


def test_depth_curve_is_dropped_above_the_work_budget(client, settings):
    # conv 5×5 (1 → 6) on 28×28: 6·24·24·25 = 86,400 multiply-adds; then 6 → 6: 6·20·20·150 = 360,000.
    # The forward pass (446,400) fits 500,000; the depth curve up to layer 1 would cost 86,400 + 446,400.
    settings.max_macs = 500_000
    body = {
        "image": "mnist:0",
        "color": "gray",
        "text": "nn.Sequential(nn.Conv2d(1, 6, 5), nn.Conv2d(6, 6, 5))",
    }
    small = client.post("/api/stack/field", json={**body, "layer": 0, "y": 0, "x": 0}).json()
    assert [d["index"] for d in small["depth"]] == [0]
    big = client.post("/api/stack/field", json={**body, "layer": 1, "y": 0, "x": 0}).json()
    assert big["depth"] is None and big["erf"]["radius"] > 0
    settings.max_macs = 400_000
    refused = client.post("/api/stack/field", json={**body, "layer": 1, "y": 0, "x": 0})
    assert refused.status_code == 422 and "446,400 multiply-adds" in refused.json()["detail"][0]["msg"]


def test_a_max_pool_window_entirely_in_the_padding_is_a_422(client):
    # conv 28×28 leaves a 1×1 map; a 2×2 window, dilation 2, padding 1 reads taps −1 and 1: padding only
    text = "nn.Sequential(nn.Conv2d(1, 1, 28), nn.MaxPool2d(2, stride=1, padding=1, dilation=2))"
    for path, extra in (("/api/stack", {}), ("/api/stack/field", {"layer": 1, "y": 0, "x": 0})):
        response = _post(client, path, text=text, **extra)
        assert response.status_code == 422, response.text
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", "text"]
        assert "layer 1" in detail["msg"] and "entirely in the padding" in detail["msg"]
    layers = [  # kernel 10 with dilation 3 spans 28: a 1×1 map again
        {"type": "Conv2d", "in_channels": 1, "out_channels": 1, "kernel_size": 10, "dilation": 3},
        {"type": "MaxPool2d", "kernel_size": 2, "stride": 1, "padding": 1, "dilation": 2},
    ]
    response = _post(client, "/api/stack", layers=layers)
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "layers", 1, "padding"]
