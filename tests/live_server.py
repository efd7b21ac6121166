"""Start the real service as a uvicorn subprocess for the tests that need one.

Used by the hostile-upload, scaling, security and Docker-rehearsal tests: they talk to a real server over
a socket (with its own `CONVLENS_*` environment) instead of an in-process TestClient, so that workers,
restarts and the on-disk upload store behave exactly as in production.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def uvicorn_command(port: int, workers: int = 1, python: str | None = None) -> list[str]:
    """The command line `make run` uses, on 127.0.0.1 and the given port."""
    return [python or sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), "--log-level", "warning"]


class LiveServer:
    """A uvicorn subprocess; a context manager that waits for `/healthz` and stops the server on exit.

    Parameters
    ----------
    env : mapping of str to str
        Extra environment variables (e.g. ``CONVLENS_STORE_DIR``) on top of the current environment.
    workers : int
        uvicorn ``--workers``.
    command : sequence of str, optional
        The full command to run instead of :func:`uvicorn_command` (the Docker rehearsal runs the Dockerfile's
        CMD). It must listen on ``port``.
    port : int, optional
        The port; a free one by default.
    cwd : path, optional
        Working directory (the repository by default).
    base_env : mapping of str to str, optional
        The environment ``env`` is laid over; the current one by default.
    """

    def __init__(self, env: Mapping[str, str] | None = None, workers: int = 1,
                 command: Sequence[str] | None = None, port: int | None = None,
                 cwd: Path | str | None = None, startup_timeout: float = 60.0,
                 base_env: Mapping[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = list(command) if command else uvicorn_command(self.port, workers)
        base = os.environ if base_env is None else base_env
        self.env = {**base, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.cwd = str(cwd or REPO)
        self.startup_timeout = startup_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()

    def start(self) -> LiveServer:
        # A new session so that stop() can signal uvicorn and its worker processes (this group only).
        self.proc = subprocess.Popen(self.command, cwd=self.cwd, env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not answer /healthz within {self.startup_timeout} s:\n{self.log()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def log(self) -> str:
        """Everything the server printed so far (for assertion messages)."""
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-4000:]

    def client(self, timeout: float = 60.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
