"""Feature maps → PNG pictures (Pillow, ``compress_level=1`` for speed).

Colour maps are 256-entry ``uint8`` look-up tables, written into the PNG as its palette: a map is
quantised to 8-bit indices once (one ``np.rint``) and the PNG is a palette image, one byte per pixel,
whatever the colours. The colours are exactly the page's (``static/js/render/common.js``), so its
colour bars match the pictures.

- **diverging** (blue–white–red, white = 0) for a map with negative values, over ``±max|v|``;
- **sequential** (black → white) for a non-negative map, over ``[min, max]``; a constant non-zero map is
  mid-grey (``CONSTANT_INDEX``), not black, so it does not look like zeros.
"""

from __future__ import annotations

import base64
import io
import struct
import zlib
from typing import Any, Literal

import numpy as np
from PIL import Image

Colormap = Literal["diverging", "sequential"]


def _diverging_lut() -> np.ndarray:
    t = np.clip((np.arange(256) - 127) / 127.0, -1.0, 1.0)  # index 127 is exactly 0 (white); 255 = 254
    lut = np.empty((256, 3), dtype=np.float64)
    pos = np.clip(t, 0, 1)
    neg = np.clip(-t, 0, 1)
    upper = t >= 0
    lut[upper] = np.stack([255 - 75 * pos, 255 * (1 - pos), 255 * (1 - pos)], axis=1)[upper]
    lut[~upper] = np.stack([255 * (1 - neg), 255 * (1 - 0.7 * neg), 255 - 75 * neg], axis=1)[~upper]
    return np.rint(lut).astype(np.uint8)


DIVERGING_LUT = _diverging_lut()
"""(256, 3) uint8: index ``i`` is the colour of ``t = (i − 127) / 127`` (white at 127; 255 = 254)."""
SEQUENTIAL_LUT = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
"""(256, 3) uint8: black → white."""


CONSTANT_INDEX = 128
"""Palette index of a constant non-zero sequential map: mid-grey, as ``static/js/render/common.js``
draws it."""


def choose_colormap(minimum: float, maximum: float) -> Colormap:
    """``"diverging"`` when the map has a negative value, else ``"sequential"``."""
    return "diverging" if minimum < 0 else "sequential"


def to_indices(values: np.ndarray, colormap: Colormap, minimum: float, maximum: float) -> np.ndarray:
    """Quantise a map to palette indices.

    Parameters
    ----------
    values : ndarray, shape (H, W)
    colormap : {"diverging", "sequential"}
    minimum, maximum : float
        The map's range (``values.min()``, ``values.max()``).

    Returns
    -------
    ndarray of uint8, shape (H, W)

    Notes
    -----
    diverging: ``i = rint(v / m · 127 + 127)`` with ``m = max(|min|, |max|)`` (0 → 127, white);
    sequential: ``i = rint((v − min) / (max − min) · 255)``. A constant sequential map has no range to
    spread: all zeros stay black (index 0), any other constant is the neutral mid-grey ``CONSTANT_INDEX``
    (so an upstream gradient of ones does not look like zeros); the page prints the value beside it.
    """
    v = np.asarray(values, dtype=np.float32)
    if colormap == "diverging":
        m = max(abs(minimum), abs(maximum)) or 1.0
        scaled = np.multiply(v, np.float32(127.0 / m))
        scaled += np.float32(127.0)
    elif maximum == minimum:
        return np.full(v.shape, CONSTANT_INDEX if minimum != 0 else 0, dtype=np.uint8)
    else:
        span = maximum - minimum
        scaled = np.subtract(v, np.float32(minimum))
        scaled *= np.float32(255.0 / span)
    np.clip(scaled, 0, 255, out=scaled)
    np.rint(scaled, out=scaled)
    return scaled.astype(np.uint8)


def levels(values: np.ndarray, minimum: float | None = None, maximum: float | None = None) -> dict[str, Any]:
    """A map (or several sharing one scale) as 8-bit colour-map levels, base64 — the page's compact form.

    The same quantisation as the PNGs (:func:`to_indices`), without the PNG: the page looks each level up
    in the same colour map (``static/js/render/pictures.js``), so the pixels are identical to the PNG's,
    and the server spends no time on zlib.

    Parameters
    ----------
    values : ndarray, shape (H, W) or (C, H, W)
        Finite. With C maps, one scale for all of them (as ``grid_png(shared_scale=True)``).
    minimum, maximum : float, optional
        The range, when the caller already has it.

    Returns
    -------
    dict
        ``{"shape": [..], "colormap": "diverging"|"sequential", "b64": base64 of H·W (·C) uint8 levels,
        row-major}``.
    """
    lo = float(values.min()) if minimum is None else minimum
    hi = float(values.max()) if maximum is None else maximum
    colormap = choose_colormap(lo, hi)
    indices = to_indices(values, colormap, lo, hi)
    return {
        "shape": list(values.shape),
        "colormap": colormap,
        "b64": base64.b64encode(indices.tobytes()).decode("ascii"),
    }


def _chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PLTE = {
    name: _chunk(b"PLTE", lut.tobytes())
    for name, lut in (("diverging", DIVERGING_LUT), ("sequential", SEQUENTIAL_LUT))
}
_IEND = _chunk(b"IEND", b"")


def raw_png(pixels: np.ndarray, colour_type: int, plte: bytes = b"", sub_filter: bool = False) -> bytes:
    """PNG bytes of 8-bit ``pixels``, shape (H, W) or (H, W, 3), one IDAT at zlib level 1.

    Parameters
    ----------
    pixels : ndarray of uint8, shape (H, W) or (H, W, 3)
    colour_type : int
        PNG's: 0 gray, 2 RGB, 3 palette (then ``plte`` is the PLTE chunk).
    plte : bytes
    sub_filter : bool
        Filter every row with PNG's "Sub" (each byte minus the one a pixel to the left), which
        compresses photos far better; otherwise filter "None" (right for palette maps).
    """
    h, w = pixels.shape[:2]
    flat = pixels.reshape(h, -1)
    rows = np.empty((h, flat.shape[1] + 1), dtype=np.uint8)
    if sub_filter:
        bpp = flat.shape[1] // w
        rows[:, 0] = 1
        rows[:, 1 : bpp + 1] = flat[:, :bpp]
        np.subtract(flat[:, bpp:], flat[:, :-bpp], out=rows[:, bpp + 1 :])  # uint8: modulo 256, as PNG wants
    else:
        rows[:, 0] = 0
        rows[:, 1:] = flat
    header = struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0)
    idat = _chunk(b"IDAT", zlib.compress(rows.tobytes(), 1))
    return b"".join((_PNG_SIGNATURE, _chunk(b"IHDR", header), plte, idat, _IEND))


def indices_png(indices: np.ndarray, colormap: Colormap) -> bytes:
    """PNG bytes of a ``(H, W)`` uint8 index image with the colour map as its palette.

    Written directly (signature, IHDR, PLTE, one IDAT of zlib level 1, IEND; every row with filter type
    0) rather than through Pillow: for the many small maps of one response, Pillow's per-image overhead
    costs more than the compression.
    """
    return raw_png(indices, 3, _PLTE[colormap])


def map_png(values: np.ndarray) -> tuple[bytes, Colormap, float, float]:
    """One map as a PNG.

    Parameters
    ----------
    values : ndarray, shape (H, W)
        Finite.

    Returns
    -------
    png : bytes
    colormap : {"diverging", "sequential"}
    minimum, maximum : float
    """
    minimum, maximum = float(values.min()), float(values.max())
    colormap = choose_colormap(minimum, maximum)
    return indices_png(to_indices(values, colormap, minimum, maximum), colormap), colormap, minimum, maximum


def image_png(x: np.ndarray) -> bytes:
    """An input array ``(C, H, W)`` with values in [0, 1] (C = 1 or 3) as an 8-bit PNG."""
    pixels = np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)
    if pixels.shape[0] == 1:
        return raw_png(pixels[0], 0, sub_filter=True)
    return raw_png(pixels.transpose(1, 2, 0), 2, sub_filter=True)


def activation_png(x: np.ndarray) -> bytes:
    """The picture of an activation used as an input ``(C, H, W)`` (any values): the mean of its C
    channels, ``H × W`` pixels, in the maps' colour map (:func:`map_png`: sequential when it has one sign,
    diverging around 0 otherwise), so that it lines up pixel for pixel with the input it stands for.

    Notes
    -----
    ``picture[y, x] = (1/C) · Σ_c x[c, y, x]``; the exact values of every channel are in the answers
    (``explain``, im2col), this is only the picture under the sliding window.
    """
    return map_png(np.asarray(x, dtype=np.float32).mean(axis=0))[0]


def grid_png(maps: np.ndarray, columns: int | None = None, gap: int = 2, shared_scale: bool = False) -> bytes:
    """Several maps side by side in one PNG (for slides), each with its own colour range.

    Parameters
    ----------
    maps : ndarray, shape (F, H, W)
    columns : int, optional
        Maps per row (default: up to 4).
    gap : int
        Pixels of white between maps.
    shared_scale : bool
        One range for all maps instead of one each.

    Returns
    -------
    bytes
        An RGB PNG of ``rows·H + (rows−1)·gap`` by ``columns·W + (columns−1)·gap`` pixels.
    """
    count, h, w = maps.shape
    columns = columns or min(count, 4)
    rows = -(-count // columns)
    canvas = np.full((rows * h + (rows - 1) * gap, columns * w + (columns - 1) * gap, 3), 255, dtype=np.uint8)
    lo, hi = float(maps.min()), float(maps.max())
    for index in range(count):
        m = maps[index]
        mn, mx = (lo, hi) if shared_scale else (float(m.min()), float(m.max()))
        colormap = choose_colormap(mn, mx)
        lut = DIVERGING_LUT if colormap == "diverging" else SEQUENTIAL_LUT
        r, c = divmod(index, columns)
        y, x = r * (h + gap), c * (w + gap)
        canvas[y : y + h, x : x + w] = np.take(lut, to_indices(m, colormap, mn, mx), axis=0)
    buffer = io.BytesIO()
    Image.fromarray(canvas, "RGB").save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    """``data:image/png;base64,...`` for a PNG."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
