"""Activations: ReLU and its backward step, softmax and log-softmax (numerically stable).

Any shape. dtype: float32 stays float32 and float64 stays float64; integer, bool and other real
input is converted to float64. NaN passes through.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.im2col import as_float_array


def relu(x: Any) -> np.ndarray:
    """``max(x, 0)`` elementwise.

    Parameters
    ----------
    x : ndarray, any shape

    Returns
    -------
    ndarray, same shape and (float) dtype
    """
    x = as_float_array(x)
    return np.maximum(x, 0)


def relu_backward(grad_out: Any, x: Any) -> np.ndarray:
    """Gradient of :func:`relu`: ``grad_out`` where ``x > 0``, else 0. Pure.

    Parameters
    ----------
    grad_out : ndarray, shape of ``x``
    x : ndarray
        The forward input.

    Returns
    -------
    ndarray, shape of ``x``

    Notes
    -----
    At ``x == 0`` the gradient is 0 (PyTorch's choice); like PyTorch's ``threshold_backward``, a NaN
    in ``x`` lets the gradient through.
    """
    x = as_float_array(x)
    grad = as_float_array(grad_out, "grad_out")
    if grad.shape != x.shape:
        raise ValueError(f"grad_out shape {tuple(grad.shape)} does not match x shape {tuple(x.shape)}")
    return np.where(x <= 0, np.zeros((), dtype=grad.dtype), grad)


def softmax(z: Any, axis: int = -1) -> np.ndarray:
    """Softmax along ``axis``, stable for large inputs.

    Parameters
    ----------
    z : ndarray, any shape
    axis : int

    Returns
    -------
    ndarray, shape of ``z``
        Non-negative, summing to 1 along ``axis``.

    Notes
    -----
    ``softmax(z)_i = exp(z_i − max z) / Σ_j exp(z_j − max z)``; subtracting the maximum leaves the
    value unchanged and keeps ``exp`` from overflowing.
    """
    z = as_float_array(z, "z")
    shifted = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)


def log_softmax(z: Any, axis: int = -1) -> np.ndarray:
    """Logarithm of :func:`softmax`, computed without forming the (possibly 0) softmax.

    Notes
    -----
    ``log_softmax(z)_i = (z_i − max z) − log Σ_j exp(z_j − max z)``.
    """
    z = as_float_array(z, "z")
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


__all__ = ["log_softmax", "relu", "relu_backward", "softmax"]
