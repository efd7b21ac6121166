"""Central finite differences, the independent reference for every backward pass in the core tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numeric_gradient(f: Callable[[], float], a: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Gradient of the scalar ``f()`` with respect to ``a``, perturbing ``a`` in place one entry at a time.

    Notes
    -----
    ``∂f/∂a_k ≈ (f(a + h e_k) − f(a − h e_k)) / 2h``; the error is O(h²).
    """
    grad = np.zeros_like(a)
    flat, gflat = a.reshape(-1), grad.reshape(-1)
    for k in range(flat.size):
        keep = flat[k]
        flat[k] = keep + h
        up = f()
        flat[k] = keep - h
        down = f()
        flat[k] = keep
        gflat[k] = (up - down) / (2 * h)
    return grad


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """``‖a − b‖ / (‖a‖ + ‖b‖)``, with 0/0 taken as 0."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-300))
