"""The compact picture format (``?pictures=levels``) against the exact float values, and the prepared
layers one slider step's requests share (app/layer_cache.py)."""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.image_source import clear_caches
from app.layer_cache import process_layers
from app.main import create_app
from app.render import DIVERGING_LUT, SEQUENTIAL_LUT, levels
from app.response_cache import process_cache
from app.settings import Settings


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    clear_caches()
    process_cache().clear()
    process_layers().clear()
    yield
    process_layers().clear()


@pytest.fixture
def client(tmp_path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(store_dir=tmp_path / "s", response_cache_bytes=0))) as c:
        yield c


def decode(picture: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(picture["b64"]), dtype=np.uint8)
    return raw.reshape(picture["shape"])


def png_rgb(data_url: str) -> np.ndarray:
    """The (H, W, 3) colours of a PNG data URL."""
    image = Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1])))
    return np.asarray(image.convert("RGB"))


def reference_levels(values: np.ndarray) -> tuple[np.ndarray, str]:
    """Independent quantisation in float64: diverging over ±max|v| (0 → 127), else min→0, max→255."""
    v = values.astype(np.float64)
    lo, hi = v.min(), v.max()
    if lo < 0:
        m = max(-lo, hi)
        return np.rint(v / m * 127 + 127).astype(np.uint8), "diverging"
    return np.rint((v - lo) / (hi - lo) * 255).astype(np.uint8), "sequential"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_levels_match_the_exact_values(seed) -> None:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal((7, 9)).astype(np.float32)
    if seed == 2:
        values = np.abs(values) + 0.25  # non-negative: sequential
    picture = levels(values)
    expected, colormap = reference_levels(values)
    assert picture["colormap"] == colormap
    assert picture["shape"] == [7, 9]
    # float32 arithmetic may round a value sitting on a half level the other way: at most one level off
    assert np.abs(decode(picture).astype(int) - expected.astype(int)).max() <= 1
    assert (decode(picture) == expected).mean() > 0.95


def test_several_maps_share_one_scale() -> None:
    values = np.stack([np.full((2, 3), -2.0), np.full((2, 3), 1.0)]).astype(np.float32)
    picture = levels(values)
    assert picture["shape"] == [2, 2, 3] and picture["colormap"] == "diverging"
    assert decode(picture)[0].tolist() == [[0] * 3] * 2  # −2 = −max|v| → 0
    assert decode(picture)[1].tolist() == [[190] * 3] * 2  # 1/2 · 127 + 127 = 190.5 → 190 (half to even)


def test_conv_levels_are_the_png_palette_indices_and_values_stay_exact(client) -> None:
    body = {
        "image": "mnist:5",
        "weight": ["sobel_x", "gaussian_3"],
        "padding": 1,
        "values": True,
        "pool": {"mode": "max", "kernel_size": 2},
    }
    png = client.post("/api/conv", json=body).json()
    lev = client.post("/api/conv?pictures=levels", json=body).json()
    for block in ("conv", "pool"):
        for a, b in zip(png[block]["maps"], lev[block]["maps"], strict=True):
            assert "png" not in b and "levels" not in a
            assert a["values"] == b["values"] and a["min"] == b["min"] and a["max"] == b["max"]
            assert a["colormap"] == b["colormap"] == b["levels"]["colormap"]
            lut = DIVERGING_LUT if a["colormap"] == "diverging" else SEQUENTIAL_LUT
            # the page colours level i with the palette's colour i: the pixels are the PNG's
            assert np.array_equal(lut[decode(b["levels"])], png_rgb(a["png"]))
            exact, _ = reference_levels(np.asarray(b["values"], dtype=np.float32))
            assert np.abs(decode(b["levels"]).astype(int) - exact).max() <= 1


def test_backward_levels_hold_every_channel_with_one_scale(client) -> None:
    body = {
        "image": "sample:astronaut",
        "color": "rgb",
        "max_side": 32,
        "weight": "sobel_x",
        "upstream": {"kind": "random", "seed": 3},
        "values": True,
    }
    data = client.post("/api/backward?pictures=levels", json=body).json()
    grad_x = data["grad_x"]
    assert grad_x["levels"]["shape"] == [3, 32, 32] and "png" not in grad_x
    exact, colormap = reference_levels(np.asarray(grad_x["values"], dtype=np.float32))
    assert grad_x["levels"]["colormap"] == colormap
    assert np.abs(decode(grad_x["levels"]).astype(int) - exact).max() <= 1
    assert decode(data["overlap"]["levels"]).shape == (32, 32)


def test_one_steps_requests_share_one_prepared_layer(client) -> None:
    body = {"image": "mnist:8", "weight": "sobel_y", "padding": 1, "activation": "relu"}
    layers = process_layers()
    conv = client.post("/api/conv", json={**body, "values": True}).json()
    assert (layers.misses, layers.hits) == (1, 0)
    explained = client.post("/api/explain", json={**body, "position": [0, 3, 4]}).json()
    client.post("/api/backward", json={**body, "upstream": {"kind": "ones"}})
    client.post("/api/im2col", json=body)
    assert (layers.misses, layers.hits) == (1, 3)
    assert explained["value"] == pytest.approx(conv["conv"]["maps"][0]["values"][3][4], abs=0)
    # another kernel is another layer
    client.post("/api/conv", json={**body, "weight": "sobel_x"})
    assert layers.misses == 2


def test_the_conv_answer_carries_the_explanation_of_a_position(client) -> None:
    body = {
        "image": "mnist:2",
        "weight": ["sobel_x", "sobel_y"],
        "padding": 1,
        "activation": "relu",
        "pool": {"mode": "max", "kernel_size": 2},
        "values": True,
    }
    conv = client.post("/api/conv?pictures=levels&explain=1,5,6", json=body).json()
    alone = client.post("/api/explain", json={**body, "pool": None, "position": [1, 5, 6]}).json()
    assert conv["explain"] == alone
    assert conv["explain"]["value"] == conv["conv"]["maps"][1]["values"][5][6]
    outside = client.post("/api/conv?explain=2,0,0", json=body).json()
    assert outside["explain"] is None  # filter 2 does not exist: no explanation, the maps still come
    assert client.post("/api/conv?explain=1;2", json=body).status_code == 422


def test_the_conv_answer_carries_a_filters_channel_contributions(client) -> None:
    """Map c of ``channels`` is input channel c alone convolved with w[f, c] — written here as the
    single-channel convolution the page used to ask for — and their sum + bias is the filter's map."""
    rng = np.random.default_rng(5)
    weight = np.round(rng.uniform(-1, 1, (2, 3, 3, 3)), 2).tolist()
    body = {
        "image": "sample:astronaut",
        "color": "rgb",
        "max_side": 24,
        "weight": weight,
        "bias": [0.5, -0.25],
        "padding": 1,
        "stride": 2,
        "values": True,
    }
    answer = client.post("/api/conv?pictures=levels&channels=1", json=body).json()
    block = answer["channels"]
    assert block["filter"] == 1 and block["conv"]["shape"] == [1, 3, 12, 12]
    total = np.zeros((12, 12))
    for c in range(3):
        alone = [[weight[1][c] if k == c else [[0.0] * 3] * 3 for k in range(3)]]
        single = client.post("/api/conv", json={**body, "weight": alone, "bias": [0.0]}).json()
        mine = np.asarray(block["conv"]["maps"][c]["values"])
        np.testing.assert_allclose(mine, single["conv"]["maps"][0]["values"], rtol=0, atol=1e-5)
        assert "levels" in block["conv"]["maps"][c]
        total += mine
    np.testing.assert_allclose(total - 0.25, answer["conv"]["maps"][1]["values"], rtol=0, atol=1e-4)
    assert client.post("/api/conv?channels=2", json=body).json()["channels"] is None


def test_every_field_that_shapes_the_layer_is_in_the_layer_cache_key(settings):
    """A prepared layer is shared between requests only when every field it depends on is equal: changing any
    ``ConvRequest`` field other than the post-convolution ones must change the key."""
    from app.layer_cache import NOT_LAYER_FIELDS, layer_key
    from app.schemas import ConvRequest

    base = ConvRequest(image="mnist:0", weight="sobel_x", padding=1)
    changed = {
        "image": "mnist:1", "color": "rgb", "max_side": 20, "weight": "sobel_y", "bias": [0.5],
        "stride": 2, "padding": 2, "padding_mode": "reflect", "dilation": 2, "groups": 2,
    }
    for name in ConvRequest.model_fields:
        if name in NOT_LAYER_FIELDS:
            continue
        assert name in changed, f"new ConvRequest field {name!r}: add it to this test"
        other = base.model_copy(update={name: changed[name]})
        assert layer_key(other, settings) != layer_key(base, settings), name
