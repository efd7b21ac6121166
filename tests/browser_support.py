"""Helpers for the browser tests: which Chromium to launch, and small page utilities.

The browser is Debian's Chromium (``/usr/bin/chromium``) or the one named by ``CONVLENS_CHROMIUM``; where
neither exists, Playwright's own download (``python -m playwright install chromium``) is used.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# Screenshots and latency figures go to var/browser/ (ignored by git), so `make test` leaves the tree clean;
# `CONVLENS_UPDATE_DOCS=1 make test` writes them into docs/ for the README.
_ARTIFACTS = REPO / "docs" if os.environ.get("CONVLENS_UPDATE_DOCS") == "1" else REPO / "var" / "browser"
SCREENSHOTS = _ARTIFACTS / "screenshots"
LATENCY_FILE = _ARTIFACTS / "latency.json"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str | None:
    """``CONVLENS_CHROMIUM``, else Debian's ``/usr/bin/chromium`` if present, else None (Playwright's own)."""
    env = os.environ.get("CONVLENS_CHROMIUM")
    if env:
        return env
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def launch_options() -> dict[str, Any]:
    """Keyword arguments for ``playwright.chromium.launch``."""
    return {"executable_path": chromium_path(), "args": CHROMIUM_ARGS, "headless": True}


def wait_idle(page: Any, timeout: float = 30_000) -> None:
    """Wait until the page has painted its feature maps and has no request in flight."""
    page.wait_for_function(
        "() => document.body.dataset.busy === '0'"
        " && Number(document.getElementById('maps').dataset.paints) > 0",
        timeout=timeout,
    )


def paints(page: Any) -> int:
    """How many times the feature maps have been repainted."""
    return int(page.evaluate("() => Number(document.getElementById('maps').dataset.paints || 0)"))


def wait_repaint(page: Any, before: int, timeout: float = 30_000) -> None:
    """Wait for a repaint after ``before`` and for every follow-up request to finish."""
    page.wait_for_function(
        "(n) => Number(document.getElementById('maps').dataset.paints) > n", arg=before, timeout=timeout
    )
    page.wait_for_function("() => document.body.dataset.busy === '0'", timeout=timeout)


def canvas_fingerprint(page: Any, selector: str) -> dict[str, Any]:
    """Intrinsic size and a hash of the pixels of a canvas."""
    return page.evaluate(
        """(sel) => {
            const c = document.querySelector(sel);
            const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
            let h = 2166136261;
            for (let i = 0; i < d.length; i += 1) { h ^= d[i]; h = Math.imul(h, 16777619) >>> 0; }
            return {width: c.width, height: c.height, hash: h};
        }""",
        selector,
    )


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100) by linear interpolation (numpy's default)."""
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: list[float]) -> dict[str, float]:
    """Count, median, p95 and max of latency samples in ms."""
    return {
        "count": len(values),
        "median_ms": round(statistics.median(values), 1),
        "p95_ms": round(percentile(values, 95), 1),
        "max_ms": round(max(values), 1),
    }
