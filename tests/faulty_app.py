"""The real service plus one route that raises, to test the 500 a bug would produce (tests only)."""

from __future__ import annotations

from app.main import create_app

app = create_app()


@app.get("/boom")
def boom() -> None:
    """Raise an exception no handler knows."""
    raise RuntimeError("a bug for the test")
