"""POST /api/images in-process: every accepted format and mode, normalisation, and every error code."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def gradient_rgb(width: int = 40, height: int = 30) -> Image.Image:
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // max(width - 1, 1), y * 255 // max(height - 1, 1), (x + y) % 256], axis=2)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def upload(client, data: bytes, name: str = "x.bin", content_type: str = "application/octet-stream"):
    return client.post("/api/images", files={"file": (name, data, content_type)})


def stored(client, image_id: str) -> Image.Image:
    response = client.get(f"/api/images/{image_id}.png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_every_format_is_accepted(client, fmt):
    picture = gradient_rgb()
    params = {"quality": 95} if fmt == "JPEG" else {}
    response = upload(client, encode(picture, fmt, **params), name="photo.weird-extension")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["width"], body["height"], body["downscaled"]) == (40, 30, False)
    assert body["channels"] == 3
    png = stored(client, body["id"])
    assert hashlib.sha256(client.get(f"/api/images/{body['id']}.png").content).hexdigest() == body["id"]
    if fmt in ("PNG", "BMP", "TIFF"):  # lossless
        np.testing.assert_array_equal(np.asarray(png), np.asarray(picture))
    meta = client.get(f"/api/images/{body['id']}").json()
    assert meta["kind"] == "upload" and meta["width"] == 40 and meta["label"] is None


def test_same_upload_twice_201_then_200(client):
    data = encode(gradient_rgb(), "PNG")
    first, second = upload(client, data), upload(client, data)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json() == second.json()


def test_gray_rgb_is_stored_as_one_channel(client):
    gray = Image.fromarray(np.arange(64, dtype=np.uint8).reshape(8, 8), "L").convert("RGB")
    body = upload(client, encode(gray, "PNG")).json()
    assert body["channels"] == 1
    assert stored(client, body["id"]).mode == "L"


def test_exif_rotated_jpeg_has_swapped_dimensions(client):
    picture = gradient_rgb(40, 20)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    body = upload(client, encode(picture, "JPEG", exif=exif.tobytes(), quality=95)).json()
    assert (body["width"], body["height"]) == (20, 40)
    assert (body["original_width"], body["original_height"]) == (20, 40)


def test_cmyk_jpeg(client):
    cmyk = Image.new("CMYK", (16, 12), (0, 255, 255, 0))  # red
    body = upload(client, encode(cmyk, "JPEG", quality=95)).json()
    red = np.asarray(stored(client, body["id"]).convert("RGB"))[6, 8]
    assert red[0] > 200 and red[1] < 60 and red[2] < 60


def test_sixteen_bit_png(client):
    values = (np.arange(16, dtype=np.uint16) * 4369).reshape(1, 16).repeat(3, axis=0)  # 0 .. 65535
    picture = Image.new("I;16", (16, 3))
    picture.frombytes(values.astype("<u2").tobytes())
    body = upload(client, encode(picture, "PNG")).json()
    row = np.asarray(stored(client, body["id"]))[0].astype(int)
    np.testing.assert_array_equal(row, np.rint(values[0] / 257).astype(int))


def test_one_bit_png(client):
    bits = Image.fromarray(np.eye(8, dtype=bool))
    body = upload(client, encode(bits, "PNG")).json()
    np.testing.assert_array_equal(np.asarray(stored(client, body["id"])), np.eye(8, dtype=np.uint8) * 255)


@pytest.mark.parametrize("mode", ["LA", "RGBA"])
def test_alpha_is_composited_on_white(client, mode):
    picture = Image.new(mode, (4, 2), (0,) * (len(mode)))  # black, fully transparent
    body = upload(client, encode(picture, "PNG")).json()
    assert np.all(np.asarray(stored(client, body["id"])) == 255)


def test_palette_gif_with_transparency(client):
    picture = Image.new("P", (6, 4), 0)
    picture.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    picture.putpixel((0, 0), 1)
    body = upload(client, encode(picture, "GIF", transparency=0)).json()
    rgb = np.asarray(stored(client, body["id"]).convert("RGB"))
    np.testing.assert_array_equal(rgb[0, 0], [255, 0, 0])
    np.testing.assert_array_equal(rgb[1, 1], [255, 255, 255])  # transparent → white


@pytest.mark.parametrize("fmt", ["GIF", "WEBP"])
def test_animation_first_frame(client, fmt):
    frames = [Image.new("RGB", (10, 8), colour) for colour in ((255, 0, 0), (0, 0, 255))]
    data = encode(
        frames[0],
        fmt,
        save_all=True,
        append_images=frames[1:],
        duration=100,
        loop=0,
        **({"lossless": True} if fmt == "WEBP" else {}),
    )
    body = upload(client, data).json()
    pixel = np.asarray(stored(client, body["id"]).convert("RGB"))[4, 5]
    assert pixel[0] > 200 and pixel[2] < 60


def test_multipage_tiff_first_page(client):
    pages = [Image.new("L", (8, 8), 10), Image.new("L", (16, 16), 200)]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    body = upload(client, data).json()
    assert (body["width"], body["height"]) == (8, 8)
    assert np.all(np.asarray(stored(client, body["id"])) == 10)


def test_one_pixel_and_very_thin_images(client):
    tiny = upload(client, encode(Image.new("L", (1, 1), 77), "PNG")).json()
    assert (tiny["width"], tiny["height"]) == (1, 1)
    thin = upload(client, encode(Image.new("L", (1, 5000), 77), "PNG")).json()
    assert (thin["width"], thin["height"], thin["downscaled"]) == (1, 512, True)
    assert (thin["original_width"], thin["original_height"]) == (1, 5000)
    meta = client.get(f"/api/images/{thin['id']}").json()
    assert (meta["original_height"], meta["downscaled"]) == (5000, True)


def test_downscale_is_lanczos_keeping_aspect(client):
    picture = gradient_rgb(1000, 600)
    body = upload(client, encode(picture, "PNG")).json()
    assert (body["width"], body["height"]) == (512, 307)
    expected = picture.resize((512, 307), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(np.asarray(stored(client, body["id"])), np.asarray(expected))


def test_uploaded_image_usable_in_conv(client):
    body = upload(client, encode(gradient_rgb(), "PNG")).json()
    response = client.post("/api/conv", json={"image": body["id"], "color": "rgb", "weight": "sobel_x"})
    assert response.status_code == 200
    assert response.json()["input"]["shape"] == [1, 3, 30, 40]


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is text pretending to be a png",
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><script>alert(1)</script></svg>',
        b"<!doctype html><html><script>alert(1)</script></html>",
        b"%PDF-1.4 not an image",
    ],
)
def test_non_images_are_415(client, data):
    response = upload(client, data, name="picture.png", content_type="image/png")
    assert response.status_code == 415
    assert "PNG, JPEG, GIF, BMP, WebP or TIFF" in response.json()["detail"]


def test_empty_and_corrupt_are_400(client):
    assert upload(client, b"").status_code == 400
    data = encode(gradient_rgb(200, 200), "PNG")
    truncated = upload(client, data[: len(data) // 2])
    assert truncated.status_code == 400 and "corrupt or truncated" in truncated.json()["detail"]


def test_decompression_bomb_is_413_before_decoding(tmp_path):
    settings = Settings(store_dir=tmp_path, max_pixels=10_000)
    with TestClient(create_app(settings)) as client:
        response = upload(client, encode(Image.new("L", (200, 200)), "PNG"))
        assert response.status_code == 413 and "decompression-bomb" in response.json()["detail"]
        assert upload(client, encode(Image.new("L", (100, 100)), "PNG")).status_code == 201


def test_real_bomb_png(client):
    # a 30000×30000 gray PNG: a few hundred kilobytes on disk, 900 M pixels when decoded
    import struct
    import zlib

    width = height = 30000
    raw_row = b"\x00" + b"\x00" * width
    compressor = zlib.compressobj(9)
    idat = b"".join(compressor.compress(raw_row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
    png += chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    response = upload(client, png)
    assert response.status_code == 413


def test_too_many_bytes_is_413(tmp_path):
    settings = Settings(store_dir=tmp_path, max_upload_bytes=1000)
    with TestClient(create_app(settings)) as client:
        big = encode(
            Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)), "PNG"
        )
        response = upload(client, big)
        assert response.status_code == 413 and "limit" in response.json()["detail"]
        # the multipart overhead allowance does not let a file past the limit
        response = upload(client, b"\x89PNG" + b"\x00" * 1500)
        assert response.status_code == 413
        assert not list((tmp_path).glob("*.png"))


def test_not_multipart_is_415_and_missing_field_is_422(client):
    response = client.post("/api/images", content=b"\x89PNG", headers={"content-type": "image/png"})
    assert response.status_code == 415
    response = client.post(
        "/api/images", files={"picture": ("a.png", encode(gradient_rgb(), "PNG"), "image/png")}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "file"]
