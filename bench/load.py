"""Classroom load test: 60 students dragging sliders at once (issue 6).

Starts ``uvicorn app.main:app --workers 2`` on 127.0.0.1 and a free port (or uses ``--url``, loopback only),
then runs ``--clients`` simulated students for ``--duration`` seconds and prints requests per second,
p50/p95/p99 latency and errors per kind of request, as a markdown table. Target: p95 < 250 ms, 0 errors.

Each student behaves like the page: one request in flight at a time (a slider's ``input`` events are
coalesced while a request is pending), a gap of 30-150 ms between the steps of a drag, and a pause of
1-4 s to look at the result between drags (``--think`` scales every pause: 0.5 = a more frantic class).
Activities, chosen at random each time:

- drag a slider on an MNIST digit (``POST /api/conv``: stride, padding, kernel size, dilation, filters,
  pooling change one at a time; exact values on, as the page asks for small maps);
- drag a slider on ``sample:astronaut`` at ``max_side`` 256 in RGB with 1..8 filters 3×3;
- hover over the output (``POST /api/explain`` at neighbouring positions);
- browse the MNIST grid (``GET /api/mnist`` and thumbnails ``GET /api/images/mnist:N.png``).

``--followers`` adds what the page really sends after each conv answer of a drag (static/js/followers.js):
60 ms after painting, im2col, explain, backward, transpose and (RGB) a per-channel conv together, a newer
step superseding (cancelling) an unfinished round. That is 4-5 more requests per step, several times the
server work of the conv itself (measured: photo 256 RGB conv ~20 ms, its backward ~35 ms).

The server runs as the Dockerfile runs it, with ``--http app.tcp:NoDelayH11`` (TCP_NODELAY: without it,
uvicorn ``--workers 2`` adds ~40 ms to every keep-alive request; ``--http h11`` shows that).

Usage::

    python bench/load.py                  # 60 clients, 60 s, 2 workers
    python bench/load.py --duration 20 --clients 30 --json load.json
    python bench/load.py --followers      # the page's follow-up requests too
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson

REPO = Path(__file__).resolve().parent.parent
P95_TARGET_MS = 250.0
PRESETS_3X3 = ["sobel_x", "sobel_y", "prewitt_x", "prewitt_y", "laplacian_4", "laplacian_8", "sharpen",
               "emboss", "outline", "gaussian_3", "box_blur_3", "identity", "scharr_x", "scharr_y"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
HTTP_PROTOCOL = "app.tcp:NoDelayH11"
"""As the Dockerfile runs it: uvicorn's h11 with TCP_NODELAY (see app/tcp.py; plain ``h11`` adds ~40 ms to
every keep-alive request with ``--workers`` > 1)."""


@dataclass
class Record:
    """One finished request: kind, latency, status (0 = no answer), the server's own time if reported."""

    kind: str
    seconds: float
    status: int
    server_ms: float | None = None
    cache: str | None = None  # the X-Convlens-Cache header: "hit", "miss" or None


def server_total_ms(header: str | None) -> float | None:
    """``total;dur=12.3`` from a ``Server-Timing`` header, in ms (None when absent)."""
    match = re.search(r"(?:^|,)\s*total;dur=([0-9.]+)", header or "")
    return float(match.group(1)) if match else None


@dataclass
class Student:
    """One simulated student with their own random stream and slider state."""

    client: httpx.AsyncClient
    rng: random.Random
    deadline: float
    think: float
    records: list[Record]
    failures: list[str]
    followers: bool = False
    kernels: dict[str, list[list[float]]] = field(default_factory=dict)
    superseded: list[int] = field(default_factory=lambda: [0])
    _round: asyncio.Task[None] | None = None

    async def request(self, kind: str, method: str, url: str, **kwargs: Any) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            response = await self.client.request(method, url, **kwargs)
            await response.aread()
        except httpx.HTTPError as exc:
            self.records.append(Record(kind, time.perf_counter() - start, 0))
            self.failures.append(f"{kind}: {type(exc).__name__} {exc}")
            return None
        elapsed = time.perf_counter() - start
        server_ms = server_total_ms(response.headers.get("server-timing"))
        cache = response.headers.get("x-convlens-cache")
        self.records.append(Record(kind, elapsed, response.status_code, server_ms, cache))
        if not 200 <= response.status_code < 300:
            body = kwargs.get("json")
            self.failures.append(f"{kind} -> {response.status_code} {response.text[:300]} (request {body})")
        return response

    async def pause(self, low: float, high: float) -> None:
        await asyncio.sleep(self.rng.uniform(low, high) * self.think)

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    # ------------------------------------------------------------------ the page's follow-up requests

    def kernel_of(self, weight: Any, f: int) -> list[list[float]]:
        """The (KH, KW) kernel of filter ``f`` of a weight in the load's forms (preset(s) or one kernel)."""
        if isinstance(weight, str):
            return self.kernels[weight]
        if weight and isinstance(weight[0], str):
            return self.kernels[weight[f]]
        return weight

    def follower_requests(self, params: dict[str, Any], answer: dict[str, Any]) -> list[tuple[str, str, Any]]:
        """What static/js/followers.js sends once a conv answer is painted: im2col, explain, backward,
        transpose and, with several input channels per filter, the per-channel contributions."""
        _, filters, oh, ow = answer["conv"]["shape"]
        f = 0  # the page's default selection [0, 12, 16], clamped to the output
        position = [f, min(12, oh - 1), min(16, ow - 1)]
        body = {**params, "values": False, "pool": None}
        out: list[tuple[str, str, Any]] = [
            ("POST /api/im2col (follower)", "/api/im2col", {**body, "indices": True, "columns": None}),
            ("POST /api/explain (follower)", "/api/explain", {**body, "position": position}),
            ("POST /api/backward (follower)", "/api/backward",
             {**body, "upstream": {"kind": "ones", "position": position, "seed": 0}, "target": "conv"}),
        ]
        kernel = self.kernel_of(params["weight"], f)
        values = answer["conv"]["maps"][f].get("values")
        y0, x0 = max(0, min(position[1] - 1, oh - 3)), max(0, min(position[2] - 1, ow - 3))
        x = [[round(values[y0 + r][x0 + c], 2) if values else 1 for c in range(min(3, ow))]
             for r in range(min(3, oh))]
        stride = params.get("stride", 1)
        dilation = params.get("dilation", 1)
        out.append(("POST /api/transpose (follower)", "/api/transpose",
                    {"x": x, "weight": kernel, "stride": stride, "padding": [0, 0], "output_padding": [0, 0],
                     "dilation": dilation}))
        channels = answer["input"]["shape"][1]
        if channels > 1:
            zero = [[0.0] * len(kernel[0]) for _ in kernel]
            weight = [[kernel if k == c else zero for k in range(channels)] for c in range(channels)]
            out.append(("POST /api/conv (channels follower)", "/api/conv",
                        {**params, "weight": weight, "bias": [0.0] * channels, "groups": 1,
                         "activation": "none", "pool": None}))
        return out

    async def follow(self, requests: list[tuple[str, str, Any]]) -> None:
        await asyncio.sleep(0.06)  # followers.js: 60 ms after the maps are painted
        await asyncio.gather(*(self.request(kind, "POST", path, json=body) for kind, path, body in requests))

    def after_conv(self, params: dict[str, Any], response: httpx.Response | None) -> None:
        """Start the follow-up round of a conv answer, superseding the unfinished previous one (the page's
        ``api.latest`` aborts a pending request when a newer one of its kind goes out)."""
        if not self.followers or response is None or response.status_code != 200:
            return
        self.cancel_round()
        answer = orjson.loads(response.content)  # orjson: the client shares the CPUs with the server
        self._round = asyncio.create_task(self.follow(self.follower_requests(params, answer)))

    def cancel_round(self) -> None:
        if self._round is not None and not self._round.done():
            self._round.cancel()
            self.superseded[0] += 1

    async def settle(self) -> None:
        """The end of a drag: the student looks at the whole page, so the last round completes."""
        if self._round is not None:
            try:
                await self._round
            except asyncio.CancelledError:
                pass
            self._round = None

    # ------------------------------------------------------------------ activities

    async def open_page(self) -> None:
        await self.request("GET /", "GET", "/")
        await self.request("GET /api/kernels", "GET", "/api/kernels")
        await self.request("GET /api/mnist", "GET", "/api/mnist", params={"limit": 100})

    def random_weight(self, size: int) -> list[list[float]]:
        return [[round(self.rng.uniform(-1, 1), 3) for _ in range(size)] for _ in range(size)]

    def slider_step(self, params: dict[str, Any]) -> None:
        """Move one control of the MNIST view, as one slider or selector event would."""
        control = self.rng.choice(["stride", "padding", "kernel", "dilation", "filters", "pool"])
        if control == "stride":
            params["stride"] = self.rng.randint(1, 3)
        elif control == "padding":
            params["padding"] = self.rng.randint(0, 3)
        elif control == "kernel":
            params["weight"] = self.random_weight(self.rng.choice([1, 3, 5, 7]))
        elif control == "dilation":
            params["dilation"] = self.rng.randint(1, 2)
        elif control == "filters":
            params["weight"] = self.rng.sample(PRESETS_3X3, self.rng.randint(1, 8))
        else:
            params["pool"] = None if params.get("pool") else {"mode": self.rng.choice(["max", "avg"]),
                                                              "kernel_size": 2}

    async def drag_on_digit(self) -> None:
        params: dict[str, Any] = {"image": f"mnist:{self.rng.randrange(10000)}", "weight": "sobel_x",
                                  "stride": 1, "padding": 1, "dilation": 1, "activation": "relu",
                                  "pool": {"mode": "max", "kernel_size": 2}, "values": True}
        for _ in range(self.rng.randint(4, 12)):
            if not self.running():
                return
            self.slider_step(params)
            response = await self.request("POST /api/conv (mnist)", "POST", "/api/conv", json=params)
            self.after_conv(params, response)
            await self.pause(0.03, 0.12)
        await self.settle()

    async def drag_on_photo(self) -> None:
        params: dict[str, Any] = {"image": "sample:astronaut", "color": "rgb", "max_side": 256,
                                  "weight": self.rng.sample(PRESETS_3X3, self.rng.randint(1, 8)),
                                  "stride": 1, "padding": 1, "activation": "none", "pool": None}
        for _ in range(self.rng.randint(3, 8)):
            if not self.running():
                return
            control = self.rng.choice(["stride", "padding", "filters", "pool"])
            if control == "stride":
                params["stride"] = self.rng.randint(1, 2)
            elif control == "padding":
                params["padding"] = self.rng.randint(0, 2)
            elif control == "filters":
                params["weight"] = self.rng.sample(PRESETS_3X3, self.rng.randint(1, 8))
            else:
                params["pool"] = None if params["pool"] else {"mode": "max", "kernel_size": 2}
            response = await self.request("POST /api/conv (photo 256 rgb)", "POST", "/api/conv", json=params)
            self.after_conv(dict(params), response)
            await self.pause(0.05, 0.15)
        await self.settle()

    async def hover(self) -> None:
        # "same" padding, stride 1: the output is 28 × 28 like the digit, so every position below is valid.
        params: dict[str, Any] = {"image": f"mnist:{self.rng.randrange(10000)}", "padding": "same",
                                  "weight": self.rng.sample(PRESETS_3X3, 2), "activation": "relu"}
        y, x = self.rng.randrange(28), self.rng.randrange(28)
        for _ in range(self.rng.randint(3, 10)):
            if not self.running():
                return
            y = min(27, max(0, y + self.rng.randint(-1, 1)))
            x = min(27, max(0, x + self.rng.randint(-1, 1)))
            params["position"] = [self.rng.randrange(2), y, x]
            await self.request("POST /api/explain", "POST", "/api/explain", json=params)
            await self.pause(0.02, 0.08)

    async def browse(self) -> None:
        label = self.rng.randrange(10)
        offset = self.rng.randrange(0, 800, 100)
        answer = await self.request("GET /api/mnist", "GET", "/api/mnist",
                                    params={"label": label, "offset": offset, "limit": 100})
        items = answer.json().get("items", []) if answer is not None and answer.status_code == 200 else []
        for item in self.rng.sample(items, min(len(items), 12)):
            await self.request("GET /api/images/{id}.png", "GET", f"/api/images/{item['id']}.png")
        if items:
            await self.request("GET /api/images/{id}", "GET", f"/api/images/{self.rng.choice(items)['id']}")

    async def run(self) -> None:
        await self.pause(0.0, 2.0)  # students do not all arrive in the same millisecond
        await self.open_page()
        activities = [self.drag_on_digit, self.drag_on_photo, self.hover, self.browse]
        weights = [0.5, 0.25, 0.15, 0.10]
        while self.running():
            await self.rng.choices(activities, weights)[0]()
            await self.pause(1.0, 4.0)  # look at the result, listen to the teacher


# ---------------------------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(workers: int, store: str, http: str = HTTP_PROTOCOL) -> tuple[subprocess.Popen[bytes], str]:
    """``uvicorn app.main:app --workers N --http HTTP`` on 127.0.0.1; the process and its URL once healthy."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(workers), "--http", http, "--log-level", "warning", "--no-access-log"]
    env = {**os.environ, "CONVLENS_STORE_DIR": store}
    proc = subprocess.Popen(command, cwd=REPO, env=env, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"uvicorn exited with {proc.returncode}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    stop_server(proc)
    raise SystemExit("uvicorn did not answer /healthz within 60 s")


def group_cpu_seconds(group: int) -> float | None:
    """User + system CPU seconds used so far by the processes of process group ``group`` (Linux /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    try:
        entries = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return None
    for name in entries:
        try:
            with open(f"/proc/{name}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields after "(comm)": state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)  # the group this script created: uvicorn and its workers
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# ---------------------------------------------------------------------------------------------- report


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    if not sorted_values:
        return math.nan
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def summarise(records: list[Record], seconds: float) -> list[dict[str, Any]]:
    """One row per kind of request and a final "all" row: count, req/s, p50/p95/p99/max (ms), errors.

    ``server_p50_ms`` is the median of the server's own ``Server-Timing`` total (compute + encode, without
    queueing), where the endpoint reports one: the difference to ``p50_ms`` is time spent waiting for a CPU.
    """
    kinds = sorted({record.kind for record in records})
    rows = []
    for kind in [*kinds, "all"]:
        chosen = [r for r in records if kind == "all" or r.kind == kind]
        latencies = sorted(r.seconds * 1000 for r in chosen)
        server = sorted(r.server_ms for r in chosen if r.server_ms is not None)
        rows.append({
            "kind": kind, "requests": len(chosen), "per_second": len(chosen) / seconds,
            "p50_ms": percentile(latencies, 0.50), "p95_ms": percentile(latencies, 0.95),
            "p99_ms": percentile(latencies, 0.99), "max_ms": latencies[-1] if latencies else math.nan,
            "server_p50_ms": percentile(server, 0.50),
            "errors": sum(1 for r in chosen if not 200 <= r.status < 300),
        })
    return rows


def _ms(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.1f}"


def markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| request | count | req/s | p50 ms | p95 ms | p99 ms | max ms | server p50 ms | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in rows:
        name = f"**{row['kind']}**" if row["kind"] == "all" else row["kind"]
        lines.append(f"| {name} | {row['requests']} | {row['per_second']:.1f} | {row['p50_ms']:.1f} | "
                     f"{row['p95_ms']:.1f} | {row['p99_ms']:.1f} | {row['max_ms']:.1f} | "
                     f"{_ms(row['server_p50_ms'])} | {row['errors']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- main


async def warm_up(url: str) -> None:
    """One request of each kind per worker, so imports and first-call caches are not measured."""
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        for _ in range(4):
            await client.get("/")
            await client.post("/api/conv", json={"image": "mnist:0", "weight": "sobel_x", "values": True})
            await client.post("/api/conv", json={"image": "sample:astronaut", "color": "rgb", "max_side": 256,
                                                 "weight": ["sobel_x", "sobel_y"]})
            explain = {"image": "mnist:0", "weight": "sobel_x", "padding": "same", "position": [0, 10, 10]}
            await client.post("/api/explain", json=explain)


async def simulate(url: str, clients: int, duration: float, think: float, seed: int,
                   followers: bool = False) -> tuple[list[Record], list[str], float, int]:
    """Run the students; returns the records, the failures, the seconds taken and the follow-up rounds
    superseded (cancelled by a newer slider step, as the page does; not counted as requests)."""
    records: list[Record] = []
    failures: list[str] = []
    superseded = [0]
    # a browser keeps up to 6 connections per host; the followers of a step go out together
    limits = httpx.Limits(max_connections=clients * 6, max_keepalive_connections=clients * 6)
    async with httpx.AsyncClient(base_url=url, timeout=30, limits=limits) as client:
        presets = (await client.get("/api/kernels")).json()["kernels"]
        kernels = {p["name"]: p["weights"] for p in presets}
        start = time.monotonic()
        deadline = start + duration
        students = [Student(client, random.Random(seed * 1000 + i), deadline, think, records, failures,
                            followers, kernels, superseded)
                    for i in range(clients)]
        await asyncio.gather(*(student.run() for student in students))
        elapsed = time.monotonic() - start
    return records, failures, elapsed, superseded[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--clients", type=int, default=60, help="simultaneous students (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers to start (default 2)")
    parser.add_argument("--http", default=HTTP_PROTOCOL,
                        help=f"uvicorn --http for the server it starts (default {HTTP_PROTOCOL})")
    parser.add_argument("--followers", action=argparse.BooleanOptionalAction, default=False,
                        help="also send the page's follow-up requests (im2col, explain, backward, transpose, "
                        "channels) after each conv answer of a drag, as static/js/followers.js does "
                        "(default off: the profile of issue 6)")
    parser.add_argument("--think", type=float, default=1.0, help="scale every pause by this (default 1)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--url", help="use a running server on this loopback URL instead of starting one")
    parser.add_argument("--json", type=Path, help="also write the table as JSON here")
    args = parser.parse_args(argv)

    proc = None
    if args.url:
        if urlsplit(args.url).hostname not in LOOPBACK:
            parser.error("--url must be a loopback address (this tool only loads 127.0.0.1)")
        url = args.url.rstrip("/")
    with tempfile.TemporaryDirectory(prefix="convlens-load-") as store:
        try:
            if not args.url:
                proc, url = start_server(args.workers, store, args.http)
            asyncio.run(warm_up(url))
            server_cpu_start = group_cpu_seconds(proc.pid) if proc else None
            client_cpu_start = time.process_time()
            load = simulate(url, args.clients, args.duration, args.think, args.seed, args.followers)
            records, failures, elapsed, superseded = asyncio.run(load)
            client_cpu = time.process_time() - client_cpu_start
            server_cpu_end = group_cpu_seconds(proc.pid) if proc else None
        finally:
            if proc is not None:
                stop_server(proc)

    rows = summarise(records, elapsed)
    total = rows[-1]
    server = f"--workers {args.workers} --http {args.http}" if proc else "external server"
    print(f"\n{args.clients} clients for {elapsed:.1f} s against {url} ({server}, {os.cpu_count()} CPUs)\n")
    print(markdown(rows))
    hits = sum(1 for r in records if r.cache == "hit")
    cacheable = sum(1 for r in records if r.cache is not None)
    share = 100 * hits / max(cacheable, 1)
    print(f"\nresponse cache: {hits} hits of {cacheable} cacheable answers ({share:.0f}%)")
    if args.followers:
        print(f"\n{superseded} follow-up rounds superseded by a newer slider step (cancelled, as the page "
              "does; not counted above)")
    load_average = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
    cpu = f"CPU used: this client {client_cpu / elapsed:.2f} cores"
    if server_cpu_start is not None and server_cpu_end is not None:
        cpu += f", the server {(server_cpu_end - server_cpu_start) / elapsed:.2f} cores"
    print(f"\n{cpu}; 1-minute load average at the end {load_average:.1f} on {os.cpu_count()} CPUs")
    for failure in failures[:10]:
        print(f"error: {failure}")
    met = total["p95_ms"] < P95_TARGET_MS and total["errors"] == 0
    print(f"\n{total['per_second']:.1f} requests/s, p50 {total['p50_ms']:.1f} ms, "
          f"p95 {total['p95_ms']:.1f} ms, p99 {total['p99_ms']:.1f} ms, {total['errors']} errors — "
          f"target p95 < {P95_TARGET_MS:.0f} ms and 0 errors: {'met' if met else 'NOT met'}")
    if args.json:
        summary = {"clients": args.clients, "seconds": elapsed, "rows": rows}
        args.json.write_text(json.dumps(summary, indent=2))
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
