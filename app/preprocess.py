"""Turn a drawn or uploaded picture of a digit into what the MNIST network expects.

MNIST's own recipe (LeCun et al.): grey-level ink bright on a dark background, the digit's bounding box
scaled (anti-aliased, aspect kept) to fit a 20×20 box, then placed in a 28×28 field so that its centre of mass
sits at the centre. We do the same:

1. grayscale in [0, 1];
2. ink bright on dark: when the border of the picture is brighter than mid-grey the picture is inverted
   (paper and most uploads are dark ink on white; the page's canvas is already bright ink on black);
3. background removed (the border's median subtracted) and contrast stretched so the darkest ink is 1;
4. cropped to the bounding box of the pixels brighter than ``INK_THRESHOLD``;
5. resized (Lanczos, aspect kept) so the longer side is 20 pixels;
6. pasted into 28×28 and shifted by whole pixels so that the centre of mass (intensity-weighted) lands on
   pixel (14, 14) — where it is in the MNIST files (the mean over the test set is about (14.0, 14.0) in
   0-based row/column coordinates).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from PIL import Image

SIDE = 28
BOX = 20
CENTRE = 14.0
"""Row and column (0-based) where MNIST puts the centre of mass."""
INK_THRESHOLD = 0.1
"""A pixel with (background-removed, stretched) intensity above this counts as ink for the bounding box."""


class Preprocessed(NamedTuple):
    """Result of :func:`preprocess`.

    Attributes
    ----------
    image : ndarray, shape (28, 28), float32 in [0, 1]
        Ink bright on dark, ready for the network (after ``[None, None]``).
    inverted : bool
        The picture was dark on light and has been inverted.
    empty : bool
        No ink was found; ``image`` is all zeros.
    """

    image: np.ndarray
    inverted: bool
    empty: bool


def to_gray(picture: Any) -> np.ndarray:
    """A Pillow image or a 2-D array (0..1, or 0..255 if uint8) as float32 gray in [0, 1], shape (H, W)."""
    if isinstance(picture, Image.Image):
        if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
            background = Image.new("RGBA", picture.size, (255, 255, 255, 255))
            picture = Image.alpha_composite(background, picture.convert("RGBA"))
        return np.asarray(picture.convert("L"), dtype=np.float32) / np.float32(255.0)
    array = np.asarray(picture)
    if array.ndim != 2:
        raise ValueError(f"a drawn digit must be a 2-D grid of gray levels, got shape {array.shape}")
    if array.dtype == np.uint8:
        return array.astype(np.float32) / np.float32(255.0)
    array = array.astype(np.float32)
    if not np.all(np.isfinite(array)):
        raise ValueError("a drawn digit must hold finite gray levels")
    return np.clip(array, 0.0, 1.0)


def _border(gray: np.ndarray) -> np.ndarray:
    return np.concatenate([gray[0], gray[-1], gray[1:-1, 0], gray[1:-1, -1]])


def _fit_box(crop: np.ndarray) -> np.ndarray:
    """Resize ``crop`` (h, w) so the longer side is :data:`BOX`, aspect kept (Lanczos on float pixels)."""
    h, w = crop.shape
    scale = BOX / max(h, w)
    new_h, new_w = max(1, round(h * scale)), max(1, round(w * scale))
    resized = Image.fromarray(np.ascontiguousarray(crop, dtype=np.float32), "F").resize(
        (new_w, new_h), Image.Resampling.LANCZOS
    )
    return np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)


def center_of_mass(image: np.ndarray) -> tuple[float, float]:
    """Intensity-weighted centre ``(row, column)`` of a non-negative image with a positive sum."""
    total = float(image.sum())
    rows = np.arange(image.shape[0], dtype=np.float64)
    cols = np.arange(image.shape[1], dtype=np.float64)
    return float(image.sum(axis=1) @ rows / total), float(image.sum(axis=0) @ cols / total)


def preprocess(picture: Any) -> Preprocessed:
    """MNIST-style preprocessing of any picture of one digit.

    Parameters
    ----------
    picture : PIL.Image.Image or ndarray, shape (H, W)
        A drawn grid of gray levels in [0, 1] (either polarity) or an uploaded image.

    Returns
    -------
    Preprocessed
        ``image`` has shape (28, 28), float32 in [0, 1].

    Notes
    -----
    The 20×20-fitted digit (h × w) is pasted at the offset ``((28 − h) // 2, (28 − w) // 2)``, then shifted by
    ``round(14 − c)`` pixels along each axis, ``c`` being its centre of mass there.
    """
    gray = to_gray(picture)
    if gray.size == 0:
        raise ValueError("a drawn digit must have at least one pixel")
    border = _border(gray) if min(gray.shape) > 1 else gray.ravel()
    inverted = bool(np.median(border) > 0.5)
    ink = 1.0 - gray if inverted else gray
    background = float(np.median(_border(ink))) if min(ink.shape) > 1 else 0.0
    ink = np.clip(ink - background, 0.0, None)
    peak = float(ink.max())
    if peak <= 1e-3:
        return Preprocessed(np.zeros((SIDE, SIDE), np.float32), inverted, True)
    ink = ink / peak
    rows = np.flatnonzero((ink > INK_THRESHOLD).any(axis=1))
    cols = np.flatnonzero((ink > INK_THRESHOLD).any(axis=0))
    crop = ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    digit = _fit_box(crop)
    if digit.max() > 0:
        digit = digit / digit.max()
    h, w = digit.shape
    # paste centred by size into a larger field, then shift by the centre of mass and cut out 28×28
    margin = SIDE
    field = np.zeros((SIDE + 2 * margin, SIDE + 2 * margin), np.float32)
    top, left = (SIDE - h) // 2, (SIDE - w) // 2
    field[margin + top : margin + top + h, margin + left : margin + left + w] = digit
    cy, cx = center_of_mass(digit)
    dy = int(round(CENTRE - (top + cy)))
    dx = int(round(CENTRE - (left + cx)))
    out = field[margin - dy : margin - dy + SIDE, margin - dx : margin - dx + SIDE]
    return Preprocessed(np.ascontiguousarray(out, dtype=np.float32), inverted, False)
