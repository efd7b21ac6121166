"""Classroom load test: a class dragging sliders on one laptop, as the page really asks (issue 9).

Starts ``uvicorn app.main:app --workers 2 --http app.tcp:NoDelayH11`` on 127.0.0.1 and a free port, with
``MALLOC_ARENA_MAX=2`` and one BLAS thread (as ``make run``), then replays the page's request pattern:

- each student drags a slider in **bursts of 8 steps 120 ms apart, then pauses 2-4 s**; a quarter of the
  students work on ``sample:astronaut`` at 256 px RGB with 8 filters 3×3, the rest on an MNIST digit;
- one **step** is what ``static/js`` sends: ``POST /api/conv?pictures=levels&explain=f,y,x`` (the maps as
  8-bit levels, with the arithmetic of the selected position; ``&input=shape`` once the student's page has
  the input picture), then 60 ms after its answer the follow-ups of the views on screen (``--view``:
  ``top`` = the first screen at 1280×720, nothing more; ``all`` = every view, the RGB per-channel view
  riding on the conv as ``&channels=f``); a newer step aborts the unfinished requests of the previous one
  (the page's ``api.latest``);
- 250 ms after the last step of a burst, the page fills in the views off screen (im2col, explain,
  backward, transpose, per-channel view for RGB): counted as the burst's **fill**;
- ``--heavy`` adds one student sending the heaviest ``/api/backward`` the limits allow, back to back.

The client is asyncio with raw HTTP/1.1 keep-alive sockets (no HTTP library), so it costs little CPU; its
CPU is printed beside the server's. Printed: step settled (all of a step's requests answered) p50/p95/p99,
errors, 503s, server CPU per step (from /proc of the worker processes), worker RSS (max during the run,
and after 10 s idle), as a markdown table ready for the README.

``--cost`` instead measures the server CPU of one student's step with every cache missed (new weights
each step), MNIST and photo, for a step during a drag, the fill, and conv + every follow-up.

Usage::

    python bench/load.py                    # 60 students, 60 s
    python bench/load.py --heavy            # plus the heavy student
    python bench/load.py --cost             # server CPU per step, one student
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PRESETS_3X3 = [
    "sobel_x",
    "sobel_y",
    "prewitt_x",
    "prewitt_y",
    "laplacian_4",
    "laplacian_8",
    "sharpen",
    "emboss",
    "outline",
    "gaussian_3",
    "box_blur_3",
    "scharr_x",
    "scharr_y",
]
SERVER_ENV = {
    "MALLOC_ARENA_MAX": "2",
    "MALLOC_MMAP_THRESHOLD_": "131072",
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}
"""As ``make run``: glibc's arenas bounded and every buffer above 128 kB mmapped (so freed arrays go back
to the system at once: without it a worker's RSS stayed near 600 MB after a class), BLAS on the calling
thread."""
CONV_PATH = "/api/conv?pictures=levels&explain=0,12,16"
"""What main.js asks: levels pictures, and the explanation of the selected position with the maps."""
STEPS_PER_BURST, STEP_GAP, FOLLOW_DELAY, FILL_DELAY = 8, 0.120, 0.060, 0.250


# ------------------------------------------------------------------------------------ raw HTTP/1.1


class Connection:
    """One keep-alive HTTP/1.1 connection (what a browser keeps per host, up to 6)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(
        self, method: str, path: str, body: bytes | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            sock = self.writer.get_extra_info("socket")
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        assert self.reader is not None
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}\r\n"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + (body or b""))
        status_line = await self.reader.readuntil(b"\r\n")
        headers: dict[str, str] = {}
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        data = await self.reader.readexactly(int(headers.get("content-length", "0")))
        return int(status_line.split()[1]), headers, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


class Browser:
    """A student's browser: a few keep-alive connections; an aborted request closes its connection."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.idle: list[Connection] = []

    async def send(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], bytes]:
        reused = bool(self.idle)
        conn = self.idle.pop() if self.idle else Connection(self.host, self.port)
        data = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        try:
            answer = await conn.request(method, path, data)
        except (asyncio.IncompleteReadError, ConnectionError):
            conn.close()
            if not reused:
                raise
            conn = Connection(
                self.host, self.port
            )  # the server closed an idle keep-alive: as a browser, retry
            answer = await conn.request(method, path, data)
        except BaseException:
            conn.close()  # aborted (superseded) or broken: the browser drops the connection
            raise
        self.idle.append(conn)
        return answer

    def close(self) -> None:
        for conn in self.idle:
            conn.close()


# ------------------------------------------------------------------------------------ the page


def kernel(name_or_values: Any, kernels: dict[str, list[list[float]]]) -> list[list[float]]:
    return kernels[name_or_values] if isinstance(name_or_values, str) else name_or_values


def conv_body(s: dict[str, Any], kernels: dict[str, list[list[float]]]) -> dict[str, Any]:
    """What ``app.convBody()`` sends: full (F, C, KH, KW) weights, bias, pairs."""
    channels = 3 if s["color"] == "rgb" else 1
    weight = [[kernel(k, kernels) for _ in range(channels)] for k in s["filters"]]
    oh = (s["side"] + 2 * s["pad"] - len(weight[0][0])) // s["stride"] + 1
    return {
        "image": s["image"],
        "color": s["color"],
        "max_side": s["side"],
        "weight": weight,
        "bias": [0.0] * len(weight),
        "stride": [s["stride"], s["stride"]],
        "padding": [s["pad"], s["pad"]],
        "dilation": [1, 1],
        "groups": 1,
        "activation": s["act"],
        "pool": s["pool"],
        "values": oh * oh <= 64 * 64,
    }


def followers(body: dict[str, Any], views: set[str], channels: int) -> list[tuple[str, str, Any]]:
    """The follow-up requests of the views in ``views`` (static/js/followers.js)."""
    position = [0, 12, 16]
    plain = {**body, "values": False, "pool": None}
    out: list[tuple[str, str, Any]] = []
    if "explain" in views:
        out.append(("explain", "/api/explain", {**plain, "position": position}))
    if "im2col" in views:
        out.append(("im2col", "/api/im2col", {**plain, "indices": True, "columns": None}))
    if "backward" in views:
        out.append(
            (
                "backward",
                "/api/backward?pictures=levels",
                {**plain, "upstream": {"kind": "ones", "position": position, "seed": 0}, "target": "conv"},
            )
        )
    if "transpose" in views:
        k = body["weight"][0][0]
        out.append(
            (
                "transpose",
                "/api/transpose",
                {
                    "x": [[1, 1, 1]] * 3,
                    "weight": k,
                    "stride": body["stride"],
                    "padding": [0, 0],
                    "output_padding": [0, 0],
                    "dilation": [1, 1],
                },
            )
        )
    if "channels" in views and channels > 1:
        zero = [[0.0] * len(body["weight"][0][0][0]) for _ in body["weight"][0][0]]
        weight = [
            [body["weight"][0][c] if k == c else zero for k in range(channels)] for c in range(channels)
        ]
        out.append(
            (
                "channels",
                "/api/conv?pictures=levels",
                {
                    **body,
                    "weight": weight,
                    "bias": [0.0] * channels,
                    "groups": 1,
                    "activation": "none",
                    "pool": None,
                },
            )
        )
    return out


ALL_VIEWS = {"im2col", "backward", "transpose", "channels"}
"""The follow-up views (the arithmetic view always comes with the conv answer, ``&explain=f,y,x``). The RGB
per-channel view rides on the conv answer (``&channels=f``) while on screen, and is a request of its own
when filled in later."""
VIEWS = {"top": (set(), set()), "all": (ALL_VIEWS, ALL_VIEWS), "none": (set(), set())}
"""Views on screen while dragging, (digit, photo). ``top``: the first screen at 1280×720 — the maps and the
arithmetic view, both in the conv answer."""


@dataclass
class Stats:
    settled: list[float] = field(default_factory=list)
    settled_photo: list[float] = field(default_factory=list)
    fills: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    steps: int = 0
    aborted: int = 0
    heavy: list[tuple[int, float]] = field(default_factory=list)

    def status(self, code: int, what: str, data: bytes) -> None:
        self.statuses[code] = self.statuses.get(code, 0) + 1
        if code != 200 and len(self.errors) < 20:
            self.errors.append(f"{what} → {code} {data[:200]!r}")


class Student:
    def __init__(
        self,
        browser: Browser,
        rng: random.Random,
        photo: bool,
        view: set[str],
        stats: Stats,
        kernels: dict[str, list[list[float]]],
        deadline: float,
    ) -> None:
        self.browser, self.rng, self.photo, self.view, self.stats = browser, rng, photo, view, stats
        self.kernels, self.deadline = kernels, deadline
        self.has_input = False  # the page asks ?input=shape once it has drawn the input picture
        if photo:
            self.s = {
                "image": "sample:astronaut",
                "color": "rgb",
                "side": 256,
                "filters": rng.sample(PRESETS_3X3, 8),
                "stride": 1,
                "pad": 1,
                "act": "none",
                "pool": None,
            }
        else:
            self.s = {
                "image": f"mnist:{rng.randrange(10000)}",
                "color": "gray",
                "side": 28,
                "filters": [rng.choice(PRESETS_3X3)],
                "stride": 1,
                "pad": 1,
                "act": "relu",
                "pool": {"mode": "max", "kernel_size": 2},
            }

    def move(self) -> None:
        """One slider event: kernel values, stride, padding or a filter."""
        control = self.rng.choice(["kernel", "kernel", "padding", "stride", "filter"])
        if control == "kernel":
            size = 3
            self.s["filters"][0] = [
                [round(self.rng.uniform(-1, 1), 2) for _ in range(size)] for _ in range(size)
            ]
        elif control == "padding":
            self.s["pad"] = self.rng.randint(0, 2)
        elif control == "stride":
            self.s["stride"] = self.rng.randint(1, 2)
        else:
            self.s["filters"][-1] = self.rng.choice(PRESETS_3X3)

    @property
    def conv_path(self) -> str:
        """The conv request of a step, as main.js builds it."""
        carried = "&channels=0" if self.photo and "channels" in self.view else ""
        return CONV_PATH + carried + ("&input=shape" if self.has_input else "")

    async def fetch(self, what: str, path: str, body: Any) -> int:
        status, _, data = await self.browser.send("POST", path, body)
        self.stats.status(status, what, data)
        return status

    async def step(self, body: dict[str, Any]) -> None:
        start = time.perf_counter()
        if await self.fetch("conv", self.conv_path, body) == 200:
            self.has_input = True
            todo = followers(body, self.view - {"channels"}, 3 if self.photo else 1)
            if todo:
                await asyncio.sleep(FOLLOW_DELAY)
                await asyncio.gather(*(self.fetch(*r) for r in todo))
        self.stats.settled.append(time.perf_counter() - start)
        if self.photo:
            self.stats.settled_photo.append(self.stats.settled[-1])
        self.stats.steps += 1

    async def run(self) -> None:
        await asyncio.sleep(self.rng.uniform(0, 3))
        while time.monotonic() < self.deadline:
            pending: asyncio.Task[None] | None = None
            body: dict[str, Any] = {}
            for _ in range(STEPS_PER_BURST):
                self.move()
                body = conv_body(self.s, self.kernels)
                if pending is not None and not pending.done():
                    pending.cancel()  # api.latest: the newer step aborts the older one's requests
                    self.stats.aborted += 1
                pending = asyncio.create_task(self.step(body))
                await asyncio.sleep(STEP_GAP)
            if pending is not None:
                await asyncio.gather(pending, return_exceptions=True)
            rest = followers(body, ALL_VIEWS - self.view, 3 if self.photo else 1)
            await asyncio.sleep(FILL_DELAY)
            start = time.perf_counter()
            await asyncio.gather(*(self.fetch(*r) for r in rest), return_exceptions=True)
            self.stats.fills.append(time.perf_counter() - start)
            await asyncio.sleep(self.rng.uniform(2.0, 4.0))


def heavy_body(kernels: int, padding: int) -> dict[str, Any]:
    rng = random.Random(1)
    weight = [
        [[[round(rng.uniform(-1, 1), 2) for _ in range(kernels)] for _ in range(kernels)] for _ in range(3)]
        for _ in range(20)
    ]
    return {
        "image": "sample:astronaut",
        "color": "rgb",
        "max_side": 256,
        "weight": weight,
        "stride": [1, 1],
        "padding": [padding, padding],
        "activation": "relu",
        "pool": {"mode": "max", "kernel_size": 2},
        "target": "pool",
        "values": False,
        "upstream": {"kind": "ones", "position": [0, 0, 0], "seed": 0},
    }


async def find_heavy(host: str, port: int) -> dict[str, Any] | None:
    """The heaviest backward (20 filters k×k on the RGB photo, pooled) the server's limits accept."""
    browser = Browser(host, port)
    for k in (11, 9, 7, 5, 3):
        body = heavy_body(k, k - 1)
        status, _, _ = await browser.send("POST", "/api/backward?pictures=levels", body)
        if status == 200:
            browser.close()
            return {"kernel": k, "body": body}
    browser.close()
    return None


async def heavy_student(host: str, port: int, body: dict[str, Any], stats: Stats, deadline: float) -> None:
    browser = Browser(host, port)
    n = 0
    while time.monotonic() < deadline:
        n += 1
        body = {**body, "upstream": {"kind": "random", "position": [0, 0, 0], "seed": n}}  # no cache hit
        start = time.perf_counter()
        status, headers, _ = await browser.send("POST", "/api/backward?pictures=levels", body)
        stats.heavy.append((status, time.perf_counter() - start))
        if status == 503:
            await asyncio.sleep(float(headers.get("retry-after", "1")))
    browser.close()


# ------------------------------------------------------------------------------------ server and /proc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workers: int, app_dir: Path = REPO) -> tuple[subprocess.Popen[bytes], int, str]:
    port = free_port()
    store = tempfile.mkdtemp(prefix="convlens-load-")
    command = [
        sys.executable,
        "-m",
        "uvicorn",
        "app.main:app",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--http",
        "app.tcp:NoDelayH11",
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    env = {**os.environ, **SERVER_ENV, "CONVLENS_STORE_DIR": store}
    proc = subprocess.Popen(command, cwd=app_dir, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"uvicorn exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200 and len(workers_of(proc.pid)) >= workers:
                    return proc, port, store
        except OSError:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise SystemExit("uvicorn did not answer /healthz within 60 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the session this script created: uvicorn and its workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().rsplit(")", 1)[1].split()


def workers_of(master: int) -> list[int]:
    """The uvicorn worker processes (children of the master, excluding its multiprocessing helpers)."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                fields = _stat(int(name))
            except OSError:
                continue
            if int(fields[1]) == master:
                with open(f"/proc/{name}/cmdline", "rb") as handle:
                    if b"resource_tracker" not in handle.read():
                        out.append(int(name))
    return sorted(out)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of ``pids`` (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = _stat(pid)
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / ticks


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


# ------------------------------------------------------------------------------------ runs


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def load_kernels(port: int) -> dict[str, list[list[float]]]:
    browser = Browser("127.0.0.1", port)
    status, _, data = await browser.send("GET", "/api/kernels")
    browser.close()
    listing = json.loads(data)
    items = listing.get("kernels", listing) if isinstance(listing, dict) else listing
    return {k["name"]: k["weights"] for k in items if isinstance(k, dict) and "name" in k}


async def run_class(args: argparse.Namespace, port: int, workers: list[int]) -> dict[str, Any]:
    kernels = await load_kernels(port)
    stats, heavy_stats = Stats(), Stats()
    heavy = await find_heavy("127.0.0.1", port) if args.heavy else None
    deadline = time.monotonic() + args.duration
    rng = random.Random(args.seed)
    students = [
        Student(
            Browser("127.0.0.1", port),
            random.Random(rng.random()),
            i % 4 == 0,
            VIEWS[args.view][i % 4 == 0],
            stats,
            kernels,
            deadline,
        )
        for i in range(args.students)
    ]
    rss_max = {pid: rss_mb(pid) for pid in workers}

    async def sample() -> None:
        while time.monotonic() < deadline:
            for pid in workers:
                rss_max[pid] = max(rss_max[pid], rss_mb(pid))
            await asyncio.sleep(1.0)

    tasks = [asyncio.create_task(s.run()) for s in students] + [asyncio.create_task(sample())]
    if heavy is not None:
        tasks.append(
            asyncio.create_task(heavy_student("127.0.0.1", port, heavy["body"], heavy_stats, deadline))
        )
    server0, client0, wall0 = cpu_seconds(workers), time.process_time(), time.monotonic()
    await asyncio.gather(*tasks, return_exceptions=True)
    wall = time.monotonic() - wall0
    server_cpu, client_cpu = cpu_seconds(workers) - server0, time.process_time() - client0
    for s in students:
        s.browser.close()
    await asyncio.sleep(10)
    codes = heavy_stats.heavy
    return {
        "students": args.students,
        "photo_share": 0.25,
        "view": args.view,
        "seconds": round(wall, 1),
        "steps": stats.steps,
        "aborted": stats.aborted,
        "settled_ms": {
            "p50": pct(stats.settled, 0.5),
            "p95": pct(stats.settled, 0.95),
            "p99": pct(stats.settled, 0.99),
        },
        "settled_photo_ms": {
            "p50": pct(stats.settled_photo, 0.5),
            "p95": pct(stats.settled_photo, 0.95),
        },
        "fill_ms": {"p50": pct(stats.fills, 0.5), "p95": pct(stats.fills, 0.95)},
        "statuses": stats.statuses,
        "errors": stats.errors[:5],
        "server_cpu_s": round(server_cpu, 2),
        "server_cpu_per_step_ms": round(server_cpu / max(1, stats.steps) * 1000, 2),
        "server_cpu_share": round(server_cpu / wall, 2),
        "client_cpu_s": round(client_cpu, 2),
        "client_cpu_share": round(client_cpu / wall, 2),
        "rss_max_mb": [round(v) for v in rss_max.values()],
        "rss_idle_mb": [round(rss_mb(pid)) for pid in workers],
        "heavy": None
        if heavy is None
        else {
            "kernel": heavy["kernel"],
            "requests": len(codes),
            "ok": sum(1 for c, _ in codes if c == 200),
            "503": sum(1 for c, _ in codes if c == 503),
            "other": sorted({c for c, _ in codes if c not in (200, 503)}),
            "p50_ms": pct([t for c, t in codes if c == 200], 0.5),
        },
    }


async def run_cost(port: int, workers: list[int], steps: int) -> dict[str, Any]:
    """Server CPU per step of one student, every cache missed (new kernel values each step)."""
    kernels = await load_kernels(port)
    browser = Browser("127.0.0.1", port)
    out: dict[str, Any] = {}
    for photo in (False, True):  # warm every endpoint and image in both workers first
        warm = Student(browser, random.Random(3), photo, ALL_VIEWS, Stats(), kernels, 0)
        for _ in range(6):
            warm.move()
            await warm.step(conv_body(warm.s, kernels))
    idle = float("inf")  # the workers' own ticking while no request comes: the quietest of 3 windows
    for _ in range(3):
        start, wall = cpu_seconds(workers), time.monotonic()
        await asyncio.sleep(2)
        idle = min(idle, (cpu_seconds(workers) - start) / (time.monotonic() - wall))
    for name, photo in (("mnist", False), ("photo", True)):
        student = Student(browser, random.Random(7), photo, set(), Stats(), kernels, 0)
        for label, views in (
            ("drag step (top view)", VIEWS["top"][photo]),
            ("fill (views off screen)", ALL_VIEWS - VIEWS["top"][photo]),
            ("conv only", set()),
            ("conv + every view", ALL_VIEWS),
        ):
            for _ in range(3):  # warm-up
                student.move()
                await student.step(conv_body(student.s, kernels))
            before, wall = cpu_seconds(workers), time.monotonic()
            for _ in range(steps):
                student.move()
                body = conv_body(student.s, kernels)
                if label.startswith("fill"):
                    # the fill follows a step whose conv was answered: that layer is prepared (not counted)
                    conv_before = cpu_seconds(workers)
                    await student.fetch("conv", student.conv_path, body)
                    await asyncio.sleep(0.02)
                    before -= cpu_seconds(workers) - conv_before
                    await asyncio.gather(
                        *(student.fetch(*r) for r in followers(body, views, 3 if photo else 1))
                    )
                else:
                    student.view = views
                    await student.step(body)
            await asyncio.sleep(0.05)  # let /proc catch up
            spent = cpu_seconds(workers) - before - idle * (time.monotonic() - wall)
            out[f"{name}: {label}"] = round(max(0.0, spent) / steps * 1000, 2)
    browser.close()
    out["idle CPU of the workers, subtracted above (ms per second)"] = round(idle * 1000, 2)
    return out


def table(result: dict[str, Any]) -> str:
    s, h = result["settled_ms"], result["heavy"]
    rows = [
        ("students (¼ on the 256 px RGB photo, 8 filters)", f"{result['students']}, view `{result['view']}`"),
        ("steps settled / aborted by a newer step", f"{result['steps']} / {result['aborted']}"),
        ("step settled p50 / p95 / p99", f"{s['p50']:.0f} / {s['p95']:.0f} / {s['p99']:.0f} ms"),
        (
            "… of which photo steps p50 / p95",
            f"{result['settled_photo_ms']['p50']:.0f} / {result['settled_photo_ms']['p95']:.0f} ms",
        ),
        (
            "fill of the off-screen views after a burst p50 / p95",
            f"{result['fill_ms']['p50']:.0f} / {result['fill_ms']['p95']:.0f} ms",
        ),
        ("answers by status", ", ".join(f"{k}: {v}" for k, v in sorted(result["statuses"].items()))),
        ("server CPU per step (fills included)", f"{result['server_cpu_per_step_ms']} ms"),
        (
            "server CPU / load generator CPU (cores)",
            f"{result['server_cpu_share']} / {result['client_cpu_share']}",
        ),
        ("worker RSS max during / 10 s after", f"{result['rss_max_mb']} / {result['rss_idle_mb']} MB"),
    ]
    if h is not None:
        rows.append(
            (
                f"heavy student (backward 20 filters {h['kernel']}×{h['kernel']}, pooled)",
                f"{h['requests']} requests: {h['ok']} answered (p50 {h['p50_ms']:.0f} ms), {h['503']} × 503"
                + (f", other {h['other']}" if h["other"] else ""),
            )
        )
    return "| measure | value |\n| --- | --- |\n" + "\n".join(f"| {a} | {b} |" for a, b in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=60)
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of class (default 60)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--view",
        choices=sorted(VIEWS),
        default="top",
        help="views on screen while dragging (default top: the first screen)",
    )
    parser.add_argument("--heavy", action="store_true", help="add the heavy student")
    parser.add_argument("--cost", action="store_true", help="server CPU per step of one student instead")
    parser.add_argument("--steps", type=int, default=200, help="--cost: steps per case")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.add_argument(
        "--app-dir",
        type=Path,
        default=REPO,
        help="serve the app of this source tree (e.g. an older commit, to compare)",
    )
    parser.add_argument(
        "--suite",
        action="store_true",
        help="what `make load` runs: --cost, then the class, then the class with the heavy student "
        "(a fresh server each), and one summary",
    )
    args = parser.parse_args(argv)
    if args.suite:
        return suite(args)
    result = run_once(args)
    if args.cost:
        print(cost_table(result))
    else:
        print(table(result))
        if result["errors"]:
            print("\nfirst errors:\n" + "\n".join(result["errors"]))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    """One measurement against a fresh server."""
    proc, port, _ = start_server(args.workers, args.app_dir)
    try:
        workers = workers_of(proc.pid)
        if args.cost:
            return asyncio.run(run_cost(port, workers, args.steps))
        return asyncio.run(run_class(args, port, workers))
    finally:
        stop_server(proc)


def cost_table(result: dict[str, Any]) -> str:
    lines = ["| server CPU per step, one student, caches missed | ms |", "| --- | --- |"]
    lines += [f"| {name} | {value} |" for name, value in result.items()]
    return "\n".join(lines)


def suite(args: argparse.Namespace) -> int:
    """Cost per step, the class, the class + the heavy student: the README's tables."""
    results: dict[str, Any] = {}
    started = time.strftime("%Y-%m-%d %H:%M")
    for name, changes in (("cost", {"cost": True}), ("class", {}), ("class + heavy", {"heavy": True})):
        print(f"running: {name} ...", file=sys.stderr, flush=True)
        results[name] = run_once(
            argparse.Namespace(**{**vars(args), "cost": False, "heavy": False, **changes})
        )
    load = os.getloadavg()[0]
    print(f"\n### `make load` ({started}, {os.cpu_count()} cores, load average {load:.1f} at the end)\n")
    print(cost_table(results["cost"]) + "\n")
    for name in ("class", "class + heavy"):
        print(f"**{name}** ({args.duration:.0f} s)\n")
        print(table(results[name]) + "\n")
        if results[name]["errors"]:
            print("first errors:\n" + "\n".join(results[name]["errors"]) + "\n")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
