"""Errors with a status code and a sentence, and the handlers that turn them into JSON.

Two body shapes, both FastAPI's own so that the OpenAPI schema stays true:

- ``{"detail": "sentence"}`` for 400/404/410/413/415/507 (:class:`ApiError`);
- ``{"detail": [{"loc": ["body", field], "msg": sentence, "type": "value_error"}]}`` for 422
  (:class:`BodyError`, and any stray ``ValueError`` from ``core``).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

log = logging.getLogger("convlens")


class ApiError(Exception):
    """An HTTP error whose body is ``{"detail": message}``."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message


class BodyError(ValueError):
    """A 422 about one request field, in FastAPI's validation-error shape.

    Parameters
    ----------
    field : str or sequence of str
        The field (``"stride"``) or path (``("pool", "padding")``) the sentence is about.
    message : str
        A sentence naming the rule and the numbers.
    """

    def __init__(self, field: str | tuple[str, ...] | list[str], message: str) -> None:
        super().__init__(message)
        self.loc = ["body", *([field] if isinstance(field, str) else list(field))]
        self.message = message


# keyword in core's sentence -> the request field it is about (first match wins)
_FIELD_HINTS = (
    ("spans", "weight"),
    ("bias", "bias"),
    ("groups", "groups"),
    ("pool", "pool"),
    ("output_padding", "output_padding"),
    ("input channels", "weight"),
    ("channels", "weight"),
    ("dilation", "dilation"),
    ("padding", "padding"),
    ("stride", "stride"),
    ("kernel", "weight"),
)


def field_for(message: str) -> str:
    """Guess which request field a ``core`` error sentence is about (``"weight"`` when unsure)."""
    lowered = message.lower()
    for word, field in _FIELD_HINTS:
        if word in lowered:
            return field
    return "weight"


def body_error_content(loc: list[Any], message: str) -> dict[str, Any]:
    """FastAPI's 422 body for one error."""
    return {"detail": [{"loc": loc, "msg": message, "type": "value_error"}]}


def install_handlers(app: FastAPI) -> None:
    """Register the handlers for :class:`ApiError`, :class:`BodyError` and plain ``ValueError``."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code)

    @app.exception_handler(BodyError)
    async def _body_error(request: Request, exc: BodyError) -> JSONResponse:
        return JSONResponse(body_error_content(exc.loc, exc.message), status_code=422)

    @app.exception_handler(ValueError)
    async def _value_error(request: Request, exc: ValueError) -> JSONResponse:
        # A combination error raised by core (sizes that do not fit, channels that do not match, ...).
        message = str(exc) or exc.__class__.__name__
        return JSONResponse(body_error_content(["body", field_for(message)], message), status_code=422)
