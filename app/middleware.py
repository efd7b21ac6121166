"""Pure ASGI middleware (no per-request task overhead): security headers on every response, a catch-all that
turns a bug into a 500 with a request id, and the start-up check. The JSON body limit is in
:mod:`app.body_limit`."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'self'"
)
"""The page's policy: nothing from another host, no inline script or style."""

DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; connect-src 'self'; object-src 'none'; "
    "base-uri 'self'; frame-ancestors 'self'"
)
"""Only for ``/docs``: its assets are local (fastapi-offline), but FastAPI's docs pages
start Swagger UI / ReDoc with one inline script. Still no other host."""

DOCS_PATHS = ("/docs", "/docs/oauth2-redirect")

log = logging.getLogger("convlens")


class SecurityHeadersMiddleware:
    """Add CSP, ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``.

    Parameters
    ----------
    app : ASGI app
    docs_inline : bool
        Allow the one inline script of the ``/docs`` page (assets stay local).
    """

    def __init__(self, app: ASGIApp, docs_inline: bool = True) -> None:
        self.app = app
        self.docs_inline = docs_inline

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        relaxed = self.docs_inline and scope.get("path", "") in DOCS_PATHS
        csp = (DOCS_CONTENT_SECURITY_POLICY if relaxed else CONTENT_SECURITY_POLICY).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower()
                    not in (b"content-security-policy", b"x-content-type-options", b"referrer-policy")
                ]
                headers += [
                    (b"content-security-policy", csp),
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                ]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class StartupCheckMiddleware:
    """Refuse to start (one log line, then uvicorn exits) when ``check()`` returns a sentence.

    It answers the ASGI ``lifespan.startup`` event itself, before the app's own start-up, so the reason is
    logged by uvicorn as one error line instead of a traceback, and ``--workers`` stops instead of
    restarting the workers for ever. (The check also removes the store's orphaned temporary files.)

    Parameters
    ----------
    app : ASGI app
    check : callable
        Returns None when the service can start, else the reason (one sentence).
    """

    def __init__(self, app: ASGIApp, check: Callable[[], str | None]) -> None:
        self.app = app
        self.check = check

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        first = await receive()
        pending: Message | None = first
        if first["type"] == "lifespan.startup":
            try:
                problem = self.check()
            except Exception as exc:  # a check that cannot even run is a reason not to start
                problem = f"the start-up check failed: {type(exc).__name__}: {exc}"
            if problem:
                # answered before the app's own lifespan starts, so nothing is left waiting (no traceback)
                line = f"convlens cannot start: {problem}"
                await send({"type": "lifespan.startup.failed", "message": line})
                return

        async def replay() -> Message:
            nonlocal pending
            if pending is not None:
                message, pending = pending, None
                return message
            return await receive()

        await self.app(scope, replay, send)


INTERNAL_ERROR = (
    "internal server error: this is a bug in convlens, not in your request; quote request id {rid}"
)


class CatchAllMiddleware:
    """Turn an unexpected exception into a 500 JSON body with a request id (also in the log line).

    Sits inside :class:`SecurityHeadersMiddleware`, so the 500 carries the same headers as every other
    response, and the connection stays usable (uvicorn resets it when an app raises).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            rid = uuid.uuid4().hex[:16]
            log.error(
                "unhandled %s on %s %s, request id %s",
                type(exc).__name__,
                scope.get("method", "?"),
                scope.get("path", "?"),
                rid,
                exc_info=exc,
            )
            if started:
                raise
            body = json.dumps({"detail": INTERNAL_ERROR.format(rid=rid), "request_id": rid}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode()),
                        (b"x-request-id", rid.encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
