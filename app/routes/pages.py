"""``GET /``: the visualiser page (``templates/index.html``, rendered with Jinja2)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.routes.kernels import kernels_payload
from app.routes.limits import limits_dict
from app.settings import REPO_ROOT, SettingsDep

router = APIRouter(tags=["page"], include_in_schema=False)

TEMPLATES_DIR = REPO_ROOT / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


@router.get("/", response_class=HTMLResponse)
def index(request: Request, settings: SettingsDep) -> Response:
    """The page. Context: ``limits`` (as ``GET /api/limits``) and ``kernels`` (as ``GET /api/kernels``)."""
    if not (TEMPLATES_DIR / "index.html").is_file():
        return HTMLResponse(
            "<!doctype html><title>convlens</title><p>The page is not built yet; the API is at /docs.</p>",
            status_code=503,
        )
    return templates.TemplateResponse(
        request,
        "index.html",
        {"limits": limits_dict(settings), "kernels": kernels_payload()["kernels"]},
    )
