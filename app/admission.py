"""Per-worker admission: a bound on concurrent heavy work, a short queue, then a clear 503.

Every computation (convolution, im2col, explain, backward, image decoding) passes a :class:`Gate`:

- at most ``running`` jobs of a gate run at once in this worker process;
- up to ``waiting`` more wait, first come first served, at most ``wait_seconds`` each;
- beyond that, or after waiting that long, the request is refused with **503**, a ``Retry-After``
  header and a sentence — never queued without bound, never a stall for everyone.

Three gates per worker: ``light`` (a slider step's requests, in the ordinary thread pool), ``heavy`` (a
request whose work is above ``Settings.heavy_macs``) and ``decode`` (image uploads). Heavy and decode jobs
run on their own thread at a lower CPU priority (``nice`` +10 on Linux, per thread), so one student's
heavy settings or huge upload slow themselves down, not the class. The gates are built from the settings
of their first use in a process (:func:`reset_gates` forgets them). With ``OPENBLAS_NUM_THREADS=1`` (``make
run``, ``bench/load.py``) the matrix products of a heavy job run on its niced thread too.

A request whose client has gone away (the page aborts a superseded request) while it waited is not
computed: :class:`ClientGone` (499, read by nobody).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from anyio import to_thread
from starlette.requests import Request

from app.errors import ApiError

T = TypeVar("T")

HEAVY_NICE = 10
"""How much lower the heavy threads' CPU priority is (Linux ``nice`` is per thread)."""


class Busy(ApiError):
    """503: the worker's queue for this kind of work is full, or the wait was too long."""

    def __init__(self, what: str, retry_after: int) -> None:
        super().__init__(
            503,
            f"the server is busy with other {what} right now; it did not start yours — "
            f"try again in {retry_after} s (or choose lighter settings)",
            headers={"Retry-After": str(retry_after)},
        )


class ClientGone(ApiError):
    """The client disconnected before its work started (499: no one reads it)."""

    def __init__(self) -> None:
        super().__init__(499, "the client closed the request before it was computed")


def _lower_priority() -> None:
    """Thread initializer: this thread only runs at ``nice`` +:data:`HEAVY_NICE` (Linux)."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), HEAVY_NICE)


class Gate:
    """A bounded semaphore with a bounded, time-limited queue, for one event loop.

    Parameters
    ----------
    what : str
        Words for the 503 sentence (e.g. ``"computations"``).
    running, waiting : int
        Jobs at once; jobs allowed to wait.
    wait_seconds : float
        Longest wait before a 503.
    retry_after : int
        Seconds in the ``Retry-After`` header.
    executor : ThreadPoolExecutor, optional
        Where jobs run (default: the event loop's ordinary thread pool, through anyio).

    Attributes
    ----------
    active : int
        Jobs holding a slot now.
    refused, started : int
        Counters since the start.
    """

    def __init__(
        self,
        what: str,
        running: int,
        waiting: int,
        wait_seconds: float,
        retry_after: int = 1,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.what = what
        self.running = max(1, running)
        self.waiting = max(0, waiting)
        self.wait_seconds = wait_seconds
        self.retry_after = retry_after
        self.executor = executor
        self.active = 0
        self.refused = 0
        self.started = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def queued(self) -> int:
        """Jobs waiting now."""
        return sum(1 for w in self._waiters if not w.done())

    def _bind(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new event loop (tests): the old one's slots are gone with it
            self._loop = loop
            self.active = 0
            self._waiters.clear()

    async def acquire(self) -> None:
        """Take a slot, waiting at most ``wait_seconds`` behind at most ``waiting`` others; else 503."""
        self._bind()
        if self.active < self.running and not self.queued:
            self.active += 1
            return
        if self.queued >= self.waiting:
            self.refused += 1
            raise Busy(self.what, self.retry_after)
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), self.wait_seconds)
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return  # handed a slot at the last moment: keep it
            waiter.cancel()
            self.refused += 1
            raise Busy(self.what, self.retry_after) from None
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()
            waiter.cancel()
            raise

    def release(self) -> None:
        """Give the slot to the first live waiter, or free it."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot passes on: ``active`` is unchanged
                return
        self.active = max(0, self.active - 1)

    async def run(self, http: Request | None, job: Callable[..., T], *args: Any) -> T:
        """Run ``job(*args)`` on a thread once admitted.

        Raises
        ------
        Busy
            503 when the queue is full or the wait too long.
        ClientGone
            When the client disconnected while the job waited.
        """
        await self.acquire()
        try:
            if http is not None and await http.is_disconnected():
                raise ClientGone()
            self.started += 1
            if self.executor is not None:
                return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: job(*args))
            return await to_thread.run_sync(job, *args)
        finally:
            self.release()


_gates: dict[str, Gate] = {}
_gates_lock = threading.Lock()


def gate(name: str, settings: Any) -> Gate:
    """The worker's gate ``name`` (``"light"``, ``"heavy"`` or ``"decode"``), built from the settings once."""
    with _gates_lock:
        known = _gates.get(name)
        if known is not None:
            return known
        if name == "light":
            made = Gate(
                "computations",
                settings.compute_threads,
                settings.compute_queue,
                settings.compute_wait_seconds,
                retry_after=1,
            )
        elif name == "heavy":
            made = Gate(
                "heavy computations (large kernels, many filters, big images)",
                1,
                settings.heavy_queue,
                settings.heavy_wait_seconds,
                retry_after=2,
                executor=ThreadPoolExecutor(1, "convlens-heavy", initializer=_lower_priority),
            )
        elif name == "decode":
            made = Gate(
                "image uploads",
                1,
                settings.decode_queue,
                settings.decode_wait_seconds,
                retry_after=2,
                executor=ThreadPoolExecutor(1, "convlens-decode", initializer=_lower_priority),
            )
        else:
            raise KeyError(name)
        _gates[name] = made
        return made


def reset_gates() -> None:
    """Forget the gates (tests that change the settings)."""
    with _gates_lock:
        _gates.clear()
