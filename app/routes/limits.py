"""``GET /api/limits``: the limits the page clamps its sliders to."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app import schemas as s
from app.schemas import Limits
from app.settings import Settings, SettingsDep

router = APIRouter(prefix="/api", tags=["limits"])


def limits_dict(settings: Settings) -> dict[str, Any]:
    """Every limit, from the schema constants and the settings."""
    return {
        "max_kernel": s.MAX_KERNEL,
        "max_stride": s.MAX_STRIDE,
        "max_padding": s.MAX_PADDING,
        "max_dilation": s.MAX_DILATION,
        "max_filters": s.MAX_FILTERS_PAGE,
        "max_filters_api": s.MAX_FILTERS,
        "max_groups": s.MAX_GROUPS,
        "max_side": min(settings.max_side, s.MAX_SIDE),
        "min_side": s.MIN_SIDE,
        "max_upload_bytes": settings.max_upload_bytes,
        "max_pixels": settings.max_pixels,
        "max_macs": settings.max_macs,
        "max_im2col_bytes": settings.max_im2col_bytes,
        "max_pool_kernel": s.MAX_POOL_KERNEL,
        "max_pool_stride": s.MAX_POOL_STRIDE,
        "max_pool_padding": s.MAX_POOL_PADDING,
        "max_values_per_map": s.MAX_VALUES_PER_MAP,
        "max_matrix_values": s.MAX_MATRIX_VALUES,
        "side_choices": [c for c in s.SIDE_CHOICES if c <= settings.max_side],
    }


@router.get("/limits", response_model=Limits)
def get_limits(settings: SettingsDep) -> dict[str, Any]:
    """The limits of every request field (sliders are clamped to these)."""
    return limits_dict(settings)
