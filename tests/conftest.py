"""Shared fixtures: ``settings`` with a temporary upload store, the ``app`` built from them, a TestClient.

Also the guard that keeps CI honest: with ``CONVLENS_REQUIRE_TORCH=1`` a test or module skipped because
PyTorch is missing *fails* instead, and with ``CONVLENS_REQUIRE_BROWSER=1`` so does one skipped because
Playwright or Chromium is missing (``.ci/run`` sets both). A plain ``make test`` sets neither, so on a
machine without the ``reference`` extra it skips the PyTorch comparisons quietly (``-ra`` lists them).

For the browser tests (every ``tests/test_browser*.py``): one live server and one Chromium for the session
(Playwright's sync API allows only one running instance per thread).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

# under mutmut only: the cheap tests first (see tests/mutation_order.py)
from mutation_order import pytest_collection_modifyitems  # noqa: E402, F401

# the CI guard's hooks (see tests/require_tools.py), registered by being names in this conftest
from require_tools import pytest_make_collect_report, pytest_runtest_makereport  # noqa: E402, F401

from app.main import create_app
from app.settings import Settings


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Default settings with the upload store in a fresh temporary folder."""
    return Settings(store_dir=tmp_path / "uploads")


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    """The application, using ``settings``."""
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A TestClient of ``app`` (in-process; no socket)."""
    with TestClient(app) as test_client:
        yield test_client


def png_bytes_of(image) -> bytes:
    """Encode a Pillow image as PNG bytes (helper for upload tests)."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


# ---------------------------------------------------------- browser tests (one Playwright per process)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real app in a uvicorn subprocess with its own upload store (browser tests)."""
    from live_server import LiveServer

    store = tmp_path_factory.mktemp("browser-store")
    with LiveServer(env={"CONVLENS_STORE_DIR": str(store)}) as live:
        yield live


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Chromium, or a clean skip when no browser can be launched at all.

    Session-wide: Playwright's sync API runs once per process, so every browser test file shares this one.
    """
    sync_api = pytest.importorskip("playwright.sync_api")
    from browser_support import launch_options

    playwright = sync_api.sync_playwright().start()
    options = launch_options()
    # classroom.test is a plain-http host name, NOT a secure context (loopback addresses are), like a school
    # server at http://10.0.0.5/: tests of the clipboard fallback open the page under it.
    options["args"] = [*options["args"], "--host-resolver-rules=MAP classroom.test 127.0.0.1"]
    try:
        try:
            instance = playwright.chromium.launch(**options)
        except Exception as first:  # noqa: BLE001 - any launch failure: try Playwright's own build
            try:
                instance = playwright.chromium.launch(args=options["args"], headless=True)
            except Exception:  # noqa: BLE001
                pytest.skip(f"no Chromium could be launched: {first}")
        yield instance
        instance.close()
    finally:
        playwright.stop()
