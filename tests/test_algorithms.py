"""core.algorithms: every implementation equals the default (and PyTorch), shows its own source, and is
refused with a reason above its budget; the /api/algorithms endpoints."""

from __future__ import annotations

import numpy as np
import pytest

from core.algorithms import (
    COL2IM_METHODS,
    CONV_METHODS,
    NAIVE_MAX_VALUES,
    POOL_METHODS,
    compare_col2im,
    compare_conv,
    compare_maxpool,
    conv_refusal,
    maxpool_im2col_argmax,
    run_conv_method,
)
from core.conv import conv2d
from core.im2col import im2col
from core.pool import PoolGeometry
from core.shapes import conv_geometry

MODES = ("zeros", "reflect", "replicate", "circular")


def random_layer(rng: np.random.Generator, stride_one: bool = False):
    groups = int(rng.choice([1, 2]))
    c = groups * int(rng.integers(1, 3))
    f = groups * int(rng.integers(1, 3))
    h, w = int(rng.integers(6, 12)), int(rng.integers(6, 12))
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    stride = (1, 1) if stride_one else tuple(int(v) for v in rng.integers(1, 3, size=2))
    dilation = tuple(int(v) for v in rng.integers(1, 3, size=2))
    padding = tuple(int(v) for v in rng.integers(0, 3, size=4))
    mode = str(rng.choice(MODES))
    x = rng.standard_normal((2, c, h, w))
    weight = rng.standard_normal((f, c // groups, kh, kw))
    kwargs = {
        "stride": stride,
        "padding": padding,
        "dilation": dilation,
        "groups": groups,
        "padding_mode": mode,
    }
    return x, weight, kwargs


@pytest.mark.parametrize("name", list(CONV_METHODS))
@pytest.mark.parametrize("seed", range(8))
def test_every_conv_method_equals_the_default(name: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, weight, kwargs = random_layer(rng, stride_one=name == "fft")
    expected = conv2d(x, weight, None, **kwargs)
    got = run_conv_method(name, x, weight, **kwargs)
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", list(CONV_METHODS))
def test_float32_stays_close(name: str) -> None:
    rng = np.random.default_rng(1)
    x = rng.random((1, 3, 20, 20), dtype=np.float32)
    w = rng.standard_normal((2, 3, 5, 5)).astype(np.float32)
    got = run_conv_method(name, x, w, padding=2)
    np.testing.assert_allclose(got, conv2d(x, w, None, padding=2), rtol=1e-4, atol=1e-4)


def test_sources_are_the_functions_that_run() -> None:
    for table in (CONV_METHODS, COL2IM_METHODS, POOL_METHODS):
        for method in table.values():
            text = method.source()
            for fn in method.functions:
                assert f"def {fn.__name__}(" in text, (method.name, fn.__name__)
    assert "np.fft.rfft2" in CONV_METHODS["fft"].source()
    assert "np.add.at" in COL2IM_METHODS["add_at"].source() or "add_at" in COL2IM_METHODS["add_at"].source()
    assert "sliding_window_view" in CONV_METHODS["einsum"].source()


def test_refusals_give_reasons() -> None:
    big = conv_geometry((1, 1, 100, 100), (1, 1, 3, 3), padding=1)
    assert 100 * 100 > NAIVE_MAX_VALUES
    assert "10,000" in conv_refusal("naive", big, 4)
    assert conv_refusal("view", big, 4) is None
    strided = conv_geometry((1, 1, 10, 10), (1, 1, 3, 3), stride=2)
    assert "stride 1 only" in conv_refusal("fft", strided, 4)
    with pytest.raises(ValueError, match="stride 1 only"):
        run_conv_method("fft", np.ones((1, 1, 10, 10)), np.ones((1, 1, 3, 3)), stride=2)


def test_compare_conv_reports_every_method() -> None:
    rng = np.random.default_rng(2)
    x = rng.random((1, 3, 16, 16), dtype=np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    rows = compare_conv(x, w, 1, 1, 1, 1, "reflect", repeats=3, budget_ms=1000)
    assert [r["name"] for r in rows] == list(CONV_METHODS)
    for row in rows:
        assert row["available"], row
        assert row["max_abs_diff"] < 1e-4
        assert 1 <= row["repeats"] <= 3 and row["median_ms"] > 0
        assert row["peak_bytes"] >= 0 and row["source"]
    by_name = {r["name"]: r for r in rows}
    # the im2col matrix of (1, 27, 256) float32 is named with its size
    assert by_name["view"]["intermediate_bytes"]["im2col matrix"] == 27 * 256 * 4
    assert "input spectra" in by_name["fft"]["intermediate_bytes"]


def test_col2im_and_pool_methods_agree() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 3, 9, 8))
    geometry = conv_geometry(x.shape, (1, 3, 3, 2), stride=(2, 1), dilation=(1, 2)).window
    cols = im2col(x, (3, 2), (2, 1), 0, (1, 2))
    rows = compare_col2im(cols, x.shape, geometry, repeats=2)
    assert [r["name"] for r in rows] == ["slices", "add_at"] and rows[1]["max_abs_diff"] < 1e-12
    pool = PoolGeometry((9, 8), 3, 2, 1, 1, True)
    rows = compare_maxpool(x, pool, repeats=2)
    assert [r["name"] for r in rows] == list(POOL_METHODS)
    assert all(r["max_abs_diff"] == 0 for r in rows)


# ------------------------------------------------------------------------------------------ PyTorch


@pytest.mark.parametrize("seed", range(4))
def test_against_pytorch(seed: int) -> None:
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = np.random.default_rng(50 + seed)
    x, weight, kwargs = random_layer(rng, stride_one=True)
    t, b, l, r = kwargs["padding"]
    mode = kwargs["padding_mode"]
    xt = F.pad(torch.tensor(x), (l, r, t, b), mode="constant" if mode == "zeros" else mode)
    expected = F.conv2d(xt, torch.tensor(weight), None, 1, 0, kwargs["dilation"], kwargs["groups"]).numpy()
    for name in CONV_METHODS:
        np.testing.assert_allclose(run_conv_method(name, x, weight, **kwargs), expected, rtol=1e-9, atol=1e-9)
    pooled, tap = maxpool_im2col_argmax(x, PoolGeometry(x.shape[2:], 2, 2, 1, 1, False))
    ref = F.max_pool2d(torch.tensor(x), 2, 2, 1).numpy()
    np.testing.assert_array_equal(pooled, ref)


# ---------------------------------------------------------------------------------------------- API


def test_api_algorithms_table(client):
    body = client.post(
        "/api/algorithms",
        json={
            "image": "mnist:0",
            "max_side": 28,
            "weight": "sobel_x",
            "padding": 1,
            "padding_mode": "replicate",
            "repeats": 2,
        },
    )
    assert body.status_code == 200, body.text
    data = body.json()
    names = [r["name"] for r in data["conv"]]
    assert names == list(CONV_METHODS)
    assert all(r["available"] and r["max_abs_diff"] < 1e-4 for r in data["conv"])
    assert data["layer"]["padding_mode"] == "replicate" and data["layer"]["output_shape"] == [1, 1, 28, 28]
    assert [r["name"] for r in data["col2im"]] == ["slices", "add_at"]
    assert [r["name"] for r in data["pool"]["methods"]] == list(POOL_METHODS)
    assert body.headers["cache-control"] == "no-store"


def test_api_refuses_a_named_method_over_budget(client):
    response = client.post(
        "/api/algorithms", json={"image": "sample:astronaut", "max_side": 128, "methods": ["naive"]}
    )
    assert response.status_code == 422
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["body", "methods"] and "4,096" in detail["msg"]
    response = client.post("/api/algorithms", json={"image": "mnist:0", "stride": 2, "methods": ["fft"]})
    assert response.status_code == 422 and "stride 1 only" in response.text
    unnamed = client.post("/api/algorithms", json={"image": "mnist:0", "stride": 2, "repeats": 1}).json()
    fft = next(r for r in unnamed["conv"] if r["name"] == "fft")
    assert fft["available"] is False and "stride 1 only" in fft["reason"]


def test_api_sweep(client):
    response = client.post(
        "/api/algorithms/sweep",
        json={"axis": "kernel", "values": [3, 7], "methods": ["view", "fft"], "size": 32},
    )
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["values"] == [3, 7] and set(data["series"]) == {"view", "fft"}
    assert all(len(v) == 2 for v in data["series"].values())
    assert client.post("/api/algorithms/sweep", json={"axis": "kernel", "values": [4]}).status_code == 422
    assert client.post("/api/algorithms/sweep", json={"axis": "size", "values": [300]}).status_code == 422


def test_col2im_methods_equal_pytorch_fold() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 2, 7, 9))
    window = conv_geometry(x.shape, (1, 2, 3, 2), stride=(2, 1), dilation=(1, 2)).window
    cols = rng.standard_normal((1, 2 * 3 * 2, window.windows))
    expected = torch.nn.functional.fold(
        torch.tensor(cols), (7, 9), (3, 2), dilation=(1, 2), stride=(2, 1)
    ).numpy()
    for method in COL2IM_METHODS.values():
        np.testing.assert_allclose(method.run(cols, x.shape, window), expected, rtol=1e-12, atol=1e-12)
