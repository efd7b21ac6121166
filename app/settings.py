"""Service settings, read once from ``CONVLENS_*`` environment variables.

Every limit the service enforces that an operator may want to change lives here; the limits that
describe the visualiser itself (largest kernel, stride, ...) are schema constants in :mod:`app.schemas`.
Tests override :func:`get_settings` through ``app.dependency_overrides``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated

from fastapi import Depends
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent
"""The source tree: ``data/``, ``static/`` and ``templates/`` are found relative to it."""


class Settings(BaseSettings):
    """Operator-tunable limits and locations (environment variable = ``CONVLENS_`` + upper-case name)."""

    model_config = SettingsConfigDict(env_prefix="CONVLENS_", extra="ignore")

    store_dir: Path = Field(
        default=REPO_ROOT / "var" / "uploads",
        description="Folder of the content-addressed upload store (shared by every worker).",
    )
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1, description="Largest upload accepted.")
    max_json_bytes: int = Field(
        default=2 * 1024 * 1024,
        ge=1024,
        description="Largest JSON request body (413 above): the largest valid request is far smaller.",
    )
    max_side: int = Field(
        default=512,
        ge=8,
        le=4096,
        description="Uploads are downscaled so that the longer side is at most this.",
    )
    max_pixels: int = Field(
        default=40_000_000,
        ge=1,
        description="Decompression-bomb guard: largest width × height accepted, read from the header "
        "before any pixel is decoded.",
    )
    max_macs: int = Field(
        default=400_000_000,
        ge=1,
        description="Largest number of multiply-adds per request (a backward pass counts 3 per "
        "multiply-add of its forward: forward, ∂W and ∂x). About 1 s of one core's time at the most.",
    )
    max_im2col_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=1,
        description="Largest im2col matrix (bytes) a request may build: the memory a convolution needs "
        "(a backward pass builds two: the columns of x and of ∂x).",
    )
    max_picture_pixels: int = Field(
        default=4_000_000,
        ge=1,
        description="Most map pixels one answer may draw (conv + pool maps, or a backward's pictures): "
        "bounds the reply size.",
    )
    compute_threads: int = Field(
        default=2, ge=1, description="Computations one worker runs at once (the rest wait in its queue)."
    )
    compute_queue: int = Field(
        default=64, ge=0, description="Computations allowed to wait per worker before a 503."
    )
    compute_wait_seconds: float = Field(
        default=2.0, ge=0, description="Longest wait of a computation in the queue before a 503."
    )
    heavy_macs: int = Field(
        default=60_000_000,
        ge=0,
        description="A request above this many multiply-adds is heavy: it runs on the worker's one "
        "lower-priority thread, at most one at a time, with at most heavy_queue waiting.",
    )
    heavy_queue: int = Field(default=1, ge=0, description="Heavy requests allowed to wait per worker.")
    heavy_wait_seconds: float = Field(
        default=3.0, ge=0, description="Longest wait of a heavy request before a 503."
    )
    decode_queue: int = Field(
        default=32, ge=0, description="Uploads allowed to wait for decoding per worker."
    )
    decode_wait_seconds: float = Field(
        default=10.0, ge=0, description="Longest wait of an upload for the decoder before a 503."
    )
    max_decode_bytes: int = Field(
        default=192 * 1024 * 1024,
        ge=1,
        description="Largest decoded size (width × height × bytes per pixel of the file's own mode) of an "
        "upload; a larger one is refused (413) before decoding.",
    )
    layer_cache_bytes: int = Field(
        default=48 * 1024 * 1024,
        ge=0,
        description="Bytes of prepared layers (image array, weights, convolution output) each worker keeps "
        "for a few seconds, so that one slider step's follow-up requests share the convolution's work; "
        "0 disables it.",
    )
    layer_cache_seconds: float = Field(
        default=30.0, ge=0, description="How long a prepared layer is kept after its last use."
    )
    store_max_bytes: int = Field(
        default=1024**3, ge=1, description="Size at which the store starts evicting."
    )
    store_retention_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="An upload used within this many seconds is never evicted (the upload is refused with "
        "507 instead).",
    )
    store_read_only: bool = Field(
        default=False,
        description="Serve the images already in the store but accept no new ones (uploads answer 503). "
        "Without it, a store that cannot be written stops the server at start-up.",
    )
    response_cache_bytes: int = Field(
        default=64 * 1024 * 1024,
        ge=0,
        description="Bytes of computed responses (conv, explain, im2col, backward) each worker keeps to "
        "answer a repeated request without recomputing it; 0 disables the cache.",
    )
    cors_origins: str = Field(
        default="", description="Comma-separated origins allowed by CORS; empty = no CORS headers at all."
    )
    mnist_dir: Path | None = Field(
        default=None, description="Folder with the full MNIST IDX files; default: the bundled test set."
    )

    @property
    def cors_origin_list(self) -> list[str]:
        """``cors_origins`` split on commas, blanks dropped."""
        return [origin.strip() for origin in self.cors_origins.split(",") if origin.strip()]


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings from the environment, read once per process."""
    return Settings()


SettingsDep = Annotated[Settings, Depends(get_settings)]
