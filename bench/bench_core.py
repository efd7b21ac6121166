"""Benchmark core/ against PyTorch on one thread, float32, and against the textbook methods.

Run: ``python bench/bench_core.py`` (``--repeat N`` for more repeats). Prints a markdown table of
median times (µs) and ratios ours / torch with the targets of issue 2. Exits 0 without torch (the
table then has our times only).

The OpenBLAS kernel set in use (``OPENBLAS_CORETYPE``, if the environment pins one) is printed on
the first lines, since it changes the product times.
"""

from __future__ import annotations

import os
import sys

# One thread everywhere, set before NumPy (OpenBLAS) or torch is imported.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"


BLAS_NOTE = f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(unset: OpenBLAS detects the CPU)')}"

import argparse  # noqa: E402
import statistics  # noqa: E402
import timeit  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core import algorithms  # noqa: E402
from core.conv import conv2d, conv2d_backward, conv2d_naive  # noqa: E402
from core.im2col import col2im, im2col, pad_input  # noqa: E402
from core.pool import max_pool2d  # noqa: E402
from core.shapes import window_geometry  # noqa: E402

try:
    import torch
    import torch.nn.functional as F

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover - depends on the environment
    torch = None  # type: ignore[assignment]
    F = None  # type: ignore[assignment]


def median_us(func: Callable[[], Any], repeat: int) -> float:
    """Median over ``repeat`` runs of the per-call time in microseconds (timeit, autoranged)."""
    return pair_us(func, None, repeat)[0]


def pair_us(
    ours: Callable[[], Any], ref: Callable[[], Any] | None, repeat: int
) -> tuple[float, float | None]:
    """Medians (µs per call) of two functions timed alternately, so that a load spike on the machine
    hits both sides of a ratio alike."""
    timers = [timeit.Timer(ours)] + ([timeit.Timer(ref)] if ref is not None else [])
    numbers = []
    for timer in timers:
        timer.timeit(1)  # warm up
        number, _ = timer.autorange()
        numbers.append(max(1, number // 2))
    samples: list[list[float]] = [[] for _ in timers]
    for _ in range(repeat):
        for k, timer in enumerate(timers):
            samples[k].append(timer.timeit(numbers[k]) / numbers[k] * 1e6)
    medians = [statistics.median(values) for values in samples]
    return medians[0], (medians[1] if ref is not None else None)


# ---- the textbook methods, for comparison ----------------------------------------------------------


# They live in core/algorithms.py (the page's algorithms view runs the same code); thin wrappers here keep
# the int-argument calls of the tables below.


def im2col_dlfs(x: np.ndarray, kernel: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """ "Deep Learning from Scratch" im2col (:func:`core.algorithms.im2col_dlfs`) of the padded input."""
    g = window_geometry(x.shape[2:], kernel, stride, pad)
    return algorithms.im2col_dlfs(pad_input(x, g.padding), g.without_padding())


def conv_dlfs(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0) -> np.ndarray:
    """The DLfS Convolution.forward (:func:`core.algorithms.conv_dlfs_rows`) plus the bias."""
    return algorithms.run_conv_method("dlfs_rows", x, w, stride, pad) + b[:, None, None]


def conv_indices(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0) -> np.ndarray:
    """ML-From-Scratch style (:func:`core.algorithms.conv_indices`) plus the bias."""
    return algorithms.run_conv_method("indices", x, w, stride, pad) + b[:, None, None]


# ---- cases ------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7, help="timing repeats (median is reported)")
    args = parser.parse_args(argv)
    repeat = args.repeat
    rng = np.random.default_rng(0)
    f32 = np.float32
    rows: list[tuple[str, float, float | None, float | None]] = []

    def t(a: np.ndarray) -> Any:
        return torch.from_numpy(a) if torch is not None else a

    conv_cases = [
        ("conv2d fwd x (1,1,28,28), w (30,1,5,5)", (1, 1, 28, 28), (30, 1, 5, 5), 1, 0, 1.0),
        ("conv2d fwd x (64,1,28,28), w (30,1,5,5)", (64, 1, 28, 28), (30, 1, 5, 5), 1, 0, 1.0),
        ("conv2d fwd x (1,3,256,256), w (8,3,3,3), padding 1", (1, 3, 256, 256), (8, 3, 3, 3), 1, 1, 1.5),
        (
            "conv2d fwd x (1,3,512,512), w (8,3,3,3), stride 2, padding 1",
            (1, 3, 512, 512),
            (8, 3, 3, 3),
            2,
            1,
            1.5,
        ),
    ]
    data = {}
    for name, xs, ws, s, p, target in conv_cases:
        x, w, b = (
            rng.standard_normal(xs, dtype=f32),
            rng.standard_normal(ws, dtype=f32),
            rng.standard_normal(ws[0], dtype=f32),
        )
        data[name] = (x, w, b, s, p)
        xt, wt, bt = t(x), t(w), t(b)
        ours, ref = pair_us(
            lambda x=x, w=w, b=b, s=s, p=p: conv2d(x, w, b, s, p),
            None if torch is None else lambda xt=xt, wt=wt, bt=bt, s=s, p=p: F.conv2d(xt, wt, bt, s, p),
            repeat,
        )
        rows.append((name, ours, ref, target))

    # backward at the MNIST batch shape, against autograd's backward pass alone
    x, w = rng.standard_normal((64, 1, 28, 28), dtype=f32), rng.standard_normal((30, 1, 5, 5), dtype=f32)
    grad = rng.standard_normal((64, 30, 24, 24), dtype=f32)
    autograd = None
    if torch is not None:
        xt, wt = t(x).requires_grad_(), t(w).requires_grad_()
        bt = torch.zeros(30, requires_grad=True)
        out = F.conv2d(xt, wt, bt)
        gt = t(grad)

        def autograd() -> Any:
            return torch.autograd.grad(out, (xt, wt, bt), gt, retain_graph=True)

    ours, ref = pair_us(lambda: conv2d_backward(grad, x, w), autograd, repeat)
    rows.append(("conv2d_backward at (64,1,28,28), (30,1,5,5) vs autograd", ours, ref, 0.5))

    for xs in ((64, 30, 24, 24), (1, 8, 256, 256)):
        x = rng.standard_normal(xs, dtype=f32)
        ours, ref = pair_us(
            lambda x=x: max_pool2d(x, 2, 2),
            None if torch is None else lambda xt=t(x): F.max_pool2d(xt, 2, 2),
            repeat,
        )
        rows.append((f"max_pool2d 2×2 on {xs}", ours, ref, 0.25))

    # ---- textbook methods (ratio against torch where the same operation exists) -------------------
    x, w, b, s, p = data[conv_cases[2][0]]
    torch_256 = rows[2][2]
    rows.append(
        (
            "textbook: conv via index-based im2col (k, i, j), (1,3,256,256) p1",
            median_us(lambda: conv_indices(x, w, b, s, p), repeat),
            torch_256,
            None,
        )
    )
    rows.append(
        (
            "textbook: conv via DLfS row-major im2col, (1,3,256,256) p1",
            median_us(lambda: conv_dlfs(x, w, b, s, p), repeat),
            torch_256,
            None,
        )
    )
    unfold_ref = median_us(lambda: F.unfold(t(x), 3, 1, 1, 1), repeat) if torch is not None else None
    for method in ("slices", "view", "indices"):
        rows.append(
            (
                f"im2col method={method!r}, (1,3,256,256) 3×3 p1 (vs unfold)",
                median_us(lambda m=method: im2col(x, 3, 1, 1, method=m), repeat),
                unfold_ref,
                None,
            )
        )
    rows.append(
        (
            "textbook: DLfS row-major im2col, (1,3,256,256) 3×3 p1 (vs unfold)",
            median_us(lambda: im2col_dlfs(x, 3, 1, 1), repeat),
            unfold_ref,
            None,
        )
    )
    cols = im2col(x, 3, 1, 1)
    fold_ref = (
        median_us(lambda: F.fold(t(cols), (256, 256), 3, 1, 1, 1), repeat) if torch is not None else None
    )
    for method in ("slices", "add_at"):
        rows.append(
            (
                f"col2im method={method!r}, (1,3,256,256) 3×3 p1 (vs fold)",
                median_us(lambda m=method: col2im(cols, x.shape, 3, 1, 1, method=m), repeat),
                fold_ref,
                None,
            )
        )
    x, w, b, s, p = data[conv_cases[0][0]]
    torch_28 = rows[0][2]
    rows.append(
        (
            "naive loops conv2d_naive, (1,1,28,28), (30,1,5,5)",
            median_us(lambda: conv2d_naive(x, w, b, s, p), max(3, repeat // 2)),
            torch_28,
            None,
        )
    )

    print(
        f"numpy {np.__version__}" + (f", torch {torch.__version__}" if torch is not None else ""),
        "— one thread, float32, median µs",
    )
    print(BLAS_NOTE)
    if torch is None:
        print("torch not installed: our times only")
    print()
    print("| case | ours (µs) | torch (µs) | ratio | target | met |")
    print("| --- | ---: | ---: | ---: | ---: | :---: |")
    for name, ours, ref, target in rows:
        ratio = ours / ref if ref else None
        met = "" if target is None or ratio is None else ("yes" if ratio <= target else "no")
        print(
            f"| {name} | {ours:,.0f} | {'—' if ref is None else f'{ref:,.0f}'} | "
            f"{'—' if ratio is None else f'{ratio:.2f}'} | "
            f"{'—' if target is None else f'≤ {target}'} | {met} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
