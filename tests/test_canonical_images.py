"""Issue 11: one canonical stored image per picture, against a real server.

Colour-managed inputs are converted to sRGB, tRNS and palette transparency are composited on white like
alpha, and the stored PNG keeps no metadata at all — its chunk list (parsed here, not by Pillow) is
``IHDR, IDAT…, IEND``. The same pixels give the same id, and anything accepted with 201 is usable by every
endpoint. Expected pixels come from textbook formulas (the sRGB transfer function, compositing on white),
not from the code under test.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from live_server import LiveServer
from PIL import Image, ImageCms

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# ----------------------------------------------------------------------------------------------- helpers


def chunk_types(png: bytes) -> list[str]:
    """The chunk types of a PNG file, in order, read straight from the bytes (CRCs checked)."""
    assert png[:8] == PNG_SIGNATURE
    types, offset = [], 8
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind = png[offset + 4 : offset + 8]
        data = png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert zlib.crc32(kind + data) & 0xFFFFFFFF == crc, f"bad CRC in {kind!r}"
        types.append(kind.decode("ascii"))
        offset += 12 + length
    return types


def assert_pixels_only(png: bytes) -> None:
    types = chunk_types(png)
    assert types[0] == "IHDR" and types[-1] == "IEND", types
    assert set(types[1:-1]) == {"IDAT"}, f"ancillary chunks kept: {types}"


def chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def with_chunks(png: bytes, *extra: bytes) -> bytes:
    """``png`` with the given raw chunks inserted right after IHDR."""
    ihdr_end = 8 + 12 + struct.unpack(">I", png[8:12])[0]
    return png[:ihdr_end] + b"".join(extra) + png[ihdr_end:]


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    """The sRGB transfer function (IEC 61966-2-1), linear [0, 1] → encoded [0, 1]."""
    return np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)


def srgb_profile() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def linear_rgb_profile() -> bytes:
    """sRGB's primaries with a linear tone curve: every ``para`` curve set to Y = X."""
    profile = bytearray(srgb_profile())
    count = struct.unpack(">I", profile[128:132])[0]
    changed = 0
    for index in range(count):
        signature, offset, _ = struct.unpack(">4sII", profile[132 + 12 * index : 144 + 12 * index])
        if signature in (b"rTRC", b"gTRC", b"bTRC") and profile[offset : offset + 4] == b"para":
            kind = struct.unpack(">H", profile[offset + 8 : offset + 10])[0]
            params = {0: 1, 1: 3, 2: 4, 3: 5, 4: 7}[kind]
            values = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0][:params]  # g = 1, a = 1, b = 0 (, c, d, e, f)
            if kind == 3:
                values = [1.0, 1.0, 0.0, 1.0, 0.0]  # g, a, b, c, d: Y = (aX + b)^g for X >= d
            profile[offset + 12 : offset + 12 + 4 * params] = b"".join(
                struct.pack(">i", round(v * 65536)) for v in values
            )
            changed += 1
    assert changed == 3, "the built-in sRGB profile's tone curves were not found"
    return bytes(profile)


def padded_profile(size: int) -> bytes:
    """The sRGB profile with its header size saying ``size`` and private padding after the tags."""
    profile = bytearray(srgb_profile())
    profile += b"\0" * (size - len(profile))
    profile[0:4] = struct.pack(">I", size)
    return bytes(profile)


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    store = tmp_path_factory.mktemp("store")
    with LiveServer(env={"CONVLENS_STORE_DIR": str(store)}) as server:
        yield server


@pytest.fixture(scope="module")
def client(live) -> Iterator[httpx.Client]:
    with live.client() as http:
        yield http


def upload(client: httpx.Client, data: bytes, name: str = "f") -> dict:
    response = client.post("/api/images", files={"file": (name, data, "application/octet-stream")})
    assert response.status_code in (200, 201), response.text
    return response.json()


def stored(client: httpx.Client, image_id: str) -> bytes:
    response = client.get(f"/api/images/{image_id}.png")
    assert response.status_code == 200
    return response.content


def stored_pixels(client: httpx.Client, image_id: str) -> np.ndarray:
    png = stored(client, image_id)
    assert_pixels_only(png)
    return np.asarray(Image.open(io.BytesIO(png)))


def every_endpoint_works(client: httpx.Client, image_id: str) -> None:
    calls = [
        client.get(f"/api/images/{image_id}"),
        client.get(f"/api/images/{image_id}.png"),
        client.post("/api/conv", json={"image": image_id, "weight": "sobel_x", "color": "rgb"}),
        client.post("/api/explain", json={"image": image_id, "position": [0, 0, 0]}),
        client.post("/api/im2col", json={"image": image_id, "weight": "sobel_x"}),
        client.post("/api/backward", json={"image": image_id}),
        client.post("/api/network", json={"image": image_id}),
        client.get("/api/conv.png", params={"image": image_id, "weight": "sobel_y"}),
    ]
    assert [c.status_code for c in calls] == [200] * len(calls), [c.text[:200] for c in calls]


# ------------------------------------------------------------------------------------------------- ICC


def test_jpeg_with_a_huge_icc_profile_is_stored_without_it_and_usable_everywhere(client):
    rng = np.random.default_rng(0)
    picture = Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8), "RGB")
    plain = encode(picture, "JPEG", quality=90)
    tagged = encode(picture, "JPEG", quality=90, icc_profile=padded_profile(1_500_000))
    assert len(tagged) > 1_500_000
    meta = upload(client, tagged)
    assert (meta["width"], meta["height"]) == (40, 30)
    assert_pixels_only(stored(client, meta["id"]))
    every_endpoint_works(client, meta["id"])
    # an sRGB profile changes nothing: the same pixels, the same id
    assert upload(client, plain)["id"] == meta["id"]


def test_srgb_profile_png_has_the_same_id_as_the_plain_png(client):
    pixels = np.random.default_rng(1).integers(0, 256, (16, 24, 3), dtype=np.uint8)
    plain = upload(client, encode(Image.fromarray(pixels, "RGB"), "PNG"))
    tagged = upload(client, encode(Image.fromarray(pixels, "RGB"), "PNG", icc_profile=srgb_profile()))
    assert tagged["id"] == plain["id"]
    np.testing.assert_array_equal(stored_pixels(client, plain["id"]), pixels)


@pytest.mark.parametrize("fmt", ["PNG", "TIFF", "WEBP"])
def test_a_linear_rgb_profile_is_converted_to_srgb(client, fmt):
    levels = np.arange(0, 256, 4, dtype=np.uint8)  # 64 levels
    red = np.tile(levels, (8, 1))
    pixels = np.stack([red, red[:, ::-1], np.full_like(red, 128)], axis=-1)
    params = {"lossless": True} if fmt == "WEBP" else {}
    data = encode(Image.fromarray(pixels, "RGB"), fmt, icc_profile=linear_rgb_profile(), **params)
    got = stored_pixels(client, upload(client, data)["id"]).astype(np.float64)
    expected = 255.0 * srgb_encode(pixels.astype(np.float64) / 255.0)
    assert np.abs(got - expected).max() <= 2.0, np.abs(got - expected).max()
    assert np.abs(got - pixels).max() > 50  # it really changed (linear 128 is sRGB 188)


def test_an_unreadable_icc_profile_is_ignored(client):
    pixels = np.random.default_rng(2).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    broken = b"\0\0\1\0" + b"not a profile" * 20
    meta = upload(client, encode(Image.fromarray(pixels, "RGB"), "PNG", icc_profile=broken))
    np.testing.assert_array_equal(stored_pixels(client, meta["id"]), pixels)
    every_endpoint_works(client, meta["id"])


def test_an_rgb_profile_on_a_gray_image_is_ignored(client):
    gray = np.random.default_rng(3).integers(0, 256, (9, 7), dtype=np.uint8)
    meta = upload(client, encode(Image.fromarray(gray, "L"), "PNG", icc_profile=srgb_profile()))
    np.testing.assert_array_equal(stored_pixels(client, meta["id"]), gray)
    assert meta["channels"] == 1


# ---------------------------------------------------------------------------------------- transparency


def test_gray_trns_is_composited_on_white_like_la(client):
    gray = np.array([[0, 10, 200], [0, 255, 77]], dtype=np.uint8)
    trns = upload(client, encode(Image.fromarray(gray, "L"), "PNG", transparency=0))
    alpha = np.where(gray == 0, 0, 255).astype(np.uint8)
    la = Image.merge("LA", (Image.fromarray(gray, "L"), Image.fromarray(alpha, "L")))
    as_la = upload(client, encode(la, "PNG"))
    expected = np.where(gray == 0, 255, gray)
    np.testing.assert_array_equal(stored_pixels(client, trns["id"]), expected)
    assert trns["id"] == as_la["id"]
    conv = client.post("/api/conv", json={"image": trns["id"], "weight": [[1]], "values": True})
    assert conv.status_code == 200, conv.text
    assert conv.json()["conv"]["maps"][0]["values"][0][0] == 1.0  # the transparent pixel is white


def test_rgb_trns_is_composited_on_white(client):
    pixels = np.array([[[1, 2, 3], [9, 9, 9]], [[1, 2, 3], [200, 0, 50]]], dtype=np.uint8)
    meta = upload(client, encode(Image.fromarray(pixels, "RGB"), "PNG", transparency=(1, 2, 3)))
    expected = pixels.copy()
    expected[0, 0] = expected[1, 0] = 255
    np.testing.assert_array_equal(stored_pixels(client, meta["id"]), expected)


def test_sixteen_bit_gray_trns(client):
    values = np.array([[0, 65535, 4096], [4096, 30000, 0]], dtype=np.uint16)
    trns = chunk(b"tRNS", struct.pack(">H", 4096))
    plain = encode(Image.fromarray(values.astype(np.int32), "I").convert("I;16"), "PNG")
    assert chunk_types(plain)[0] == "IHDR" and plain[24] == 16  # bit depth 16
    meta = upload(client, with_chunks(plain, trns))
    expected = np.where(values == 4096, 255, np.rint(values / 257.0)).astype(np.uint8)
    np.testing.assert_array_equal(stored_pixels(client, meta["id"]), expected)


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_is_composited_on_white_like_rgba(client, fmt):
    palette_image = Image.new("P", (4, 3))
    palette_image.putpalette([0, 0, 0, 255, 0, 0, 0, 0, 255] + [0] * (256 * 3 - 9))
    indices = np.array([[0, 1, 2, 1], [2, 2, 0, 1], [1, 0, 0, 2]], dtype=np.uint8)
    palette_image.putdata(indices.flatten().tolist())
    meta = upload(client, encode(palette_image, fmt, transparency=2))  # blue entry transparent
    colours = np.array([[0, 0, 0], [255, 0, 0], [255, 255, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(stored_pixels(client, meta["id"]), colours[indices])
    rgba = np.concatenate([colours[indices], np.where(indices == 2, 0, 255)[..., None]], axis=-1)
    as_rgba = upload(client, encode(Image.fromarray(rgba.astype(np.uint8), "RGBA"), "PNG"))
    assert as_rgba["id"] == meta["id"]


def test_png_palette_with_partial_alpha_is_composited(client):
    palette_image = Image.new("P", (2, 1))
    palette_image.putpalette([0, 0, 0, 255, 255, 255] + [0] * (254 * 3))
    palette_image.putdata([0, 1])
    data = encode(palette_image, "PNG", transparency=bytes([128, 255]))  # entry 0 half transparent
    got = stored_pixels(client, upload(client, data)["id"])
    # black at alpha 128/255 over white: 255 · (1 − 128/255) = 127
    np.testing.assert_allclose(got.reshape(-1).astype(float), [255 * (1 - 128 / 255), 255], atol=1)


# ------------------------------------------------------------------------------------ other metadata


def test_text_exif_time_phys_and_srgb_gamma_chunks_do_not_change_the_id(client):
    pixels = np.random.default_rng(4).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    plain = encode(Image.fromarray(pixels, "RGB"), "PNG")
    noisy = with_chunks(
        plain,
        chunk(b"gAMA", struct.pack(">I", 45455)),
        chunk(b"pHYs", struct.pack(">IIB", 2835, 2835, 1)),
        chunk(b"tEXt", b"Comment\0hello"),
        chunk(b"zTXt", b"Author\0\0" + zlib.compress(b"someone")),
        chunk(b"tIME", struct.pack(">HBBBBB", 2026, 1, 2, 3, 4, 5)),
        chunk(b"eXIf", b"MM\0*\0\0\0\x08\0\0"),
    )
    assert upload(client, noisy)["id"] == upload(client, plain)["id"]
    with_srgb_chunk = with_chunks(plain, chunk(b"sRGB", b"\0"), chunk(b"gAMA", struct.pack(">I", 100000)))
    assert upload(client, with_srgb_chunk)["id"] == upload(client, plain)["id"]  # sRGB wins over gAMA


def test_a_linear_gamma_chunk_is_applied(client):
    gray = np.arange(0, 256, 8, dtype=np.uint8).reshape(4, 8)
    data = with_chunks(encode(Image.fromarray(gray, "L"), "PNG"), chunk(b"gAMA", struct.pack(">I", 100000)))
    got = stored_pixels(client, upload(client, data)["id"]).astype(float)
    expected = 255.0 * (gray / 255.0) ** (1 / 2.2)
    assert np.abs(got - expected).max() <= 1.0


def test_exif_orientation_is_applied_then_dropped(client):
    pixels = np.zeros((2, 3), dtype=np.uint8)
    pixels[0, 0] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    meta = upload(client, encode(Image.fromarray(pixels, "L"), "PNG", exif=exif.tobytes()))
    got = stored_pixels(client, meta["id"])
    np.testing.assert_array_equal(got, np.rot90(pixels, k=-1))


def test_every_accepted_hostile_colour_image_is_usable_everywhere(client):
    cmyk = encode(Image.new("CMYK", (8, 8), (0, 255, 255, 0)), "JPEG")
    gray_icc = encode(Image.new("L", (8, 8), 100), "JPEG", icc_profile=padded_profile(200_000))
    la_trns = encode(Image.new("LA", (8, 8), (10, 0)), "PNG")
    for data in (cmyk, gray_icc, la_trns):
        meta = upload(client, data)
        assert_pixels_only(stored(client, meta["id"]))
        every_endpoint_works(client, meta["id"])


def test_an_old_stored_png_with_a_huge_icc_chunk_is_410_not_422(live, client, tmp_path):
    """What the previous version stored for issue 11's 1.5 MB-profile JPEG: an iCCP chunk Pillow refuses."""
    import hashlib

    icc = padded_profile(1_500_000)
    old = encode(Image.new("RGB", (40, 30), "teal"), "PNG", icc_profile=icc)
    assert "iCCP" in chunk_types(old)
    image_id = hashlib.sha256(old).hexdigest()
    store = live.env["CONVLENS_STORE_DIR"]
    with open(f"{store}/{image_id}.png", "wb") as handle:
        handle.write(old)
    for response in (client.get(f"/api/images/{image_id}"),
                     client.post("/api/conv", json={"image": image_id}),
                     client.get("/api/conv.png", params={"image": image_id})):
        assert response.status_code == 410, response.text
        assert "upload the image again" in response.json()["detail"]
    assert client.get(f"/api/images/{image_id}.png").content == old  # the bytes are still what was stored
