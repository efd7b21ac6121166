"""The page in a classroom: nothing changes behind the teacher's back, selection by mouse, touch and keyboard,
exact numbers, sharing over plain http, slide-sized downloads and the Network view's Clear and link.

Playwright drives Debian's Chromium against the real server (uvicorn on a free port), as
tests/test_browser.py does.
Expected values come from the API (the server's own sentences and float32 values) or from plain-loop
references written here, never from the page's JavaScript.
"""

from __future__ import annotations

import base64
import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import numpy as np
import pytest
from browser_support import canvas_fingerprint, paints, wait_idle, wait_repaint

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")

VIEWPORT = {"width": 1280, "height": 720}
RANGE_WORDS = "between −1,000,000 and 1,000,000"


# --------------------------------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------------------------------


@pytest.fixture()
def page(browser: Any, server: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(30_000)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.origin = server.url  # type: ignore[attr-defined]
    yield page
    context.close()
    assert errors == [], errors


def open_page(page: Any, query: str = "", origin: str | None = None) -> Any:
    page.goto((origin or page.origin) + "/" + query)
    page.wait_for_function("() => document.body.dataset.busy === '0'")
    return page


def query_of(page: Any) -> dict[str, str]:
    page.wait_for_function("() => document.body.dataset.busy === '0'")
    return {k: v[0] for k, v in parse_qs(urlparse(page.url).query, keep_blank_values=True).items()}


def settings(page: Any) -> dict[str, str]:
    """The geometry controls as shown."""
    keys = ["kh", "kw", "sh", "sw", "dh", "dw", "pt", "pb", "pl", "pr"]
    return {k: page.input_value(f"#{k}") for k in keys}


def server_sentence(server: Any, body: dict[str, Any]) -> str:
    """The server's reason for refusing a convolution (422)."""
    response = httpx.post(server.url + "/api/conv", json=body, timeout=30)
    assert response.status_code == 422, response.text
    return response.json()["detail"][0]["msg"]


def mnist_pixels(server: Any, index: int) -> np.ndarray:
    """The 28 × 28 input the server computes on, read back with a 1 × 1 identity filter."""
    answer = httpx.post(server.url + "/api/conv", timeout=30, json={
        "image": f"mnist:{index}", "weight": [[[[1.0]]]], "values": True}).json()
    return np.array(answer["conv"]["maps"][0]["values"], dtype=np.float32)


def click_map_pixel(page: Any, y: int, x: int, tap: bool = False) -> None:
    box = page.locator("#map-0").bounding_box()
    size = canvas_fingerprint(page, "#map-0")
    point = {"x": box["width"] * (x + 0.5) / size["width"], "y": box["height"] * (y + 0.5) / size["height"]}
    if tap:
        page.locator("#map-0").tap(position=point)
    else:
        page.locator("#map-0").click(position=point)


def hover_map_pixel(page: Any, y: int, x: int) -> None:
    box = page.locator("#map-0").bounding_box()
    size = canvas_fingerprint(page, "#map-0")
    page.mouse.move(box["x"] + box["width"] * (x + 0.5) / size["width"],
                    box["y"] + box["height"] * (y + 0.5) / size["height"])


# --------------------------------------------------------------------------------------------------
# nothing changes behind the teacher's back
# --------------------------------------------------------------------------------------------------


def test_link_that_does_not_fit_is_kept_explained_and_fixed_in_one_click(page: Any, server: Any) -> None:
    open_page(page, "?kh=11&kw=11&dh=5&dw=5")
    # kept exactly as the link says: no 1 × 1 kernel, no padding 10
    assert settings(page) == {"kh": "11", "kw": "11", "sh": "1", "sw": "1", "dh": "5", "dw": "5",
                              "pt": "0", "pb": "0", "pl": "0", "pr": "0"}
    q = query_of(page)
    assert (q["kh"], q["kw"], q["dh"], q["dw"], q["pt"], q["pl"]) == ("11", "11", "5", "5", "0", "0")
    # the reason is the server's own sentence for these settings
    weight = [[np.eye(11, dtype=int)[5].tolist()] * 11]
    sentence = server_sentence(server, {"image": "mnist:0", "weight": [weight], "dilation": [5, 5]})
    assert "spans 51 pixels but the padded input is only 28" in sentence
    assert page.text_content("#problem") == sentence
    assert page.is_visible("#stale")
    # one click: the largest dilation that fits (the kernel keeps its 11 taps), said in words
    fix = page.locator("#fix-fit")
    assert "dilation (rows) 5 → 2" in fix.text_content() and "dilation (columns) 5 → 2" in fix.text_content()
    fix.click()
    page.wait_for_function("() => Number(document.getElementById('maps').dataset.paints) > 0")
    wait_idle(page)
    assert settings(page)["dh"] == "2" and settings(page)["kh"] == "11"
    size = canvas_fingerprint(page, "#map-0")
    assert (size["height"], size["width"]) == (28 - 20, 28 - 20)  # (11 - 1)·2 + 1 = 21 → 28 − 21 + 1
    assert page.is_hidden("#stale") and page.is_hidden("#problem")
    assert "Changed dilation (rows) 5 → 2" in page.text_content("#status")


def test_new_image_keeps_the_settings_and_going_back_restores_them(page: Any, server: Any) -> None:
    open_page(page, "?image=mnist:0&side=28&kh=11&kw=11&dh=2&dw=2")
    wait_idle(page)
    before = settings(page)
    fitted = canvas_fingerprint(page, "#map-0")
    assert (fitted["height"], fitted["width"]) == (8, 8)  # 28 − 21 + 1
    # the photo at 28 px is 19 × 28: an 11-tap kernel with dilation 2 spans 21 rows
    page.click(".source-tab[data-source=samples]")
    page.click('button[data-image="sample:chelsea"]')
    page.wait_for_function("() => document.getElementById('problem').textContent !== ''")
    wait_idle(page)
    assert settings(page) == before  # nothing rewritten
    weight = [[[[0.0] * 11] * 11]]
    sentence = server_sentence(server, {"image": "sample:chelsea", "max_side": 28, "weight": weight,
                                        "dilation": [2, 2]})
    assert page.text_content("#problem") == sentence
    assert page.is_visible("#stale")
    assert "not updated" in page.text_content("#stale")
    assert query_of(page)["image"] == "sample:chelsea" and query_of(page)["dh"] == "2"
    # going back to the digit: everything as it was, the map fits again
    before_paints = paints(page)
    page.click("#fix-back")
    wait_repaint(page, before_paints)
    assert settings(page) == before
    assert page.is_hidden("#problem") and page.is_hidden("#stale")
    assert canvas_fingerprint(page, "#map-0") == fitted


def test_smaller_downscale_keeps_settings_and_the_old_size_restores_them(page: Any) -> None:
    open_page(page, "?image=sample:chelsea&side=128&kh=11&kw=11&dh=2&dw=2&pt=1")
    wait_idle(page)
    before = settings(page)
    page.select_option("#side", "28")
    page.wait_for_function("() => document.getElementById('problem').textContent !== ''")
    assert settings(page) == before
    assert "Back to 128 px" in page.text_content("#fix")
    sentence = "spans 21 pixels but the padded input is only 20 tall (19 + 1 + 0)"
    assert sentence in page.text_content("#problem")
    before_paints = paints(page)
    page.select_option("#side", "128")
    wait_repaint(page, before_paints)
    assert settings(page) == before
    assert page.is_hidden("#problem")


def test_a_preset_brings_its_own_size(page: Any, server: Any) -> None:
    kernels = {k["name"]: np.array(k["weights"]) for k in
               httpx.get(server.url + "/api/kernels", timeout=30).json()["kernels"]}
    open_page(page)
    for name in ["gaussian_5", "motion_blur", "sobel_y"]:
        before = paints(page)
        page.select_option("#preset-0", name)
        wait_repaint(page, before)
        h, w = kernels[name].shape
        assert (page.input_value("#kh"), page.input_value("#kw")) == (str(h), str(w)), name
        shown = page.eval_on_selector_all(
            '#filter-list input.weight[data-f="0"]',
            "(inputs) => inputs.map((i) => [Number(i.dataset.i), Number(i.dataset.j), Number(i.value)])")
        grid = np.zeros((h, w))
        for i, j, v in shown:
            grid[i, j] = v
        assert len(shown) == h * w
        np.testing.assert_allclose(grid, kernels[name], rtol=1e-6)  # not a centre crop
        size = canvas_fingerprint(page, "#map-0")
        assert (size["height"], size["width"]) == (28 - h + 1, 28 - w + 1)
    # 3×3 → 5×5 → 5×5 → 3×3: every size change was announced
    notes = page.text_content("#notice-list")
    assert "gaussian_5 is 5 × 5, so the kernel size changed from 3 × 3 to 5 × 5" in notes
    assert "sobel_y is 3 × 3, so the kernel size changed from 5 × 5 to 3 × 3" in notes


def test_a_filter_count_above_the_maximum_says_so(page: Any) -> None:
    names = ",".join(["sobel_x", "sobel_y"] * 10)
    open_page(page, f"?k={names}&kh=20")
    wait_idle(page)
    assert page.input_value("#filters") == "16"
    notes = page.text_content("#notice-list")
    assert "The link lists 20 filters, but at most 16 are allowed, so the first 16 are used." in notes
    assert "The link asks for kernel height 20, but the maximum is 11, so 11 is used." in notes
    assert page.locator("#maps canvas.map").count() == 16


# --------------------------------------------------------------------------------------------------
# selection: hover previews, click/tap pins, keyboard
# --------------------------------------------------------------------------------------------------


def test_click_pins_and_hover_no_longer_moves_the_selection(page: Any) -> None:
    open_page(page)
    hover_map_pixel(page, 5, 6)
    page.wait_for_selector('#arith-value[data-position="0,5,6"]')
    assert page.get_attribute("#maps", "data-pinned") == "false"
    click_map_pixel(page, 13, 15)
    page.wait_for_selector('#arith-value[data-position="0,13,15"]')
    assert page.get_attribute("#maps", "data-pinned") == "true"
    assert page.text_content("#position").startswith("pinned: filter 0, output (13, 15)")
    # moving the mouse across other pixels towards the arithmetic panel leaves the pin alone
    for y, x in [(14, 16), (20, 3), (2, 24)]:
        hover_map_pixel(page, y, x)
    page.locator("#panel-arith").hover()
    wait_idle(page)
    assert page.get_attribute("#arith-value", "data-position") == "0,13,15"
    # the same pixel again releases it; hovering previews again
    click_map_pixel(page, 13, 15)
    assert page.get_attribute("#maps", "data-pinned") == "false"
    hover_map_pixel(page, 4, 4)
    page.wait_for_selector('#arith-value[data-position="0,4,4"]')


def test_keyboard_moves_pins_and_escape_releases(page: Any) -> None:
    open_page(page)
    page.focus("#maps")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowDown")
    page.wait_for_selector('#arith-value[data-position="0,13,17"]')
    assert page.get_attribute("#maps", "data-pinned") == "true"
    hover_map_pixel(page, 1, 1)
    wait_idle(page)
    assert page.get_attribute("#arith-value", "data-position") == "0,13,17"
    page.focus("#maps")
    page.keyboard.press("Escape")
    assert page.get_attribute("#maps", "data-pinned") == "false"
    hover_map_pixel(page, 2, 3)
    page.wait_for_selector('#arith-value[data-position="0,2,3"]')


def outputs_reading(p: int, k: int, s: int, d: int, out: int) -> list[int]:
    """Plain loop: the output positions o along one axis whose window has a tap on padded index p."""
    return [o for o in range(out) if any(o * s + t * d == p for t in range(k))]


def test_touch_tap_pins_and_every_readout_works_by_tap(browser: Any, server: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, has_touch=True)
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.origin = server.url
        open_page(page, "?sh=2&sw=2&pos=0,3,3")
        wait_idle(page)
        page.wait_for_selector("#arith-value")
        # tap an output pixel: pinned
        click_map_pixel(page, 6, 9, tap=True)
        page.wait_for_selector('#arith-value[data-position="0,6,9"]')
        assert page.get_attribute("#maps", "data-pinned") == "true"
        # tap an input pixel: which outputs read it (stride 2, 3 × 3, 28 → 13)
        r, c = 10, 7
        box = page.locator("#input-canvas").bounding_box()
        cell = box["width"] / 28
        page.locator("#input-stack").tap(position={"x": (c + 0.5) * cell, "y": (r + 0.5) * cell})
        rows = outputs_reading(r, 3, 2, 1, 13)
        cols = outputs_reading(c, 3, 2, 1, 13)
        page.wait_for_function(
            "(rc) => document.getElementById('input-hover').dataset.cell === rc", arg=f"{r},{c}")
        text = page.text_content("#input-hover")
        assert f"read by {len(rows) * len(cols)} output position(s)" in text, text
        assert f"rows {rows[0]}–{rows[-1]}, columns {cols[0]}–{cols[-1]}" in text
        assert "pinned" in text
        # tap an im2col cell: its (c, kh, kw) row, (oh, ow) column and value x[oh·2 + kh, ow·2 + kw]
        page.wait_for_function(SETTLED)  # the matrix is drawn (filled in once the page is quiet)
        page.locator("#im2col-scroll").scroll_into_view_if_needed()
        zoom = 10
        scroller = page.locator("#im2col-scroll").bounding_box()
        row, col = 4, 2
        page.evaluate(
            "() => { const s = document.getElementById('im2col-scroll'); s.scrollLeft = 0; s.scrollTop = 0 }")
        label_w, label_h = 86, 34  # the row and column label margins of the matrix view
        page.locator("#im2col-scroll").tap(
            position={"x": label_w + (col + 0.5) * zoom, "y": label_h + (row + 0.5) * zoom})
        page.wait_for_function("() => document.getElementById('im2col-hover').textContent !== ''")
        page.wait_for_selector('#arith-value[data-position="0,0,2"]')  # its column is now the selected pixel
        x = mnist_pixels(server, 0)
        kh, kw = divmod(row, 3)
        oh, ow = divmod(col, 13)
        expected = x[oh * 2 + kh, ow * 2 + kw]
        readout = page.text_content("#im2col-hover")
        head = f"row {row} (c 0, kh {kh}, kw {kw}), column {col} (oh {oh}, ow {ow}) = "
        assert readout.startswith(head), readout
        shown = float(re.search(r"= ([-0-9.e]+)", readout).group(1))
        assert shown == pytest.approx(float(expected), abs=1e-7)
        assert scroller["width"] > 0
    finally:
        context.close()


def test_input_and_im2col_readouts_by_keyboard(page: Any, server: Any) -> None:
    open_page(page)
    wait_idle(page)
    page.focus("#input-stack")
    page.keyboard.press("ArrowDown")  # the first press picks the top-left input pixel
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    page.wait_for_function("() => document.getElementById('input-hover').dataset.cell === '1,1'")
    rows = outputs_reading(1, 3, 1, 1, 26)
    assert f"read by {len(rows) * len(rows)} output position(s)" in page.text_content("#input-hover")
    page.keyboard.press("Escape")
    assert page.text_content("#input-hover") == ""
    page.wait_for_selector("#im2col-shape")
    page.focus("#im2col-scroll")
    page.keyboard.press("ArrowDown")  # the first press picks row 0 of the selected column
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    column = 12 * 26 + 16  # the opening selection (12, 16)
    x = mnist_pixels(server, 0)
    readout = page.text_content("#im2col-hover")
    assert readout.startswith(f"row 2 (c 0, kh 0, kw 2), column {column} (oh 12, ow 16) = "), readout
    assert float(re.search(r"= ([-0-9.e]+)", readout).group(1)) == pytest.approx(float(x[12, 18]), abs=1e-7)
    page.keyboard.press("ArrowRight")  # the next column is the next output pixel
    page.wait_for_selector('#arith-value[data-position="0,12,17"]')
    assert f"column {column + 1} (oh 12, ow 17)" in page.text_content("#im2col-hover")


# --------------------------------------------------------------------------------------------------
# numbers
# --------------------------------------------------------------------------------------------------


def test_arithmetic_sum_reads_as_the_map_value(page: Any, server: Any) -> None:
    open_page(page, "?pos=0,10,13")
    page.focus("#maps")
    reference = httpx.post(server.url + "/api/conv", timeout=30, json={
        "image": "mnist:0", "weight": "sobel_x", "values": True}).json()["conv"]["maps"][0]["values"]
    seen = 0
    for step in range(12):
        page.keyboard.press("ArrowRight" if step % 3 else "ArrowDown")
        page.wait_for_function("() => document.body.dataset.busy === '0'")
        position = page.get_attribute("#arith-value", "data-position")
        f, y, x = (int(v) for v in position.split(","))
        value = page.text_content("#arith-value")
        assert page.text_content("#arith-sum") == value  # bias 0: Σ reads digit for digit as the map value
        assert page.text_content("#arith-pre") == value
        assert float(page.get_attribute("#arith-value", "data-value")) == reference[y][x]
        assert abs(float(value) - reference[y][x]) <= 5e-6 * max(1.0, abs(reference[y][x]))
        seen += 1
    assert seen == 12


def test_gradient_tables_show_six_digits_and_the_full_value_on_click(page: Any, server: Any) -> None:
    open_page(page, "?k=gaussian_5&kh=5&kw=5")
    page.wait_for_selector("#grad-w-0-0 button")
    reference = httpx.post(server.url + "/api/backward", timeout=30, json={
        "image": "mnist:0", "weight": "gaussian_5", "upstream": {"kind": "ones"}}).json()
    expected = np.array(reference["grad_weight"]["values"][0][0])
    shown = page.eval_on_selector_all(
        "#grad-w-0-0 button", "(bs) => bs.map((b) => [b.textContent, Number(b.dataset.value)])")
    assert len(shown) == 25
    for (text, exact), want in zip(shown, expected.ravel(), strict=True):
        assert exact == want
        assert float(text) == float(f"{want:.6g}")  # six significant digits, e.g. 70.0157, not "70"
    page.locator("#grad-w-0-0 button").nth(7).click()
    full = page.text_content("#grad-readout")
    assert full.startswith("∂L/∂w[0, 0, 1, 2] = ") and full.endswith(" (full float32)"), full
    assert np.float32(float(full.split(" = ")[1].split(" ")[0])) == np.float32(expected[1, 2])


def test_invalid_weight_and_bias_cells_are_marked_explained_and_not_used(page: Any) -> None:
    open_page(page)
    wait_idle(page)
    cell = '#filter-list input.weight[data-f="0"][data-i="1"][data-j="1"]'
    for text, why in [("1e30", "too large"), ("abc", "is not a number")]:
        before = paints(page)
        url = page.url
        page.fill(cell, text)
        assert page.get_attribute(cell, "aria-invalid") == "true"
        error = page.text_content("#filter-0-error")
        assert why in error and RANGE_WORDS in error, error
        page.wait_for_timeout(400)
        assert paints(page) == before and page.url == url  # not used: no recomputation, link unchanged
    # an unfinished number is flagged when the cell is left
    page.fill(cell, "5e")
    page.press(cell, "Tab")
    assert page.get_attribute(cell, "aria-invalid") == "true"
    assert '"5e" is not a number' in page.text_content("#filter-0-error")
    # a valid number clears the mark and is used
    before = paints(page)
    page.fill(cell, "0.5")
    wait_repaint(page, before)
    assert page.get_attribute(cell, "aria-invalid") is None
    assert page.text_content("#filter-0-error") == ""
    assert query_of(page)["w"] == "-1,0,1,-2,0.5,2,-1,0,1"
    before = paints(page)
    page.fill("#bias-0", "abc")
    assert page.get_attribute("#bias-0", "aria-invalid") == "true"
    assert "Bias:" in page.text_content("#filter-0-error")
    page.wait_for_timeout(400)
    assert paints(page) == before and query_of(page)["b"] == "0"


# --------------------------------------------------------------------------------------------------
# sharing on a school network
# --------------------------------------------------------------------------------------------------


def test_copy_link_over_plain_http_shows_the_link_selected(page: Any, server: Any) -> None:
    port = urlparse(server.url).port
    origin = f"http://classroom.test:{port}"
    open_page(page, "?proj=1&kh=5", origin=origin)
    wait_idle(page)
    assert page.evaluate("() => window.isSecureContext") is False
    assert page.evaluate("() => document.body.classList.contains('projector')")
    assert "proj" not in query_of(page)  # the address bar never carries projector mode
    page.click("#copy-link")
    page.wait_for_selector("#copy-box:not([hidden])")
    assert page.is_visible("#copy-text")
    assert "Ctrl+C" in page.text_content("#copy-label")
    link = page.input_value("#copy-text")
    assert link.startswith(origin + "/?") and "kh=5" in link
    assert "proj" not in parse_qs(urlparse(link).query)
    selected = page.evaluate("""() => {
        const t = document.getElementById('copy-text');
        return [document.activeElement === t, t.selectionStart, t.selectionEnd, t.value.length];
    }""")
    assert selected[0] and selected[1] == 0 and selected[2] == selected[3]
    # the link opens the same view, not in projector mode
    other = page.context.new_page()
    other.goto(link)
    other.wait_for_function("() => Number(document.getElementById('maps').dataset.paints) > 0")
    assert other.input_value("#kh") == "5"
    assert not other.evaluate("() => document.body.classList.contains('projector')")
    other.close()
    page.keyboard.press("Escape")
    assert page.is_hidden("#copy-box")
    # the PyTorch code too
    page.click("#copy-code")
    page.wait_for_selector("#copy-box:not([hidden])")
    assert "F.conv2d(" in page.input_value("#copy-text")
    assert page.evaluate("() => document.activeElement.id") == "copy-text"


def test_copy_link_in_a_secure_context_uses_the_clipboard_without_projector(
    browser: Any, server: Any
) -> None:
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.url)
        page = context.new_page()
        page.origin = server.url
        open_page(page, "?kw=5")
        page.click("#projector")
        wait_idle(page)
        page.click("#copy-link")
        page.wait_for_function(
            "() => /copied to the clipboard/.test(document.getElementById('status').textContent)")
        copied = page.evaluate("() => navigator.clipboard.readText()")
        query = parse_qs(urlparse(copied).query)
        assert query["kw"] == ["5"] and "proj" not in query
        assert page.is_hidden("#copy-box")
        # projector mode stays on for this tab (reload), without being in the address
        page.reload()
        page.wait_for_function("() => document.body.dataset.busy === '0'")
        assert page.evaluate("() => document.body.classList.contains('projector')")
        assert "proj" not in page.url
    finally:
        context.close()


def png_pixels(data: bytes) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_downloads_are_slide_sized_with_the_colour_bar(page: Any, server: Any, tmp_path: Any) -> None:
    open_page(page)
    page.wait_for_selector("#im2col-shape")
    wait_idle(page)
    with page.expect_download() as info:
        page.click('button[data-download="map-png"]')
    path = tmp_path / "map.png"
    info.value.save_as(path)
    slide = png_pixels(path.read_bytes())
    assert max(slide.shape[:2]) >= 512
    # the picture is the server's 26 × 26 map enlarged with square pixels (nearest neighbour)
    answer = httpx.post(server.url + "/api/conv", timeout=30,
                        json={"image": "mnist:0", "weight": "sobel_x"}).json()
    exact = png_pixels(base64.b64decode(answer["conv"]["maps"][0]["png"].split(",")[1]))
    factor = int(np.ceil(512 / 26))
    margin = 16
    picture = slide[margin:margin + 26 * factor, margin:margin + 26 * factor]
    np.testing.assert_array_equal(picture, np.kron(exact, np.ones((factor, factor, 1), dtype=np.uint8)))
    # under it, a colour bar: a row of many colours
    bar = slide[margin * 2 + 26 * factor + 12]
    assert len({tuple(p) for p in bar}) > 50
    with page.expect_download() as info:
        page.click('button[data-download="im2col-png"]')
    path = tmp_path / "im2col.png"
    info.value.save_as(path)
    matrix = png_pixels(path.read_bytes())
    assert max(matrix.shape[:2]) >= 512 and matrix.shape[0] >= 9 * 4  # 9 rows: tall enough to see
    # the exact numbers are still there as .npy
    with page.expect_download() as info:
        page.click('button[data-download="map-npy"]')
    info.value.save_as(tmp_path / "maps.npy")
    assert np.load(tmp_path / "maps.npy", allow_pickle=False).shape == (1, 26, 26)


# --------------------------------------------------------------------------------------------------
# Network view
# --------------------------------------------------------------------------------------------------


def network_available(server: Any) -> bool:
    response = httpx.post(server.url + "/api/network", json={"image": "mnist:8000"}, timeout=30)
    return response.status_code != 404


def canvas_ink(page: Any) -> int:
    return page.evaluate("""() => {
        const c = document.querySelector('#network-view canvas.nv-canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let ink = 0;
        for (let i = 0; i < d.length; i += 4) if (d[i] > 40) ink += 1;
        return ink;
    }""")


def test_network_clear_is_blank_and_the_digit_goes_into_the_link(page: Any, server: Any) -> None:
    if not network_available(server):
        pytest.skip("the network endpoint is not installed")
    open_page(page, "?tab=network&nd=8123")
    page.wait_for_selector("#network-view[data-ready=true]")
    assert page.input_value("#network-view input.nv-digit") == "8123"
    page.wait_for_function("() => document.querySelector('#network-view .top')")
    page.click('#network-view button[data-action="clear"]')
    page.wait_for_selector('#network-view[data-blank="true"]')
    page.wait_for_timeout(500)
    assert canvas_ink(page) == 0
    assert page.locator("#network-view .top").count() == 0
    probs = page.eval_on_selector_all(
        "#network-view [data-prob]", "(bs) => bs.map((b) => Number(b.dataset.prob))")
    assert probs == [0] * 10
    assert "No prediction" in page.text_content("#network-view .nv-verdict")
    # draw: the strokes go into the link, and the link opens the same drawing with its prediction
    box = page.locator("#network-view canvas.nv-canvas").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    for t in np.linspace(0, 1, 10):
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * (0.15 + 0.7 * t))
    page.mouse.up()
    page.wait_for_selector('#network-view[data-blank="false"]')
    page.wait_for_function("() => /[?&]draw=[0-9a-z.]{8,}/.test(location.search)")
    link = page.url
    ink = canvas_ink(page)
    other = page.context.new_page()
    other.goto(link)
    other.wait_for_selector('#network-view[data-blank="false"]')
    assert other.locator("#network-view .top").count() == 1
    assert abs(canvas_ink(other) - ink) < 0.1 * ink
    other.close()
    # a chosen test digit goes into the link too
    digit = page.locator("#network-view input.nv-digit")
    digit.fill("8200")
    digit.dispatch_event("change")
    page.wait_for_function(
        "() => /[?&]nd=8200/.test(location.search) && /[?&]draw=(&|$)/.test(location.search)")


def test_opening_a_learned_filter_moves_focus_and_marks_the_digit(page: Any, server: Any) -> None:
    if not network_available(server):
        pytest.skip("the network endpoint is not installed")
    open_page(page, "?tab=network&nd=8123")
    page.wait_for_selector("#network-view[data-ready=true]")
    page.wait_for_function("() => document.querySelector('#network-view .top')")
    before = paints(page)
    page.click('#network-view [aria-label="Open learned filter 4 in the convolution view"]')
    wait_repaint(page, before)
    assert page.evaluate("() => document.activeElement.closest('#conv-view') !== null")
    page.wait_for_selector('#mnist-grid button[data-image="mnist:8123"][aria-pressed="true"]')
    assert page.locator('#mnist-grid button[aria-pressed="true"]').count() == 1


def test_arithmetic_says_why_float32_sums_differ_in_the_last_digit(page: Any, server: Any) -> None:
    w = [0.113, -0.271, 0.337, 0.419, -0.523, 0.61, -0.7071, 0.8123, -0.9]
    request = {"image": "mnist:0", "weight": [[[w[0:3], w[3:6], w[6:9]]]]}
    # a pixel where the window-order float32 sum and the map's (matrix multiply) value differ in the last bit
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for y, x in [(5, 8), (5, 10), (6, 7), (6, 10)]:
            ex = client.post("/api/explain", json={**request, "position": [0, y, x]}).json()
            if np.float32(ex["sum"]) != np.float32(ex["pre_activation"]):
                break
        else:
            pytest.skip("no pixel with a last-bit difference for these weights")
    open_page(page, f"?k=custom&w={','.join(map(str, w))}&pos=0,{y},{x}")
    page.wait_for_selector(f'#arith-value[data-position="0,{y},{x}"]')
    value = page.text_content("#arith-value")
    assert page.text_content("#arith-sum") == value  # the same digits…
    digits = len(re.sub(r"[^0-9]", "", value).lstrip("0"))
    assert 5 <= digits < 9
    assert float(value) == float(f"{ex['pre_activation']:.{digits}g}") == float(f"{ex['sum']:.{digits}g}")
    note = page.text_content("#arith-order")  # …and why the full float32 values differ
    assert str(ex["sum"]) in note and str(ex["pre_activation"]) in note
    assert "order" in note


def test_a_link_with_unusable_numbers_says_what_it_used(page: Any) -> None:
    open_page(page, "?k=custom&w=1,0,0,0,1e30,0,0,0,abc&b=zz")
    wait_idle(page)
    notes = page.text_content("#notice-list")
    assert "The link's weights 1e30, abc are not a number between −1,000,000 and 1,000,000" in notes
    assert "The link's bias zz is not a number" in notes
    q = query_of(page)
    assert q["w"] == "1,0,0,0,0,0,0,0,0" and q["b"] == "0"
    assert page.is_hidden("#problem")


def test_a_pinned_pixel_stays_when_the_image_changes(page: Any) -> None:
    open_page(page)
    click_map_pixel(page, 9, 11)
    page.wait_for_selector('#arith-value[data-position="0,9,11"]')
    before = paints(page)
    page.click('#mnist-grid button[data-image="mnist:1"]')
    wait_repaint(page, before)
    assert query_of(page)["image"] == "mnist:1"
    page.wait_for_selector('#arith-value[data-position="0,9,11"]')
    assert page.get_attribute("#maps", "data-pinned") == "true"


# --------------------------------------------------------------------------------------------------
# a slider step asks only for what it shows (issue 9)
# --------------------------------------------------------------------------------------------------


SETTLED = "() => document.body.dataset.settled === document.getElementById('maps').dataset.paints"
"""Every view holds the data of the last paint."""


def test_a_step_sends_the_input_picture_once_and_the_channel_view_only_on_screen(page: Any) -> None:
    """On an RGB photo: the first answer carries the input picture, later steps ask ``input=shape`` and
    still draw the same input; the per-channel view rides on the conv request only while it is on screen,
    and is filled in by its own request when it is not."""
    convs: list[str] = []
    page.on("request", lambda r: convs.append(r.url) if "/api/conv?" in r.url else None)
    open_page(page, "?image=sample:chelsea&color=rgb&side=64&k=sobel_x,emboss")
    page.wait_for_function(SETTLED)
    steps = [u for u in convs if "explain=" in u]
    assert steps and "input=shape" not in steps[0]
    input_before = canvas_fingerprint(page, "#input-canvas")
    on_screen = "() => { const r = document.getElementById('panel-channels').getBoundingClientRect(); " \
        "return r.top < innerHeight && r.bottom > 0; }"
    assert not page.evaluate(on_screen)  # off screen at 1280×720
    # one step of the kernel-height slider (and back: the same input is drawn with the same padding)
    for key in ("ArrowRight", "ArrowLeft"):
        before = paints(page)
        page.focus("#kh")
        page.keyboard.press(key)
        wait_repaint(page, before)
    page.wait_for_function(SETTLED)
    steps = [u for u in convs if "explain=" in u]
    assert len(steps) >= 3 and all("input=shape" in u for u in steps[1:]), steps
    assert not any("channels=" in u for u in steps), steps  # the per-channel view was off screen
    assert canvas_fingerprint(page, "#input-canvas") == input_before
    # filled in by a request of its own once the page was quiet
    assert any("explain=" not in u for u in convs), convs
    assert page.locator("#channels canvas[id^=chan-map-]").count() == 3
    # on screen, it rides on the step again
    page.locator("#panel-channels").scroll_into_view_if_needed()
    page.evaluate("() => new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)))")
    count = len(convs)
    before = paints(page)
    # moved without focusing it (focus would scroll the slider, and not the panel, into view)
    page.evaluate("""() => { const s = document.getElementById('kh'); s.value = String(Number(s.value) + 1);
                             s.dispatchEvent(new Event('input', { bubbles: true })); }""")
    wait_repaint(page, before)
    assert any("explain=" in u and "channels=0" in u for u in convs[count:]), convs[count:]


BUSY = {"detail": "the server is busy: this worker's queue for computations is full; try again in 1 s"}


@contextmanager
def page_behind_busy_server(
    browser: Any, server: Any, busy_answers: int | None
) -> Iterator[tuple[Any, list[str], list[str]]]:
    """The page opened on a server whose ``/api/conv`` answers its first ``busy_answers`` requests (all of
    them for None) with 503 and ``Retry-After: 1``: yields (page, refused request URLs, passed ones)."""
    context = browser.new_context(viewport=VIEWPORT)
    refused: list[str] = []
    passed: list[str] = []

    def busy(route: Any) -> None:
        if busy_answers is None or len(refused) < busy_answers:
            refused.append(route.request.url)
            route.fulfill(status=503, headers={"Retry-After": "1"}, json=BUSY)
        else:
            passed.append(route.request.url)
            route.continue_()

    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.route("**/api/conv?*", busy)
        page.goto(server.url + "/")
        yield page, refused, passed
    finally:
        context.close()


def test_a_busy_server_is_asked_again_after_retry_after(browser: Any, server: Any) -> None:
    """A 503 with Retry-After (app/admission.py) is retried after that wait; the maps are then drawn."""
    with page_behind_busy_server(browser, server, busy_answers=2) as (page, refused, passed):
        wait_idle(page)
        assert len(refused) == 2 and len(passed) == 1, (refused, passed)
        assert refused[0] == refused[1] == passed[0]  # the same request, asked again
        assert page.locator("#maps canvas.map").count() >= 1
        assert page.locator("#problem").is_hidden()


def test_a_server_that_stays_busy_says_so(browser: Any, server: Any) -> None:
    """After its retries (static/js/api.js BUSY_RETRIES = 3) the page shows the server's sentence."""
    with page_behind_busy_server(browser, server, busy_answers=None) as (page, refused, _):
        page.wait_for_function(
            "(sentence) => document.getElementById('problem').textContent.includes(sentence)",
            arg=BUSY["detail"],
        )
        assert len(refused) == 1 + 3
