"""The Layers view in a real browser (Playwright + Chromium against the real server on a free port).

- hovering a pixel of a deep map draws, on the input, the theoretical box, the exact box and the ERF exactly
  where ``POST /api/stack/field`` (asked independently, with the request written out here) says, and prints
  both sizes;
- the stack and the chosen unit go into the URL, and opening that URL restores them;
- a layer-0 convolution opens in the convolution view with its weights and geometry;
- no console error and no request to another host.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from browser_support import SCREENSHOTS

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")

LENET = (
    "nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), "
    "nn.ReLU(), nn.MaxPool2d(2))"
)


# `server` and `browser` are the session fixtures of conftest.py (one Playwright per process).


@pytest.fixture()
def page(browser: Any, server: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    requests: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("request", lambda r: requests.append(r.url))
    yield page
    foreign = [u for u in requests if not u.startswith((server.url + "/", "data:", "blob:"))]
    assert not foreign, foreign
    assert not errors, errors
    context.close()


def open_layers(page: Any, server: Any, query: str) -> None:
    page.goto(f"{server.url}/?tab=layers&{query}")
    page.wait_for_function(
        "() => { const v = document.getElementById('layers-view');"
        " return v && Number(v.dataset.paints) > 0 && v.dataset.busy === '0'; }"
    )


def wait_field(page: Any, before: int) -> None:
    page.wait_for_function(
        "(n) => { const o = document.querySelector('.lv-overlay');"
        " const v = document.getElementById('layers-view');"
        " return Number(o.dataset.draws || 0) > n && v.dataset.busy === '0'; }",
        arg=before,
    )


def draws(page: Any) -> int:
    return int(page.evaluate("() => Number(document.querySelector('.lv-overlay').dataset.draws || 0)"))


def hover_unit(page: Any, layer: int, channel: int, y: int, x: int, click: bool = False) -> None:
    """Move the mouse onto the centre of map pixel (y, x) of a tile."""
    tile = page.locator(f"img.lv-map[data-layer='{layer}'][data-channel='{channel}']")
    tile.scroll_into_view_if_needed()
    box = tile.bounding_box()
    h, w = int(tile.get_attribute("data-h")), int(tile.get_attribute("data-w"))
    px, py = box["x"] + (x + 0.5) * box["width"] / w, box["y"] + (y + 0.5) * box["height"] / h
    before = draws(page)
    page.mouse.move(px, py)
    if click:
        page.mouse.click(px, py)
    wait_field(page, before)


def overlay_pixel(page: Any, row: float, col: float) -> list[int]:
    """RGBA of the overlay canvas at input coordinates (row, col), in overlay pixels."""
    return page.evaluate(
        """([r, c]) => { const o = document.querySelector('.lv-overlay'); const s = Number(o.dataset.scale);
            const d = o.getContext('2d').getImageData(Math.floor(c * s), Math.floor(r * s), 1, 1).data;
            return Array.from(d); }""",
        [row, col],
    )


def test_hover_draws_box_and_erf_where_the_api_says(page: Any, server: Any) -> None:
    open_layers(page, server, f"image=mnist:0&color=gray&side=28&stack={quote(LENET)}")
    assert page.locator("img.lv-map[data-layer='5']").count() == 16
    hover_unit(page, 5, 3, 2, 4)
    overlay = page.locator(".lv-overlay")
    assert overlay.get_attribute("data-unit") == "5,3,2,4"
    body = {
        "image": "mnist:0",
        "color": "gray",
        "max_side": 28,
        "text": LENET,
        "weights": {"source": "random", "seed": 0},
        "layer": 5,
        "channel": 3,
        "y": 2,
        "x": 4,
    }
    api = httpx.post(server.url + "/api/stack/field", json=body, timeout=30).json()
    h, w = api["box"]["height"], api["box"]["width"]
    assert overlay.get_attribute("data-box") == f"{h['start']},{h['stop']},{w['start']},{w['stop']}"
    assert overlay.get_attribute("data-exact") == (
        f"{h['exact_start']},{h['exact_stop']},{w['exact_start']},{w['exact_stop']}"
    )
    assert float(overlay.get_attribute("data-erf-radius")) == api["erf"]["radius"]
    # LeNet's last pool: r = 16, jump 4, start −2 → unit (2, 4) reads rows 6..21, columns 14..29
    assert (h["start"], h["stop"], w["start"], w["stop"]) == (6, 22, 14, 30)
    # drawn where it says: the exact box's left edge is yellow, the ERF is pink inside and absent outside
    mid_row = (h["exact_start"] + h["exact_stop"]) / 2
    left = overlay_pixel(page, mid_row, w["exact_start"])
    assert left[0] > 200 and left[1] > 150 and left[2] < 80 and left[3] > 200, left
    values = api["erf"]["values"]
    peak = max((v, r, c) for r, row in enumerate(values) for c, v in enumerate(row))
    inside = overlay_pixel(page, peak[1] + 0.5, peak[2] + 0.5)
    assert inside[3] > 100 and inside[0] > 200 and inside[2] > 60, inside
    outside = overlay_pixel(page, 1.5, 1.5)  # far outside the exact box (rows ≥ 6)
    assert outside[3] == 0, outside
    text = page.locator(".lv-numbers").inner_text()
    assert "16×16" in text and "95 %" in text
    points = page.locator("svg.lv-chart").get_attribute("data-points")
    assert points.startswith("[[0,2,")  # r 5 at layer 0: radius 2


def test_url_round_trip_restores_stack_and_unit(page: Any, server: Any, browser: Any) -> None:
    open_layers(page, server, "image=mnist:1&color=gray&side=28")
    page.select_option("select.lv-preset", "dilated")
    page.wait_for_function("() => document.querySelector('.lv-text').value.includes('dilation=8')")
    page.select_option("select.lv-preset", "mnist")
    page.wait_for_function(
        "() => document.querySelectorAll(\"img.lv-map[data-layer='2']\").length === 30"
        " && document.getElementById('layers-view').dataset.busy === '0'"
    )
    hover_unit(page, 2, 7, 5, 6, click=True)
    page.wait_for_function("() => location.search.includes('lunit=2%2C7%2C5%2C6')")
    url = page.url
    assert "lw=mnist" in url and "stack=" in url
    other = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    other.goto(url)
    other.wait_for_function(
        "() => Number(document.querySelector('.lv-overlay')?.dataset.draws || 0) > 0"
        " && document.getElementById('layers-view').dataset.busy === '0'"
    )
    assert other.locator(".lv-overlay").get_attribute("data-unit") == "2,7,5,6"
    assert other.locator(".lv-text").input_value() == page.locator(".lv-text").input_value()
    assert "nn.Conv2d(1, 30, 5)" in other.locator(".lv-text").input_value()
    assert other.locator("select.lv-weights").input_value() == "mnist"
    assert other.locator(".lv-overlay").get_attribute("data-box") == page.locator(
        ".lv-overlay"
    ).get_attribute("data-box")
    other.context.close()


def test_layer_zero_opens_in_the_convolution_view(page: Any, server: Any) -> None:
    open_layers(
        page,
        server,
        "image=mnist:0&color=gray&side=28&lw=mnist&stack="
        + quote("nn.Sequential(nn.Conv2d(1, 30, 5), nn.ReLU(), nn.MaxPool2d(2))"),
    )
    assert "model = nn.Sequential(" in page.locator(".lv-code").input_value()
    # 30 filters are more than the convolution view's 16: it says which limit, and stays here
    page.locator("button.lv-open[data-layer='0']").click()
    page.wait_for_function("() => document.getElementById('status').textContent.includes('cannot be opened')")
    assert "it has 30 filters, the convolution view shows at most 16" in page.text_content("#status")
    assert page.locator("#layers-view").is_visible()
    # LeNet's layer 0 (6 filters 5×5, padding 2) opens with its weights and geometry
    page.fill(".lv-text", LENET)
    page.select_option("select.lv-weights", "random")
    page.wait_for_function(
        "() => document.querySelectorAll(\"img.lv-map[data-layer='0']\").length === 6"
        " && document.getElementById('layers-view').dataset.busy === '0'"
    )
    page.locator("button.lv-open[data-layer='0']").click()
    page.wait_for_function("() => !document.getElementById('conv-view').hidden")
    page.wait_for_function("() => location.search.includes('tab=conv')")
    query = page.url.split("?", 1)[1]
    # layer 0 reads the image itself, which the convolution view shows as the image
    for part in ("kh=5", "kw=5", "pt=2", "pb=2", "pad=explicit", "image=mnist%3A0", "color=gray", "lo=0"):
        assert part in query, (part, query)
    assert "&w=" not in query  # the weights are the stack's: the link names the layer instead
    wait_conv_settled(page, 6)
    stack = httpx.post(
        server.url + "/api/stack",
        json={"image": "mnist:0", "color": "gray", "max_side": 28, "text": LENET, "values": True},
        timeout=30,
    ).json()
    expected = np.array([m["values"] for m in stack["layers"][1]["maps"]])  # after its ReLU
    y, x = np.unravel_index(int(np.argmax(expected[2])), expected[2].shape)
    assert value_at(page, 2, int(y), int(x)) == pytest.approx(expected[2, y, x], rel=1e-5, abs=1e-6)


def test_a_map_pixel_can_be_chosen_with_the_keyboard(page: Any, server: Any) -> None:
    open_layers(page, server, f"image=mnist:0&color=gray&side=28&stack={quote(LENET)}")
    before = draws(page)
    page.focus("img.lv-map[data-layer='2'][data-channel='1']")
    page.keyboard.press("Enter")
    wait_field(page, before)
    assert page.locator(".lv-overlay").get_attribute("data-unit") == "2,1,7,7"  # the centre of 14×14
    page.wait_for_function("() => location.search.includes('lunit=2%2C1%2C7%2C7')")


def test_default_rgb_stack_and_screenshot(page: Any, server: Any) -> None:
    # no stack in the URL and an RGB photo: the default is a VGG block (3 input channels), not LeNet
    open_layers(page, server, "image=sample:astronaut&color=rgb&side=128&lunit=4,5,20,30")
    page.wait_for_function("() => Number(document.querySelector('.lv-overlay').dataset.draws || 0) > 0")
    assert "nn.Conv2d(3, 16, 3, padding=1)" in page.locator(".lv-text").input_value()
    assert page.locator("select.lv-preset").input_value() == "vgg_block"
    assert page.locator(".lv-overlay").get_attribute("data-unit") == "4,5,20,30"
    # for the README: the dilated preset (r = 31) with a unit chosen, the field panel in view
    page.set_viewport_size({"width": 1400, "height": 1250})
    dilated = httpx.get(server.url + "/api/stack/presets", timeout=30).json()["presets"][-1]["text"]
    open_layers(
        page, server, f"image=sample:astronaut&color=rgb&side=128&lunit=6,2,40,70&stack={quote(dilated)}"
    )
    page.wait_for_function("() => Number(document.querySelector('.lv-overlay').dataset.draws || 0) > 0")
    # 'same' paddings 1 + 2 + 4 + 8 = 15 and r = 31: unit (40, 70) is centred on input (40, 70)
    assert page.locator(".lv-overlay").get_attribute("data-box") == "25,56,55,86"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "layers.png"))


def test_weights_download_and_upload_round_trip(page: Any, server: Any, tmp_path: Any) -> None:
    open_layers(page, server, f"image=mnist:0&color=gray&side=28&stack={quote(LENET)}")
    href = page.locator("a.lv-download").get_attribute("href")
    assert href.startswith("data:application/octet-stream;base64,")
    archive = np.load(io.BytesIO(base64.b64decode(href.split(",", 1)[1])), allow_pickle=False)
    arrays = {name: archive[name] for name in archive.files}
    assert sorted(arrays) == ["0.bias", "0.weight", "3.bias", "3.weight"]
    arrays["0.weight"] = -2 * arrays["0.weight"]  # edited weights, as a student would in PyTorch
    path = tmp_path / "edited.npz"
    np.savez(path, **arrays)
    before = page.locator("img.lv-map[data-layer='0'][data-channel='0']").get_attribute("src")
    paints = int(page.locator("#layers-view").get_attribute("data-paints"))
    page.set_input_files("input.lv-npz", str(path))
    page.wait_for_function(
        "(n) => Number(document.getElementById('layers-view').dataset.paints) > n"
        " && document.getElementById('layers-view').dataset.busy === '0'",
        arg=paints,
    )
    assert page.locator("select.lv-weights").input_value() == "npz"
    after = page.locator("img.lv-map[data-layer='0'][data-channel='0']").get_attribute("src")
    assert after != before
    body = {
        "image": "mnist:0",
        "color": "gray",
        "max_side": 28,
        "text": LENET,
        "weights": {"source": "npz", "npz": base64.b64encode(path.read_bytes()).decode()},
    }
    expected = httpx.post(server.url + "/api/stack", json=body, timeout=30).json()
    assert after == expected["layers"][0]["maps"][0]["png"]


def wait_conv_settled(page: Any, maps: int) -> None:
    """The convolution view shows ``maps`` feature maps and every follow-up view has caught up."""
    page.wait_for_function(
        "(n) => !document.getElementById('conv-view').hidden"
        " && document.querySelectorAll('#maps canvas.map').length === n"
        " && document.body.dataset.busy === '0'"
        " && document.body.dataset.settled === document.getElementById('maps').dataset.paints",
        arg=maps,
    )


def value_at(page: Any, f: int, y: int, x: int) -> float:
    """Hover output (f, y, x) of the convolution view and read the value its arithmetic panel shows."""
    canvas = page.locator(f"#map-{f}")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    h, w = page.evaluate(
        f"() => [document.getElementById('map-{f}').height, document.getElementById('map-{f}').width]"
    )
    page.mouse.move(box["x"] + (x + 0.5) * box["width"] / w, box["y"] + (y + 0.5) * box["height"] / h)
    shown = page.wait_for_selector(f'#arith-value[data-position="{f},{y},{x}"]')
    return float(shown.get_attribute("data-value"))


def test_second_conv_opens_on_its_real_input(
    page: Any, server: Any, browser: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    open_layers(page, server, f"image=mnist:0&color=gray&side=28&stack={quote(LENET)}")
    page.wait_for_function("() => document.querySelectorAll(\"img.lv-map[data-layer='3']\").length === 16")
    page.locator("button.lv-open[data-layer='3']").click()
    wait_conv_settled(page, 16)
    assert "Opened layer 3" in page.text_content("#status")
    # its input: 6 channels of 14×14 (the output of the pool before it)
    assert "14 × 14 × 6" in page.text_content("#image-info")
    # the reference: the stack's own output after layer 3 and its ReLU (layer 4), asked for independently
    stack = httpx.post(
        server.url + "/api/stack",
        json={"image": "mnist:0", "color": "gray", "max_side": 28, "text": LENET, "values": True},
        timeout=30,
    ).json()
    expected = np.array([m["values"] for m in stack["layers"][4]["maps"]])
    assert expected.shape == (16, 10, 10)
    # the pixels where filters 0 and 9 respond most (not a zero switched off by the ReLU)
    units = [(f, *np.unravel_index(int(np.argmax(expected[f])), (10, 10))) for f in (0, 9)]
    for f, y, x in units:
        assert expected[f, y, x] > 0
        assert value_at(page, f, int(y), int(x)) == pytest.approx(expected[f, y, x], rel=1e-5, abs=1e-6)
    # its ReLU and the max pool after it are the convolution view's activation and pooling
    query = page.url.split("?", 1)[1]
    for part in ("act=relu", "pool=max", "pk=2", "ps=2", "pp=0"):
        assert part in query, (part, query)
    assert page.locator("#pooled canvas.map").count() == 16
    # "Copy PyTorch code" loads the real input (.npy, from the URL it names) and reproduces the stack's
    # output after the pool (layer 5) in PyTorch
    torch = pytest.importorskip("torch")
    code = page.input_value("#code")
    assert "np.load('layer_input.npy', allow_pickle=False)" in code
    npy_url = code.split("GET ", 1)[1].split("\n", 1)[0]
    (tmp_path / "layer_input.npy").write_bytes(httpx.get(server.url + npy_url, timeout=30).content)
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {}
    exec(compile(code, "snippet", "exec"), scope)  # noqa: S102 - the page's own snippet, run as a student would
    pooled = np.array([m["values"] for m in stack["layers"][5]["maps"]])
    assert isinstance(scope["y"], torch.Tensor)
    np.testing.assert_allclose(scope["y"][0].numpy(), pooled, rtol=1e-4, atol=1e-5)
    # a link to the opened layer reopens it (its weights are read from the stack again, not carried in it)
    page.wait_for_function("() => location.search.includes('lo=3')")
    url = page.url
    assert "&w=" not in url and "image=act%3A" in url
    # even after the store evicted the activation: the link names the stack and the layer, not just the file
    digest = page.evaluate("() => new URLSearchParams(location.search).get('image')")[4:]
    stored = Path(server.env["CONVLENS_STORE_DIR"]) / f"{digest}.npy"
    assert stored.is_file()
    stored.unlink()
    other = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
    other.goto(url)
    wait_conv_settled(other, 16)
    f, y, x = units[1]
    assert value_at(other, f, int(y), int(x)) == pytest.approx(expected[f, y, x], rel=1e-5, abs=1e-6)
    assert other.url.split("?", 1)[1] == url.split("?", 1)[1]
    assert stored.is_file()  # stored again, under the same content-derived id
    # a bare activation id that is not stored (and no layer to rebuild it from) is said plainly
    other.goto(f"{server.url}/?tab=conv&image=act%3A{'0' * 64}&lc=6")
    other.wait_for_function(
        "() => document.getElementById('status').textContent.includes('no longer stored')"
    )
    wait_conv_settled(other, 1)
    assert "image=mnist%3A0" in other.url
    other.context.close()
