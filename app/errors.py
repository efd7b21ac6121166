"""Errors with a status code and a sentence, and the handlers that turn them into JSON.

Two body shapes, both FastAPI's own so that the OpenAPI schema stays true:

- ``{"detail": "sentence"}`` for 400/404/410/413/415/507 (:class:`ApiError`);
- ``{"detail": [{"loc": ["body", field], "msg": sentence, "type": "value_error"}]}`` for 422
  (:class:`BodyError`, and any stray ``ValueError`` from ``core``).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger("convlens")


class ApiError(Exception):
    """An HTTP error whose body is ``{"detail": message}``."""

    def __init__(self, status_code: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers


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


class QueryError(BodyError):
    """A 422 about one query-string parameter (``loc`` is ``["query", name]``)."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(name, message)
        self.loc = ["query", name]


# keyword in core's sentence -> the request field it is about (first match wins)
_FIELD_HINTS = (
    ("padding_mode", "padding_mode"),
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


MAX_ECHOED_INPUT = 200
"""Characters of the offending input echoed back in a 422 (a huge or non-finite input is left out)."""

MAX_REPORTED_ERRORS = 20
"""A request can break many union branches at once; the first ones say enough."""


def _echoable(value: Any) -> bool:
    try:
        return len(json.dumps(value, allow_nan=False)) <= MAX_ECHOED_INPUT
    except (TypeError, ValueError):  # NaN/inf, or not JSON at all
        return False


def clean_validation_error(error: dict[str, Any]) -> dict[str, Any]:
    """One pydantic error in FastAPI's shape, with its ``input`` kept only when it is small and finite."""
    cleaned: dict[str, Any] = {
        "type": error.get("type", "value_error"),
        "loc": list(error.get("loc", ())),
        "msg": str(error.get("msg", "")),
    }
    if "input" in error and _echoable(error["input"]):
        cleaned["input"] = error["input"]
    if error.get("ctx"):
        cleaned["ctx"] = {key: str(value) for key, value in error["ctx"].items()}
    return cleaned


def install_handlers(app: FastAPI) -> None:
    """Register the handlers: validation errors, :class:`ApiError`, :class:`BodyError`, ``ValueError``."""

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's body shape, but never echoing megabytes of input, or a NaN that JSON cannot carry.
        errors = [clean_validation_error(e) for e in exc.errors()[:MAX_REPORTED_ERRORS]]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse({"detail": exc.message}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(BodyError)
    async def _body_error(request: Request, exc: BodyError) -> JSONResponse:
        return JSONResponse(body_error_content(exc.loc, exc.message), status_code=422)

    @app.exception_handler(ValueError)
    async def _value_error(request: Request, exc: ValueError) -> JSONResponse:
        # A combination error raised by core (sizes that do not fit, channels that do not match, ...).
        message = str(exc) or exc.__class__.__name__
        return JSONResponse(body_error_content(["body", field_for(message)], message), status_code=422)
