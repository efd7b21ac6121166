"""Animations of a convolution, a transposed convolution or a pooling, in the style of Dumoulin & Visin's
conv_arithmetic: an "input" grid (padding cells distinct) with the kernel's footprint moving over it tap by
dilated tap, and an "output" grid filling in. On a large input the same picture without grid lines: the
window moving over the photo while the feature map builds up.

Everything is drawn with NumPy into RGB frames (cells, tints, outlines) and Pillow only writes text and
encodes. The frames are a pure function of the arrays and the options, so the bytes are deterministic
for the same parameters (the route's ETag relies on it).

Colours: the input as grey (or RGB) values in [0, 1]; zero padding a flat sand colour; a copied border
(reflect/replicate/circular) the copied value tinted sand; the output (and a pooling input) with the
colour maps of :mod:`app.render` and the final map's range, so the last frame's output grid is the map's
picture of ``GET /api/conv.png``, one colour per cell.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from app.render import DIVERGING_LUT, SEQUENTIAL_LUT, choose_colormap, to_indices

BACKGROUND = (255, 255, 255)
GRID_LINE = (170, 170, 170)
ZERO_PAD = (243, 217, 166)
BORDER_TINT = (np.array([217, 138, 0], dtype=np.float64), 0.28)  # as static/js/render/border.js
EMPTY = (255, 255, 255)
EMPTY_IMAGE = (225, 225, 225)
"""Not-yet-written output of a photo's animation (white is 0 in the diverging colour map)."""
TAP = (0, 200, 255)
IMAGE_EDGE = (217, 138, 0)
LABEL = (20, 20, 20)
MARGIN = 8
LABEL_HEIGHT = 18
GAP = 28
NUMBERS_MIN_CELL = 22
"""Cells at least this many pixels wide show their numbers (when ``numbers`` is 'auto')."""


def map_colors(values: np.ndarray, minimum: float | None = None, maximum: float | None = None) -> np.ndarray:
    """``(H, W)`` values → ``(H, W, 3)`` uint8 colours of the map picture (:func:`app.render.map_png`)."""
    lo = float(values.min()) if minimum is None else minimum
    hi = float(values.max()) if maximum is None else maximum
    colormap = choose_colormap(lo, hi)
    lut = DIVERGING_LUT if colormap == "diverging" else SEQUENTIAL_LUT
    return np.take(lut, to_indices(values, colormap, lo, hi), axis=0)


def image_colors(x: np.ndarray) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] (C = 1 or 3) → ``(H, W, 3)`` uint8, as :func:`app.render.image_png`.

    Anything else (an activation opened from the Layers view: C channels, any values) is drawn as
    :func:`app.render.activation_png` draws it: the mean of its channels in the maps' colour map.
    """
    if x.shape[0] not in (1, 3) or float(x.min()) < 0 or float(x.max()) > 1:
        return map_colors(x.mean(axis=0))
    pixels = np.rint(np.clip(x, 0, 1) * 255).astype(np.uint8)
    return np.repeat(pixels[0][..., None], 3, axis=2) if pixels.shape[0] == 1 else pixels.transpose(1, 2, 0)


def padded_colors(
    inner: np.ndarray, top: int, left: int, padded: tuple[int, int], sources: tuple | None
) -> np.ndarray:
    """The input grid's colours: ``inner (H, W, 3)`` at (top, left) in a ``padded`` grid; padding cells are
    sand (``sources`` None, zeros) or the tinted colour of the pixel they copy (``sources = (rows, cols)``,
    the input index of every padded row and column)."""
    ph, pw = padded
    h, w = inner.shape[:2]
    if sources is None:
        out = np.empty((ph, pw, 3), dtype=np.uint8)
        out[...] = ZERO_PAD
        out[top : top + h, left : left + w] = inner
        return out
    rows, cols = sources
    copied = inner[np.asarray(rows)[:, None], np.asarray(cols)[None, :]].astype(np.float64)
    tint, alpha = BORDER_TINT
    tinted = np.rint(copied * (1 - alpha) + tint * alpha).astype(np.uint8)
    tinted[top : top + h, left : left + w] = inner
    return tinted


@dataclass
class Grid:
    """One labelled grid of cells.

    Attributes
    ----------
    label : str
    colors : ndarray, shape (R, C, 3), uint8
    values : ndarray, shape (R, C), optional
        Numbers written in the cells when they fit.
    inner : (top, left, height, width), optional
        The image inside a padded grid, outlined.
    """

    label: str
    colors: np.ndarray
    values: np.ndarray | None = None
    inner: tuple[int, int, int, int] | None = None


@dataclass
class Frame:
    """What changes from frame to frame.

    Attributes
    ----------
    output_colors : ndarray, shape (OR, OC, 3)
        The output grid as it stands (unfilled cells white).
    output_values : ndarray, shape (OR, OC), optional
        Numbers of the filled cells (NaN: not written).
    input_taps : list of (row, col)
        Input cells the kernel reads now (dilated taps), outlined.
    output_cells : list of (row, col)
        Output cells written now, outlined.
    """

    output_colors: np.ndarray
    output_values: np.ndarray | None = None
    input_taps: list[tuple[int, int]] = field(default_factory=list)
    output_cells: list[tuple[int, int]] = field(default_factory=list)


@dataclass
class Layout:
    """Pixel geometry of a scene: cell sizes and the grids' top-left corners."""

    input_cell: int
    output_cell: int
    input_origin: tuple[int, int]
    output_origin: tuple[int, int]
    size: tuple[int, int]  # (height, width)
    gridlines: bool
    numbers: bool


def plan_layout(
    input_shape: tuple[int, int], output_shape: tuple[int, int], width: int, gridlines: bool, numbers: str
) -> Layout:
    """Integer cell sizes so that both grids side by side fit ``width`` pixels (at least 1 px a cell).

    The output cell is the input cell (the conv_arithmetic look) unless the output is larger, then both
    shrink together. ``numbers``: 'auto' (when a cell is ≥ 22 px), 'on' or 'off'.
    """
    (ih, iw), (oh, ow) = input_shape, output_shape
    line = 1 if gridlines else 0
    room = width - 2 * MARGIN - GAP
    cell = max(1, (room - line * (iw + ow + 2)) // (iw + ow))
    span_i = (iw * cell + line * (iw + 1), ih * cell + line * (ih + 1))
    span_o = (ow * cell + line * (ow + 1), oh * cell + line * (oh + 1))
    top = MARGIN + LABEL_HEIGHT
    height = top + max(span_i[1], span_o[1]) + MARGIN
    total_width = 2 * MARGIN + span_i[0] + GAP + span_o[0]
    show = numbers == "on" or (numbers == "auto" and cell >= NUMBERS_MIN_CELL)
    return Layout(
        cell, cell, (top, MARGIN), (top, MARGIN + span_i[0] + GAP), (height, total_width), gridlines, show
    )


def _cell_box(origin: tuple[int, int], cell: int, line: int, r: int, c: int) -> tuple[int, int, int, int]:
    y = origin[0] + line + r * (cell + line)
    x = origin[1] + line + c * (cell + line)
    return y, x, y + cell, x + cell


def _paint_grid(
    canvas: np.ndarray, origin: tuple[int, int], colors: np.ndarray, cell: int, line: int
) -> None:
    rows, cols = colors.shape[:2]
    block = np.repeat(np.repeat(colors, cell, axis=0), cell, axis=1)
    if line:
        h, w = rows * (cell + line) + line, cols * (cell + line) + line
        area = canvas[origin[0] : origin[0] + h, origin[1] : origin[1] + w]
        area[...] = GRID_LINE
        inner = area[line:, line:].reshape(rows, cell + line, cols, cell + line, 3)
        inner[:, :cell, :, :cell] = block.reshape(rows, cell, cols, cell, 3)
    else:
        canvas[origin[0] : origin[0] + rows * cell, origin[1] : origin[1] + cols * cell] = block


def _outline(
    canvas: np.ndarray, box: tuple[int, int, int, int], color: tuple[int, int, int], width: int
) -> None:
    y0, x0, y1, x1 = box
    width = max(1, min(width, (y1 - y0) // 2, (x1 - x0) // 2)) if y1 - y0 > 1 else 1
    canvas[y0 : y0 + width, x0:x1] = color
    canvas[y1 - width : y1, x0:x1] = color
    canvas[y0:y1, x0 : x0 + width] = color
    canvas[y0:y1, x1 - width : x1] = color


@cache
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)


def _number(value: float) -> str:
    if abs(value) < 0.005:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}".rstrip("0").rstrip(".") if abs(value) < 10 else f"{value:.1f}"


@cache
def _text_mask(text: str, size: int) -> np.ndarray:
    """Coverage (0..1) of ``text`` in the default font at ``size`` px, rendered once per process."""
    font = _font(size)
    left, top, right, bottom = font.getbbox(text)
    picture = Image.new("L", (max(1, int(right - left)), max(1, int(bottom - top))), 0)
    ImageDraw.Draw(picture).text((-left, -top), text, fill=255, font=font)
    return np.asarray(picture, dtype=np.float32) / 255


def _blit_text(
    canvas: np.ndarray,
    text: str,
    size: int,
    center: tuple[float, float] | None,
    corner: tuple[int, int] | None,
    ink: tuple[int, int, int],
) -> None:
    """Write ``text`` into ``canvas`` (H, W, 3) centred at ``center`` (y, x) or from ``corner`` (y, x)."""
    mask = _text_mask(text, size)
    h, w = mask.shape
    if center is not None:
        y0, x0 = int(round(center[0] - h / 2)), int(round(center[1] - w / 2))
    else:
        assert corner is not None
        y0, x0 = corner
    y1, x1 = min(canvas.shape[0], y0 + h), min(canvas.shape[1], x0 + w)
    y0c, x0c = max(0, y0), max(0, x0)
    if y1 <= y0c or x1 <= x0c:
        return
    alpha = mask[y0c - y0 : y1 - y0, x0c - x0 : x1 - x0, None]
    region = canvas[y0c:y1, x0c:x1].astype(np.float32)
    canvas[y0c:y1, x0c:x1] = np.rint(region * (1 - alpha) + np.array(ink, np.float32) * alpha).astype(
        np.uint8
    )


def _write_numbers(
    canvas: np.ndarray, layout: Layout, origin: tuple[int, int], colors: np.ndarray, values: np.ndarray
) -> None:
    line = 1 if layout.gridlines else 0
    size = max(8, layout.input_cell // 3)
    luminance = colors.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    for (r, c), v in np.ndenumerate(values):
        if np.isnan(v):
            continue
        y0, x0, y1, x1 = _cell_box(origin, layout.input_cell, line, r, c)
        ink = (0, 0, 0) if luminance[r, c] > 140 else (255, 255, 255)
        _blit_text(canvas, _number(float(v)), size, ((y0 + y1) / 2, (x0 + x1) / 2), None, ink)


def base_canvas(layout: Layout, source: Grid, output_label: str) -> np.ndarray:
    """What every frame shares: background, labels, the input grid (with its numbers) and, when the input is
    padded, a line around the image inside it."""
    canvas = np.empty((*layout.size, 3), dtype=np.uint8)
    canvas[...] = BACKGROUND
    line = 1 if layout.gridlines else 0
    _paint_grid(canvas, layout.input_origin, source.colors, layout.input_cell, line)
    if source.inner is not None:
        top, left, h, w = source.inner
        y0, x0, _, _ = _cell_box(layout.input_origin, layout.input_cell, line, top, left)
        _, _, y1, x1 = _cell_box(layout.input_origin, layout.input_cell, line, top + h - 1, left + w - 1)
        edge = 2 if layout.gridlines else 1
        _outline(canvas, (y0 - edge, x0 - edge, y1 + edge, x1 + edge), IMAGE_EDGE, edge)
    _blit_text(canvas, source.label, 13, None, (MARGIN, layout.input_origin[1]), LABEL)
    _blit_text(canvas, output_label, 13, None, (MARGIN, layout.output_origin[1]), LABEL)
    if layout.numbers and source.values is not None:
        _write_numbers(canvas, layout, layout.input_origin, source.colors, source.values)
    return canvas


def render(layout: Layout, base: np.ndarray, frame: Frame) -> np.ndarray:
    """One frame as ``(height, width, 3)`` uint8: ``base`` (:func:`base_canvas`) plus the output grid as it
    stands and the outlines of the taps read and the output written now.

    Parameters
    ----------
    layout : Layout
    base : ndarray, shape (height, width, 3), uint8
    frame : Frame

    Returns
    -------
    ndarray, shape (height, width, 3), uint8
    """
    canvas = base.copy()
    line = 1 if layout.gridlines else 0
    _paint_grid(canvas, layout.output_origin, frame.output_colors, layout.output_cell, line)
    if layout.numbers and frame.output_values is not None:
        _write_numbers(canvas, layout, layout.output_origin, frame.output_colors, frame.output_values)
    if layout.gridlines:  # conv_arithmetic: every (dilated) tap outlined
        width = max(1, layout.input_cell // 8) + 1
        for r, c in frame.input_taps:
            _outline(canvas, _cell_box(layout.input_origin, layout.input_cell, line, r, c), TAP, width)
        for r, c in frame.output_cells:
            _outline(canvas, _cell_box(layout.output_origin, layout.output_cell, line, r, c), TAP, width)
        return canvas
    # a photo: the window's span and the output pixel, framed a few pixels outside so they stay visible
    for origin, cell, cells in (
        (layout.input_origin, layout.input_cell, frame.input_taps),
        (layout.output_origin, layout.output_cell, frame.output_cells),
    ):
        if not cells:
            continue
        rows, cols = [r for r, _ in cells], [c for _, c in cells]
        y0, x0, _, _ = _cell_box(origin, cell, 0, min(rows), min(cols))
        _, _, y1, x1 = _cell_box(origin, cell, 0, max(rows), max(cols))
        margin = 3
        box = (
            max(0, y0 - margin),
            max(0, x0 - margin),
            min(canvas.shape[0], y1 + margin),
            min(canvas.shape[1], x1 + margin),
        )
        _outline(canvas, box, TAP, 2)
    return canvas


def positions(count: int, step: int) -> list[int]:
    """Raster indices shown: ``0, step, 2·step, …`` and always the last, ``count − 1``."""
    shown = list(range(0, count, step))
    if shown[-1] != count - 1:
        shown.append(count - 1)
    return shown


def sliding_frames(
    output_values: np.ndarray,
    output_colors: np.ndarray,
    taps_of: object,
    step: int,
    numbers: bool,
    empty: tuple[int, int, int] = EMPTY,
) -> Iterator[Frame]:
    """Frames of a window sliding in raster order: at index ``t`` the outputs ``0..t`` are filled and the
    taps of output ``t`` are outlined; then a final frame with everything filled and nothing outlined.

    Parameters
    ----------
    output_values : ndarray, shape (OH, OW)
    output_colors : ndarray, shape (OH, OW, 3)
    taps_of : callable (row, col) → list of (row, col)
        The input cells read by output (row, col).
    step : int
        Output positions advanced per frame.
    numbers : bool
    empty : (int, int, int)
        Colour of the cells not yet written.
    """
    oh, ow = output_values.shape
    flat_colors = output_colors.reshape(-1, 3)
    for t in positions(oh * ow, step):
        colors = np.empty_like(flat_colors)
        colors[...] = empty
        colors[: t + 1] = flat_colors[: t + 1]
        values = None
        if numbers:
            values = np.full(oh * ow, np.nan)
            values[: t + 1] = output_values.reshape(-1)[: t + 1]
            values = values.reshape(oh, ow)
        r, c = divmod(t, ow)
        yield Frame(colors.reshape(oh, ow, 3), values, taps_of(r, c), [(r, c)])  # type: ignore[operator]
    yield Frame(output_colors, output_values if numbers else None)


def encode(frames: list[np.ndarray], fmt: str, fps: float, hold_last: float = 1.5) -> bytes:
    """GIF or APNG bytes of RGB frames, looping forever; the last frame held ``hold_last`` seconds.

    GIF frames are quantised by Pillow to one adaptive palette each (deterministic, no dithering); APNG is
    lossless RGB.
    """
    delay = int(round(1000 / fps))
    durations = [delay] * (len(frames) - 1) + [max(delay, int(hold_last * 1000))]
    images = [Image.fromarray(f, "RGB") for f in frames]
    buffer = io.BytesIO()
    if fmt == "gif":
        # one palette for every frame, from the complete last frame plus the highlight colours, so that
        # consecutive frames differ only where the picture changed (small deltas) and colours do not flicker
        swatch = np.empty((1, 8, 3), dtype=np.uint8)
        swatch[...] = TAP
        reference = np.concatenate([frames[-1].reshape(-1, 3), swatch.reshape(-1, 3)])[None]
        palette = Image.fromarray(reference, "RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        palettes = [im.quantize(palette=palette, dither=Image.Dither.NONE) for im in images]
        palettes[0].save(
            buffer,
            format="GIF",
            save_all=True,
            append_images=palettes[1:],
            duration=durations,
            loop=0,
            optimize=False,
            disposal=1,
        )
    else:
        images[0].save(
            buffer,
            format="PNG",
            save_all=True,
            append_images=images[1:],
            duration=durations,
            loop=0,
            default_image=False,
            compress_level=6,
        )
    return buffer.getvalue()


def still_png(frame: np.ndarray) -> bytes:
    """One RGB frame as PNG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(frame, "RGB").save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()
