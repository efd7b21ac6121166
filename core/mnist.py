"""Read MNIST from its original IDX files (gzip-compressed or raw), checking every header.

IDX format (LeCun et al.): a 4-byte magic number ``00 00 TT DD`` — two zero bytes, a type code ``TT``
(0x08 = uint8, 0x09 = int8, 0x0B = int16, 0x0C = int32, 0x0D = float32, 0x0E = float64) and the number of
dimensions ``DD`` — then ``DD`` big-endian uint32 sizes, then the data, big-endian, row-major.
MNIST images are ``0x00000803`` (uint8, 3 dims: count, rows, cols), labels ``0x00000801`` (uint8, 1 dim).

The 10,000-digit test set ships in ``data/mnist`` (CC BY-SA 3.0, see its README). A folder with the full
MNIST files — given as an argument or in the environment variable ``CONVLENS_MNIST_DIR`` — is read instead
when present.
"""

from __future__ import annotations

import functools
import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

BUNDLED_DIR = Path(__file__).resolve().parents[1] / "data" / "mnist"
"""The bundled MNIST test set (``t10k-*``)."""

ENV_VAR = "CONVLENS_MNIST_DIR"

IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801

_IDX_TYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

# Base names of the four MNIST files; both the "-idx3-ubyte" and the ".idx3-ubyte" spellings circulate.
_FILES = {
    ("train", "images"): ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    ("train", "labels"): ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    ("test", "images"): ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    ("test", "labels"): ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped when it starts with the gzip magic (whatever its name)."""
    raw = path.read_bytes()
    if raw[:2] != _GZIP_MAGIC:
        if path.suffix == ".gz":
            raise ValueError(f"{path}: named .gz but is not a gzip file (it does not start with 1f 8b)")
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{path}: corrupt or truncated gzip data ({exc})") from None


def parse_idx(data: bytes, name: str = "<bytes>", expected_magic: int | None = None) -> np.ndarray:
    """Parse the bytes of one IDX file.

    Parameters
    ----------
    data : bytes
        The (decompressed) file content.
    name : str, optional
        Used in error messages.
    expected_magic : int, optional
        When given (``0x00000803`` for images, ``0x00000801`` for labels) the magic number must equal it.

    Returns
    -------
    ndarray, shape given by the header, native byte order
        uint8 for MNIST. The array is a fresh copy (writable).

    Raises
    ------
    ValueError
        Wrong magic number, unknown type code, or a data length that does not match the header.
    """
    if len(data) < 4:
        raise ValueError(f"{name}: {len(data)} bytes is too short for an IDX header (4-byte magic number)")
    (magic,) = struct.unpack(">I", data[:4])
    if expected_magic is not None and magic != expected_magic:
        raise ValueError(
            f"{name}: magic number 0x{magic:08x}, expected 0x{expected_magic:08x} "
            f"({'images' if expected_magic == IMAGES_MAGIC else 'labels'}); is this the right file?"
        )
    zeros, type_code, ndim = magic >> 16, (magic >> 8) & 0xFF, magic & 0xFF
    if zeros != 0 or type_code not in _IDX_TYPES:
        raise ValueError(
            f"{name}: magic number 0x{magic:08x} is not an IDX header "
            f"(expected 00 00, a type code in {sorted(hex(t) for t in _IDX_TYPES)}, "
            "then the number of dimensions)"
        )
    if ndim == 0:
        raise ValueError(f"{name}: IDX header declares 0 dimensions")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{name}: truncated header: {len(data)} bytes, {ndim} dimensions need {header}")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    dtype = _IDX_TYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    got = len(data) - header
    if got != expected:
        kind = "truncated" if got < expected else "has trailing bytes"
        raise ValueError(
            f"{name}: {kind}: header says dimensions {tuple(dims)} of {dtype.itemsize}-byte values = "
            f"{expected} data bytes, the file has {got}"
        )
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(dims)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path: str | os.PathLike[str], expected_magic: int | None = None) -> np.ndarray:
    """Read one IDX file, gzip-compressed or raw.

    Parameters
    ----------
    path : str or path-like
        An IDX file; gzip is detected by its content (``1f 8b``), so ``.gz`` and raw both work.
    expected_magic : int, optional
        ``IMAGES_MAGIC`` (0x00000803) or ``LABELS_MAGIC`` (0x00000801) to insist on one kind.

    Returns
    -------
    ndarray
        images: uint8, shape (N, 28, 28); labels: uint8, shape (N,).

    Raises
    ------
    ValueError
        Wrong magic number, bad gzip data, or a length that does not match the header.
    FileNotFoundError
        When ``path`` does not exist.
    """
    path = Path(path)
    return parse_idx(_read_bytes(path), str(path), expected_magic)


def _find(folder: Path, kind: str, what: str) -> Path | None:
    for base in _FILES[(kind, what)]:
        for candidate in (folder / base, folder / f"{base}.gz"):
            if candidate.is_file():
                return candidate
    return None


def mnist_dir(folder: str | os.PathLike[str] | None = None) -> Path:
    """The folder :func:`load_mnist` reads: ``folder``, else ``$CONVLENS_MNIST_DIR``, else the bundled one."""
    if folder is not None:
        return Path(folder)
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    return BUNDLED_DIR


def has_split(folder: str | os.PathLike[str] | None, kind: str) -> bool:
    """True when the folder chosen by :func:`mnist_dir` holds both files of ``kind`` ("train" or "test")."""
    directory = mnist_dir(folder)
    return _find(directory, kind, "images") is not None and _find(directory, kind, "labels") is not None


def _load(directory: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind not in ("train", "test"):
        raise ValueError(f"kind must be 'train' or 'test', got {kind!r}")
    images_path = _find(directory, kind, "images")
    labels_path = _find(directory, kind, "labels")
    if images_path is None or labels_path is None:
        names = " and ".join(f"{_FILES[(kind, w)][0]}[.gz]" for w in ("images", "labels"))
        hint = " (the bundled folder only holds the 10,000 test digits)" if directory == BUNDLED_DIR else ""
        raise FileNotFoundError(f"{directory}: MNIST {kind} files not found; expected {names}{hint}")
    images = read_idx(images_path, IMAGES_MAGIC)
    labels = read_idx(labels_path, LABELS_MAGIC)
    if images.ndim != 3:
        raise ValueError(f"{images_path}: images must have 3 dimensions (N, rows, cols), got {images.shape}")
    if labels.ndim != 1:
        raise ValueError(f"{labels_path}: labels must have 1 dimension, got {labels.shape}")
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"{directory}: {images.shape[0]} images but {labels.shape[0]} labels in the MNIST {kind} files"
        )
    if labels.size and labels.max() > 9:
        raise ValueError(f"{labels_path}: labels must be digits 0..9, found {int(labels.max())}")
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@functools.lru_cache(maxsize=4)
def _load_cached(directory: Path, kind: str) -> tuple[np.ndarray, np.ndarray]:
    return _load(directory, kind)


def load_mnist(
    folder: str | os.PathLike[str] | None = None, kind: str = "test"
) -> tuple[np.ndarray, np.ndarray]:
    """Load MNIST images and labels.

    Parameters
    ----------
    folder : str or path-like, optional
        A folder holding the MNIST IDX files (``train-images-idx3-ubyte[.gz]``,
        ``train-labels-idx1-ubyte[.gz]``, ``t10k-images-idx3-ubyte[.gz]``, ``t10k-labels-idx1-ubyte[.gz]``).
        Default: ``$CONVLENS_MNIST_DIR`` when set, else the bundled ``data/mnist`` (the 10,000 test digits
        only).
    kind : {"test", "train"}

    Returns
    -------
    images : ndarray, shape (N, 28, 28), uint8, read-only
        0 = background, 255 = ink.
    labels : ndarray, shape (N,), uint8, read-only

    Notes
    -----
    The bundled load is cached (``functools.lru_cache``): the API calls this per request. Other folders are
    read afresh each call.
    """
    directory = mnist_dir(folder)
    if directory.resolve() == BUNDLED_DIR:
        return _load_cached(BUNDLED_DIR, kind)
    return _load(directory, kind)
