"""The page in a real browser: Playwright drives Chromium against the real server (uvicorn on a free port).

What is checked, against independent references:

- the page loads with no console error and no request to any other host, and every panel is filled;
- ``static/js/shapes.js`` (the page's slider clamping) agrees with ``POST /api/shape`` (core.shapes) on many
  configurations, including which ones are impossible;
- each slider, moved with the keyboard, resizes the feature-map canvas to the size ``/api/shape`` gives and
  changes its pixels;
- hovering an output pixel shows an arithmetic whose sum (+ bias) equals the value ``/api/conv`` returns
  for the same request written independently (preset by name);
- the opening view is exactly mnist:0 with ONE 3×3 Sobel-x filter, every panel filled without a click;
- uploads through the file input, a drag-and-drop (a DataTransfer drop event) and a paste (a ClipboardEvent),
  each with a File built in the page; the URL round trip; a learned filter opened from the network view;
- RGB: per input channel the kernel and that channel's contribution map, whose range and value at the selected
  pixel match a plain-loop reference, and Σ channels + bias = the feature map;
- a constant map (bias-only kernel, upstream gradient of ones) is mid-grey with its value printed;
- the transposed convolution's OUTPUT equals PyTorch's conv_transpose2d of its INPUT and kernel;
- every control is reachable with Tab (tabs with the arrow keys) and shows a focus ring;
- screenshots for the README (docs/screenshots/) and the slider → repainted-map latency
  (printed, and written to docs/latency.json).
"""

from __future__ import annotations

import io
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest
from browser_support import (
    LATENCY_FILE,
    SCREENSHOTS,
    canvas_fingerprint,
    paints,
    summary,
    wait_idle,
    wait_repaint,
)

from app.render import DIVERGING_LUT, SEQUENTIAL_LUT

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")

VIEWPORT = {"width": 1280, "height": 720}


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------


# `server` (uvicorn on a free port) and `browser` (Chromium) are session fixtures in conftest.py, shared with
# the other browser test files: one Playwright per process.


class Watched:
    """A page plus everything it logged or requested."""

    def __init__(self, page: Any, origin: str) -> None:
        self.page = page
        self.origin = origin
        self.errors: list[str] = []
        self.requests: list[str] = []
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("request", lambda r: self.requests.append(r.url))

    def foreign(self) -> list[str]:
        """Requests to any other host (data: and blob: URLs are local)."""
        local = (self.origin + "/", "data:", "blob:")
        return [u for u in self.requests if not u.startswith(local)]


@pytest.fixture()
def watched(browser: Any, server: Any) -> Iterator[Watched]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield Watched(page, server.url)
    context.close()


def open_page(w: Watched, query: str = "") -> Any:
    w.page.goto(w.origin + "/" + query)
    wait_idle(w.page)
    return w.page


def api_shape(server: Any, **settings: Any) -> dict[str, Any]:
    response = httpx.post(server.url + "/api/shape", json=settings, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def press(page: Any, selector: str, key: str = "ArrowRight") -> None:
    """Move a slider with the keyboard (the way a keyboard user does) and wait for the repaint."""
    before = paints(page)
    page.focus(selector)
    page.keyboard.press(key)
    wait_repaint(page, before)


# --------------------------------------------------------------------------------------------------
# tests
# --------------------------------------------------------------------------------------------------


def test_page_loads_clean_with_every_panel_filled(watched: Watched) -> None:
    page = open_page(watched)
    page.wait_for_selector("#arith-value")
    page.wait_for_selector("#bw-gradx")
    page.wait_for_selector("#gemm-w")
    page.wait_for_selector("#transpose figure")
    # opening view: mnist:0 (a 7), ONE 3×3 Sobel-x filter, no padding → one 26 × 26 map
    assert canvas_fingerprint(page, "#map-0")["width"] == 26
    assert canvas_fingerprint(page, "#map-0")["height"] == 26
    assert page.locator("#maps canvas.map").count() == 1
    assert page.input_value("#filters") == "1"
    assert page.input_value("#preset-0") == "sobel_x"
    sobel_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    shown = page.eval_on_selector_all(
        '#filter-list input.weight[data-f="0"]',
        "(inputs) => inputs.map((i) => [Number(i.dataset.i), Number(i.dataset.j), Number(i.value)])",
    )
    assert len(shown) == 9 and all(sobel_x[i][j] == v for i, j, v in shown), shown
    assert canvas_fingerprint(page, "#input-canvas")["width"] > 0
    assert "label 7" in page.text_content("#image-info")
    assert page.is_hidden("#panel-channels")  # one input channel: no per-channel view
    assert page.locator("table.steps tbody tr").count() >= 8
    assert page.locator("#im2col-shape").text_content().startswith("9 × 676")
    assert watched.errors == [], watched.errors
    assert watched.foreign() == [], watched.foreign()


def test_shapes_js_agrees_with_the_server(watched: Watched, server: Any) -> None:
    rng = np.random.default_rng(4)
    configs = []
    for _ in range(120):
        padding_form = rng.integers(0, 4)
        if padding_form == 0:
            padding: Any = int(rng.integers(0, 4))
        elif padding_form == 1:
            padding = [int(v) for v in rng.integers(0, 4, size=4)]
        else:
            padding = str(rng.choice(["valid", "same", "full"]))
        pool = None
        if rng.random() < 0.4:
            k = int(rng.integers(1, 5))
            pool = {"mode": "max", "kernel_size": k, "stride": int(rng.integers(1, 4)),
                    "padding": int(rng.integers(0, k // 2 + 1)), "ceil_mode": False}
        configs.append({
            "input_size": [int(rng.integers(1, 30)), int(rng.integers(1, 30))],
            "channels": 1, "filters": 1, "batch": 1, "groups": 1,
            "kernel_size": [int(rng.integers(1, 12)), int(rng.integers(1, 12))],
            "stride": [int(rng.integers(1, 9)), int(rng.integers(1, 9))],
            "dilation": [int(rng.integers(1, 6)), int(rng.integers(1, 6))],
            "padding": padding,
            "pool": pool,
        })
    page = open_page(watched)
    js = page.evaluate(
        """async (configs) => {
            const S = await import('/static/js/shapes.js');
            return configs.map((c) => {
                try {
                    const g = S.windowGeometry(c.input_size, c.kernel_size, c.stride, c.padding, c.dilation);
                    const pool = c.pool ? S.poolOutputSize(g.output, [c.pool.kernel_size, c.pool.kernel_size],
                        [c.pool.stride, c.pool.stride], [c.pool.padding, c.pool.padding]) : null;
                    return {ok: true, output: g.output, padding: g.padding, uncovered: g.uncovered, pool};
                } catch (e) { return {ok: false, message: e.message}; }
            });
        }""",
        configs,
    )
    impossible = 0
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for config, mine in zip(configs, js, strict=True):
            response = client.post("/api/shape", json=config)
            if not mine["ok"]:
                impossible += 1
                assert response.status_code == 422, (config, mine, response.text)
                if "spans" in mine["message"]:
                    assert mine["message"] in response.text, (mine["message"], response.text)
                continue
            assert response.status_code == 200, (config, response.text)
            answer = response.json()
            assert answer["conv"]["output_shape"][2:] == mine["output"], config
            assert answer["conv"]["padding"] == mine["padding"], config
            assert len(answer["conv"]["uncovered_rows"]) == mine["uncovered"][0], config
            if config["pool"]:
                assert answer["pool"]["output_shape"][2:] == mine["pool"], config
    assert 5 < impossible < 115  # both kinds were exercised


def test_each_slider_resizes_and_repaints_the_map(watched: Watched, server: Any) -> None:
    page = open_page(watched)
    page.check("#asym")  # the per-axis stride and per-side padding sliders
    conv_sliders = ["kh", "kw", "sh", "sw", "dh", "dw", "pt", "pb", "pl", "pr"]
    for key in conv_sliders:
        before = canvas_fingerprint(page, "#map-0")
        # with a stride > 1, one more row of padding can fall where no window reaches: press again then
        for _ in range(3):
            old = page.input_value(f"#{key}")
            press(page, f"#{key}")
            assert page.input_value(f"#{key}") == str(int(old) + 1), key
            s = {k: int(page.input_value(f"#{k}")) for k in conv_sliders}
            expected = api_shape(
                server, input_size=[28, 28], channels=1, filters=1, kernel_size=[s["kh"], s["kw"]],
                stride=[s["sh"], s["sw"]], dilation=[s["dh"], s["dw"]],
                padding=[s["pt"], s["pb"], s["pl"], s["pr"]],
            )["conv"]["output_shape"]
            after = canvas_fingerprint(page, "#map-0")
            assert [after["height"], after["width"]] == expected[2:], (key, after, expected)
            if after["hash"] != before["hash"]:
                break
        assert after["hash"] != before["hash"], key
    # pooling sliders act on the pooled map
    before_pool = paints(page)
    page.select_option("#pool", "max")
    wait_repaint(page, before_pool)
    conv_shape = [canvas_fingerprint(page, "#map-0")["height"], canvas_fingerprint(page, "#map-0")["width"]]
    for key in ["pk", "ps", "pp"]:
        before = canvas_fingerprint(page, "#pool-0")
        press(page, f"#{key}")
        pk, ps, pp = (int(page.input_value(f"#{k}")) for k in ["pk", "ps", "pp"])
        expected = api_shape(
            server, input_size=conv_shape, channels=1, filters=1, kernel_size=1,
            pool={"mode": "max", "kernel_size": pk, "stride": ps, "padding": pp, "ceil_mode": False},
        )["pool"]["output_shape"]
        after = canvas_fingerprint(page, "#pool-0")
        assert [after["height"], after["width"]] == expected[2:], (key, after, expected)
        assert after["hash"] != before["hash"], key
    assert watched.errors == [], watched.errors


def test_slider_is_clamped_to_what_fits(watched: Watched) -> None:
    page = open_page(watched, "?image=mnist:0&kh=11&dh=1")
    assert page.input_value("#kh") == "11"
    # dilation 3 would make an 11-tap kernel span 31 > 28 pixels: the slider stops at 2
    page.focus("#dh")
    for _ in range(4):
        page.keyboard.press("ArrowRight")
    wait_idle(page)
    assert page.get_attribute("#dh", "max") == "2"
    assert page.input_value("#dh") == "2"
    # and the page says why, in the server's sentence
    sentence = "kernel 11 with dilation 3 spans 31 pixels but the padded input is only 28 tall"
    assert sentence in page.text_content("#dh-why")
    assert canvas_fingerprint(page, "#map-0")["height"] == 28 - 20


def test_hover_shows_arithmetic_equal_to_the_api(watched: Watched, server: Any) -> None:
    page = open_page(watched, "?b=0.25")
    y, x = 13, 15
    box = page.locator("#map-0").bounding_box()
    size = canvas_fingerprint(page, "#map-0")
    page.mouse.move(box["x"] + (x + 0.5) * box["width"] / size["width"],
                    box["y"] + (y + 0.5) * box["height"] / size["height"])
    value_el = page.wait_for_selector(f'#arith-value[data-position="0,{y},{x}"]')
    shown_value = float(value_el.get_attribute("data-value"))
    shown_sum = float(page.get_attribute("#arith-sum", "data-value"))
    reference = httpx.post(server.url + "/api/conv", timeout=30, json={
        "image": "mnist:0", "weight": "sobel_x", "bias": [0.25], "stride": 1, "padding": 0, "values": True,
    }).json()
    expected = reference["conv"]["maps"][0]["values"][y][x]
    assert shown_value == expected
    assert shown_sum + 0.25 == pytest.approx(expected, abs=1e-5)
    assert shown_value != 0.25  # a pixel on the stroke, not a flat background
    # the products shown multiply out: window × kernel
    assert page.locator("#arith table.taps td").count() == 9


def test_upload_through_the_file_input(watched: Watched) -> None:
    from PIL import Image

    page = open_page(watched)
    rng = np.random.default_rng(7)
    pixels = (rng.random((30, 40, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="PNG")
    before = paints(page)
    upload = {"name": "noise.png", "mimeType": "image/png", "buffer": buffer.getvalue()}
    page.set_input_files("#file", files=[upload])
    wait_repaint(page, before)
    page.wait_for_function("() => /image=[0-9a-f]{64}/.test(location.search)")
    wait_idle(page)
    fingerprint = canvas_fingerprint(page, "#map-0")
    assert (fingerprint["height"], fingerprint["width"]) == (28, 38)
    assert watched.errors == [], watched.errors


def test_url_round_trip_restores_the_state(watched: Watched, browser: Any, server: Any) -> None:
    page = open_page(watched)
    page.check("#asym")
    for selector in ["#kh", "#kh", "#sw", "#filters"]:
        press(page, selector)
    for select, value in [("#pad", "same"), ("#act", "relu"), ("#pool", "avg")]:
        before = paints(page)
        page.select_option(select, value)
        wait_repaint(page, before)
    page.check('input[name="up"][value="onehot"]')
    wait_idle(page)
    url = page.url
    maps = [canvas_fingerprint(page, f"#map-{f}") for f in range(2)]
    pooled = canvas_fingerprint(page, "#pool-1")
    context = browser.new_context(viewport=VIEWPORT)
    try:
        other = context.new_page()
        other.goto(url)
        wait_idle(other)
        assert other.url == url
        assert [canvas_fingerprint(other, f"#map-{f}") for f in range(2)] == maps
        assert canvas_fingerprint(other, "#pool-1") == pooled
        assert other.input_value("#kh") == "5"
        assert other.input_value("#pad") == "same"
        assert other.input_value("#act") == "relu"
        assert other.is_checked('input[name="up"][value="onehot"]')
        assert re.search(r"k=sobel_x%2Csobel_y", url)
    finally:
        context.close()


def test_open_filter_event_shows_the_learned_filter(watched: Watched) -> None:
    page = open_page(watched)
    before = paints(page)
    page.evaluate(
        """() => document.body.dispatchEvent(new CustomEvent('convlens:open-filter', {bubbles: true,
               detail: {weights: Array.from({length: 5}, (_, i) => [0.1 * i, 0, -0.1 * i, 0.2, 0]),
                        image: 'mnist:8001', index: 3}}))"""
    )
    wait_repaint(page, before)
    wait_idle(page)
    widths = (canvas_fingerprint(page, "#map-0")["width"], canvas_fingerprint(page, "#pool-0")["width"])
    assert widths == (24, 12)
    assert "image=mnist%3A8001" in page.url
    assert page.input_value("#pad") == "valid"


def shoot_panel(page: Any, selector: str, name: str) -> None:
    """Screenshot one panel (the sticky header lifted so that it cannot cover the panel)."""
    page.evaluate("() => { document.querySelector('.topbar').style.position = 'static'; }")
    page.locator(selector).scroll_into_view_if_needed()
    page.locator(selector).screenshot(path=str(SCREENSHOTS / f"{name}.png"))
    page.evaluate("() => { document.querySelector('.topbar').style.position = ''; }")


def test_screenshots(watched: Watched) -> None:
    """The README's pictures at 1280×720: main, im2col/GEMM, backward, transpose, RGB channels, projector."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page = open_page(watched)  # the opening view as it is: the transpose of a patch on the stroke
    page.wait_for_selector("#tr-output")
    shoot_panel(page, "#panel-transpose", "transpose")
    page = open_page(watched, "?pos=0,10,13&zoom=14")  # the opening view, one output pixel on the stroke
    page.wait_for_selector('#arith-value[data-position="0,10,13"]')
    wait_idle(page)
    assert page.locator("#maps canvas.map").count() == 1
    page.screenshot(path=str(SCREENSHOTS / "main.png"))
    page.locator("#panel-im2col").scroll_into_view_if_needed()
    top = page.locator("#panel-im2col").bounding_box()
    bottom = page.locator("#panel-gemm").bounding_box()
    page.screenshot(path=str(SCREENSHOTS / "im2col_gemm.png"), full_page=True, clip={
        "x": top["x"], "y": top["y"] + page.evaluate("scrollY"), "width": top["width"],
        "height": bottom["y"] + bottom["height"] - top["y"]})
    before = paints(page)
    page.check('input[name="up"][value="onehot"]')
    page.wait_for_function("() => document.body.dataset.busy === '0'")
    page.wait_for_selector("#bw-gradx")
    assert paints(page) == before  # changing the upstream gradient does not recompute the conv
    shoot_panel(page, "#panel-backward", "backward")
    page.click("#projector")
    wait_idle(page)
    page.evaluate("() => window.scrollTo(0, 0)")
    page.screenshot(path=str(SCREENSHOTS / "projector.png"))
    assert page.evaluate("() => document.body.classList.contains('projector')")
    # RGB: a different kernel per channel (Sobel-x on red, a vertical gradient on green, a Laplacian on blue)
    weights = "1,0,-1,2,0,-2,1,0,-1,0.25,0.5,0.25,0,0,0,-0.25,-0.5,-0.25,0,-1,0,-1,4,-1,0,-1,0"
    query = f"?image=sample:chelsea&color=rgb&side=64&k=custom&w={weights}&b=0.1&pos=0,14,30"
    page = open_page(watched, query)
    page.wait_for_selector('#channels-point[data-position="0,14,30"]')
    wait_idle(page)
    shoot_panel(page, "#panel-channels", "rgb_channels")
    for name in ["main", "im2col_gemm", "backward", "transpose", "rgb_channels", "projector"]:
        assert (SCREENSHOTS / f"{name}.png").stat().st_size > 5_000


def measure_latency(page: Any, origin: str, query: str, samples: int) -> list[float]:
    """Slider change → repainted feature map, from performance.measure, alternating kernel height ±1."""
    page.goto(origin + "/" + query)
    wait_idle(page)
    page.evaluate("() => performance.clearMeasures('convlens:slider-to-map')")
    for i in range(samples + 2):
        before = paints(page)
        page.focus("#kh")
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        wait_repaint(page, before)
        page.wait_for_function(
            "() => document.body.dataset.settled === document.getElementById('maps').dataset.paints"
        )
    durations = page.evaluate(
        "() => performance.getEntriesByName('convlens:slider-to-map').map((m) => m.duration)"
    )
    return durations[2:]  # the first two warm caches


def test_slider_latency(watched: Watched) -> None:
    page = watched.page
    results = {}
    cases = {
        "mnist_28x28_gray": ("?image=mnist:0", 50.0, 30),
        "astronaut_256x256_rgb": ("?image=sample:astronaut&color=rgb&side=256", 150.0, 20),
    }
    for name, (query, budget, samples) in cases.items():
        durations = measure_latency(page, watched.origin, query, samples)
        results[name] = {**summary(durations), "budget_p95_ms": budget}
        print(f"\nslider → repainted map, {name}: {results[name]}")
    LATENCY_FILE.parent.mkdir(parents=True, exist_ok=True)
    record = {"measured": time.strftime("%Y-%m-%d %H:%M:%S"), **results}
    LATENCY_FILE.write_text(json.dumps(record, indent=2) + "\n")
    # The budgets are measured and reported (README, docs/latency.json), not asserted: a timed assertion fails
    # on a busy machine. The guard below only catches a regression by a large factor.
    for name, result in results.items():
        assert result["p95_ms"] < 4 * result["budget_p95_ms"], (name, result)
    assert watched.errors == [], watched.errors


def test_api_docs_render_offline(watched: Watched) -> None:
    """/docs (Swagger UI) loads its assets from this server, so it works with no internet."""
    page = watched.page
    page.goto(watched.origin + "/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= 10
    assert watched.foreign() == [], watched.foreign()


def test_network_view_classifies_and_reacts_to_drawing(watched: Watched, server: Any) -> None:
    with httpx.Client(base_url=server.url, timeout=30) as client:
        if client.post("/api/network", json={"image": "mnist:8000"}).status_code == 404:
            pytest.skip("the network endpoint is not installed")
        for index in range(8000, 8100):
            label = client.get(f"/api/images/mnist:{index}").json()["label"]
            if client.post("/api/network", json={"image": f"mnist:{index}"}).json()["prediction"] == label:
                break
        else:
            pytest.fail("the network got none of the held-out digits 8000..8099 right")
    page = open_page(watched, "?tab=network")
    page.wait_for_selector("#network-view[data-ready=true]")
    digit = page.locator("#network-view input.nv-digit")
    digit.fill(str(index))
    digit.dispatch_event("change")
    page.wait_for_function(
        "(d) => document.querySelector('#network-view .top')?.dataset.digit === String(d) &&"
        " !document.getElementById('network-view').classList.contains('nv-busy')",
        arg=label,
    )
    top = page.locator("#network-view .top")
    assert top.count() == 1 and top.get_attribute("data-digit") == str(label)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("() => document.activeElement.blur()")
    page.screenshot(path=str(SCREENSHOTS / "network.png"))  # the README's picture of the Network view
    bars = "#network-view [data-prob]"
    probabilities = page.eval_on_selector_all(bars, "(bars) => bars.map((b) => b.dataset.prob)")
    assert len(probabilities) == 10
    box = page.locator("#network-view canvas.nv-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.2)
    page.mouse.down()
    for t in np.linspace(0, 1, 12):
        page.mouse.move(box["x"] + box["width"] * (0.3 + 0.4 * t), box["y"] + box["height"] * (0.2 + 0.6 * t))
    page.mouse.up()
    page.wait_for_function(
        "(before) => [...document.querySelectorAll('#network-view [data-prob]')]"
        ".map((b) => b.dataset.prob).join() !== before.join()",
        arg=probabilities,
    )
    # a learned filter opens in the convolution view: 28×28 → 24×24 → max pool 2×2 → 12×12
    before = paints(page)
    page.click('#network-view [aria-label="Open learned filter 0 in the convolution view"]')
    wait_repaint(page, before)
    wait_idle(page)
    assert page.is_visible("#conv-view") and not page.is_visible("#network-view")
    widths = (canvas_fingerprint(page, "#map-0")["width"], canvas_fingerprint(page, "#pool-0")["width"])
    assert widths == (24, 12)
    assert watched.errors == [], watched.errors
    assert watched.foreign() == [], watched.foreign()


def test_downloads_png_and_npy_hold_the_maps(watched: Watched, server: Any, tmp_path: Any) -> None:
    from PIL import Image

    page = open_page(watched)
    with page.expect_download() as info:
        page.click('button[data-download="map-npy"]')
    path = tmp_path / "maps.npy"
    info.value.save_as(path)
    maps = np.load(path, allow_pickle=False)
    reference = httpx.post(server.url + "/api/conv", timeout=30, json={
        "image": "mnist:0", "weight": "sobel_x", "values": True}).json()
    assert maps.dtype == np.float32 and maps.shape == (1, 26, 26)
    np.testing.assert_array_equal(maps[0], np.array(reference["conv"]["maps"][0]["values"], dtype=np.float32))
    with page.expect_download() as info:
        page.click('button[data-download="map-png"]')
    info.value.save_as(tmp_path / "map.png")
    assert max(Image.open(tmp_path / "map.png").size) >= 512  # slide-sized: see test_browser_behaviour.py
    with page.expect_download() as info:
        page.click('button[data-download="im2col-npy"]')
    info.value.save_as(tmp_path / "im2col.npy")
    assert np.load(tmp_path / "im2col.npy").shape == (9, 676)
    code = page.input_value("#code")
    assert "F.conv2d(x, w, b, stride=(1, 1), dilation=(1, 1), groups=1)" in code


def test_im2col_download_right_after_a_change_holds_the_new_matrix(watched: Watched, tmp_path: Any) -> None:
    # the im2col view is off screen and filled in lazily (issue 9): a download asked for before it is filled
    # must still save the matrix of the CURRENT settings, never the previous one
    page = open_page(watched)
    page.wait_for_function(  # every view filled in: the page holds the stride-1 matrix (9, 26 · 26)
        "() => document.body.dataset.settled === document.getElementById('maps').dataset.paints"
    )
    press(page, "#stride")  # stride 1 → 2: (28 − 3) // 2 + 1 = 13 output rows and columns
    with page.expect_download() as info:  # clicked at once, without scrolling the im2col panel into view
        page.evaluate("() => document.querySelector('button[data-download=\"im2col-npy\"]').click()")
    info.value.save_as(tmp_path / "im2col.npy")
    assert np.load(tmp_path / "im2col.npy", allow_pickle=False).shape == (9, 13 * 13)


def test_step_through_moves_the_selection_everywhere(watched: Watched) -> None:
    page = open_page(watched)
    page.wait_for_selector('#arith-value[data-position="0,12,16"]')
    page.click("#step")
    page.wait_for_selector('#arith-value[data-position="0,12,17"]')
    assert "Y[0, 329]" in page.text_content("#gemm .gemm-note")  # column 12·26 + 17
    page.click("#play")
    moved = "() => /output \\(12, (19|2\\d)\\)/.test(document.getElementById('position').textContent)"
    page.wait_for_function(moved, timeout=10_000)
    page.click("#play")
    assert page.get_attribute("#play", "aria-pressed") == "false"


# a PNG built in the page itself (canvas → Blob → File), so the upload paths see a real browser File
MAKE_PNG_FILE = """async ([width, height, name]) => {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    const ctx = canvas.getContext('2d');
    for (let y = 0; y < height; y += 1) {
        for (let x = 0; x < width; x += 1) {
            ctx.fillStyle = `rgb(${(x * 37) % 256}, ${(y * 53) % 256}, ${((x + y) * 11) % 256})`;
            ctx.fillRect(x, y, 1, 1);
        }
    }
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, 'image/png'));
    return new File([blob], name, {type: 'image/png'});
}"""


def uploaded_size(page: Any, server: Any) -> tuple[int, int]:
    """(height, width) the server stored for the image the page now shows."""
    match = re.search(r"image=([0-9a-f]{64})", page.url)
    assert match, page.url
    info = httpx.get(f"{server.url}/api/images/{match.group(1)}", timeout=30).json()
    return info["height"], info["width"]


def test_drop_and_paste_upload(watched: Watched, server: Any) -> None:
    page = open_page(watched)
    # drag and drop: a DataTransfer holding a File, dropped on the page
    before = paints(page)
    page.evaluate(
        f"""async () => {{
            const file = await ({MAKE_PNG_FILE})([40, 30, 'dropped.png']);
            const data = new DataTransfer();
            data.items.add(file);
            const target = document.getElementById('views');
            const init = {{dataTransfer: data, bubbles: true, cancelable: true}};
            target.dispatchEvent(new DragEvent('dragover', init));
            target.dispatchEvent(new DragEvent('drop', init));
        }}"""
    )
    wait_repaint(page, before)
    page.wait_for_function("() => /image=[0-9a-f]{64}/.test(location.search)")
    wait_idle(page)
    assert uploaded_size(page, server) == (30, 40)
    fingerprint = canvas_fingerprint(page, "#map-0")
    assert (fingerprint["height"], fingerprint["width"]) == (28, 38)  # 30×40, 3×3 valid
    dropped = page.url
    # paste: a ClipboardEvent whose clipboardData holds an image File
    before = paints(page)
    page.evaluate(
        f"""async () => {{
            const file = await ({MAKE_PNG_FILE})([24, 20, 'pasted.png']);
            const data = new DataTransfer();
            data.items.add(file);
            const init = {{clipboardData: data, bubbles: true, cancelable: true}};
            document.body.dispatchEvent(new ClipboardEvent('paste', init));
        }}"""
    )
    wait_repaint(page, before)
    page.wait_for_function(
        "(old) => location.href !== old && /image=[0-9a-f]{64}/.test(location.search)", arg=dropped)
    wait_idle(page)
    assert uploaded_size(page, server) == (20, 24)
    fingerprint = canvas_fingerprint(page, "#map-0")
    assert (fingerprint["height"], fingerprint["width"]) == (18, 22)
    assert "uploaded 24 × 20" in page.text_content("#status")
    assert watched.errors == [], watched.errors


def correlate_valid(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Plain-loop 2-D cross-correlation, no padding, stride 1 (the reference for one channel)."""
    kh, kw = k.shape
    out = np.zeros((x.shape[0] - kh + 1, x.shape[1] - kw + 1), dtype=np.float64)
    for y in range(out.shape[0]):
        for xx in range(out.shape[1]):
            out[y, xx] = sum(float(x[y + i, xx + j]) * float(k[i, j]) for i in range(kh) for j in range(kw))
    return out


def test_rgb_shows_per_channel_kernels_and_their_sum(watched: Watched, server: Any) -> None:
    # one filter with a different 3×3 kernel per channel (exact binary fractions) and a bias
    kernels = np.array([
        [[1, 0, -1], [2, 0, -2], [1, 0, -1]],
        [[0.25, 0.5, 0.25], [0, 0, 0], [-0.25, -0.5, -0.25]],
        [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
    ], dtype=np.float32)
    flat = ",".join(f"{v:g}" for v in kernels.ravel())
    y, x = 9, 7
    query = f"?image=sample:chelsea&color=rgb&side=28&k=custom&w={flat}&b=0.5&pos=0,{y},{x}"
    page = open_page(watched, query)
    page.wait_for_selector(f'#channels-point[data-position="0,{y},{x}"]')
    assert page.is_visible("#panel-channels")
    assert page.locator("#channels canvas[id^=chan-kernel-]").count() == 3
    assert page.locator("#channels canvas[id^=chan-map-]").count() == 3
    # the input the server computes on, read back with three 1×1 "pick channel c" filters
    pick = [[[[1.0 if c == k else 0.0]] for c in range(3)] for k in range(3)]
    common = {"image": "sample:chelsea", "color": "rgb", "max_side": 28, "values": True}
    image = httpx.post(server.url + "/api/conv", timeout=30, json={**common, "weight": pick}).json()
    channels = np.array([m["values"] for m in image["conv"]["maps"]], dtype=np.float32)  # (3, H, W)
    contributions = [correlate_valid(channels[c], kernels[c]) for c in range(3)]
    # each channel map: its range is that of x[c] ⋆ w[0, c]
    for c in range(3):
        canvas = page.locator(f"#chan-map-{c}")
        assert float(canvas.get_attribute("data-min")) == pytest.approx(contributions[c].min(), abs=1e-5)
        assert float(canvas.get_attribute("data-max")) == pytest.approx(contributions[c].max(), abs=1e-5)
    # the numbers at the selected pixel are the per-channel partial sums, and they add up (+ bias) to the map
    terms = page.eval_on_selector_all(
        "#channels-point .term", "(ts) => ts.map((t) => Number(t.dataset.value))")
    assert terms == pytest.approx([contributions[c][y, x] for c in range(3)], abs=1e-5)
    feature = httpx.post(server.url + "/api/conv", timeout=30, json={
        **common, "weight": kernels[None].tolist(), "bias": [0.5]}).json()["conv"]["maps"][0]["values"]
    assert sum(terms) + 0.5 == pytest.approx(feature[y][x], abs=1e-5)
    assert sum(contributions)[y, x] + 0.5 == pytest.approx(feature[y][x], abs=1e-5)
    # and the page checked Σ + bias = feature map at every pixel
    assert float(page.get_attribute("#channels-check", "data-maxdiff")) < 1e-5
    # back to gray: one channel, the panel goes away
    before = paints(page)
    page.check('input[name="color"][value="gray"]')
    wait_repaint(page, before)
    wait_idle(page)
    assert page.is_hidden("#panel-channels")
    assert watched.errors == [], watched.errors


def pixel(page: Any, selector: str, x: int, y: int) -> list[int]:
    return page.evaluate(
        "([sel, x, y]) => [...document.querySelector(sel).getContext('2d').getImageData(x, y, 1, 1).data]",
        [selector, x, y],
    )


def test_constant_maps_are_grey_and_say_their_value(watched: Watched) -> None:
    # an all-zero kernel with bias 0.5: the feature map is 0.5 everywhere; the upstream gradient of ones is 1
    page = open_page(watched, "?k=custom&w=0,0,0,0,0,0,0,0,0&b=0.5")
    page.wait_for_selector("#bw-upstream-constant")
    label = page.locator("#map-0-constant")
    assert label.is_visible() and label.text_content() == "constant: every value = 0.5"
    assert pixel(page, "#map-0", 5, 5)[:3] == [128, 128, 128]  # mid-grey, not black (= zeros)
    assert page.text_content("#bw-upstream-constant") == "constant: every value = 1"
    assert pixel(page, "#bw-upstream", 3, 3)[:3] == [128, 128, 128]
    # a normal map has no such label
    before = paints(page)
    page.select_option("#preset-0", "sobel_x")
    wait_repaint(page, before)
    assert page.is_hidden("#map-0-constant")


def test_transposed_convolution_panel(watched: Watched, server: Any) -> None:
    torch = pytest.importorskip("torch")
    page = open_page(watched, "?pos=0,6,8&sh=2&sw=2")
    page.wait_for_selector("#tr-output")
    wait_idle(page)
    roles = page.eval_on_selector_all("#transpose .tr-role", "(rs) => rs.map((r) => r.textContent)")
    assert roles[0] == "INPUT x" and roles[-1] == "OUTPUT y"
    values = {name: np.array(json.loads(page.get_attribute(f"#tr-{name}", "data-values")), dtype=np.float64)
              for name in ["input", "kernel", "output"]}
    # the input is the 3×3 patch of the feature map around the selected pixel (rounded to 2 decimals)
    reference = httpx.post(server.url + "/api/conv", timeout=30, json={
        "image": "mnist:0", "weight": "sobel_x", "stride": 2, "values": True}).json()
    fmap = np.array(reference["conv"]["maps"][0]["values"])
    assert fmap.shape == (13, 13)
    np.testing.assert_allclose(values["input"], np.round(fmap[5:8, 7:10], 2), atol=1e-6)
    assert np.abs(values["input"]).max() > 0.5  # a patch on the stroke, not background
    # the output is PyTorch's transposed convolution of that input with the kernel, stride 2
    expected = torch.nn.functional.conv_transpose2d(
        torch.tensor(values["input"])[None, None], torch.tensor(values["kernel"])[None, None], stride=2)[0, 0]
    np.testing.assert_allclose(values["output"], expected.numpy(), atol=1e-5)
    assert values["output"].shape == (7, 7)
    # select another input cell with the keyboard: its column and its stamp in the output follow
    assert page.get_attribute("#transpose", "data-cell") == "1,1"
    page.focus("#tr-input")
    page.keyboard.press("ArrowRight")
    assert page.get_attribute("#transpose", "data-cell") == "1,2"
    assert "column 5 = x[1, 2] · w" in page.text_content("#transpose")
    assert page.evaluate("() => document.activeElement.id") == "tr-input"


FOCUSABLE_KEY = """(e) => e.id || `${e.tagName}:${e.name || ''}:${e.dataset.download || e.dataset.image
    || e.dataset.source || e.dataset.f || ''}:${e.getAttribute('aria-label') || e.value || e.textContent}`"""


def tab_through(page: Any, scope: str) -> tuple[set[str], set[str], list[str]]:
    """Tab through the page: (controls in ``scope`` to reach, those reached, those focused with no ring)."""
    wanted = set(page.evaluate(
        f"""() => [...document.querySelectorAll(
                '.topbar button, {scope} button, {scope} input, {scope} select, {scope} textarea,'
                + ' {scope} [tabindex="0"]')]
            .filter((e) => !e.disabled && e.tabIndex >= 0 && e.checkVisibility()
                    && !(e.type === 'radio' && !e.checked))
            .map({FOCUSABLE_KEY})"""
    ))
    reached: set[str] = set()
    invisible: list[str] = []
    page.evaluate("() => document.activeElement.blur()")
    first = None
    for _ in range(400):
        page.keyboard.press("Tab")
        info = page.evaluate(
            f"""() => {{
                const e = document.activeElement;
                if (!e || e === document.body) return null;
                const style = getComputedStyle(e);
                return {{key: ({FOCUSABLE_KEY})(e),
                        ring: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2}};
            }}"""
        )
        if info is None:
            continue
        if info["key"] == first:
            break  # wrapped around
        first = first or info["key"]
        reached.add(info["key"])
        if not info["ring"]:
            invisible.append(info["key"])
    return wanted, reached, invisible


def test_every_control_is_reachable_by_keyboard_with_a_visible_focus(watched: Watched) -> None:
    page = open_page(watched)
    page.wait_for_selector("#tr-input")
    wanted, reached, invisible = tab_through(page, "#conv-view")
    missing = wanted - reached
    assert not missing, sorted(missing)
    assert invisible == [], invisible
    assert len(reached) > 40  # sliders, selects, the digit grid (one stop), filter grid, views, downloads
    # the tabs follow the ARIA tabs pattern: one tab stop, arrow keys move between the tabs
    page.focus("#tab-conv")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.id") == "tab-network"
    assert page.is_visible("#network-view") and page.is_hidden("#conv-view")
    # the network view: drawing canvas, undo/clear, digit picker, the 30 learned filters, ...
    page.wait_for_selector("#network-view[data-ready=true]")
    wanted, reached, invisible = tab_through(page, "#network-view")
    missing = wanted - reached
    assert not missing, sorted(missing)
    assert invisible == [], invisible
    assert any("Open learned filter 29" in key for key in reached), sorted(reached)
    page.focus("#tab-network")
    page.keyboard.press("ArrowLeft")
    assert page.evaluate("() => document.activeElement.id") == "tab-conv"


# --------------------------------------------------------------------------------------------------
# issue 9: compact pictures (levels) and follow-ups for the views on screen
# --------------------------------------------------------------------------------------------------


def test_the_colour_tables_are_the_servers_palettes(watched: Watched) -> None:
    page = open_page(watched)
    tables = page.evaluate(
        """async () => {
            const { colourTable } = await import('/static/js/render/pictures.js');
            const rgb = (name) => {
              const t = colourTable(name);
              const out = [];
              for (let i = 0; i < 256; i += 1) out.push([t[4 * i], t[4 * i + 1], t[4 * i + 2]]);
              return out;
            };
            return { diverging: rgb('diverging'), sequential: rgb('sequential') };
        }"""
    )
    assert tables["diverging"] == DIVERGING_LUT.tolist()
    assert tables["sequential"] == SEQUENTIAL_LUT.tolist()


def test_a_map_drawn_from_levels_has_the_pngs_pixels(watched: Watched) -> None:
    page = open_page(watched)
    same = page.evaluate(
        """async () => {
            const { loadPicture } = await import('/static/js/render/pictures.js');
            const body = { image: 'sample:astronaut', color: 'rgb', max_side: 48, padding: 1,
                           weight: ['sobel_x', 'gaussian_3', 'laplacian_4'], bias: [0.1, -0.2, 0] };
            const post = async (path, extra = {}) => (await fetch(path, {
              method: 'POST', headers: { 'Content-Type': 'application/json' },
              body: JSON.stringify({ ...body, ...extra }) })).json();
            const png = await post('/api/conv');
            const lev = await post('/api/conv?pictures=levels');
            const pixels = async (picture, w, h) => {
              const canvas = document.createElement('canvas'); canvas.width = w; canvas.height = h;
              const ctx = canvas.getContext('2d'); ctx.drawImage(await loadPicture(picture), 0, 0);
              return Array.from(ctx.getImageData(0, 0, w, h).data);
            };
            const results = [];
            const [, , h, w] = png.conv.shape;
            for (let f = 0; f < png.conv.maps.length; f += 1) {
              const a = await pixels(png.conv.maps[f], w, h);
              const b = await pixels(lev.conv.maps[f], w, h);
              results.push(a.length === b.length && a.every((v, i) => v === b[i]));
            }
            const up = { upstream: { kind: 'random', seed: 4 } };
            const bpng = await post('/api/backward', up);
            const blev = await post('/api/backward?pictures=levels', up);
            const gw = 3 * 48 + 2 * 2;
            const a = await pixels(bpng.grad_x, gw, 48);
            const b = await pixels(blev.grad_x, gw, 48);
            results.push(a.every((v, i) => v === b[i]));
            return results;
        }"""
    )
    assert same == [True, True, True, True]


def test_views_off_screen_wait_for_a_quiet_moment(watched: Watched) -> None:
    """Six quick slider steps at the top of the page: a conv each, but the backward view (off screen)
    is asked for at most once or twice — and it is filled in once the page is quiet."""
    page = open_page(watched)
    page.wait_for_function(
        "() => document.body.dataset.settled === document.getElementById('maps').dataset.paints"
    )
    start = len(watched.requests)
    before = paints(page)
    page.focus("#kh")
    for i in range(6):
        page.keyboard.press("ArrowRight" if i % 2 == 0 else "ArrowLeft")
        page.wait_for_timeout(60)
    page.wait_for_function("(n) => Number(document.getElementById('maps').dataset.paints) > n", arg=before)
    page.wait_for_function(
        "() => document.body.dataset.settled === document.getElementById('maps').dataset.paints"
        " && document.body.dataset.busy === '0'"
    )
    sent = watched.requests[start:]
    convs = [u for u in sent if "/api/conv" in u and "pictures=levels" in u]
    backward = [u for u in sent if "/api/backward" in u]
    assert len(convs) >= 2
    assert 1 <= len(backward) < len(convs)
    assert page.locator("#backward canvas").count() >= 3  # filled in
