"""In-process API benchmark: p50/p95 server time and response bytes per endpoint (a markdown table).

Server time is the time the application takes for one request through a TestClient (no socket), so it is
what a student waits for minus the network. Targets (issue 3): /api/conv on an MNIST digit with 8 filters
and pooling, full response, p50 < 5 ms; on a 256×256 RGB photo with 8 filters 3×3, p50 < 25 ms and
< 1 MB.

    .venv/bin/python bench/bench_api.py [--repeat 60]
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _variable in (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
):  # as the server (app/__init__)
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402
from PIL import Image  # noqa: E402

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402

EIGHT = ["sobel_x", "sobel_y", "prewitt_x", "prewitt_y", "scharr_x", "scharr_y", "laplacian_4", "sharpen"]


def photo_id(client: TestClient) -> str:
    """Upload a 256×256 RGB crop of the astronaut sample and return its id."""
    root = Path(__file__).resolve().parent.parent
    picture = Image.open(root / "data" / "samples" / "astronaut.png").convert("RGB").resize((256, 256))
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    response = client.post("/api/images", files={"file": ("astronaut.png", buffer.getvalue(), "image/png")})
    response.raise_for_status()
    return str(response.json()["id"])


def cases(image: str) -> list[tuple[str, str, str, dict | None]]:
    """(label, method, path, JSON body)."""
    mnist = {
        "image": "mnist:0",
        "weight": EIGHT,
        "padding": 1,
        "activation": "relu",
        "pool": {"mode": "max", "kernel_size": 2},
        "values": True,
    }
    photo = {"image": image, "color": "rgb", "weight": EIGHT, "padding": 1}
    return [
        ("conv MNIST, 8 filters + relu + max pool, values", "POST", "/api/conv", mnist),
        ("conv 256×256 RGB, 8 filters 3×3", "POST", "/api/conv", photo),
        (
            "conv 256×256 RGB, 8 filters 3×3 + max pool",
            "POST",
            "/api/conv",
            {**photo, "pool": {"kernel_size": 2}},
        ),
        (
            "conv 512×512 gray sample, 8 filters 3×3",
            "POST",
            "/api/conv",
            {"image": "sample:camera", "weight": EIGHT, "padding": 1},
        ),
        ("explain MNIST", "POST", "/api/explain", {**mnist, "position": [3, 10, 10]}),
        ("explain 256×256 RGB", "POST", "/api/explain", {**photo, "position": [3, 100, 100]}),
        (
            "im2col MNIST 3×3, indices",
            "POST",
            "/api/im2col",
            {"image": "mnist:0", "weight": "sobel_x", "padding": 1, "indices": True},
        ),
        ("im2col 256×256 RGB 3×3, columns 0..64", "POST", "/api/im2col", {**photo, "columns": [0, 64]}),
        (
            "backward MNIST through pool",
            "POST",
            "/api/backward",
            {**mnist, "target": "pool", "upstream": {"kind": "random", "seed": 1}},
        ),
        ("backward 256×256 RGB", "POST", "/api/backward", {**photo, "upstream": {"kind": "ones"}}),
        (
            "transpose 4×4 by 3×3 stride 2",
            "POST",
            "/api/transpose",
            {"x": [[1, 2, 3, 4]] * 4, "weight": [[1, 0, -1]] * 3, "stride": 2},
        ),
        (
            "shape",
            "POST",
            "/api/shape",
            {
                "input_size": [224, 224],
                "channels": 3,
                "filters": 64,
                "kernel_size": 7,
                "stride": 2,
                "padding": 3,
                "pool": {"kernel_size": 3, "stride": 2, "padding": 1},
            },
        ),
        ("conv.png MNIST 8 filters", "GET", "/api/conv.png?image=mnist:0&weight=" + ",".join(EIGHT), None),
        ("image png (upload)", "GET", f"/api/images/{image}.png", None),
        ("mnist list 100", "GET", "/api/mnist?limit=100", None),
        ("kernels", "GET", "/api/kernels", None),
    ]


class ServerClock:
    """ASGI wrapper timing each request inside the server: from the call until the last body byte is sent."""

    def __init__(self, app) -> None:
        self.app = app
        self.last_ms = 0.0

    async def __call__(self, scope, receive, send) -> None:
        start = time.perf_counter()
        await self.app(scope, receive, send)
        self.last_ms = (time.perf_counter() - start) * 1000


def measure(
    client: TestClient, clock: ServerClock, method: str, path: str, body: dict | None, repeat: int
) -> tuple[list[float], list[float], int]:
    server, total = [], []
    size = 0
    for i in range(repeat + 3):
        start = time.perf_counter()
        response = client.get(path) if method == "GET" else client.post(path, json=body)
        elapsed = (time.perf_counter() - start) * 1000
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {response.text[:300]}")
        if i >= 3:  # warm-up (caches, first-call imports)
            server.append(clock.last_ms)
            total.append(elapsed)
        size = len(response.content)
    return server, total, size


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as store:
        # computed: the response and layer caches off, so every request is computed in full
        computed = Settings(store_dir=store, response_cache_bytes=0, layer_cache_bytes=0)
        clock = ServerClock(create_app(computed))
        # cached: the default settings; after the first request every repeat is a cache hit
        hot_clock = ServerClock(create_app(Settings(store_dir=store)))
        with TestClient(clock) as client, TestClient(hot_clock) as hot:
            image = photo_id(client)
            rows = []
            for label, method, path, body in cases(image):
                server, total, size = measure(client, clock, method, path, body, args.repeat)
                cached, _, _ = measure(hot, hot_clock, method, path, body, max(10, args.repeat // 3))
                rows.append(
                    (label, statistics.median(server), percentile(server, 95), statistics.median(total), size,
                     statistics.median(cached))
                )
    print(
        f"API server time (inside the ASGI app), {args.repeat} requests each, in-process "
        f"(numpy {np.__version__}); computed = response cache off; cache hit = the same request repeated "
        "with the default cache (conv, explain, im2col, backward)\n"
    )
    print("| endpoint | p50 ms | p95 ms | p50 ms with client | response bytes | p50 ms cache hit |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for label, p50, p95, client_p50, size, hit in rows:
        print(f"| {label} | {p50:.1f} | {p95:.1f} | {client_p50:.1f} | {size:,} | {hit:.1f} |")
    targets = {rows[0][0]: (5.0, None), rows[1][0]: (25.0, 1_000_000)}
    print()
    for label, p50, _, _, size, _ in rows:
        if label in targets:
            limit_ms, limit_bytes = targets[label]
            ok = p50 < limit_ms and (limit_bytes is None or size < limit_bytes)
            extra = f", bytes < {limit_bytes:,}" if limit_bytes else ""
            verdict = "met" if ok else "NOT met"
            print(f"- target {label}: p50 < {limit_ms} ms{extra}: {verdict} ({p50:.1f} ms, {size:,} B)")


if __name__ == "__main__":
    main()
