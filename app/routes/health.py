"""``GET /healthz`` (liveness) and ``GET /readyz`` (readiness, the Docker HEALTHCHECK)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from app.readiness import problems
from app.responses import OrjsonResponse
from app.schemas import Health, Readiness
from app.settings import SettingsDep

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health)
def healthz() -> dict[str, str]:
    """Liveness: always ``{"status": "ok"}`` while the process serves requests."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Not ready: the problems say why."}},
)
async def readyz(settings: SettingsDep) -> Any:
    """Readiness: 200 when the upload store is writable (or read-only by configuration) with free space,
    and the data files load; otherwise 503 with one sentence per problem."""
    found = await run_in_threadpool(problems, settings)
    if found:
        return OrjsonResponse({"status": "not ready", "problems": found}, status_code=503)
    return {"status": "ready", "problems": []}
