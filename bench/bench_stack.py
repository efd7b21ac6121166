"""Layers API benchmark: a 6-conv-layer, 16-channel stack on a 256×256 RGB photo — all maps plus one ERF.

Target (issue 12): ``POST /api/stack`` (every map as a PNG, computed afresh: no response cache, no kept
forward pass) plus one ``POST /api/stack/field`` (the gradient of one unit and its ERF, ``depth: false``)
in under 150 ms of server time. Server time is measured in-process (TestClient, no socket) as wall time
and as CPU time of this process (``time.process_time``), which is the fairer figure on a shared machine.

    .venv/bin/python bench/bench_stack.py [--repeat 20]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # as the server
    os.environ.setdefault(_variable, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402

from app import stack_compute  # noqa: E402
from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.bench_api import photo_id  # noqa: E402

STACK = (
    "nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), "
    "nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), "
    "nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), "
    "nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 16, 3, padding=1))"
)


def measure(client: TestClient, method_body: tuple[str, dict], clear: bool) -> tuple[float, float, int]:
    """(wall ms, CPU ms, bytes) of one request."""
    path, body = method_body
    if clear:
        stack_compute._activations.clear()
    wall, cpu = time.perf_counter(), time.process_time()
    response = client.post(path, json=body)
    cpu, wall = (time.process_time() - cpu) * 1000, (time.perf_counter() - wall) * 1000
    response.raise_for_status()
    return wall, cpu, len(response.content)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings(store_dir=Path(folder) / "uploads", response_cache_bytes=0)
        with TestClient(create_app(settings)) as client:
            image = photo_id(client)
            stack = ("/api/stack", {"image": image, "color": "rgb", "text": STACK})
            field = (
                "/api/stack/field",
                {
                    "image": image,
                    "color": "rgb",
                    "text": STACK,
                    "layer": 12,
                    "channel": 0,
                    "y": 32,
                    "x": 32,
                    "depth": False,
                },
            )
            measure(client, stack, True)  # warm-up (imports, image cache)
            rows = {"stack": [], "field": [], "both": []}
            for _ in range(args.repeat):
                a = measure(client, stack, True)
                b = measure(client, field, False)
                rows["stack"].append(a)
                rows["field"].append(b)
                rows["both"].append((a[0] + b[0], a[1] + b[1], a[2] + b[2]))
    print(
        f"6 conv layers × 16 channels (13 layers with ReLU and 2 max pools) on 256×256 RGB, "
        f"{args.repeat} runs"
    )
    print("| request | wall p50 ms | CPU p50 ms | bytes |")
    print("|---|---:|---:|---:|")
    for label, values in rows.items():
        wall = statistics.median(v[0] for v in values)
        cpu = statistics.median(v[1] for v in values)
        print(f"| {label} | {wall:.1f} | {cpu:.1f} | {values[0][2]:,} |")
    both = statistics.median(v[1] for v in rows["both"])
    print(f"all maps + one ERF: {both:.0f} ms CPU (target < 150 ms)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
