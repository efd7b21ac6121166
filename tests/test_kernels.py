"""core.kernels: presets worked by hand, and the two generators against their formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core import kernels

EXPECTED_NAMES = [
    "identity", "box_blur_3", "box_blur_5", "gaussian_3", "gaussian_5", "sharpen", "laplacian_4",
    "laplacian_8", "sobel_x", "sobel_y", "prewitt_x", "prewitt_y", "scharr_x", "scharr_y", "emboss",
    "outline", "motion_blur",
]  # fmt: skip


def correlate_valid(image: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Plain-loop 2-D cross-correlation, 'valid' (the convention the presets are documented in)."""
    kh, kw = w.shape
    out = np.zeros((image.shape[0] - kh + 1, image.shape[1] - kw + 1))
    for y in range(out.shape[0]):
        for x in range(out.shape[1]):
            out[y, x] = sum(w[i, j] * image[y + i, x + j] for i in range(kh) for j in range(kw))
    return out


def test_names_in_order_and_listing():
    assert list(kernels.PRESETS) == EXPECTED_NAMES
    assert [p.name for p in kernels.list_presets()] == EXPECTED_NAMES


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_each_preset_is_well_formed(name):
    preset = kernels.get_preset(name)
    assert preset.name == name
    assert isinstance(preset.description, str) and 10 < len(preset.description) < 120
    assert "\n" not in preset.description
    assert preset.weights.dtype == np.float64 and preset.weights.ndim == 2
    assert np.all(np.isfinite(preset.weights))
    with pytest.raises(ValueError, match="read-only"):
        preset.weights[0, 0] = 3.0  # read-only: nobody can corrupt the shared table


def test_sobel_x_exact_and_sign_convention():
    np.testing.assert_array_equal(kernels.get_preset("sobel_x").weights, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    sobel_x = kernels.get_preset("sobel_x").weights
    np.testing.assert_array_equal(kernels.get_preset("sobel_y").weights, sobel_x.T)
    # dark (0) on the left, bright (1) on the right: positive response by cross-correlation
    step = np.zeros((5, 6))
    step[:, 3:] = 1.0
    response = correlate_valid(step, kernels.get_preset("sobel_x").weights)
    assert response.max() == 4.0 and response.min() == 0.0
    down = np.zeros((6, 5))
    down[3:, :] = 1.0
    assert correlate_valid(down, kernels.get_preset("sobel_y").weights).max() == 4.0


@pytest.mark.parametrize(
    ("name", "total"),
    [("identity", 1), ("box_blur_3", 1), ("box_blur_5", 1), ("gaussian_3", 1), ("gaussian_5", 1),
     ("sharpen", 1), ("laplacian_4", 0), ("laplacian_8", 0), ("sobel_x", 0), ("sobel_y", 0), ("prewitt_x", 0),
     ("prewitt_y", 0), ("scharr_x", 0), ("scharr_y", 0), ("emboss", 1), ("outline", 0), ("motion_blur", 1)],
)  # fmt: skip
def test_sums_by_hand(name, total):
    # blurs keep brightness (sum 1); derivative kernels give 0 on a flat image (sum 0)
    assert kernels.get_preset(name).weights.sum() == pytest.approx(total, abs=1e-12)


def test_hand_values():
    np.testing.assert_allclose(kernels.get_preset("gaussian_3").weights[1], [2 / 16, 4 / 16, 2 / 16])
    assert kernels.get_preset("gaussian_5").weights[2, 2] == pytest.approx(36 / 256)
    assert kernels.get_preset("box_blur_5").weights.shape == (5, 5)
    assert kernels.get_preset("laplacian_4").weights[1, 1] == -4
    assert kernels.get_preset("outline").weights[1, 1] == 8
    identity = np.arange(25.0).reshape(5, 5)
    same = correlate_valid(identity, kernels.get_preset("identity").weights)
    np.testing.assert_array_equal(same, identity[1:4, 1:4])
    # Laplacian of a linear ramp is zero
    ramp = np.add.outer(np.arange(6.0), 2 * np.arange(6.0))
    np.testing.assert_allclose(correlate_valid(ramp, kernels.get_preset("laplacian_8").weights), 0.0)


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match="sobel_x") as info:
        kernels.get_preset("sobel_z")
    assert "sobel_z" in str(info.value)
    with pytest.raises(ValueError, match="unknown kernel None; known kernels: .*sobel_x"):
        kernels.get_preset(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(("size", "sigma"), [(1, 1.0), (3, 0.8), (5, 1.0), (4, 2.0), (7, 1.5)])
def test_gaussian_generator(size, sigma):
    w = kernels.gaussian(size, sigma)
    assert w.shape == (size, size) and w.dtype == np.float64
    assert w.sum() == pytest.approx(1.0)
    c = (size - 1) / 2
    ref = np.array([[math.exp(-((i - c) ** 2 + (j - c) ** 2) / (2 * sigma**2)) for j in range(size)]
                    for i in range(size)])  # fmt: skip
    np.testing.assert_allclose(w, ref / ref.sum(), rtol=1e-12)
    np.testing.assert_allclose(w, w.T)
    np.testing.assert_allclose(w, w[::-1, ::-1])


def test_gaussian_rejects_bad_arguments():
    for size, sigma, message in [
        (0, 1.0, "size must be a positive integer, got 0"),
        (2.5, 1.0, "size must be a positive integer, got 2.5"),
        (3, 0.0, "sigma must be a positive finite number, got 0.0"),
        (3, -1.0, "sigma must be a positive finite number, got -1.0"),
        (3, float("nan"), "sigma must be a positive finite number, got nan"),
    ]:
        with pytest.raises(ValueError, match=f"gaussian {message}"):
            kernels.gaussian(size, sigma)  # type: ignore[arg-type]


def test_gabor_generator():
    size, theta, sigma, lam, gamma, psi = 7, 0.3, 2.0, 4.0, 0.5, 0.2
    w = kernels.gabor(size, theta, sigma, lam, gamma, psi)
    assert w.shape == (7, 7)
    c = 3.0
    for i in range(size):  # row = y
        for j in range(size):  # column = x
            x, y = j - c, i - c
            xr = x * math.cos(theta) + y * math.sin(theta)
            yr = -x * math.sin(theta) + y * math.cos(theta)
            envelope = math.exp(-(xr**2 + gamma**2 * yr**2) / (2 * sigma**2))
            ref = envelope * math.cos(2 * math.pi * xr / lam + psi)
            assert w[i, j] == pytest.approx(ref, abs=1e-12)
    # theta = 0, psi = 0: stripes vary along x only near the centre row; symmetric left-right
    v = kernels.gabor(5, 0.0, 1.5, 3.0)
    np.testing.assert_allclose(v, v[:, ::-1], atol=1e-12)
    assert v[2, 2] == pytest.approx(1.0)
    # theta = pi/2 rotates it by a quarter turn
    np.testing.assert_allclose(kernels.gabor(5, math.pi / 2, 1.5, 3.0), v.T, atol=1e-12)
    with pytest.raises(ValueError, match="gabor sigma must be a positive finite number, got 0.0"):
        kernels.gabor(5, 0.0, 0.0, 3.0)
    with pytest.raises(ValueError, match="gabor wavelength must be a positive finite number, got -3.0"):
        kernels.gabor(5, 0.0, 1.0, -3.0)
