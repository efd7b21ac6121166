"""core.mnist: the bundled files' checksums and contents, the IDX reader's checks, folder/env overrides."""

from __future__ import annotations

import gzip
import hashlib
import struct

import numpy as np
import pytest

from core import mnist

CHECKSUMS = {
    "t10k-images-idx3-ubyte.gz": (
        "86bbfe8eb8a57f490eb6d21f76851d65272d8265c85213eb908de200ed401a5d",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "t10k-labels-idx1-ubyte.gz": (
        "100494bc9fe562c925b2ad518598bc5f41b2f23ab5ac3340f16ea99b3c39e880",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}
FIRST_20 = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9, 0, 6, 9, 0, 1, 5, 9, 7, 3, 4]
COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def idx_bytes(array: np.ndarray, type_code: int = 0x08) -> bytes:
    """An IDX file written by hand from the format description (independent of the reader)."""
    header = bytes([0, 0, type_code, array.ndim]) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_split(folder, kind: str, images: np.ndarray, labels: np.ndarray, gz: bool) -> None:
    prefix = "train" if kind == "train" else "t10k"
    suffix = ".gz" if gz else ""
    for what, array, nd in (("images", images, 3), ("labels", labels, 1)):
        data = idx_bytes(array)
        (folder / f"{prefix}-{what}-idx{nd}-ubyte{suffix}").write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("name", sorted(CHECKSUMS))
def test_bundled_checksums(name):
    raw = (mnist.BUNDLED_DIR / name).read_bytes()
    assert hashlib.sha256(raw).hexdigest() == CHECKSUMS[name][0]
    assert hashlib.sha256(gzip.decompress(raw)).hexdigest() == CHECKSUMS[name][1]


def test_bundled_contents(monkeypatch):
    monkeypatch.delenv(mnist.ENV_VAR, raising=False)
    images, labels = mnist.load_mnist()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert labels[:20].tolist() == FIRST_20
    assert np.bincount(labels, minlength=10).tolist() == COUNTS
    assert images.min() == 0 and images.max() == 255
    # background border, ink in the middle (a '7' at index 0)
    assert images[:, 0, :].max() == 0 or images[:, 0, :].mean() < 1
    assert images[0, 8:20, 8:20].max() == 255
    assert not images.flags.writeable and not labels.flags.writeable
    assert mnist.load_mnist()[0] is images  # cached: the API calls this per request


def test_header_read_by_hand():
    raw = gzip.decompress((mnist.BUNDLED_DIR / "t10k-images-idx3-ubyte.gz").read_bytes())
    assert struct.unpack(">IIII", raw[:16]) == (0x803, 10000, 28, 28)
    images, _ = mnist.load_mnist(mnist.BUNDLED_DIR)
    assert images[0].tobytes() == raw[16 : 16 + 784]
    assert images[-1].tobytes() == raw[-784:]


def test_raw_and_gz_equal(tmp_path):
    data = gzip.decompress((mnist.BUNDLED_DIR / "t10k-labels-idx1-ubyte.gz").read_bytes())
    (tmp_path / "labels.raw").write_bytes(data)
    np.testing.assert_array_equal(
        mnist.read_idx(tmp_path / "labels.raw", mnist.LABELS_MAGIC),
        mnist.read_idx(mnist.BUNDLED_DIR / "t10k-labels-idx1-ubyte.gz", mnist.LABELS_MAGIC),
    )


def test_generic_types(tmp_path):
    rng = np.random.default_rng(0)
    floats = rng.standard_normal((3, 4)).astype(np.float32)
    (tmp_path / "f.idx").write_bytes(idx_bytes(floats, 0x0D))
    np.testing.assert_array_equal(mnist.read_idx(tmp_path / "f.idx"), floats)
    ints = rng.integers(-1000, 1000, size=(2, 3, 2)).astype(np.int16)
    (tmp_path / "i.idx").write_bytes(idx_bytes(ints, 0x0B))
    out = mnist.read_idx(tmp_path / "i.idx")
    np.testing.assert_array_equal(out, ints)
    assert out.dtype.isnative


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda b: b[:-1], "truncated"),
        (lambda b: b[:10], "truncated"),
        (lambda b: b[:3], "too short"),
        (lambda b: b + b"\x00", "trailing"),
        (lambda b: b"\x00\x00\x08\x01" + b[4:], "magic"),  # labels magic on an images file
        (lambda b: b"\x01\x02\x08\x03" + b[4:], "magic"),
        (lambda b: b"\x00\x00\x07\x03" + b[4:], "magic"),  # unknown type code
    ],
)
def test_corrupt_raw_files_raise(tmp_path, mangle, message):
    images = np.arange(2 * 28 * 28, dtype=np.uint64).reshape(2, 28, 28).astype(np.uint8)
    path = tmp_path / "bad-idx3-ubyte"
    path.write_bytes(mangle(idx_bytes(images)))
    with pytest.raises(ValueError, match=message):
        mnist.read_idx(path, mnist.IMAGES_MAGIC)


def test_corrupt_gzip_raises(tmp_path):
    good = gzip.compress(idx_bytes(np.zeros((4, 28, 28), np.uint8)))
    (tmp_path / "cut.gz").write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match="gzip"):
        mnist.read_idx(tmp_path / "cut.gz")
    flipped = bytearray(good)
    flipped[12] ^= 0xFF
    (tmp_path / "flip.gz").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="flip.gz: corrupt or truncated gzip data"):
        mnist.read_idx(tmp_path / "flip.gz")
    (tmp_path / "fake.gz").write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="gzip"):
        mnist.read_idx(tmp_path / "fake.gz")
    # gzip of a truncated IDX file: the gzip is fine, the IDX length check catches it
    (tmp_path / "short.gz").write_bytes(gzip.compress(idx_bytes(np.zeros((4, 28, 28), np.uint8))[:-5]))
    with pytest.raises(ValueError, match="truncated"):
        mnist.read_idx(tmp_path / "short.gz")


@pytest.mark.parametrize("gz", [True, False])
def test_folder_argument_reads_train_and_test(tmp_path, gz):
    rng = np.random.default_rng(1)
    train_x = rng.integers(0, 256, size=(6, 28, 28), dtype=np.uint8)
    train_y = rng.integers(0, 10, size=6, dtype=np.uint8)
    test_x = rng.integers(0, 256, size=(3, 28, 28), dtype=np.uint8)
    test_y = np.array([3, 1, 4], np.uint8)
    write_split(tmp_path, "train", train_x, train_y, gz)
    write_split(tmp_path, "test", test_x, test_y, gz)
    x, y = mnist.load_mnist(tmp_path, kind="train")
    np.testing.assert_array_equal(x, train_x)
    np.testing.assert_array_equal(y, train_y)
    x, y = mnist.load_mnist(str(tmp_path))
    np.testing.assert_array_equal(x, test_x)
    assert y.tolist() == [3, 1, 4]
    assert mnist.has_split(tmp_path, "train")


def test_env_var_override(tmp_path, monkeypatch):
    test_x = np.full((2, 28, 28), 9, np.uint8)
    write_split(tmp_path, "test", test_x, np.array([5, 6], np.uint8), gz=True)
    monkeypatch.setenv(mnist.ENV_VAR, str(tmp_path))
    x, y = mnist.load_mnist()
    assert x.shape == (2, 28, 28) and y.tolist() == [5, 6]
    assert not mnist.has_split(None, "train")
    monkeypatch.delenv(mnist.ENV_VAR)
    assert mnist.load_mnist()[0].shape == (10000, 28, 28)


def test_mismatched_counts_and_bad_labels(tmp_path):
    write_split(tmp_path, "test", np.zeros((3, 28, 28), np.uint8), np.array([1, 2], np.uint8), gz=False)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        mnist.load_mnist(tmp_path)
    write_split(tmp_path, "test", np.zeros((2, 28, 28), np.uint8), np.array([1, 12], np.uint8), gz=False)
    with pytest.raises(ValueError, match="0..9"):
        mnist.load_mnist(tmp_path)


def test_missing_files_and_bad_kind(tmp_path, monkeypatch):
    monkeypatch.delenv(mnist.ENV_VAR, raising=False)
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        mnist.load_mnist(kind="train")  # the bundled folder has only the test set
    with pytest.raises(FileNotFoundError):
        mnist.load_mnist(tmp_path)
    with pytest.raises(ValueError, match="kind"):
        mnist.load_mnist(kind="validation")
