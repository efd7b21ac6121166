"""Shared fixtures: ``settings`` with a temporary upload store, the ``app`` built from them, a TestClient.

Also the guard that keeps CI honest: with ``CONVLENS_REQUIRE_TORCH=1`` a test or module skipped because
PyTorch is missing *fails* instead, and with ``CONVLENS_REQUIRE_BROWSER=1`` so does one skipped because
Playwright or Chromium is missing (``.ci/run`` sets both). A plain ``make test`` sets neither, so on a
machine without the ``reference`` extra it skips the PyTorch comparisons quietly (``-ra`` lists them).
"""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

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
