"""``GET /api/kernels``: the named kernel presets of :mod:`core.kernels`."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from fastapi import APIRouter

from app.schemas import KernelList
from core.kernels import list_presets

router = APIRouter(prefix="/api", tags=["kernels"])


@lru_cache(maxsize=1)
def kernels_payload() -> dict[str, Any]:
    """``{"kernels": [{"name", "description", "size", "weights"}]}`` in display order."""
    return {
        "kernels": [
            {
                "name": p.name,
                "description": p.description,
                "size": [int(p.weights.shape[0]), int(p.weights.shape[1])],
                "weights": p.weights.tolist(),
            }
            for p in list_presets()
        ]
    }


@router.get("/kernels", response_model=KernelList)
def get_kernels() -> dict[str, Any]:
    """Every preset with its description and weights (cross-correlation, as PyTorch's conv2d)."""
    return kernels_payload()
