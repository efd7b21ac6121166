"""The page's compact pictures and on-screen follow-ups in a real browser (issue 9).

- ``static/js/render/pictures.js`` colours levels with exactly ``app/render.py``'s palettes;
- a map drawn from ``?pictures=levels`` has exactly the pixels of the same map's PNG;
- while a slider is dragged at the top of the page, the views off screen (backward) are not asked for at
  every step, and they are filled in once the page is quiet.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from browser_support import launch_options, paints, wait_idle

from app.render import DIVERGING_LUT, SEQUENTIAL_LUT

pytestmark = pytest.mark.browser
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from live_server import LiveServer

    store = tmp_path_factory.mktemp("pictures-store")
    with LiveServer(env={"CONVLENS_STORE_DIR": str(store)}) as live:
        yield live


@pytest.fixture(scope="module")
def page(server: Any) -> Iterator[Any]:
    playwright = sync_api.sync_playwright().start()
    try:
        try:
            browser = playwright.chromium.launch(**launch_options())
        except Exception as exc:  # noqa: BLE001 - no browser at all: skip cleanly
            pytest.skip(f"no Chromium could be launched: {exc}")
        context = browser.new_context(viewport={"width": 1280, "height": 720})
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.requests = []
        page.on("request", lambda r: page.requests.append(r.url))
        page.goto(server.url + "/")
        wait_idle(page)
        yield page
        browser.close()
    finally:
        playwright.stop()


def test_the_colour_tables_are_the_servers_palettes(page: Any) -> None:
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


def test_a_map_drawn_from_levels_has_the_pngs_pixels(page: Any) -> None:
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


def test_views_off_screen_wait_for_a_quiet_moment(page: Any) -> None:
    """Six quick slider steps at the top of the page: a conv each, but the backward view (off screen)
    is asked for at most once or twice — and it is filled in once the page is quiet."""
    page.evaluate("() => window.scrollTo(0, 0)")
    page.wait_for_timeout(300)
    start = len(page.requests)
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
    sent = page.requests[start:]
    convs = [u for u in sent if "/api/conv" in u and "pictures=levels" in u]
    backward = [u for u in sent if "/api/backward" in u]
    assert len(convs) >= 2
    assert 1 <= len(backward) < len(convs)
    assert page.locator("#backward canvas").count() >= 3  # filled in
