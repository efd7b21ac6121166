"""Where the pixels of an image id come from, and how they become the arrays ``core`` computes on.

Ids:

- ``<64 hex digits>``: an upload (the SHA-256 of its stored PNG), read from :mod:`app.store`;
- ``mnist:N``: digit ``N`` of the MNIST set (``core.mnist.load_mnist``), 28×28 grayscale;
- ``sample:NAME``: one of the bundled photos in ``data/samples`` (:data:`SAMPLES`);
- ``act:<64 hex digits>``: an activation stored by ``POST /api/stack/activation`` (a layer's real input),
  a float32 ``.npy`` of shape ``(C, H, W)`` read from :mod:`app.store` without pickle. It is used as stored:
  its C channels and its values (not in [0, 1]); ``color`` does not apply, and it is never resized
  (a ``max_side`` below its longer side is a 422).

Anything else is a 404. Arrays (see :func:`load_array`): grayscale = Pillow mode ``"L"`` / 255 →
shape ``(1, 1, H, W)``; RGB = the three channels / 255 → ``(1, 3, H, W)``; float32. An RGB image
asked for as gray is converted with Pillow's ``convert("L")`` (ITU-R 601-2 luma,
``L = R·299/1000 + G·587/1000 + B·114/1000``); a gray image asked for as RGB has three equal channels.
"""

from __future__ import annotations

import io
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from PIL import Image

from app.errors import BodyError
from app.settings import REPO_ROOT, Settings
from app.store import (
    StoreUnreadable,
    UnknownImage,
    UploadStore,
    is_activation_id,
    is_stored_id,
    is_upload_id,
)
from app.uploads import downscale, downscaled_size, normalise_mode, original_size_of
from core.mnist import load_mnist

SAMPLES_DIR = REPO_ROOT / "data" / "samples"

Color = Literal["gray", "rgb"]


@dataclass(frozen=True)
class Sample:
    """A bundled photo."""

    name: str
    filename: str
    description: str
    credit: str
    licence: str


SAMPLES: dict[str, Sample] = {
    s.name: s
    for s in (
        Sample(
            "astronaut",
            "astronaut.png",
            "Astronaut Eileen Collins (colour portrait)",
            "NASA Great Images database, via scikit-image",
            "public domain (no known copyright restrictions)",
        ),
        Sample(
            "camera",
            "camera.png",
            "A photographer with a camera (grayscale; edges in many directions)",
            "Lav Varshney, via scikit-image",
            "CC0",
        ),
        Sample(
            "coffee",
            "coffee.png",
            "A cup of coffee (ellipses, smooth and coarse texture)",
            "Rachel Michetti, courtesy of Pikolo Espresso Bar, via scikit-image",
            "CC0",
        ),
        Sample(
            "chelsea",
            "chelsea.png",
            "Chelsea the cat (fur texture, edges in several directions)",
            "Stefan van der Walt, via scikit-image",
            "CC0",
        ),
        Sample(
            "brick",
            "brick.png",
            "A brick wall (a regular texture for horizontal and vertical edges)",
            "CC0Textures, via scikit-image",
            "CC0",
        ),
        Sample(
            "rocket",
            "rocket.jpg",
            "Launch of DSCOVR on a Falcon 9 (colour)",
            "SpaceX, via scikit-image",
            "public domain (released by SpaceX)",
        ),
    )
}

_MNIST_ID = re.compile(r"^mnist:(0|[1-9][0-9]{0,6})$")
_SAMPLE_ID = re.compile(r"^sample:([a-z_]{1,32})$")


@dataclass(frozen=True)
class ImageInfo:
    """Metadata of an image id (``GET /api/images/{id}``)."""

    id: str
    kind: Literal["upload", "mnist", "sample", "activation"]
    width: int
    height: int
    channels: int
    original_width: int
    original_height: int
    downscaled: bool
    label: int | None = None

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "width": self.width,
            "height": self.height,
            "channels": self.channels,
            "original_width": self.original_width,
            "original_height": self.original_height,
            "downscaled": self.downscaled,
            "label": self.label,
        }
        return out


def mnist_set(settings: Settings) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, 28, 28) uint8, labels (N,) uint8)`` of the configured MNIST test set."""
    return load_mnist(settings.mnist_dir)


def store_for(settings: Settings) -> UploadStore:
    """The upload store configured by ``settings``."""
    return UploadStore(
        settings.store_dir,
        settings.store_max_bytes,
        settings.store_retention_seconds,
        read_only=settings.store_read_only,
    )


def _mnist_index(image_id: str, settings: Settings) -> int | None:
    match = _MNIST_ID.match(image_id)
    if not match:
        return None
    index = int(match.group(1))
    images, _ = mnist_set(settings)
    if index >= len(images):
        raise UnknownImage(image_id)
    return index


def _sample(image_id: str) -> Sample | None:
    match = _SAMPLE_ID.match(image_id)
    if not match:
        return None
    sample = SAMPLES.get(match.group(1))
    if sample is None:
        raise UnknownImage(image_id)
    return sample


def _open_sample(sample: Sample) -> Image.Image:
    with Image.open(SAMPLES_DIR / sample.filename) as image:
        image.load()
        return normalise_mode(image)


_sample_cache: dict[str, Image.Image] = {}


def _sample_image(sample: Sample, settings: Settings) -> tuple[Image.Image, tuple[int, int]]:
    """The sample downscaled to ``settings.max_side`` and its original size."""
    key = f"{sample.name}@{settings.max_side}"
    image = _sample_cache.get(key)
    original = _sample_cache.get(sample.name)
    if original is None:
        original = _open_sample(sample)
        _sample_cache[sample.name] = original
    if image is None:
        image = downscale(original, settings.max_side)
        _sample_cache[key] = image
    return image, original.size


def image_info(image_id: str, settings: Settings) -> ImageInfo:
    """Metadata of ``image_id``; raises :class:`~app.store.UnknownImage` (404) for an unknown id."""
    index = _mnist_index(image_id, settings)
    if index is not None:
        _, labels = mnist_set(settings)
        return ImageInfo(image_id, "mnist", 28, 28, 1, 28, 28, False, int(labels[index]))
    sample = _sample(image_id)
    if sample is not None:
        image, (ow, oh) = _sample_image(sample, settings)
        channels = 1 if image.mode == "L" else 3
        return ImageInfo(
            image_id, "sample", image.width, image.height, channels, ow, oh, image.size != (ow, oh)
        )
    if is_upload_id(image_id):
        image = load_pil(image_id, settings)
        meta = _upload_meta(image_id, image, store_for(settings).read_info(image_id))
        return meta
    if is_activation_id(image_id):
        c, h, w = load_activation(image_id, settings).shape
        return ImageInfo(image_id, "activation", w, h, c, w, h, False)
    raise UnknownImage(image_id)


def _upload_meta(image_id: str, image: Image.Image, info: dict[str, int] | None) -> ImageInfo:
    ow, oh = original_size_of(image)  # stores written before the <id>.json sidecar kept it in the PNG
    if info and info.get("original_width", 0) > 0 and info.get("original_height", 0) > 0:
        ow, oh = info["original_width"], info["original_height"]
    return ImageInfo(
        image_id,
        "upload",
        image.width,
        image.height,
        1 if image.mode == "L" else 3,
        ow,
        oh,
        (ow, oh) != image.size,
    )


def load_pil(image_id: str, settings: Settings) -> Image.Image:
    """The image of ``image_id`` in mode ``"L"`` or ``"RGB"`` at its served size.

    Uploads are read (and hash-verified) from the store; samples are downscaled to
    ``settings.max_side``; MNIST digits are 28×28.

    Raises
    ------
    UnknownImage
        404 for an unknown or malformed id.
    app.store.StoreCorrupt
        410 when a stored upload no longer matches its hash.
    """
    index = _mnist_index(image_id, settings)
    if index is not None:
        images, _ = mnist_set(settings)
        return Image.fromarray(np.ascontiguousarray(images[index]), "L")
    sample = _sample(image_id)
    if sample is not None:
        return _sample_image(sample, settings)[0]
    if is_upload_id(image_id):
        data = store_for(settings).read(image_id)
        try:
            with Image.open(io.BytesIO(data), formats=["PNG"]) as image:
                image.load()
                return image if image.mode in ("L", "RGB") else normalise_mode(image)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            # e.g. a PNG stored by a version that kept a huge iCCP chunk: Pillow refuses to decode it
            raise StoreUnreadable(image_id, exc) from None
    raise UnknownImage(image_id)


def png_bytes(image_id: str, settings: Settings) -> bytes:
    """PNG bytes of ``image_id`` (for ``GET /api/images/{id}.png``); uploads are served as stored, an
    activation as the picture of :func:`app.render.activation_png` (the mean of its channels)."""
    if is_upload_id(image_id):
        return store_for(settings).read(image_id)
    if is_activation_id(image_id):
        from app.render import activation_png  # late: render is only needed here

        return activation_png(load_activation(image_id, settings))
    buffer = io.BytesIO()
    load_pil(image_id, settings).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------- activations


def activation_limit(settings: Settings) -> int:
    """Largest ``.npy`` an activation may be, in bytes: the upload limit (an activation is an upload the
    server makes for the page)."""
    return settings.max_upload_bytes


def check_activation(array: np.ndarray, settings: Settings) -> str | None:
    """None when ``array`` may be stored and computed on as an activation; else why not (a sentence).

    An activation must be float32 ``(C, H, W)`` with 1 ≤ C ≤ 64, finite, each side at most
    ``settings.max_side``, ``H·W`` at most ``settings.max_pixels`` and its bytes at most
    :func:`activation_limit`.
    """
    if array.dtype != np.float32 or array.ndim != 3:
        return f"an activation is float32 (C, H, W), not {array.dtype} with {array.ndim} dimensions"
    c, h, w = array.shape
    if not 1 <= c <= MAX_ACTIVATION_CHANNELS:
        return f"an activation has 1 to {MAX_ACTIVATION_CHANNELS} channels, not {c}"
    if min(h, w) < 1 or max(h, w) > settings.max_side or h * w > settings.max_pixels:
        return f"an activation of {h}×{w} pixels is outside the limits (sides 1..{settings.max_side})"
    if array.nbytes > activation_limit(settings):
        return (
            f"this activation ({c}×{h}×{w} float32, {array.nbytes:,} bytes) is larger than the "
            f"{activation_limit(settings):,} bytes one stored activation may take"
        )
    if not np.isfinite(array).all():
        return "an activation must be finite (it holds an infinity or NaN)"
    return None


MAX_ACTIVATION_CHANNELS = 64
"""Channels of a stored activation (the Layers view's ``MAX_STACK_CHANNELS``)."""


def load_activation(image_id: str, settings: Settings) -> np.ndarray:
    """The stored activation ``act:<sha256>``: float32 ``(C, H, W)``, read-only.

    Raises
    ------
    UnknownImage
        404: not stored (evicted, or never stored).
    StoreCorrupt
        410: the file no longer matches its hash.
    StoreUnreadable
        410: the file matches its hash but is not an activation this version can use (not an ``.npy``,
        an object array, another dtype or shape, values outside the limits).
    """
    data = store_for(settings).read(image_id)
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise StoreUnreadable(image_id, exc) from None
    if not isinstance(array, np.ndarray):
        raise StoreUnreadable(image_id, ValueError("not a single array"))
    reason = check_activation(array, settings)
    if reason is not None:
        raise StoreUnreadable(image_id, ValueError(reason))
    array.setflags(write=False)
    return array


def activation_bytes(array: np.ndarray) -> bytes:
    """``array`` as the bytes of an ``.npy`` file (``np.save`` with ``allow_pickle=False``)."""
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array, dtype=np.float32), allow_pickle=False)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- arrays

_ARRAY_CACHE_SIZE = 24
_array_cache: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
_array_lock = threading.Lock()


def to_array(image: Image.Image, color: Color) -> np.ndarray:
    """``(1, C, H, W)`` float32 in [0, 1] from an ``"L"`` or ``"RGB"`` image.

    Notes
    -----
    gray: ``np.asarray(image.convert("L")) / 255``; rgb: ``np.asarray(image.convert("RGB")) / 255``
    moved to channels-first.
    """
    if color == "gray":
        pixels = np.asarray(image if image.mode == "L" else image.convert("L"), dtype=np.float32)
        return (pixels / np.float32(255.0))[None, None]
    pixels = np.asarray(image if image.mode == "RGB" else image.convert("RGB"), dtype=np.float32)
    return np.ascontiguousarray((pixels / np.float32(255.0)).transpose(2, 0, 1)[None])


def load_array(image_id: str, color: Color, max_side: int | None, settings: Settings) -> np.ndarray:
    """The array ``core`` computes on, cached by ``(id, color, max_side)``.

    Parameters
    ----------
    image_id : str
    color : {"gray", "rgb"}
        Ignored for an activation (``act:...``), which keeps its own channels.
    max_side : int or None
        Downscale (Lanczos, aspect kept) so the longer side is at most this, before converting. An
        activation is never resized: a ``max_side`` below its longer side is a 422.
    settings : Settings

    Returns
    -------
    ndarray, shape (1, C, H, W), float32, read-only
        ``C`` is 1 for gray, 3 for rgb, values in [0, 1]; for an activation its own C and values.
    """
    if is_activation_id(image_id):
        color = "gray"  # one cache entry per activation, whatever colour was asked for
    key = (image_id, color, max_side, settings.max_side, str(settings.store_dir), str(settings.mnist_dir))
    with _array_lock:
        cached = _array_cache.get(key)
        if cached is not None:
            _array_cache.move_to_end(key)
    if cached is not None:
        if is_stored_id(image_id):
            # as a fresh read would: 404 if evicted, 410 if the file no longer matches its hash (the same
            # answer from every worker, cached or not); also keeps it fresh for the LRU eviction
            store_for(settings).read(image_id)
        _check_side(image_id, cached, max_side)
        return cached
    if is_activation_id(image_id):
        array = load_activation(image_id, settings)[None]
        _check_side(image_id, array, max_side)
        with _array_lock:
            _array_cache[key] = array
            while len(_array_cache) > _ARRAY_CACHE_SIZE:
                _array_cache.popitem(last=False)
        return array
    image = load_pil(image_id, settings)
    if max_side is not None:
        image = downscale(image, max_side)
    array = to_array(image, color)
    array.setflags(write=False)
    with _array_lock:
        _array_cache[key] = array
        while len(_array_cache) > _ARRAY_CACHE_SIZE:
            _array_cache.popitem(last=False)
    return array


def _check_side(image_id: str, array: np.ndarray, max_side: int | None) -> None:
    """422 when ``max_side`` asks to shrink an activation (which is never resized)."""
    if max_side is None or not is_activation_id(image_id):
        return
    h, w = array.shape[-2:]
    if max_side < max(h, w):
        raise BodyError(
            "max_side",
            f"max_side {max_side} would shrink the activation {image_id[:12]}… ({h}×{w}), but an activation "
            f"is used as stored: leave max_side out (null) or give at least {max(h, w)}",
        )


def clear_caches() -> None:
    """Forget cached arrays and samples (tests)."""
    with _array_lock:
        _array_cache.clear()
    _sample_cache.clear()


__all__ = [
    "MAX_ACTIVATION_CHANNELS",
    "SAMPLES",
    "activation_bytes",
    "check_activation",
    "load_activation",
    "ImageInfo",
    "clear_caches",
    "downscaled_size",
    "image_info",
    "load_array",
    "load_pil",
    "png_bytes",
    "to_array",
]
