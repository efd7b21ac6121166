"""static/js/shapes.js under Node against the server, and the shape panel's numbers for N > 1 and groups > 1.

shapes.js (the page's slider clamping) computes the window geometry, the padding, the uncovered rows *and*
columns, the conv output shape with its group checks, the pooled size and the transposed size; each field is
compared with ``POST /api/shape`` / ``core.shapes`` on many random configurations, run in Node (no browser).
The panel's other numbers (multiply-adds, parameters, im2col size, duplication, warnings) come from the
server only; they are checked here for batches and groups against the textbook formulas.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from textbook import conv_out, padding_tblr, pair, pool_out, span

from core.shapes import conv_transpose_output_size, pool_output_size

REPO = Path(__file__).resolve().parents[1]
SHAPES_JS = REPO / "static" / "js" / "shapes.js"

RUNNER = """
import { readFileSync } from 'node:fs';
const S = await import(process.argv[process.argv.length - 1]);
const configs = JSON.parse(readFileSync(0, 'utf8'));
const attempt = (fn) => {
  try { return { ok: true, value: fn() }; } catch (e) { return { ok: false, message: e.message }; }
};
const out = configs.map((c) => ({
  conv: attempt(() => {
    const g = S.convGeometry([c.batch, c.channels, ...c.input_size],
      [c.filters, c.channels / c.groups, ...c.kernel_size], c.stride, c.padding, c.dilation, c.groups);
    return { ...g.window, outputShape: g.outputShape };
  }),
  pool: c.pool ? attempt(() => S.poolOutputSize(c.pool.input, c.pool.kernel, c.pool.stride, c.pool.padding,
      c.pool.dilation, c.pool.ceil_mode)) : null,
  transpose: attempt(() => S.convTransposeOutputSize(c.input_size, c.kernel_size, c.stride, c.t_padding,
      c.output_padding, c.dilation)),
}));
process.stdout.write(JSON.stringify(out));
"""


def run_shapes_js(configs: list[dict]) -> list[dict]:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed (Debian: apt-get install nodejs)")
    completed = subprocess.run(
        [node, "--input-type=module", "-e", RUNNER, SHAPES_JS.as_uri()],
        input=json.dumps(configs),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(completed.stdout)


def _random_config(rng) -> dict:
    groups = int(rng.choice([1, 1, 2, 3]))
    form = int(rng.integers(0, 5))
    padding = [
        int(rng.integers(0, 4)),
        [int(rng.integers(0, 4)), int(rng.integers(0, 4))],
        [int(v) for v in rng.integers(0, 4, size=4)],
        str(rng.choice(["valid", "same", "full"])),
        "same",
    ][form]
    kernel = [int(rng.integers(1, 8)), int(rng.integers(1, 8))]
    stride = [int(rng.integers(1, 6)), int(rng.integers(1, 6))]
    pk = int(rng.integers(1, 5))
    return {
        "batch": int(rng.integers(1, 5)),
        "channels": groups * int(rng.integers(1, 3)),
        "filters": groups * int(rng.integers(1, 4)),
        "groups": groups,
        "input_size": [int(rng.integers(1, 25)), int(rng.integers(1, 25))],
        "kernel_size": kernel,
        "stride": stride,
        "dilation": [int(rng.integers(1, 4)), int(rng.integers(1, 4))],
        "padding": padding,
        "pool": {
            "input": [int(rng.integers(1, 20)), int(rng.integers(1, 20))],
            "kernel": [pk, int(rng.integers(1, 5))],
            "stride": [int(rng.integers(1, 4)), int(rng.integers(1, 4))],
            "padding": [int(rng.integers(0, pk // 2 + 1)), 0],
            "dilation": [int(rng.integers(1, 3)), int(rng.integers(1, 3))],
            "ceil_mode": bool(rng.integers(0, 2)),
        },
        "t_padding": [int(rng.integers(0, 3)), int(rng.integers(0, 3))],
        "output_padding": [int(rng.integers(0, stride[0])), int(rng.integers(0, stride[1]))],
    }


CONFIGS = [_random_config(np.random.default_rng(1000 + seed)) for seed in range(300)]


def test_shapes_js_equals_the_server_on_every_field(client):
    results = run_shapes_js(CONFIGS)
    impossible = possible = 0
    for config, mine in zip(CONFIGS, results, strict=True):
        request = {
            k: config[k] for k in ("batch", "channels", "filters", "groups", "input_size", "kernel_size")
        }
        request.update({k: config[k] for k in ("stride", "dilation", "padding")})
        response = client.post("/api/shape", json=request)
        conv = mine["conv"]
        if not conv["ok"]:
            impossible += 1
            assert response.status_code == 422, (config, conv, response.text)
            assert conv["message"] in response.text, (conv["message"], response.text)
            continue
        possible += 1
        assert response.status_code == 200, (config, response.text)
        answer = response.json()["conv"]
        geometry = conv["value"]
        assert answer["output_shape"] == geometry["outputShape"], config
        assert answer["padding"] == geometry["padding"], config
        assert answer["effective_kernel"] == geometry["effective"], config
        assert answer["padded_size"] == geometry["padded"], config
        ph, pw = geometry["padded"]
        ur, uc = geometry["uncovered"]
        assert answer["uncovered_rows"] == list(range(ph - ur, ph)), config
        assert answer["uncovered_cols"] == list(range(pw - uc, pw)), config
        # and both against the tests' own arithmetic
        h, w = config["input_size"]
        top, bottom, left, right = padding_tblr(
            config["padding"], (h, w), config["kernel_size"], config["stride"], config["dilation"]
        )
        assert geometry["padding"] == {"top": top, "bottom": bottom, "left": left, "right": right}
        assert geometry["output"] == list(
            conv_out((h, w), config["kernel_size"], config["stride"], config["padding"], config["dilation"])
        )
    assert possible > 100 and impossible > 20  # both kinds were exercised


def test_shapes_js_pool_and_transpose_sizes_equal_core():
    results = run_shapes_js(CONFIGS)
    pools = transposes = 0
    for config, mine in zip(CONFIGS, results, strict=True):
        p = config["pool"]
        try:
            expected = pool_output_size(
                p["input"], p["kernel"], p["stride"], p["padding"], p["dilation"], p["ceil_mode"]
            )
        except ValueError as exc:
            assert not mine["pool"]["ok"], (p, mine["pool"])
            assert mine["pool"]["message"] in str(exc)
        else:
            assert mine["pool"] == {"ok": True, "value": list(expected)}, p
            assert list(expected) == list(
                pool_out(p["input"], p["kernel"], p["stride"], p["padding"], p["dilation"], p["ceil_mode"])
            )
            pools += 1
        args = (config["input_size"], config["kernel_size"], config["stride"], config["t_padding"])
        try:
            expected = conv_transpose_output_size(*args, config["output_padding"], config["dilation"])
        except ValueError:
            continue
        assert mine["transpose"] == {"ok": True, "value": list(expected)}, config
        transposes += 1
    assert pools > 100 and transposes > 100


# ------------------------------------------------------------------------ the panel for batches and groups


@pytest.mark.parametrize(
    ("batch", "channels", "filters", "groups", "size", "kernel", "stride", "padding", "dilation"),
    [
        (4, 3, 6, 3, (17, 13), (3, 2), (2, 1), 1, (1, 2)),
        (2, 4, 8, 2, (9, 9), (2, 2), 3, "same", 1),
        (3, 6, 6, 6, (12, 7), (1, 3), (1, 4), "full", (2, 1)),
        (5, 1, 2, 1, (28, 28), 5, 1, "valid", 1),
    ],
)
def test_shape_panel_numbers_for_batches_and_groups(
    client, batch, channels, filters, groups, size, kernel, stride, padding, dilation
):
    body = client.post(
        "/api/shape",
        json={
            "batch": batch,
            "channels": channels,
            "filters": filters,
            "groups": groups,
            "input_size": list(size),
            "kernel_size": list(pair(kernel)),
            "stride": list(pair(stride)),
            "padding": padding,
            "dilation": list(pair(dilation)),
        },
    )
    assert body.status_code == 200, body.text
    conv = body.json()["conv"]
    (kh, kw), (h, w) = pair(kernel), size
    oh, ow = conv_out(size, kernel, stride, padding, dilation)
    per_group = channels // groups
    assert conv["output_shape"] == [batch, filters, oh, ow]
    assert conv["params"] == filters * per_group * kh * kw + filters
    assert conv["macs"] == batch * filters * oh * ow * per_group * kh * kw
    rows, cols = channels * kh * kw, oh * ow
    assert conv["im2col_shape"] == [batch, rows, cols]
    assert conv["im2col_bytes"] == batch * rows * cols * 4
    assert conv["input_bytes"] == batch * channels * h * w * 4
    # the duplication is per image: the same for any batch
    assert conv["duplication"] == pytest.approx(rows * cols / (channels * h * w), abs=1e-4)
    steps = {s["quantity"]: s for s in conv["steps"]}
    assert steps["multiply-adds"]["value"] == conv["macs"]
    assert steps["multiply-adds"]["substituted"] == f"{batch}·{filters}·{oh}·{ow}·{per_group}·{kh}·{kw}"


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "dilation", "axes"),
    [
        ((20, 20), (2, 3), (5, 3), (1, 1), ["row"]),  # span 2 < stride 5 rows; span 3 = stride 3 columns
        ((20, 20), (3, 1), (2, 2), (1, 1), ["column"]),  # span 1 < stride 2 columns only
        ((30, 30), (2, 2), (4, 4), (3, 2), ["column"]),  # dilated: span 4 = stride 4 rows; span 3 < 4 columns
        ((20, 20), 3, 3, 1, []),
    ],
)
@pytest.mark.parametrize("groups", [1, 2])
def test_stride_larger_than_the_kernel_warning_per_axis(client, size, kernel, stride, dilation, axes, groups):
    body = client.post(
        "/api/shape",
        json={
            "batch": 3,
            "channels": 2,
            "filters": 4,
            "groups": groups,
            "input_size": list(size),
            "kernel_size": list(pair(kernel)),
            "stride": list(pair(stride)),
            "dilation": list(pair(dilation)),
        },
    ).json()
    warnings = [w for w in body["conv"]["warnings"] if "is larger than the kernel span" in w]
    expected = []
    for axis, (k, s, d) in enumerate(zip(pair(kernel), pair(stride), pair(dilation), strict=True)):
        if s > span(k, d):
            expected.append(
                f"stride {s} is larger than the kernel span {span(k, d)}: {s - span(k, d)} "
                f"{('row', 'column')[axis]}(s) between neighbouring windows are never read"
            )
    assert warnings == expected
    assert [("row" if "row(s)" in w else "column") for w in warnings] == axes
