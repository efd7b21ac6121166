"""The page's border modes, algorithms panel and animation download in a real browser (Chromium, Playwright).

- border mode: the select sends ``padding_mode``; the padded input's border cells show the pixel they copy
  (checked against the canvas's own interior cell, composited with the documented tint) and the copied
  PyTorch code pads with that mode;
- the algorithms panel: every method's row, the source of the selected one (axe-core finds no violation in
  the filled panel), and the sweep chart;
- "Download animation" saves a GIF whose bytes equal ``GET /api/animation.gif`` for the same state.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from browser_support import paints, wait_repaint
from test_browser import Watched, open_page, shoot_panel, watched  # noqa: F401 - fixtures
from test_browser_layout import run_axe

pytestmark = pytest.mark.browser
TINT = (217, 138, 0, 0.28)  # static/js/render/border.js


def pixel(page: Any, selector: str, x: int, y: int) -> list[int]:
    return page.evaluate(
        "([sel, x, y]) => [...document.querySelector(sel).getContext('2d').getImageData(x, y, 1, 1).data]",
        [selector, x, y],
    )


def test_border_mode_draws_copied_pixels_and_exports_the_mode(watched: Watched) -> None:  # noqa: F811
    page = open_page(watched, "?image=sample:camera&side=28&pad=explicit&pt=3&pb=3&pl=3&pr=3")
    before = paints(page)
    # the conv request carries its query (?pictures=levels&explain=f,y,x, issue 9): match on the path
    def conv_reflect(r: Any) -> bool:
        return urlsplit(r.url).path == "/api/conv" and "reflect" in (r.post_data or "")

    with page.expect_request(conv_reflect):
        page.select_option("#pm", "reflect")
    wait_repaint(page, before)
    width = page.evaluate("() => document.getElementById('input-canvas').width")
    cell = width // 34  # the 512×512 photo at 28 + 3 + 3 columns
    # reflect: padded row 0 is input row 3 (padded 6), row 1 input 2, row 2 input 1
    differ = 0
    for padded, source in ((0, 6), (1, 5), (2, 4)):
        for column in (8, 14, 20, 26):
            border = pixel(page, "#input-canvas", column * cell + cell // 2, padded * cell + cell // 2)
            inside = pixel(page, "#input-canvas", column * cell + cell // 2, source * cell + cell // 2)
            for channel in range(3):
                expected = inside[channel] * (1 - TINT[3]) + TINT[channel] * TINT[3]
                assert abs(border[channel] - expected) <= 3, (padded, column, border, inside)
            x, y = column * cell + cell // 2, (source + 1) * cell + cell // 2
            neighbour = pixel(page, "#input-canvas", x, y)
            differ += neighbour[:3] != inside[:3]
    assert differ >= 4  # the rows compared are not uniform, so a wrong source row would show
    assert "mode='reflect'" in page.input_value("#code")
    assert "reflect" in page.text_content("#pad-legend")
    shoot_panel(page, "#panel-input", "border_reflect")


def test_algorithms_panel_table_source_and_chart(watched: Watched) -> None:  # noqa: F811
    page = open_page(watched, "?image=mnist:0&side=28")
    page.click("#algorithms-run")
    page.wait_for_function("() => document.getElementById('algorithms').dataset.runs === '1'", timeout=60_000)
    rows = page.locator("#algorithms-tables table").first.locator("tbody tr")
    names = [rows.nth(i).get_attribute("data-method") for i in range(rows.count())]
    assert names == [
        "default",
        "naive",
        "indices",
        "dlfs_rows",
        "slices",
        "windows",
        "view",
        "tensordot",
        "einsum",
        "fft",
    ]
    assert "def conv2d(" in page.text_content("#algorithms-source")
    # the filled panel (tables, the source region) adds no accessibility violation to the page
    assert run_axe(page) == []
    page.click("#algorithms-tables button[data-method=fft]")
    assert "np.fft.rfft2" in page.text_content("#algorithms-source")
    page.click("#sweep-kernel")
    page.wait_for_function(
        "() => document.getElementById('algorithms').dataset.sweeps === '1'", timeout=60_000
    )
    assert page.locator("#algorithms-chart svg polyline").count() >= 2
    shoot_panel(page, "#panel-algorithms", "algorithms")


def test_download_animation_saves_the_gif_of_the_current_state(
    watched: Watched,  # noqa: F811
    server: Any,  # noqa: F811
    tmp_path: Any,
) -> None:

    page = open_page(watched, "?image=mnist:0&side=28&pad=explicit&pt=1&pb=1&pl=1&pr=1&pm=circular")
    with page.expect_download(timeout=60_000) as info:
        page.click("#download-animation")
    saved = tmp_path / "animation.gif"
    info.value.save_as(saved)
    content = saved.read_bytes()
    assert content[:6] in (b"GIF87a", b"GIF89a")
    path = page.get_attribute("#download-animation", "data-path")
    assert "padding_mode=circular" in path and "padding=1%2C1%2C1%2C1" in path
    direct = httpx.get(server.url + path, timeout=60)
    assert direct.status_code == 200 and direct.content == content


@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_copied_pytorch_code_reproduces_the_maps(watched: Watched, tmp_path: Any, mode: str) -> None:  # noqa: F811
    """Run the page's PyTorch code on its own 'Input PNG' download: equal to its 'Feature maps .npy'."""
    pytest.importorskip("torch")
    import subprocess
    import sys

    import numpy as np

    page = open_page(watched, f"?image=sample:camera&side=28&pad=explicit&pt=2&pb=1&pl=3&pr=0&pm={mode}")
    downloads = {}
    for what in ("input-png", "map-npy"):
        with page.expect_download() as info:
            page.click(f'button[data-download="{what}"]')
        downloads[what] = tmp_path / ("input.png" if what == "input-png" else "maps.npy")
        info.value.save_as(downloads[what])
    code = page.input_value("#code")
    assert f"mode='{mode}'" in code
    script = tmp_path / "run.py"
    script.write_text(code + "\nnp.save('torch_maps.npy', y[0].detach().numpy())\n")
    subprocess.run([sys.executable, str(script)], cwd=tmp_path, check=True, capture_output=True, timeout=120)
    ours = np.load(downloads["map-npy"], allow_pickle=False)
    theirs = np.load(tmp_path / "torch_maps.npy", allow_pickle=False)
    assert ours.shape == theirs.shape == (1, 28 + 3 - 2, 28 + 3 - 2)
    np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
