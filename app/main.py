"""Build the convlens service: ``create_app()`` adds the middleware and one router per concern.

Run it with ``uvicorn app.main:app`` (``make run``). Routers live in :mod:`app.routes`; settings in
:mod:`app.settings`; the request/response models (with every limit) in :mod:`app.schemas`.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from app.body_limit import JsonBodyLimitMiddleware
from app.errors import install_handlers
from app.middleware import CatchAllMiddleware, SecurityHeadersMiddleware, StartupCheckMiddleware
from app.readiness import startup_problem
from app.settings import REPO_ROOT, Settings, get_settings

log = logging.getLogger("convlens")

ROUTERS = (
    "health",
    "pages",
    "limits",
    "kernels",
    "images",
    "conv",
    "im2col",
    "explain",
    "backward",
    "transpose",
    "shape",
    "algorithms",
    "animation",
    "stack",
)
OPTIONAL_ROUTERS = ("network",)  # issue 5; the service runs without it

DESCRIPTION = """Convolution, pooling, im2col and backprop on real images, computed by NumPy (`core/`) in
float32 with PyTorch's conventions (NCHW, weights (F, C/groups, KH, KW), cross-correlation).

Image arrays: gray = Pillow mode "L" / 255 → (1, 1, H, W); rgb = the three channels / 255 → (1, 3, H, W).
"""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application.

    Parameters
    ----------
    settings : Settings, optional
        Used instead of the environment's (tests pass one with a temporary store).
    """
    active = settings or get_settings()
    # FastAPIOffline: /docs serves Swagger UI from the installed package, not a CDN,
    # so the API docs work on a school network with no internet.
    # (ReDoc is off: its bundle fetches a logo from its vendor's CDN.)
    app = FastAPIOffline(title="convlens", version="0.1.0", description=DESCRIPTION, redoc_url=None)
    if settings is not None:
        app.dependency_overrides[get_settings] = lambda: settings
    # outermost last: CORS → security headers → catch-all 500 → start-up check → JSON body limit → app
    app.add_middleware(JsonBodyLimitMiddleware, limit=active.max_json_bytes)
    app.add_middleware(StartupCheckMiddleware, check=lambda: start_up(active))
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    if active.cors_origin_list:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=active.cors_origin_list,
            allow_methods=["GET", "POST"],
            allow_headers=["*"],
        )
    install_handlers(app)
    for name in ROUTERS:
        module = importlib.import_module(f"app.routes.{name}")
        app.include_router(module.router)
    for name in OPTIONAL_ROUTERS:
        try:
            module = importlib.import_module(f"app.routes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"app.routes.{name}":
                raise  # the router exists but is broken: fail loudly
            log.info("optional router %s is not installed", name)
            continue
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=REPO_ROOT / "static", check_dir=False), name="static")
    document_body_errors(app)
    return app


def start_up(settings: Settings) -> str | None:
    """The start-up check: the reason not to start, or None after removing the store's crash leftovers."""
    problem = startup_problem(settings)
    if problem is None and not settings.store_read_only:
        from app.image_source import store_for

        store_for(settings).remove_orphans()
    return problem


def document_body_errors(app: FastAPI) -> None:
    """Document the 400 (unparseable body) and 413 (body over the limit) of every operation with a body.

    (A body that is not UTF-8 never reaches validation: FastAPI answers ``400 {"detail": "There was an
    error parsing the body"}``.) Keeps ``/openapi.json`` true for every router, including optional ones.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = build()
        message = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
        for path in spec.get("paths", {}).values():
            for operation in path.values():
                if isinstance(operation, dict) and "requestBody" in operation:
                    responses = operation.setdefault("responses", {})
                    responses.setdefault(
                        "400",
                        {
                            "description": "The body could not be parsed.",
                            "content": {"application/json": {"schema": message}},
                        },
                    )
                    responses.setdefault(
                        "413",
                        {
                            "description": "The body is larger than the configured limit.",
                            "content": {"application/json": {"schema": message}},
                        },
                    )
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


app = create_app()
