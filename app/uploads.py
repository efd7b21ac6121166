"""Turning the bytes of an uploaded file into the normalised 8-bit PNG the store keeps.

Accepted formats: PNG, JPEG, GIF (first frame), BMP, WebP, TIFF (first page). The format is sniffed
from the content, never from the file name. The steps, in order:

1. open lazily (header only) with Pillow, restricted to the accepted formats — anything else is 415;
2. decompression-bomb guard: width × height from the header must be at most ``max_pixels`` (413),
   checked before a single pixel is decoded;
3. decode the first frame/page (truncated or corrupt data is 400);
4. apply the EXIF orientation;
5. apply the colour metadata (:mod:`app.colour`): palette and ``tRNS`` transparency become alpha, an
   ICC profile converts the colours to sRGB, a PNG gamma is applied;
6. normalise the mode: 1-bit, palette, 16-bit, CMYK, YCbCr, LAB ... become ``"L"`` or ``"RGB"``; an
   alpha channel is composited on white; an RGB image whose three channels are equal is stored as
   ``"L"``;
7. downscale with Lanczos so that the longer side is at most ``max_side`` (aspect kept);
8. encode as PNG with no metadata at all (only ``IHDR``, ``IDAT``, ``IEND``; deterministic bytes, so
   the same pixels give the same id). The size before downscaling is kept beside it by the store
   (``<id>.json``), not in the PNG.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from PIL.PngImagePlugin import PngInfo

from app.colour import apply_colour_metadata, pixels_only
from app.errors import ApiError

ACCEPTED_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
ACCEPTED_TEXT = "PNG, JPEG, GIF, BMP, WebP or TIFF"


@dataclass
class NormalisedImage:
    """An upload after normalisation.

    Attributes
    ----------
    png : bytes
        The PNG the store keeps (mode "L" or "RGB", 8 bits per channel).
    width, height : int
        Size after downscaling.
    channels : int
        1 ("L") or 3 ("RGB").
    original_width, original_height : int
        Size after EXIF orientation, before downscaling.
    downscaled : bool
    source_format : str
        What Pillow detected (``"JPEG"``, ...).
    """

    png: bytes
    width: int
    height: int
    channels: int
    original_width: int
    original_height: int
    downscaled: bool
    source_format: str


def downscaled_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``(width, height)`` scaled so the longer side is ``max_side`` (unchanged when it already fits).

    Notes
    -----
    ``scale = max_side / max(width, height)``; each side ``max(1, round(side · scale))``.
    """
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def downscale(image: Image.Image, max_side: int) -> Image.Image:
    """Lanczos-resize ``image`` so its longer side is at most ``max_side`` (aspect kept)."""
    size = downscaled_size(image.width, image.height, max_side)
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)


def _composite_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


ROWS_PER_BLOCK = 256
"""High-bit-depth images are converted this many rows at a time (bounded float64 temporaries)."""


def _finite(rows: np.ndarray) -> np.ndarray:
    """Rows as float64 with NaN and ±inf replaced by 0."""
    return np.nan_to_num(rows.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def _high_bit_depth_to_l(image: Image.Image) -> Image.Image:
    """16- or 32-bit integer and float grayscale → 8-bit ``"L"`` (row blocks: bounded extra memory)."""
    values = np.asarray(image)
    out = np.empty(values.shape, dtype=np.uint8)
    if image.mode == "F":
        top = -np.inf
        for r in range(0, values.shape[0], ROWS_PER_BLOCK):
            block = _finite(values[r : r + ROWS_PER_BLOCK])
            if block.size:
                top = max(top, float(block.max()))
        unit = values.size > 0 and top <= 1.0
        for r in range(0, values.shape[0], ROWS_PER_BLOCK):
            block = _finite(values[r : r + ROWS_PER_BLOCK])
            scaled = block * 255.0 if unit else block
            out[r : r + ROWS_PER_BLOCK] = np.clip(np.rint(scaled), 0, 255).astype(np.uint8)
        return Image.fromarray(out, "L")
    # 16-bit samples (I;16*, and PNG/TIFF 16-bit read as "I"): 65535 -> 255
    for r in range(0, values.shape[0], ROWS_PER_BLOCK):
        scaled = np.rint(values[r : r + ROWS_PER_BLOCK].astype(np.float64) / 257.0)
        out[r : r + ROWS_PER_BLOCK] = np.clip(scaled, 0, 255).astype(np.uint8)
    return Image.fromarray(out, "L")


BYTES_PER_PIXEL = {"1": 1, "L": 1, "P": 1, "I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "BGR;16": 2}
"""Bytes Pillow holds per decoded pixel, by mode (4 for every other mode: I, F, RGB, RGBA, LA, CMYK ...)."""

LARGE_DECODE_BYTES = 32 * 1024 * 1024
"""Above this decoded size, a JPEG is decoded at a reduced scale (``draft``) and any image is box-reduced
(``reduce``) right after decoding, to at least twice ``max_side``, before any conversion."""


def decoded_bytes(image: Image.Image) -> int:
    """Bytes Pillow will hold for the decoded pixels of ``image`` (read from its header)."""
    return image.width * image.height * BYTES_PER_PIXEL.get(image.mode, 4)


def bounded_load(image: Image.Image, max_side: int, max_decode_bytes: int) -> Image.Image:
    """Decode ``image`` with bounded memory: refuse what is too large, shrink what is large at once.

    1. the decoded size (:func:`decoded_bytes`) must be at most ``max_decode_bytes`` (else 413);
    2. a large JPEG is decoded by libjpeg at 1/2, 1/4 or 1/8 scale (``draft``), still at least
       ``2·max_side`` on its longer side;
    3. a large decoded image is box-reduced (``reduce``, by a whole factor) to at least ``2·max_side``
       before any mode conversion, so the float64/RGBA conversions work on a small image. 16-bit
       images are reduced with NumPy (Pillow's ``reduce`` does not take them); palette images are
       small already (one byte a pixel) and are not reduced.

    Returns
    -------
    PIL.Image.Image
        Loaded; for a large image, smaller than the file.
    """
    needed = decoded_bytes(image)
    if needed > max_decode_bytes:
        raise ApiError(
            413,
            f"the image would take {needed / 2**20:.0f} MB to decode ({image.width}×{image.height} "
            f"{image.mode}), more than the {max_decode_bytes / 2**20:.0f} MB this server decodes at "
            "once; upload an image with fewer pixels or 8 bits per channel",
        )
    large = needed > LARGE_DECODE_BYTES
    longest = max(image.width, image.height)
    if large and image.format == "JPEG" and longest > 2 * max_side:
        scale = 2 * max_side / longest
        image.draft(image.mode, (max(1, int(image.width * scale)), max(1, int(image.height * scale))))
    image.load()
    longest = max(image.width, image.height)
    factor = longest // (2 * max_side)
    if not large or factor < 2:
        return image
    if image.mode in ("P", "PA", "1"):
        return image
    return _reduce_in_strips(image, factor)


def _reduce_in_strips(image: Image.Image, factor: int) -> Image.Image:
    """``image.reduce(factor)`` (a ``factor × factor`` box mean) one strip of rows at a time.

    Pillow's own ``reduce`` premultiplies RGBA/LA into a full-size copy first; strips keep the extra
    memory to one strip. 16-bit images (which Pillow's ``reduce`` does not take) are averaged with NumPy.
    """
    width, height = image.width // factor, image.height // factor
    sixteen = image.mode.startswith("I;16")
    out = Image.new("I" if sixteen else image.mode, (width, height))
    rows = max(1, (4 * 1024 * 1024) // max(1, image.width * 4 * factor))  # output rows per strip (~4 MB)
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        strip = image.crop((0, top * factor, width * factor, bottom * factor))
        if sixteen:
            values = np.asarray(strip, dtype=np.int64).reshape(bottom - top, factor, width, factor)
            small = Image.fromarray(np.rint(values.mean(axis=(1, 3))).astype(np.int32), "I")
        else:
            small = strip.reduce(factor)
        out.paste(small, (0, top))
    return out


def normalise_mode(image: Image.Image) -> Image.Image:
    """Any Pillow mode → ``"L"`` or ``"RGB"`` (alpha composited on white).

    Parameters
    ----------
    image : PIL.Image.Image
        Decoded.

    Returns
    -------
    PIL.Image.Image
        Mode ``"L"`` or ``"RGB"``.
    """
    mode = image.mode
    if mode == "P" and "transparency" in image.info:
        image = _composite_on_white(image)
    elif mode in ("RGBA", "LA", "La", "RGBa", "PA"):
        image = _composite_on_white(image)
    elif mode == "1":
        image = image.convert("L")
    elif mode.startswith("I") or mode == "F":
        image = _high_bit_depth_to_l(image)
    elif mode not in ("L", "RGB"):  # P without transparency, CMYK, YCbCr, LAB, HSV, RGBX ...
        image = image.convert("RGB")
    if image.mode == "RGB":
        pixels = np.asarray(image)
        if np.array_equal(pixels[..., 0], pixels[..., 1]) and np.array_equal(pixels[..., 1], pixels[..., 2]):
            image = Image.fromarray(np.ascontiguousarray(pixels[..., 0]), "L")
    return image


ORIGINAL_SIZE_KEY = "convlens-original-size"
"""PNG text chunk of a stored upload: its size before downscaling, ``"WIDTHxHEIGHT"``."""


def encode_png(
    image: Image.Image, compress_level: int = 6, original_size: tuple[int, int] | None = None
) -> bytes:
    """PNG bytes of ``image``, deterministic for the same pixels.

    The only metadata is an optional text chunk :data:`ORIGINAL_SIZE_KEY` recording the size before
    downscaling (so the store alone can answer ``original_width``/``original_height``).
    """
    buffer = io.BytesIO()
    info = None
    if original_size is not None:
        info = PngInfo()
        info.add_text(ORIGINAL_SIZE_KEY, f"{original_size[0]}x{original_size[1]}")
    image.save(buffer, format="PNG", compress_level=compress_level, pnginfo=info)
    return buffer.getvalue()


def original_size_of(image: Image.Image) -> tuple[int, int]:
    """The size recorded by :func:`encode_png` (the image's own size when there is none)."""
    text = image.info.get(ORIGINAL_SIZE_KEY)
    if isinstance(text, str):
        parts = text.split("x")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            return int(parts[0]), int(parts[1])
    return image.size


def open_checked(data: bytes, max_pixels: int) -> Image.Image:
    """Open ``data`` lazily as one of the accepted formats and check its size from the header.

    Raises
    ------
    ApiError
        415 when the content is not an accepted image format, 400 when it is empty, 413 when width ×
        height is above ``max_pixels``.
    """
    if not data:
        raise ApiError(400, "the uploaded file is empty")
    try:
        image = Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    except Image.DecompressionBombError as exc:
        raise ApiError(413, f"the image is too large to decode safely: {exc}") from None
    except UnidentifiedImageError:
        raise ApiError(
            415, f"the uploaded file is not an image in an accepted format; upload a {ACCEPTED_TEXT} file"
        ) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise ApiError(400, f"the image file is corrupt or truncated ({exc})") from None
    width, height = image.size
    if width < 1 or height < 1:
        raise ApiError(400, f"the image has an impossible size {width}×{height}")
    if width * height > max_pixels:
        raise ApiError(
            413,
            f"the image is {width}×{height} = {width * height} pixels, more than the {max_pixels} pixels "
            "this server decodes (a decompression-bomb guard); upload a smaller image",
        )
    return image


def normalise_upload(
    data: bytes, max_side: int, max_pixels: int, max_decode_bytes: int = 192 * 1024 * 1024
) -> NormalisedImage:
    """Decode, orient, normalise, downscale and re-encode an uploaded file.

    Parameters
    ----------
    data : bytes
        The file as uploaded.
    max_side : int
        Longest side after downscaling.
    max_pixels : int
        Decompression-bomb guard (checked on the header size).
    max_decode_bytes : int
        Largest decoded size (see :func:`bounded_load`).

    Returns
    -------
    NormalisedImage

    Raises
    ------
    ApiError
        400 corrupt/truncated/empty, 413 too many pixels, 415 not an accepted image.
    """
    image = open_checked(data, max_pixels)
    source_format = image.format or "unknown"
    try:
        image.seek(0)  # first frame of a GIF/WebP animation, first page of a TIFF
        header_size = image.size
        image = bounded_load(image, max_side, max_decode_bytes)
        reduced = image.size != header_size
        image = ImageOps.exif_transpose(image) or image
        image = apply_colour_metadata(image)  # tRNS/palette transparency → alpha, ICC/gamma → sRGB
        image = normalise_mode(image)
    except ApiError:
        raise
    except Image.DecompressionBombError as exc:
        raise ApiError(413, f"the image is too large to decode safely: {exc}") from None
    except (
        OSError,
        SyntaxError,
        ValueError,
        EOFError,
        IndexError,
        TypeError,
        KeyError,
        ZeroDivisionError,
    ) as exc:
        raise ApiError(400, f"the image file is corrupt or truncated ({exc})") from None
    original_width, original_height = image.size
    if reduced:  # the size before the bounded decode shrank it, in the same orientation
        swapped = (image.width > image.height) != (header_size[0] > header_size[1])
        original_width, original_height = header_size[::-1] if swapped else header_size
    if original_width * original_height > max_pixels:  # EXIF tricks cannot grow it, but be safe
        raise ApiError(413, f"the image has more than {max_pixels} pixels")
    image = downscale(image, max_side)
    return NormalisedImage(
        png=encode_png(pixels_only(image)),  # pixels only: IHDR, IDAT, IEND
        width=image.width,
        height=image.height,
        channels=1 if image.mode == "L" else 3,
        original_width=original_width,
        original_height=original_height,
        downscaled=image.size != (original_width, original_height),
        source_format=source_format,
    )
