"""Canonical colours of an upload: apply the file's colour metadata to the pixels, then forget it.

A stored upload is pixels only (mode ``"L"`` or ``"RGB"``, sRGB, opaque): the same picture must give
the same bytes (and so the same id) whatever metadata the file carried, and the browser must show
exactly the numbers the API computes on. So, in :func:`apply_colour_metadata`:

1. palette images become RGB (RGBA when the palette has transparency);
2. single-colour transparency (PNG ``tRNS`` on a gray or RGB image, GIF/PNG palette transparency)
   becomes an alpha channel (later composited on white like any alpha, see
   :func:`app.uploads.normalise_mode`);
3. an embedded ICC profile (``iCCP``, JPEG ``APP2``, TIFF/WebP ICC) converts the colour channels to
   sRGB with Pillow's ImageCms (LittleCMS), perceptual intent; a profile that LittleCMS cannot read, or
   whose colour space does not match the pixels, is ignored (the pixels are taken as sRGB, as most
   browsers do);
4. without a profile, a PNG ``gAMA`` other than sRGB's 1/2.2 is applied as ``v' = 255 · (v/255)^(1/(2.2·g))``.

:func:`pixels_only` then copies the pixels into a fresh image with no ``info`` at all, so the PNG
encoder writes only ``IHDR``, ``IDAT`` and ``IEND`` (no iCCP, tRNS, tEXt, eXIf, gAMA, pHYs ...).
"""

from __future__ import annotations

import io
import logging

import numpy as np
from PIL import Image, ImageCms

log = logging.getLogger("convlens.uploads")

SRGB_GAMMA = 1 / 2.2
"""The file gamma PNG's ``gAMA`` records for sRGB-like data (0.45455): no change is needed."""

_SRGB = ImageCms.createProfile("sRGB")
_PROFILE_SPACE = {"L": "GRAY", "RGB": "RGB", "CMYK": "CMYK"}


def transparency_to_alpha(image: Image.Image) -> Image.Image:
    """Palette, gray or RGB image with ``info["transparency"]`` → ``"LA"`` / ``"RGBA"`` (8-bit).

    Other images are returned unchanged. 16-bit gray with a 16-bit ``tRNS`` value is compared before
    it is reduced to 8 bits (``v / 257``, rounded).
    """
    if "transparency" not in image.info:
        return image
    key = image.info["transparency"]
    mode = image.mode
    if mode == "P" or mode == "PA":
        return image.convert("RGBA")
    if mode in ("L", "1") and isinstance(key, int):
        gray = np.asarray(image.convert("L"))
        alpha = np.where(gray == (255 if mode == "1" and key else key), 0, 255).astype(np.uint8)
        return Image.merge("LA", (Image.fromarray(gray, "L"), Image.fromarray(alpha, "L")))
    if mode.startswith("I") and isinstance(key, int):
        values = np.asarray(image)
        alpha = np.where(values == key, 0, 255).astype(np.uint8)
        gray = np.clip(np.rint(values.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
        return Image.merge("LA", (Image.fromarray(gray, "L"), Image.fromarray(alpha, "L")))
    if mode == "RGB" and isinstance(key, tuple) and len(key) == 3:
        pixels = np.asarray(image)
        alpha = np.where(np.all(pixels == np.asarray(key), axis=-1), 0, 255).astype(np.uint8)
        return Image.merge("RGBA", (*image.split(), Image.fromarray(alpha, "L")))
    return image


def _to_srgb(base: Image.Image, icc: bytes) -> Image.Image | None:
    """``base`` (mode L, RGB or CMYK) converted from ``icc`` to sRGB (``"RGB"``); None if it cannot be."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if source.profile.xcolor_space.strip() != _PROFILE_SPACE[base.mode]:
            log.info("ignoring an ICC profile for %s data on a %s image", source.profile.xcolor_space,
                     base.mode)
            return None
        converted = ImageCms.profileToProfile(
            base, source, _SRGB, renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB"
        )
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError, KeyError) as exc:
        log.info("ignoring an unusable ICC profile (%d bytes): %s", len(icc), exc)
        return None
    return converted if isinstance(converted, Image.Image) else None


def apply_icc(image: Image.Image, icc: bytes | None) -> Image.Image:
    """The colour channels of ``image`` converted from the profile ``icc`` to sRGB; alpha kept.

    Modes L, LA, RGB, RGBA and CMYK are converted (gray becomes RGB, with equal channels for neutral
    colours); any other mode, or no/unusable profile, is returned unchanged.
    """
    if not icc:
        return image
    alpha = None
    base = image
    if image.mode in ("LA", "RGBA"):
        alpha = image.getchannel("A")
        base = image.convert(image.mode[:-1])
    if base.mode not in _PROFILE_SPACE:
        return image
    converted = _to_srgb(base, icc)
    if converted is None:
        return image
    if alpha is None:
        return converted
    return Image.merge("RGBA", (*converted.split(), alpha))


def apply_gamma(image: Image.Image, gamma: float) -> Image.Image:
    """Re-encode 8-bit channels from file gamma ``gamma`` to sRGB's 1/2.2 (alpha untouched).

    Only modes L, LA, RGB and RGBA; a gamma within 1 % of 1/2.2, or outside [0.01, 10], changes nothing.
    """
    if image.mode not in ("L", "LA", "RGB", "RGBA"):
        return image
    if not 0.01 <= gamma <= 10.0 or abs(gamma * 2.2 - 1.0) < 0.01:
        return image
    exponent = 1.0 / (2.2 * gamma)
    table = [round(255.0 * (v / 255.0) ** exponent) for v in range(256)]
    colour_bands = len(image.mode.rstrip("A"))
    lut = table * colour_bands + (list(range(256)) if image.mode.endswith("A") else [])
    return image.point(lut)


def apply_colour_metadata(image: Image.Image) -> Image.Image:
    """Palette → RGB(A), ``tRNS`` → alpha, ICC → sRGB, PNG gamma → sRGB's (see the module docstring).

    Parameters
    ----------
    image : PIL.Image.Image
        Decoded (after EXIF orientation), any mode.

    Returns
    -------
    PIL.Image.Image
        The same picture with its colour metadata applied; ``info`` may still hold other keys, which
        :func:`pixels_only` drops.
    """
    icc = image.info.get("icc_profile")
    gamma = image.info.get("gamma")
    has_srgb_chunk = "srgb" in image.info
    image = transparency_to_alpha(image)
    if image.mode == "P":
        image = image.convert("RGB")
    if isinstance(icc, bytes) and icc:
        return apply_icc(image, icc)
    if isinstance(gamma, (int, float)) and not has_srgb_chunk:
        return apply_gamma(image, float(gamma))
    return image


def pixels_only(image: Image.Image) -> Image.Image:
    """A copy of ``image`` with the same mode and pixels and an empty ``info`` (no metadata to encode)."""
    return Image.frombytes(image.mode, image.size, image.tobytes())
