"""POST /api/explain, /api/backward and /api/transpose on the hard cases, against computations written here.

explain: unequal dilations, rectangular kernels and strides, groups with several filters each, every corner
and edge of the output; its ``sum + bias == pre_activation == map value`` on all of them, its taps and
group from the tests' own geometry (tests/textbook.py). backward: a one-hot upstream gradient at the last
row and column (the gradients then are one window, computed here) and one past them (a 422). transpose:
the columns ``W_colᵀ · X`` compared value by value with a loop.
"""

from __future__ import annotations

import numpy as np
import pytest
from test_api_conv import assert_422, image_array
from textbook import conv_out, padding_tblr, pair

HARD = [
    # several filters per group, rectangular kernel, unequal stride and dilation, asymmetric padding
    {"color": "rgb", "groups": 3, "filters": 6, "kernel": (3, 2), "stride": [2, 1], "dilation": [2, 1],
     "padding": [1, 0, 2, 1]},
    # 'full' with unequal dilation: the taps at every edge read padding
    {"color": "gray", "groups": 1, "filters": 2, "kernel": (2, 4), "stride": [1, 2], "dilation": [1, 3],
     "padding": "full"},
    # TF-style 'same' with a stride larger than the kernel along the width
    {"color": "rgb", "groups": 1, "filters": 2, "kernel": (1, 3), "stride": [3, 4], "dilation": [3, 1],
     "padding": "same"},
    # depthwise with a multiplier of 3
    {"color": "rgb", "groups": 3, "filters": 9, "kernel": (2, 2), "stride": 1, "dilation": [2, 3],
     "padding": [1, 2]},
]  # fmt: skip

SIDE = 11


def _request(case, rng):
    channels = 1 if case["color"] == "gray" else 3
    weight = rng.standard_normal((case["filters"], channels // case["groups"], *case["kernel"]))
    weight = weight.astype(np.float32)
    bias = rng.standard_normal(case["filters"]).astype(np.float32)
    body = {
        "image": "sample:chelsea",
        "color": case["color"],
        "max_side": SIDE,
        "weight": weight.tolist(),
        "bias": bias.tolist(),
        "stride": case["stride"],
        "padding": case["padding"],
        "dilation": case["dilation"],
        "groups": case["groups"],
    }
    return body, weight, bias


def _edge_positions(oh: int, ow: int) -> list[tuple[int, int]]:
    """The four corners and the middle of each edge."""
    cells = {(0, 0), (0, ow - 1), (oh - 1, 0), (oh - 1, ow - 1)}
    cells |= {(0, ow // 2), (oh - 1, ow // 2), (oh // 2, 0), (oh // 2, ow - 1)}
    return sorted(cells)


@pytest.mark.parametrize("case", HARD, ids=[str(i) for i in range(len(HARD))])
@pytest.mark.parametrize("activation", ["none", "relu"])
def test_explain_at_every_edge(client, case, activation):
    body, weight, bias = _request(case, np.random.default_rng(5))
    body["activation"] = activation
    conv = client.post("/api/conv", json={**body, "values": True})
    assert conv.status_code == 200, conv.text
    conv = conv.json()
    x_in = image_array("sample:chelsea", case["color"], SIDE)[0]
    _, h, w = x_in.shape
    oh, ow = conv_out((h, w), case["kernel"], case["stride"], case["padding"], case["dilation"])
    assert conv["conv"]["shape"] == [1, case["filters"], oh, ow]
    top, _, left, _ = padding_tblr(case["padding"], (h, w), case["kernel"], case["stride"], case["dilation"])
    (sh, sw), (dh, dw), (kh, kw) = pair(case["stride"]), pair(case["dilation"]), case["kernel"]
    per_group = case["filters"] // case["groups"]
    cg = weight.shape[1]
    for f in range(case["filters"]):
        for y, x in _edge_positions(oh, ow):
            answer = client.post("/api/explain", json={**body, "position": [f, y, x]})
            assert answer.status_code == 200, answer.text
            e = answer.json()
            map_value = conv["conv"]["maps"][f]["values"][y][x]
            assert e["value"] == map_value
            assert e["sum"] + e["bias"] == pytest.approx(e["pre_activation"], rel=1e-5, abs=1e-5)
            expected_value = max(e["pre_activation"], 0.0) if activation == "relu" else e["pre_activation"]
            assert e["value"] == pytest.approx(expected_value, rel=1e-5, abs=1e-6)
            assert e["bias"] == pytest.approx(float(bias[f]))
            assert e["column"] == y * ow + x
            g = f // per_group
            assert e["group"] == g and e["channels"] == list(range(g * cg, (g + 1) * cg))
            rows = [y * sh + i * dh - top for i in range(kh)]
            cols = [x * sw + j * dw - left for j in range(kw)]
            assert e["taps"]["input_rows"] == rows and e["taps"]["input_cols"] == cols
            assert e["taps"]["rows"] == [r + top for r in rows] and e["taps"]["cols"] == [
                c + left for c in cols
            ]
            window = np.zeros((cg, kh, kw), dtype=np.float32)
            for ci, c in enumerate(e["channels"]):
                for i, r in enumerate(rows):
                    for j, q in enumerate(cols):
                        inside = 0 <= r < h and 0 <= q < w
                        assert e["taps"]["in_padding"][i][j] is (not inside)
                        window[ci, i, j] = x_in[c, r, q] if inside else 0.0
            np.testing.assert_array_equal(np.array(e["window"], dtype=np.float32), window)
            np.testing.assert_array_equal(np.array(e["kernel"], dtype=np.float32), weight[f])
            pre = float(np.sum(window.astype(np.float64) * weight[f]) + bias[f])
            assert e["pre_activation"] == pytest.approx(pre, rel=1e-5, abs=1e-5)


def test_explain_one_past_the_last_row_column_and_filter_is_422(client):
    case = HARD[0]
    body, _, _ = _request(case, np.random.default_rng(5))
    shape = client.post("/api/conv", json=body).json()["conv"]["shape"]
    _, f_count, oh, ow = shape
    assert (
        client.post("/api/explain", json={**body, "position": [f_count - 1, oh - 1, ow - 1]}).status_code
        == 200
    )
    for position in ([f_count, 0, 0], [0, oh, 0], [0, 0, ow]):
        response = client.post("/api/explain", json={**body, "position": position})
        assert_422(response, "position", "outside the output")
        assert f"rows 0..{oh - 1}, columns 0..{ow - 1}" in response.text


@pytest.mark.parametrize("case", HARD[:3], ids=["0", "1", "2"])
def test_backward_one_hot_at_the_last_row_and_column(client, case):
    """With a one-hot upstream gradient at (f, y, x) and no activation, ∂W[f] is the window that output
    reads, ∂b is one-hot at f, and ∂x is W[f] scattered onto the window's taps (computed here)."""
    body, weight, _ = _request(case, np.random.default_rng(6))
    x_in = image_array("sample:chelsea", case["color"], SIDE)[0]
    _, h, w = x_in.shape
    oh, ow = conv_out((h, w), case["kernel"], case["stride"], case["padding"], case["dilation"])
    top, _, left, _ = padding_tblr(case["padding"], (h, w), case["kernel"], case["stride"], case["dilation"])
    (sh, sw), (dh, dw), (kh, kw) = pair(case["stride"]), pair(case["dilation"]), case["kernel"]
    f_count, cg = weight.shape[:2]
    for f, y, x in ((f_count - 1, oh - 1, ow - 1), (0, oh - 1, 0), (f_count - 1, 0, ow - 1)):
        response = client.post(
            "/api/backward",
            json={**body, "values": True, "upstream": {"kind": "onehot", "position": [f, y, x]}},
        )
        assert response.status_code == 200, response.text
        out = response.json()
        g = f // (f_count // case["groups"])
        grad_w = np.zeros(weight.shape, dtype=np.float32)
        grad_x = np.zeros(x_in.shape, dtype=np.float32)
        for ci in range(cg):
            for i in range(kh):
                for j in range(kw):
                    r, q = y * sh + i * dh - top, x * sw + j * dw - left
                    if 0 <= r < h and 0 <= q < w:
                        grad_w[f, ci, i, j] = x_in[g * cg + ci, r, q]
                        grad_x[g * cg + ci, r, q] += weight[f, ci, i, j]
        np.testing.assert_allclose(np.array(out["grad_weight"]["values"]), grad_w, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(np.array(out["grad_x"]["values"]), grad_x, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(out["grad_bias"]["values"], np.eye(f_count)[f])
    for position in ([0, oh, 0], [0, 0, ow], [f_count, 0, 0], [0, oh, ow]):
        response = client.post(
            "/api/backward", json={**body, "upstream": {"kind": "onehot", "position": position}}
        )
        assert_422(response, "upstream", "outside the upstream gradient")
        assert f"({f_count}, {oh}, {ow})" in response.text


def test_backward_one_hot_on_the_pooled_output_edge(client):
    body, _, _ = _request(HARD[1], np.random.default_rng(7))
    body["pool"] = {"mode": "max", "kernel_size": 2}
    body["target"] = "pool"
    conv_shape = client.post("/api/conv", json=body).json()["pool"]["shape"]
    _, f_count, ph, pw = conv_shape
    ok = client.post(
        "/api/backward", json={**body, "upstream": {"kind": "onehot", "position": [0, ph - 1, pw - 1]}}
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["upstream"]["shape"] == [1, f_count, ph, pw]
    bad = client.post("/api/backward", json={**body, "upstream": {"kind": "onehot", "position": [0, ph, 0]}})
    assert_422(bad, "upstream", "outside the upstream gradient")


TRANSPOSE_CASES = [
    {"x": (3, 4, 3), "weight": (3, 2, 2, 3), "stride": [2, 1], "padding": [1, 0], "output_padding": [1, 0],
     "dilation": [1, 2], "groups": 1},
    {"x": (4, 3, 2), "weight": (4, 2, 3, 2), "stride": 2, "padding": 0, "output_padding": 0,
     "dilation": 1, "groups": 2},
    {"x": (3, 2), "weight": (2, 3), "stride": [1, 3], "padding": 0, "output_padding": [0, 2],
     "dilation": 1, "groups": 1},
]  # fmt: skip


@pytest.mark.parametrize("case", TRANSPOSE_CASES, ids=["0", "1", "2"])
def test_transpose_columns_by_value(client, case):
    """columns[(co·KH + i)·KW + j, h·W + w] = Σ_{ci in co's group} W[ci, co mod C_out/G, i, j] · x[ci, h, w],
    and the output is those columns scattered to (h·s + i·d − p, w·s + j·d − p), both by loops here."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal(case["x"]).astype(np.float32)
    weight = rng.standard_normal(case["weight"]).astype(np.float32)
    response = client.post("/api/transpose", json={**case, "x": x.tolist(), "weight": weight.tolist()})
    assert response.status_code == 200, response.text
    body = response.json()
    x3 = x if x.ndim == 3 else x[None]
    w4 = weight if weight.ndim == 4 else weight[None, None]
    c_in, h, w = x3.shape
    _, cog, kh, kw = w4.shape
    g = case["groups"]
    cig = c_in // g
    columns = np.zeros((cog * g * kh * kw, h * w))
    for co in range(cog * g):
        group, local = divmod(co, cog)
        for i in range(kh):
            for j in range(kw):
                for hh in range(h):
                    for ww in range(w):
                        columns[(co * kh + i) * kw + j, hh * w + ww] = sum(
                            float(w4[ci, local, i, j]) * float(x3[ci, hh, ww])
                            for ci in range(group * cig, (group + 1) * cig)
                        )
    assert body["columns"]["shape"] == list(columns.shape)
    np.testing.assert_allclose(np.array(body["columns"]["values"]), columns, rtol=1e-5, atol=1e-5)
    (sh, sw), (ph, pw), (dh, dw), (oph, opw) = (
        pair(case["stride"]), pair(case["padding"]), pair(case["dilation"]), pair(case["output_padding"])
    )  # fmt: skip
    oh = (h - 1) * sh - 2 * ph + (kh - 1) * dh + 1 + oph
    ow = (w - 1) * sw - 2 * pw + (kw - 1) * dw + 1 + opw
    out = np.zeros((cog * g, oh, ow))
    for co in range(cog * g):
        for i in range(kh):
            for j in range(kw):
                for hh in range(h):
                    for ww in range(w):
                        r, q = hh * sh + i * dh - ph, ww * sw + j * dw - pw
                        if 0 <= r < oh and 0 <= q < ow:
                            out[co, r, q] += columns[(co * kh + i) * kw + j, hh * w + ww]
    assert body["output"]["shape"] == [1, cog * g, oh, ow]
    np.testing.assert_allclose(np.array(body["output"]["values"]), out, rtol=1e-5, atol=1e-5)
