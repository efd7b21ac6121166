"""The JSON body limit: a request body larger than the limit is refused with 413 before it is parsed.

Request validation, like :mod:`app.schemas`; kept apart from :mod:`app.middleware` (headers, the catch-all,
the start-up check) so that ``make mutate`` can mutate exactly the validation (docs/mutation.md)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class JsonBodyLimitMiddleware:
    """Refuse a request body larger than ``limit`` bytes with 413 before it is parsed.

    Parsing and validating a 20 MB JSON body takes seconds of a worker's time, so the limit is checked on the
    declared ``Content-Length`` and again on the bytes actually streamed. Uploads (``POST /api/images``)
    have their own, larger limit and are left to their route.

    Parameters
    ----------
    app : ASGI app
    limit : int
        Bytes.
    """

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") == "/api/images":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyTooLarge
            return message

        try:
            await self.app(scope, counting_receive, send)
        except _BodyTooLarge:
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = (
            b'{"detail":"the request body is larger than ' + str(self.limit).encode() + b' bytes, the limit '
            b'for JSON requests (images go to POST /api/images as multipart)"}'
        )
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _BodyTooLarge(BaseException):  # noqa: N818 - not an Exception, so FastAPI's body reader cannot turn it into a 400
    """Raised inside the app's ``receive`` when the streamed body passes the limit."""
