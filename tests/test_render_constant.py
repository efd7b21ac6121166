"""Constant maps in app/render.py: a constant non-zero map must not look like a map of zeros.

Expected colours are written out by hand (mid-grey 128, black, the diverging palette's end blue
``(0, 255·0.3, 180)``, where 255·0.3 = 76.5 is a tie that either rounding may give) and read back
from the PNG with Pillow, not from the code under test.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.render import grid_png, map_png


def decode(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


@pytest.mark.parametrize("value", [1.0, 0.25, 676.0])
def test_constant_positive_map_is_mid_grey_not_black(value: float) -> None:
    png, colormap, lo, hi = map_png(np.full((5, 7), value, dtype=np.float32))
    pixels = decode(png)
    assert colormap == "sequential" and lo == hi == value
    assert pixels.shape == (5, 7, 3)
    assert (pixels == 128).all()


def test_constant_zero_map_stays_black() -> None:
    pixels = decode(map_png(np.zeros((4, 4), dtype=np.float32))[0])
    assert (pixels == 0).all()


def test_constant_negative_map_is_the_diverging_end_colour() -> None:
    png, colormap, _, _ = map_png(np.full((3, 3), -2.0, dtype=np.float32))
    assert colormap == "diverging"
    pixels = decode(png).reshape(-1, 3).astype(int)
    assert (pixels[:, 0] == 0).all() and (pixels[:, 2] == 180).all()
    assert (np.abs(pixels[:, 1] - 0.3 * 255) <= 0.5).all()  # 76.5: 76 or 77, nothing else
    assert len(np.unique(pixels, axis=0)) == 1


def test_non_constant_maps_keep_their_full_range() -> None:
    values = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    pixels = decode(map_png(values)[0])
    assert pixels[0, :, 0].tolist() == [0, 128, 255]  # rint(0.5 · 255) = 128


def test_constant_maps_in_a_grid_are_mid_grey() -> None:
    maps = np.stack([np.ones((3, 3), np.float32), np.arange(9, dtype=np.float32).reshape(3, 3)])
    pixels = decode(grid_png(maps, columns=2, gap=1))
    assert (pixels[:, :3] == 128).all()  # the constant map
    assert pixels[0, 4, 0] == 0 and pixels[2, 6, 0] == 255  # the other keeps black → white
