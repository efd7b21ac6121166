"""Server time of the algorithms view: ``POST /api/algorithms`` on a 256×256 RGB photo (target < 500 ms),
and the conv-method medians it measured (a markdown table).

In-process (TestClient, no socket), one BLAS thread as the server. Every request re-measures every method,
so the view's time is the sum of the methods' runs within the route's time budget, plus col2im and pooling.

    .venv/bin/python bench/bench_algorithms.py [--repeat 5] [--side 256]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # as the server
    os.environ.setdefault(_variable, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient  # noqa: E402

from app.main import create_app  # noqa: E402

TARGET_MS = 500.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="requests measured (after one warm-up)")
    parser.add_argument("--side", type=int, default=256, help="image side (max_side)")
    args = parser.parse_args(argv)
    client = TestClient(create_app())
    body = {
        "image": "sample:astronaut",
        "color": "rgb",
        "max_side": args.side,
        "weight": ["sobel_x", "sobel_y"],
        "padding": 1,
    }
    client.post("/api/algorithms", json=body)  # warm-up: image load, sources, first calls
    walls, server, last = [], [], None
    for _ in range(args.repeat):
        start = time.perf_counter()
        response = client.post("/api/algorithms", json=body)
        walls.append((time.perf_counter() - start) * 1000)
        response.raise_for_status()
        last = response.json()
        server.append(last["timing_ms"]["total"])
    assert last is not None
    wall = statistics.median(walls)
    print(
        f"POST /api/algorithms, {last['layer']['input_shape']} * {last['layer']['weight_shape']}, "
        f"{args.repeat} requests"
    )
    print(
        f"median wall {wall:.0f} ms (server {statistics.median(server):.0f} ms); "
        f"target < {TARGET_MS:.0f} ms: {'PASS' if wall < TARGET_MS else 'FAIL'}"
    )
    print(
        "stages of the last request (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in last["timing_ms"].items())
    )
    print()
    print("| method | median ms | runs | max abs diff | intermediates (bytes) | peak (bytes) |")
    print("|---|---:|---:|---:|---:|---:|")
    for row in last["conv"] + last["col2im"] + last["pool"]["methods"]:
        if not row["available"]:
            print(f"| {row['name']} | refused | 0 | – | – | – |")
            continue
        named = sum(row["intermediate_bytes"].values())
        print(
            f"| {row['name']} | {row['median_ms']:.2f} | {row['repeats']} | {row['max_abs_diff']:.2g} | "
            f"{named:,} | {row['peak_bytes']:,} |"
        )
    return 0 if wall < TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
