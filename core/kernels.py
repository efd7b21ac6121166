"""Named convolution kernels (presets) and two kernel generators.

Convention: every kernel here is applied by *cross-correlation*, as ``torch.nn.functional.conv2d`` and
:func:`core.conv.conv2d` do (no flip): ``out[y, x] = sum_{i, j} w[i, j] * img[y + i, x + j]``.
So ``sobel_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]`` gives a *positive* response where the image goes
from dark (left) to bright (right), and ``sobel_y`` is positive where it goes dark (top) to bright
(bottom). Textbooks that define convolution with a flipped kernel print these with the opposite sign.

Weights are ``ndarray``, dtype float64, shape ``(KH, KW)``.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import NamedTuple

import numpy as np


class Preset(NamedTuple):
    """A named kernel.

    Attributes
    ----------
    name : str
        Identifier used by the API (``"sobel_x"``).
    description : str
        One line for a student.
    weights : ndarray, shape (KH, KW), float64
    """

    name: str
    description: str
    weights: np.ndarray


def gaussian(size: int, sigma: float) -> np.ndarray:
    """A normalised, centred 2-D Gaussian kernel.

    Parameters
    ----------
    size : int
        Odd or even side length ``>= 1``; the centre is at ``(size - 1) / 2``.
    sigma : float
        Standard deviation in pixels, ``> 0``.

    Returns
    -------
    ndarray, shape (size, size), float64
        Sums to 1.

    Notes
    -----
    ``w[i, j] = exp(-((i - c)^2 + (j - c)^2) / (2 sigma^2)) / Z``,
    with ``c = (size - 1) / 2`` and ``Z`` the sum.
    """
    if int(size) != size or size < 1:
        raise ValueError(f"gaussian size must be a positive integer, got {size!r}")
    if not (sigma > 0 and math.isfinite(sigma)):
        raise ValueError(f"gaussian sigma must be a positive finite number, got {sigma!r}")
    size = int(size)
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(r**2) / (2.0 * sigma**2))
    w = np.outer(g, g)
    return w / w.sum()


def gabor(
    size: int,
    theta: float,
    sigma: float,
    wavelength: float,
    gamma: float = 1.0,
    psi: float = 0.0,
) -> np.ndarray:
    """A real Gabor kernel: a Gaussian envelope times a cosine grating.

    Parameters
    ----------
    size : int
        Side length ``>= 1``; the centre is at ``(size - 1) / 2``.
    theta : float
        Orientation of the grating's normal in radians (0 = stripes vertical, varying along x).
    sigma : float
        Standard deviation of the Gaussian envelope, pixels, ``> 0``.
    wavelength : float
        Wavelength of the cosine, pixels, ``> 0``.
    gamma : float, optional
        Spatial aspect ratio of the envelope (1 = circular).
    psi : float, optional
        Phase offset in radians (0 = even/symmetric, pi/2 = odd/edge-like).

    Returns
    -------
    ndarray, shape (size, size), float64
        Not normalised (a Gabor kernel need not sum to anything in particular).

    Notes
    -----
    ``x' = x cos(theta) + y sin(theta)``, ``y' = -x sin(theta) + y cos(theta)``,
    ``w = exp(-(x'^2 + gamma^2 y'^2) / (2 sigma^2)) * cos(2 pi x' / wavelength + psi)``,
    with ``x`` the column and ``y`` the row offset from the centre.
    """
    if int(size) != size or size < 1:
        raise ValueError(f"gabor size must be a positive integer, got {size!r}")
    for label, value in (("sigma", sigma), ("wavelength", wavelength)):
        if not (value > 0 and math.isfinite(value)):
            raise ValueError(f"gabor {label} must be a positive finite number, got {value!r}")
    size = int(size)
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    y, x = np.meshgrid(r, r, indexing="ij")
    xr = x * math.cos(theta) + y * math.sin(theta)
    yr = -x * math.sin(theta) + y * math.cos(theta)
    envelope = np.exp(-(xr**2 + (gamma**2) * yr**2) / (2.0 * sigma**2))
    return envelope * np.cos(2.0 * math.pi * xr / wavelength + psi)


def _a(rows: list[list[float]]) -> np.ndarray:
    return np.array(rows, dtype=np.float64)


def _build() -> OrderedDict[str, Preset]:
    table: list[tuple[str, str, np.ndarray]] = [
        ("identity", "Copies the image: a single 1 at the centre.", _a([[0, 0, 0], [0, 1, 0], [0, 0, 0]])),
        ("box_blur_3", "Average of the 3×3 neighbourhood (each weight 1/9).", np.full((3, 3), 1.0 / 9.0)),
        ("box_blur_5", "Average of the 5×5 neighbourhood (each weight 1/25).", np.full((5, 5), 1.0 / 25.0)),
        (
            "gaussian_3",
            "Gaussian blur 3×3: the binomial [1 2 1]ᵀ[1 2 1] / 16.",
            np.outer([1.0, 2.0, 1.0], [1.0, 2.0, 1.0]) / 16.0,
        ),
        (
            "gaussian_5",
            "Gaussian blur 5×5: the binomial [1 4 6 4 1]ᵀ[1 4 6 4 1] / 256.",
            np.outer([1.0, 4.0, 6.0, 4.0, 1.0], [1.0, 4.0, 6.0, 4.0, 1.0]) / 256.0,
        ),
        (
            "sharpen",
            "Sharpen: the centre minus its 4 neighbours, added to the image (sums to 1).",
            _a([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
        ),
        (
            "laplacian_4",
            "Laplacian (4-neighbour): second derivative; zero on flat and linear areas.",
            _a([[0, 1, 0], [1, -4, 1], [0, 1, 0]]),
        ),
        (
            "laplacian_8",
            "Laplacian (8-neighbour): also counts the diagonals; zero on flat areas.",
            _a([[1, 1, 1], [1, -8, 1], [1, 1, 1]]),
        ),
        (
            "sobel_x",
            "Sobel x: horizontal gradient, positive where dark (left) turns bright (right).",
            _a([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]),
        ),
        (
            "sobel_y",
            "Sobel y: vertical gradient, positive where dark (top) turns bright (bottom).",
            _a([[-1, -2, -1], [0, 0, 0], [1, 2, 1]]),
        ),
        (
            "prewitt_x",
            "Prewitt x: horizontal gradient with equal row weights.",
            _a([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]]),
        ),
        (
            "prewitt_y",
            "Prewitt y: vertical gradient with equal column weights.",
            _a([[-1, -1, -1], [0, 0, 0], [1, 1, 1]]),
        ),
        (
            "scharr_x",
            "Scharr x: horizontal gradient, more rotation-invariant than Sobel (3, 10, 3).",
            _a([[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]]),
        ),
        (
            "scharr_y",
            "Scharr y: vertical gradient, more rotation-invariant than Sobel (3, 10, 3).",
            _a([[-3, -10, -3], [0, 0, 0], [3, 10, 3]]),
        ),
        (
            "emboss",
            "Emboss: a diagonal gradient plus the image, so edges look raised.",
            _a([[-2, -1, 0], [-1, 1, 1], [0, 1, 2]]),
        ),
        (
            "outline",
            "Outline: 8 × centre minus the 8 neighbours; bright lines along edges.",
            _a([[-1, -1, -1], [-1, 8, -1], [-1, -1, -1]]),
        ),
        (
            "motion_blur",
            "Motion blur: average along the 5×5 main diagonal (each weight 1/5).",
            np.eye(5, dtype=np.float64) / 5.0,
        ),
    ]
    presets: OrderedDict[str, Preset] = OrderedDict()
    for name, description, weights in table:
        weights = np.ascontiguousarray(weights, dtype=np.float64)
        weights.setflags(write=False)
        presets[name] = Preset(name, description, weights)
    return presets


PRESETS: OrderedDict[str, Preset] = _build()
"""Every preset, in display order: name -> :class:`Preset` (weights read-only)."""


def list_presets() -> list[Preset]:
    """All presets in display order.

    Returns
    -------
    list of Preset
    """
    return list(PRESETS.values())


def get_preset(name: str) -> Preset:
    """The preset called ``name``.

    Parameters
    ----------
    name : str

    Returns
    -------
    Preset
        Its ``weights`` are read-only; copy them before changing.

    Raises
    ------
    ValueError
        When ``name`` is not a preset; the message lists the known names.
    """
    try:
        return PRESETS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown kernel {name!r}; known kernels: {', '.join(PRESETS)}") from None
