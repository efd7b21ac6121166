"""uvicorn's HTTP/1.1 protocol with ``TCP_NODELAY`` on every connection: ``--http app.tcp:NoDelayH11``.

Why: with ``--workers N`` uvicorn binds the listening socket itself with ``proto`` 0, accepted sockets
inherit it, and asyncio only turns Nagle's algorithm off when ``proto == IPPROTO_TCP``
(uvicorn issue #3149). uvicorn writes a response's headers and body in two ``send`` calls, so on a
keep-alive connection the body waits for the client's delayed ACK: every request after a
connection's first took 40-44 ms longer on Linux (measured here: ``/healthz`` 44 ms instead of 1 ms).
Browsers keep connections alive, so every slider step paid it. Setting the option is harmless where
uvicorn already set it (``--workers 1``).
"""

from __future__ import annotations

import asyncio
import socket

from uvicorn.protocols.http.h11_impl import H11Protocol


def set_nodelay(transport: asyncio.BaseTransport) -> bool:
    """Turn Nagle's algorithm off on the transport's TCP socket; False when it is not a TCP socket."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return False
    return True


class NoDelayH11(H11Protocol):
    """uvicorn's ``H11Protocol`` that sets ``TCP_NODELAY`` when a client connects."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        set_nodelay(transport)
        super().connection_made(transport)
