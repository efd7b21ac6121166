"""Hostile and unusual uploads against a real uvicorn server (issue 6, reliability suite).

Every file a class of students might throw at `POST /api/images` gives either the right image (checked pixel
by pixel through `GET /api/images/{id}.png`) or a clear 4xx with a sentence; never a 5xx, and never a
partial or temporary file in the store folder (listed after every upload). Also: 20 parallel uploads of the
same image store one file under one id, and the size-capped store evicts only least-recently-used uploads
older than the retention window, refusing with 507 when nothing may go.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from live_server import LiveServer
from PIL import Image

MAX_SIDE = 512
MAX_UPLOAD = 10 * 1024 * 1024
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# What may sit in the store folder: content-addressed PNGs (and, if the store keeps them, JSON sidecars).
FINAL_NAME = re.compile(r"[0-9a-f]{64}\.(png|json)")


# ----------------------------------------------------------------------------------------------- helpers


def encode(image: Image.Image, fmt: str, **params: object) -> bytes:
    buf = io.BytesIO()
    image.save(buf, fmt, **params)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def bomb_png(width: int = 30000, height: int = 30000) -> bytes:
    """A valid 1-bit grayscale PNG of width × height zero pixels, about 110 kB on disk.

    The IDAT stream is compressed row block by row block, so the 112 MB of raw rows (900 M pixels once
    decoded) are never held in memory here.
    """
    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    rows_per_block = 1000
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row * rows_per_block) for _ in range(height // rows_per_block)]
    parts.append(compressor.compress(row * (height % rows_per_block)))
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    idat = b"".join(parts)
    return PNG_SIGNATURE + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def gif_js_polyglot() -> bytes:
    """A GIF whose header also reads as JavaScript: ``GIF89a/*<binary>*/=alert(1);``.

    The logical-screen width 0x2A2F is the two bytes "/*", opening a JS comment that the trailer closes.
    """
    body = encode(Image.new("P", (0x2A2F, 1), 0), "GIF")
    assert body[6:8] == b"/*"
    return body + b"*/=alert(1);//"


def store_files(store: Path) -> set[str]:
    return {str(p.relative_to(store)) for p in store.rglob("*") if p.is_file()}


def assert_store_clean(store: Path) -> None:
    """Only final content-addressed files; each PNG's name is the SHA-256 of its bytes."""
    for rel in store_files(store):
        name = Path(rel).name
        assert FINAL_NAME.fullmatch(name), f"unexpected (partial or temporary?) file in the store: {rel}"
        if name.endswith(".png"):
            data = (store / rel).read_bytes()
            assert hashlib.sha256(data).hexdigest() == name[:64], f"{rel} does not match its hash"
            assert data.startswith(PNG_SIGNATURE)


def served_image(client, image_id: str) -> Image.Image:
    response = client.get(f"/api/images/{image_id}.png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.content.startswith(PNG_SIGNATURE)
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def assert_clear_4xx(response, allowed: set[int]) -> None:
    assert response.status_code in allowed, (response.status_code, response.text[:500])
    detail = response.json()["detail"]
    if isinstance(detail, list):  # FastAPI validation shape
        detail = " ".join(str(item.get("msg", "")) for item in detail)
    assert isinstance(detail, str) and len(detail) >= 10, f"no clear message: {detail!r}"


def noise_png(seed: int, side: int = 64) -> bytes:
    """An incompressible RGB PNG: its normalised copy in the store is about side*side*3 bytes."""
    pixels = np.random.default_rng(seed).integers(0, 256, size=(side, side, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels, "RGB"), "PNG")


# ----------------------------------------------------------------------------------------------- server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    store = tmp_path_factory.mktemp("store")
    env = {"CONVLENS_STORE_DIR": str(store), "CONVLENS_MAX_SIDE": str(MAX_SIDE),
           "CONVLENS_MAX_UPLOAD_BYTES": str(MAX_UPLOAD)}
    with LiveServer(env=env, workers=1) as live:
        live.store = store  # type: ignore[attr-defined]
        yield live


@pytest.fixture()
def upload(server):
    """POST a file; check there is no 5xx and the store is clean afterwards; return the response."""
    client = server.client()

    def post(name: str, data: bytes, content_type: str = "application/octet-stream"):
        before = store_files(server.store)
        response = client.post("/api/images", files={"file": (name, data, content_type)})
        assert response.status_code < 500, (response.status_code, response.text[:500], server.log())
        assert_store_clean(server.store)
        if response.status_code >= 400:
            assert store_files(server.store) == before, "a refused upload changed the store"
        return response

    post.client = client  # type: ignore[attr-defined]
    yield post
    client.close()


# ----------------------------------------------------------------------------------------------- refusals


def test_empty_file_is_refused(upload):
    assert_clear_4xx(upload("empty.png", b"", "image/png"), {400, 415, 422})


def test_truncated_png_is_refused_as_corrupt(upload):
    data = encode(Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)), "PNG")
    assert_clear_4xx(upload("cut.png", data[: len(data) // 2], "image/png"), {400})


@pytest.mark.parametrize("name, data, content_type", [
    ("notes.png", b"These are my lecture notes, not a picture.\n" * 20, "image/png"),
    ("drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
                    b'<script>alert(1)</script><rect width="10" height="10"/></svg>', "image/svg+xml"),
    ("page.html", b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>",
     "text/html"),
])
def test_non_images_are_refused_with_415(upload, name, data, content_type):
    assert_clear_4xx(upload(name, data, content_type), {415})


def test_decompression_bomb_is_refused_before_decoding(upload):
    data = bomb_png()
    assert len(data) < 1_000_000
    start = time.perf_counter()
    response = upload("bomb.png", data, "image/png")
    assert_clear_4xx(response, {413, 422})
    assert time.perf_counter() - start < 10, "the bomb looks decoded rather than refused from its header"


def test_fifty_megabyte_file_is_refused_with_413(upload):
    data = PNG_SIGNATURE + np.random.default_rng(1).bytes(50 * 1024 * 1024)
    assert_clear_4xx(upload("huge.png", data, "image/png"), {413})


def test_gif_javascript_polyglot_is_never_served_as_script(upload):
    response = upload("cat.gif", gif_js_polyglot(), "image/gif")
    if response.status_code >= 400:
        assert_clear_4xx(response, {400, 413, 415, 422})
        return
    body = response.json()
    raw = upload.client.get(f"/api/images/{body['id']}.png")
    assert raw.headers["content-type"] == "image/png"
    assert raw.headers.get("x-content-type-options") == "nosniff"
    assert raw.content.startswith(PNG_SIGNATURE) and b"alert(" not in raw.content
    assert max(body["width"], body["height"]) <= MAX_SIDE and body["downscaled"] is True


# ----------------------------------------------------------------------------------------------- accepted


def test_cmyk_jpeg_becomes_rgb(upload):
    response = upload("cmyk.jpg", encode(Image.new("CMYK", (24, 16), (255, 0, 0, 0)), "JPEG", quality=95),
                      "image/jpeg")
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert (body["width"], body["height"], body["channels"]) == (24, 16, 3)
    pixel = np.asarray(served_image(upload.client, body["id"]).convert("RGB"))[8, 12]
    assert np.allclose(pixel, (0, 255, 255), atol=12), pixel  # pure cyan


def test_sixteen_bit_png_is_scaled_to_eight_bits(upload):
    levels = np.arange(256, dtype=np.uint16) * 257  # 0 .. 65535: the 8-bit value v is 257 v in 16 bits
    data = encode(Image.fromarray(np.repeat(levels[None, :], 4, axis=0)), "PNG")
    response = upload("deep.png", data, "image/png")
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert (body["width"], body["height"], body["channels"]) == (256, 4, 1)
    row = np.asarray(served_image(upload.client, body["id"]).convert("L"))[0].astype(int)
    assert np.abs(row - np.arange(256)).max() <= 1, row


def test_one_bit_png_is_black_and_white(upload):
    checker = (np.indices((20, 30)).sum(axis=0) % 2).astype(bool)
    response = upload("bits.png", encode(Image.fromarray(checker), "PNG"), "image/png")
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert (body["width"], body["height"], body["channels"]) == (30, 20, 1)
    pixels = np.asarray(served_image(upload.client, body["id"]).convert("L"))
    np.testing.assert_array_equal(pixels, np.where(checker, 255, 0))


def test_la_png_is_composited_on_white(upload):
    alpha = np.array([[0, 128, 255]], dtype=np.uint8).repeat(5, axis=0)
    la = Image.merge("LA", [Image.new("L", (3, 5), 0), Image.fromarray(alpha)])
    response = upload("la.png", encode(la, "PNG"), "image/png")
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert body["channels"] == 1
    row = np.asarray(served_image(upload.client, body["id"]).convert("L"))[0].astype(int)
    # black at opacity a over white: 255 * (1 - a / 255)
    assert np.abs(row - np.array([255, 127, 0])).max() <= 1, row


def test_palette_png_with_transparency_is_composited_on_white(upload):
    image = Image.new("P", (4, 2), 0)
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)  # index 0 red (transparent), 1 blue
    image.putpixel((3, 0), 1)
    image.putpixel((3, 1), 1)
    response = upload("pal.png", encode(image, "PNG", transparency=0), "image/png")
    assert response.status_code in (200, 201), response.text
    rgb = served_image(upload.client, response.json()["id"]).convert("RGB")
    assert rgb.getpixel((0, 0)) == (255, 255, 255)
    assert rgb.getpixel((3, 1)) == (0, 0, 255)


@pytest.mark.parametrize("fmt, params", [("GIF", {}), ("WEBP", {"lossless": True})])
def test_animated_images_use_the_first_frame(upload, fmt, params):
    frames = [Image.new("RGB", (16, 12), colour) for colour in ("red", "blue", "lime")]
    data = encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0, **params)
    response = upload(f"anim.{fmt.lower()}", data, f"image/{fmt.lower()}")
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert (body["width"], body["height"]) == (16, 12)
    pixel = np.asarray(served_image(upload.client, body["id"]).convert("RGB"))[6, 8]
    assert np.allclose(pixel, (255, 0, 0), atol=3), pixel


def test_exif_orientation_is_applied(upload):
    # Stored 40 wide × 20 tall, left half black; orientation 6 = "rotate 90° clockwise to display".
    pixels = np.full((20, 40), 255, dtype=np.uint8)
    pixels[:, :20] = 0
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.fromarray(pixels).convert("RGB"), "JPEG", quality=95, exif=exif.tobytes())
    response = upload("phone.jpg", data, "image/jpeg")
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert (body["width"], body["height"]) == (20, 40)
    shown = np.asarray(served_image(upload.client, body["id"]).convert("L")).astype(int)
    # After a clockwise quarter turn the black left half is on top.
    assert shown[:15].mean() < 30 and shown[25:].mean() > 225


def test_multipage_tiff_uses_the_first_page(upload):
    pages = [Image.new("RGB", (30, 20), (0, 128, 0)), Image.new("RGB", (10, 10), (255, 0, 0))]
    data = encode(pages[0], "TIFF", save_all=True, append_images=pages[1:])
    response = upload("scan.tiff", data, "image/tiff")
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert (body["width"], body["height"], body["channels"]) == (30, 20, 3)
    assert served_image(upload.client, body["id"]).convert("RGB").getpixel((15, 10)) == (0, 128, 0)


def test_ico_is_accepted_or_refused_clearly(upload):
    response = upload("favicon.ico", encode(Image.new("RGB", (32, 32), "red"), "ICO"), "image/x-icon")
    if response.status_code >= 400:
        assert_clear_4xx(response, {415})
    else:
        assert max(response.json()["width"], response.json()["height"]) <= 32


def test_one_pixel_image(upload):
    response = upload("dot.png", encode(Image.new("L", (1, 1), 77), "PNG"), "image/png")
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert (body["width"], body["height"], body["downscaled"]) == (1, 1, False)
    assert served_image(upload.client, body["id"]).convert("L").getpixel((0, 0)) == 77


def test_one_by_ten_thousand_image_is_downscaled_keeping_one_column(upload):
    column = (np.arange(10000) % 256).astype(np.uint8)[:, None]
    response = upload("line.png", encode(Image.fromarray(column), "PNG"), "image/png")
    assert response.status_code in (200, 201), response.text
    body = response.json()
    assert (body["original_width"], body["original_height"]) == (1, 10000)
    assert (body["width"], body["height"], body["downscaled"]) == (1, MAX_SIDE, True)


def test_same_upload_twice_gives_the_same_id(upload):
    data = noise_png(7)
    first, second = upload("a.png", data, "image/png"), upload("b.png", data, "image/png")
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]


# ----------------------------------------------------------------------------------------------- concurrency


def test_twenty_parallel_uploads_store_one_file(server):
    data = noise_png(42)
    before = store_files(server.store)

    def post(_: int):
        with server.client() as client:
            return client.post("/api/images", files={"file": ("same.png", data, "image/png")})

    with ThreadPoolExecutor(max_workers=20) as pool:
        responses = list(pool.map(post, range(20)))
    assert all(r.status_code in (200, 201) for r in responses), [(r.status_code, r.text) for r in responses]
    ids = {r.json()["id"] for r in responses}
    assert len(ids) == 1
    new = store_files(server.store) - before
    assert {Path(name).name for name in new if name.endswith(".png")} == {f"{ids.pop()}.png"}
    assert_store_clean(server.store)


# ----------------------------------------------------------------------------------------------- store cap


def _capped_server(tmp_path: Path, retention_seconds: float) -> LiveServer:
    # Noise PNGs of 64×64 RGB are stored in 12,288 .. ~13,000 bytes: two fit, three do not.
    env = {"CONVLENS_STORE_DIR": str(tmp_path), "CONVLENS_STORE_MAX_BYTES": "31000",
           "CONVLENS_STORE_RETENTION_SECONDS": str(retention_seconds)}
    return LiveServer(env=env)


def test_full_store_refuses_with_507_rather_than_dropping_recent_uploads(tmp_path):
    with _capped_server(tmp_path, retention_seconds=3600) as live, live.client() as client:
        ids = []
        for seed in (1, 2):
            response = client.post("/api/images", files={"file": ("n.png", noise_png(seed), "image/png")})
            assert response.status_code == 201, response.text
            ids.append(response.json()["id"])
        refused = client.post("/api/images", files={"file": ("n.png", noise_png(3), "image/png")})
        assert_clear_4xx(refused, {507})
        for image_id in ids:  # nothing recent was lost
            assert client.get(f"/api/images/{image_id}.png").status_code == 200
        assert_store_clean(tmp_path)
        assert len([f for f in store_files(tmp_path) if f.endswith(".png")]) == 2


def test_full_store_evicts_the_least_recently_used_upload_past_retention(tmp_path):
    with _capped_server(tmp_path, retention_seconds=0.5) as live, live.client() as client:
        ids = {}
        for name, seed in (("a", 11), ("b", 12)):
            response = client.post("/api/images", files={"file": ("n.png", noise_png(seed), "image/png")})
            assert response.status_code == 201, response.text
            ids[name] = response.json()["id"]
        # Reading "a" makes it more recently used than "b"; then both age past the retention window.
        time.sleep(0.05)
        assert client.get(f"/api/images/{ids['a']}.png").status_code == 200
        time.sleep(0.7)
        response = client.post("/api/images", files={"file": ("c.png", noise_png(13), "image/png")})
        assert response.status_code == 201, response.text
        ids["c"] = response.json()["id"]
        assert client.get(f"/api/images/{ids['a']}.png").status_code == 200
        assert client.get(f"/api/images/{ids['c']}.png").status_code == 200
        assert client.get(f"/api/images/{ids['b']}.png").status_code == 404
        assert_store_clean(tmp_path)
