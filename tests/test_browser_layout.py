"""The page on real screens, by touch and keyboard: Playwright drives Chromium against the real server.

What is checked:

- no horizontal page scroll at 360×740, 390×844, 820×1180, 1280×720, 1366×768 and 1920×1080, in normal and in
  projector mode, in the convolution view, the Network view and the Layers view; below 900 px the controls
  stack above the views;
- the first screen of a lesson at 1280×720 and 1366×768: the input, the feature map and the kernel-size,
  stride and padding controls lie inside the viewport and are not covered (in projector mode the arithmetic of
  the selected pixel too);
- stride and padding are one slider each by default; "asymmetric" shows the per-axis / per-side ones, and an
  old link with per-side values opens in that mode; what the sliders set is what ``/api/shape`` computes with;
- warnings that come and go while a slider moves do not move the views;
- axe-core (vendored in tests/vendor/axe-core, injected into the page) finds no violation of any impact in the
  convolution view (MNIST; an RGB photo with pooling; a phone), in projector mode (on a phone too), in the
  Network view and in the Layers view (a phone in projector mode too);
- keyboard: the skip links reach the controls and the views, the digit grid is one Tab stop with the arrow
  keys inside it; the focus ring contrasts at least 3:1 with what surrounds it;
- every visible control is at least 24 × 24 CSS pixels (a checkbox or radio button: with its label);
- the im2col column labels never overlap, also in projector mode's larger type;
- the Groups menu says why it offers only 1.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import canvas_fingerprint, paints, wait_idle, wait_repaint

pytestmark = pytest.mark.browser

sync_api = pytest.importorskip("playwright.sync_api")

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"

SIZES = [(360, 740), (390, 844), (820, 1180), (1280, 720), (1366, 768), (1920, 1080)]


# --------------------------------------------------------------------------------------------------
# fixtures and helpers
# --------------------------------------------------------------------------------------------------


class Opener:
    """Opens the page at a viewport size in a fresh browser context; closes every context at the end."""

    def __init__(self, browser: Any, origin: str) -> None:
        self.browser = browser
        self.origin = origin
        self.contexts: list[Any] = []
        self.errors: list[str] = []

    def __call__(self, query: str = "", size: tuple[int, int] = (1280, 720), view: str = "conv",
                 **context_options: Any) -> Any:
        """Open ``query``; wait until ``view`` ("conv", "network" or "layers", as ``?tab=`` says) is drawn."""
        context = self.browser.new_context(viewport={"width": size[0], "height": size[1]}, **context_options)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.goto(self.origin + "/" + query)
        if view == "network":
            page.wait_for_selector("#network-view[data-ready=true]")
            page.wait_for_function(
                "() => !document.getElementById('network-view').classList.contains('nv-busy')"
                " && document.querySelector('#network-view .top')")
        elif view == "layers":
            wait_layers(page)
        else:
            wait_idle(page)
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture()
def open_at(browser: Any, server: Any) -> Iterator[Opener]:
    """Open pages in the session's Chromium (conftest.py), against the session's live server."""
    opener = Opener(browser, server.url)
    yield opener
    opener.close()


def wait_layers(page: Any) -> None:
    """Wait until the Layers view has drawn its stack and has no request in flight."""
    page.wait_for_function(
        "() => { const v = document.getElementById('layers-view');"
        " return v && Number(v.dataset.paints) > 0 && v.dataset.busy === '0'; }")


def rect(page: Any, selector: str) -> dict[str, float]:
    """The bounding client rect of the first element matching ``selector``."""
    box = page.eval_on_selector(
        selector, "(e) => { const r = e.getBoundingClientRect(); return {left: r.left, top: r.top,"
        " right: r.right, bottom: r.bottom, width: r.width, height: r.height}; }")
    assert box["width"] > 0 and box["height"] > 0, (selector, box)
    return box


def on_screen_and_uncovered(page: Any, selector: str) -> list[str]:
    """Why ``selector`` is not fully in the viewport, or is covered at its centre ([] if neither)."""
    box = rect(page, selector)
    width, height = page.evaluate("() => [innerWidth, innerHeight]")
    problems = []
    if box["left"] < 0 or box["top"] < 0 or box["right"] > width + 0.5 or box["bottom"] > height + 0.5:
        problems.append(f"{selector} at {box} is not inside the {width}×{height} viewport")
    covered = page.eval_on_selector(
        selector, """(e) => { const r = e.getBoundingClientRect();
            const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
            const inside = !hit || hit === e || e.contains(hit) || hit.contains(e);
            return inside ? null : hit.outerHTML.slice(0, 80); }""")
    if covered:
        problems.append(f"{selector} is covered by {covered}")
    return problems


def horizontal_overflow(page: Any) -> dict[str, Any]:
    """The page's scroll width against the viewport, and the first elements sticking out on the right.

    An element inside a box that scrolls (or clips) sideways and itself fits is not listed: its content does
    not widen the page, so naming it would point at the wrong culprit.
    """
    return page.evaluate("""() => {
        const width = innerWidth;
        const contained = (e) => {
            for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
                if (getComputedStyle(a).overflowX !== 'visible') {
                    return a.getBoundingClientRect().right <= width + 0.5;
                }
            }
            return false;
        };
        const out = [...document.querySelectorAll('body *')]
            .filter((e) => e.getClientRects().length && e.getBoundingClientRect().right > width + 0.5
                           && getComputedStyle(e).position !== 'absolute' && !e.closest('.skip')
                           && !contained(e))
            .slice(0, 5)
            .map((e) => `${e.tagName}#${e.id}.${e.className} right=${e.getBoundingClientRect().right}`);
        return {scrollWidth: document.scrollingElement.scrollWidth, innerWidth: width, sticking_out: out};
    }""")


def api_shape(server: Any, **settings: Any) -> list[int]:
    response = httpx.post(server.url + "/api/shape", json=settings, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["conv"]["output_shape"]


def press(page: Any, selector: str, key: str = "ArrowRight") -> None:
    """Move a control with the keyboard and wait for the map to be repainted."""
    before = paints(page)
    page.focus(selector)
    page.keyboard.press(key)
    wait_repaint(page, before)


def url_params(page: Any) -> dict[str, str]:
    return dict(re.findall(r"[?&]([a-z]+)=([^&]*)", page.url))


def run_axe(page: Any) -> list[dict[str, Any]]:
    """Inject axe-core (through the DevTools protocol: the page's CSP forbids inline scripts) and run it."""
    page.evaluate(AXE.read_text(encoding="utf-8") + "\n;true")
    return page.evaluate("""async () => {
        const result = await axe.run(document, {resultTypes: ['violations']});
        return result.violations.map((v) => ({id: v.id, impact: v.impact,
            nodes: v.nodes.slice(0, 5).map((n) => `${n.target.join(' ')}: ${n.failureSummary}`)}));
    }""")


def relative_luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour with channels in 0..255."""
    def linear(c: float) -> float:
        c = c / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (linear(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    high, low = sorted([relative_luminance(a), relative_luminance(b)], reverse=True)
    return (high + 0.05) / (low + 0.05)


def parse_rgb(css: str) -> tuple[float, float, float]:
    numbers = [float(v) for v in re.findall(r"[\d.]+", css)[:3]]
    assert len(numbers) == 3, css
    return numbers[0], numbers[1], numbers[2]


# --------------------------------------------------------------------------------------------------
# every screen size
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("projector", [False, True], ids=["normal", "projector"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_no_horizontal_page_scroll(open_at: Opener, size: tuple[int, int], projector: bool) -> None:
    page = open_at("?proj=1" if projector else "", size)
    overflow = horizontal_overflow(page)
    assert overflow["scrollWidth"] <= overflow["innerWidth"], overflow
    # below 900 px the controls are stacked above the views; from 900 px on they are beside them
    controls, views = rect(page, "#controls"), rect(page, "#views")
    if size[0] < 900:
        assert controls["bottom"] <= views["top"], (controls, views)
    else:
        assert controls["right"] <= views["left"] and views["top"] < controls["bottom"], (controls, views)
    # the Network view (its header included) fits too
    page.click("#tab-network")
    page.wait_for_selector("#network-view[data-ready=true]")
    page.wait_for_function("() => document.querySelector('#network-view .top')")
    overflow = horizontal_overflow(page)
    assert overflow["scrollWidth"] <= overflow["innerWidth"], overflow
    # and the Layers view: the stack's controls, the input with its receptive field and every layer's maps
    page.click("#tab-layers")
    wait_layers(page)
    overflow = horizontal_overflow(page)
    assert overflow["scrollWidth"] <= overflow["innerWidth"], overflow
    assert open_at.errors == [], open_at.errors


@pytest.mark.parametrize("projector", [False, True], ids=["normal", "projector"])
@pytest.mark.parametrize("size", [(1280, 720), (1366, 768)], ids=["1280x720", "1366x768"])
def test_first_screen_of_a_lesson(open_at: Opener, size: tuple[int, int], projector: bool) -> None:
    page = open_at("?proj=1" if projector else "", size)
    wanted = ["#input-canvas", "#map-0", "#kh", "#kw", "#stride", "#pad", "#padding"]
    if projector:
        # the selected pixel's arithmetic: its products and its result, beside the map
        page.wait_for_selector("#arith-value")
        wanted += ["#arith table.taps", "#arith-value"]
    problems = [p for selector in wanted for p in on_screen_and_uncovered(page, selector)]
    assert problems == [], problems
    # in asymmetric mode the per-axis and per-side sliders are on the first screen as well
    page.check("#asym")
    per_side = ["#sh", "#sw", "#pt", "#pb", "#pl", "#pr"]
    problems = [p for selector in per_side for p in on_screen_and_uncovered(page, selector)]
    assert problems == [], problems


# --------------------------------------------------------------------------------------------------
# stride and padding: one control each, per axis / per side one click away
# --------------------------------------------------------------------------------------------------


def test_symmetric_stride_and_padding_with_an_asymmetric_toggle(open_at: Opener, server: Any) -> None:
    page = open_at()
    assert not page.is_checked("#asym")
    assert page.is_visible("#stride") and page.is_visible("#padding")
    assert all(page.is_hidden(f"#{key}") for key in ["sh", "sw", "pt", "pb", "pl", "pr"])
    # "stride 3, padding 2" is four key presses on two sliders
    press(page, "#stride")
    press(page, "#stride")
    press(page, "#padding")
    press(page, "#padding")
    wait_idle(page)
    params = url_params(page)
    assert [params[k] for k in ["sh", "sw", "pt", "pb", "pl", "pr"]] == ["3", "3", "2", "2", "2", "2"]
    expected = api_shape(server, input_size=[28, 28], kernel_size=3, stride=3, padding=2)
    fingerprint = canvas_fingerprint(page, "#map-0")
    assert [fingerprint["height"], fingerprint["width"]] == expected[2:] == [10, 10]
    assert page.text_content("#stride-out") == "3" and page.text_content("#padding-out") == "2"
    # one click shows the per-axis and per-side sliders, holding the same values
    page.check("#asym")
    assert page.is_hidden("#stride") and page.is_visible("#sw") and page.is_visible("#pr")
    assert page.input_value("#sw") == "3" and page.input_value("#pr") == "2"
    press(page, "#sw", "ArrowLeft")
    press(page, "#pl", "ArrowLeft")
    wait_idle(page)
    expected = api_shape(server, input_size=[28, 28], kernel_size=3, stride=[3, 2],
                         padding=[2, 2, 1, 2])
    fingerprint = canvas_fingerprint(page, "#map-0")
    assert [fingerprint["height"], fingerprint["width"]] == expected[2:]
    # back to symmetric: columns take the rows' stride, every side the top padding (and the page shows it)
    before = paints(page)
    page.uncheck("#asym")
    wait_repaint(page, before)
    wait_idle(page)
    params = url_params(page)
    assert [params[k] for k in ["sh", "sw", "pt", "pb", "pl", "pr"]] == ["3", "3", "2", "2", "2", "2"]
    assert page.is_visible("#stride") and page.input_value("#stride") == "3"


def test_old_links_with_per_side_values_open_in_asymmetric_mode(open_at: Opener, server: Any) -> None:
    page = open_at("?sh=2&sw=1&pt=3&pb=0&pl=1&pr=1")
    assert page.is_checked("#asym")
    assert page.is_visible("#pt") and page.is_hidden("#padding")
    values = [page.input_value(f"#{k}") for k in ["sh", "sw", "pt", "pb", "pl", "pr"]]
    assert values == ["2", "1", "3", "0", "1", "1"]
    expected = api_shape(server, input_size=[28, 28], kernel_size=3, stride=[2, 1],
                         padding=[3, 0, 1, 1])
    fingerprint = canvas_fingerprint(page, "#map-0")
    assert [fingerprint["height"], fingerprint["width"]] == expected[2:]
    # equal values stay symmetric; a word padding disables the slider and shows what it resolves to
    page = open_at("?sh=2&sw=2&pt=1&pb=1&pl=1&pr=1")
    assert not page.is_checked("#asym") and page.input_value("#stride") == "2"
    page = open_at("?pad=same&kh=4&kw=4")
    assert not page.is_checked("#asym")
    assert page.is_disabled("#padding")
    # PyTorch's 'same' for an even kernel 4: 3 rows of padding, 1 before and 2 after
    assert page.text_content("#padding-out") == "1–2"
    assert "top 1, bottom 2" in page.get_attribute("#padding", "aria-valuetext")


# --------------------------------------------------------------------------------------------------
# layout stability
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("projector", [False, True], ids=["normal", "projector"])
def test_warnings_coming_and_going_do_not_move_the_views(open_at: Opener, projector: bool) -> None:
    page = open_at("?proj=1" if projector else "")
    # the first row of views, the warnings strip and what follows it (further down, the shape panel's own
    # content changes with the stride, so the panels after it may move: not a warning coming and going)
    panels = ["#panel-input", "#panel-maps", "#panel-arith", "#notices", "#panel-shape"]

    def tops() -> dict[str, float]:
        return {p: round(rect(page, p)["top"] + page.evaluate("() => scrollY")) for p in panels}

    assert page.locator("#warnings li").count() == 0
    before = tops()
    # stride 2 and 4 on a 28-pixel input with a 3×3 kernel leave rows no window reaches: warnings appear
    for _ in range(3):
        press(page, "#stride")
        wait_idle(page)
        assert tops() == before
    assert page.locator("#warnings li").count() >= 2
    for _ in range(3):
        press(page, "#stride", "ArrowLeft")
        wait_idle(page)
        assert tops() == before
    assert page.locator("#warnings li").count() == 0


# --------------------------------------------------------------------------------------------------
# accessibility
# --------------------------------------------------------------------------------------------------


AXE_CASES = {
    "mnist": ("", (1280, 720), "conv"),
    "rgb-photo-with-pooling": (
        "?image=sample:chelsea&color=rgb&side=64&pool=max&k=sobel_x,sobel_y,laplacian_4", (1280, 720),
        "conv"),
    "projector-with-warnings": ("?proj=1&sh=4&sw=2&pt=1", (1280, 720), "conv"),
    "phone": ("?sh=3&sw=3", (390, 844), "conv"),
    "phone-projector": ("?proj=1", (390, 844), "conv"),
    "network": ("?tab=network", (1280, 720), "network"),
    "network-projector": ("?tab=network&proj=1", (1280, 720), "network"),
    "layers": ("?tab=layers", (1280, 720), "layers"),
    "layers-phone-projector": ("?tab=layers&proj=1", (390, 844), "layers"),
}


@pytest.mark.parametrize("case", list(AXE_CASES))
def test_axe_core_finds_no_violation(open_at: Opener, case: str) -> None:
    query, size, view = AXE_CASES[case]
    page = open_at(query, size, view=view)
    if view == "conv":
        page.wait_for_selector("#arith-value")
        page.wait_for_selector("#tr-input")
        wait_idle(page)
    violations = run_axe(page)
    assert violations == [], violations


def test_skip_links_and_a_single_tab_stop_for_the_digit_grid(open_at: Opener) -> None:
    page = open_at()
    focused = "() => document.activeElement.id || document.activeElement.textContent"
    # the first Tab shows the first skip link, on screen
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "Skip to the controls"
    box = page.evaluate("() => [document.activeElement.getBoundingClientRect().left,"
                        " document.activeElement.getBoundingClientRect().top]")
    assert box[0] >= 0 and box[1] >= 0
    page.keyboard.press("Enter")
    assert page.evaluate(focused) == "controls"
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "kh"
    # the stride slider is a few Tab presses from the top of the page, not 59
    presses = 1
    while page.evaluate(focused) != "stride":
        page.keyboard.press("Tab")
        presses += 1
        assert presses < 10, page.evaluate(focused)
    # the second skip link goes to the views
    page.focus('a.skip[href="#controls"]')
    page.keyboard.press("Tab")
    assert page.evaluate(focused) == "Skip to the views"
    page.keyboard.press("Enter")
    assert page.evaluate(focused) == "views"
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.getElementById('views').contains(document.activeElement)")

    # the digit grid: exactly one Tab stop, on the selected digit; the arrow keys move inside it
    grid = "#mnist-grid button[data-image]"
    assert page.eval_on_selector_all(grid, "(bs) => bs.filter((b) => b.tabIndex === 0).length") == 1
    assert page.eval_on_selector_all(grid, "(bs) => bs.length") == 30
    page.focus("#mnist-random")
    page.keyboard.press("Tab")
    assert page.evaluate("() => document.activeElement.dataset.image") == "mnist:0"
    page.keyboard.press("Tab")
    assert not page.evaluate("() => document.getElementById('mnist-grid').contains(document.activeElement)")
    page.keyboard.press("Shift+Tab")
    assert page.evaluate("() => document.activeElement.dataset.image") == "mnist:0"
    page.keyboard.press("ArrowRight")
    assert page.evaluate("() => document.activeElement.dataset.image") == "mnist:1"
    columns = page.evaluate("() => getComputedStyle(document.getElementById('mnist-grid'))"
                            ".gridTemplateColumns.split(' ').length")
    page.keyboard.press("ArrowDown")
    assert page.evaluate("() => document.activeElement.dataset.image") == f"mnist:{1 + columns}"
    page.keyboard.press("End")
    assert page.evaluate("() => document.activeElement.dataset.image") == "mnist:29"
    page.keyboard.press("Home")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    stops = "(bs) => bs.filter((b) => b.tabIndex === 0).map((b) => b.dataset.image)"
    assert page.eval_on_selector_all(grid, stops) == ["mnist:2"]
    # Enter opens the focused digit, which stays the grid's one Tab stop
    before = paints(page)
    page.keyboard.press("Enter")
    wait_repaint(page, before)
    wait_idle(page)
    assert url_params(page)["image"] == "mnist%3A2"
    assert page.get_attribute('#mnist-grid [data-image="mnist:2"]', "aria-pressed") == "true"
    assert page.eval_on_selector_all(grid, "(bs) => bs.filter((b) => b.tabIndex === 0).length") == 1


@pytest.mark.parametrize("projector", [False, True], ids=["normal", "projector"])
def test_focus_ring_contrasts_at_least_3_to_1(open_at: Opener, projector: bool) -> None:
    page = open_at("?proj=1" if projector else "")
    for selector in ["#kh", "#copy-link", "#mnist-grid [tabindex='0']", "#maps"]:
        page.focus(selector)
        page.keyboard.press("Shift")  # a keyboard event, so that :focus-visible applies
        ring = page.eval_on_selector(selector, """(e) => {
            const style = getComputedStyle(e);
            // the colour the ring is drawn on: the first opaque background around the element
            let node = e.parentElement, behind = 'rgb(255, 255, 255)';
            while (node) {
                const bg = getComputedStyle(node).backgroundColor;
                if (bg && bg !== 'transparent' && !bg.startsWith('rgba(0, 0, 0, 0)')) { behind = bg; break; }
                node = node.parentElement;
            }
            return {color: style.outlineColor, width: parseFloat(style.outlineWidth),
                    style: style.outlineStyle, behind};
        }""")
        assert ring["style"] != "none" and ring["width"] >= 3, (selector, ring)
        ratio = contrast(parse_rgb(ring["color"]), parse_rgb(ring["behind"]))
        assert ratio >= 3, (selector, ring, ratio)


TOUCH_CASES = {
    "normal": ("", (1280, 720), "conv"),
    "projector": ("?proj=1&pool=max", (1280, 720), "conv"),
    "phone": ("?sh=2", (390, 844), "conv"),
    "phone-11x11-kernel": ("?kh=11&kw=11", (360, 740), "conv"),  # 121 weight cells in the filter editor
    "network": ("?tab=network", (1280, 720), "network"),
    "network-phone-projector": ("?tab=network&proj=1", (360, 740), "network"),
    "layers-phone-projector": ("?tab=layers&proj=1", (360, 740), "layers"),
}


@pytest.mark.parametrize("case", list(TOUCH_CASES))
def test_every_visible_control_is_at_least_24_px(open_at: Opener, case: str) -> None:
    query, size, view = TOUCH_CASES[case]
    page = open_at(query, size, view=view)
    if view == "conv":
        page.wait_for_selector("#arith-value")
    overflow = horizontal_overflow(page)
    assert overflow["scrollWidth"] <= overflow["innerWidth"], overflow
    small = page.evaluate("""() => [...document.querySelectorAll(
            'button, select, input, textarea, a[href], [tabindex="0"], [role=tab]')]
        .filter((e) => e.checkVisibility() && !e.closest('.skip') && !e.classList.contains('skip'))
        .map((e) => {
            // a checkbox or radio button is hit through its label too
            const box = (e.type === 'checkbox' || e.type === 'radio') && e.closest('label');
            const target = box || e;
            const r = target.getBoundingClientRect();
            const name = e.id || e.getAttribute('aria-label') || e.textContent.trim().slice(0, 30);
            return {name: name || e.tagName,
                    width: Math.round(r.width * 10) / 10, height: Math.round(r.height * 10) / 10};
        })
        .filter((c) => c.width < 24 || c.height < 24)""")
    assert small == [], small


# --------------------------------------------------------------------------------------------------
# details
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("projector", [False, True], ids=["normal", "projector"])
def test_im2col_column_labels_do_not_overlap(open_at: Opener, projector: bool) -> None:
    page = open_at("?proj=1" if projector else "")
    page.wait_for_function("() => document.getElementById('im2col-canvas').width > 100")
    wait_idle(page)
    # the im2col panel starts below the fold and is filled in when it comes into view (issue 9): scroll to it
    # as a student would, then wait until every follow-up view holds the current paint's data
    page.locator("#panel-im2col").scroll_into_view_if_needed()
    page.wait_for_function(
        "() => document.body.dataset.settled === document.getElementById('maps').dataset.paints"
        " && document.getElementById('im2col-shape').textContent.length > 0"
    )
    # each column label has a tick below it (in the band just above the matrix); the labels are drawn in the
    # scroller's font at 80 %, so the ticks must be further apart than the widest label is wide
    found = page.evaluate("""() => {
        const canvas = document.getElementById('im2col-canvas');
        const scroller = document.getElementById('im2col-scroll');
        const ratio = canvas.width / canvas.getBoundingClientRect().width;
        const ctx = canvas.getContext('2d');
        const y = Math.round((34 - 3) * ratio);
        const row = ctx.getImageData(0, y, canvas.width, 1).data;
        const bg = [row[0], row[1], row[2]];
        const ticks = [];
        for (let x = Math.ceil(86 * ratio) + 1; x < canvas.width; x += 1) {
            const o = x * 4;
            const ink = [0, 1, 2].reduce((d, i) => d + Math.abs(row[o + i] - bg[i]), 0) > 150;
            if (ink && (!ticks.length || x - ticks.at(-1) > 2)) ticks.push(x);
        }
        const probe = document.createElement('canvas').getContext('2d');
        const size = parseFloat(getComputedStyle(scroller).fontSize);
        probe.font = `${Math.round(size * 0.8)}px system-ui, sans-serif`;
        return {ticks: ticks.map((x) => x / ratio), widest: probe.measureText('(25, 25)').width, size};
    }""")
    ticks = found["ticks"]
    assert len(ticks) >= 3, found
    gaps = [b - a for a, b in zip(ticks, ticks[1:], strict=False)]
    assert min(gaps) > found["widest"] + 2, found


def test_groups_menu_says_why_it_offers_only_one(open_at: Opener) -> None:
    page = open_at()
    assert page.eval_on_selector_all("#groups option", "(os) => os.map((o) => o.value)") == ["1"]
    assert page.text_content("#groups-why") == (
        "Only 1: groups must divide both the 1 input channel and the 1 filter.")
    assert "groups-why" in page.get_attribute("#groups", "aria-describedby")
    page = open_at("?image=sample:chelsea&color=rgb&side=64&k=sobel_x,sobel_y,laplacian_4")
    assert page.eval_on_selector_all("#groups option", "(os) => os.map((o) => o.value)") == ["1", "3"]
    assert page.text_content("#groups-why") == ""
    assert page.is_hidden("#groups-why")
