"""GET /api/animation.gif / .png: frame count and size from the parameters, the first and last frames checked
pixel by pixel against the feature map picture of /api/conv.png, determinism (bytes and ETag), and limits."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.image_source import load_array

MARGIN, LABEL, GAP = 8, 18, 28  # the layout documented in app/animation.py
SAND = (243, 217, 166)


def frames_of(content: bytes) -> list[np.ndarray]:
    picture = Image.open(io.BytesIO(content))
    out = []
    for index in range(getattr(picture, "n_frames", 1)):
        picture.seek(index)
        out.append(np.asarray(picture.convert("RGB")).copy())
    return out


def grid_geometry(frame: np.ndarray, input_cells: tuple[int, int], output_cells: tuple[int, int]):
    """Cell size and the two grids' origins, solved from the frame width (1-pixel grid lines)."""
    (ih, iw), (oh, ow) = input_cells, output_cells
    width = frame.shape[1]
    cell, remainder = divmod(width - 2 * MARGIN - GAP - (iw + 1) - (ow + 1), iw + ow)
    assert remainder == 0, "the frame width is not a whole number of cells"
    top = MARGIN + LABEL
    input_origin = (top, MARGIN)
    output_origin = (top, MARGIN + iw * (cell + 1) + 1 + GAP)
    height = top + max(ih, oh) * (cell + 1) + 1 + MARGIN
    assert frame.shape[0] == height
    return cell, input_origin, output_origin


def cell_block(
    frame: np.ndarray, origin: tuple[int, int], cell: int, r: int, c: int, inset: int = 0
) -> np.ndarray:
    y = origin[0] + 1 + r * (cell + 1) + inset
    x = origin[1] + 1 + c * (cell + 1) + inset
    return frame[y : y + cell - 2 * inset, x : x + cell - 2 * inset]


def map_picture(client, query: str) -> np.ndarray:
    response = client.get(f"/api/conv.png?{query}")
    assert response.status_code == 200
    return np.asarray(Image.open(io.BytesIO(response.content)).convert("RGB"))


BASE = "image=mnist:0&max_side=8&weight=sobel_x&padding=1"


def test_frame_count_and_size_follow_the_parameters(client):
    # 8×8 input, 3×3, padding 1: 64 output positions; every one a frame, plus the complete last frame
    frames = frames_of(client.get(f"/api/animation.png?{BASE}&numbers=off&width=500").content)
    assert len(frames) == 64 + 1
    assert 500 - (10 + 8) <= frames[0].shape[1] <= 500
    grid_geometry(frames[0], (10, 10), (8, 8))
    # step 5: positions 0, 5, ..., 60 and the last (63), then the complete frame
    stepped = Image.open(io.BytesIO(client.get(f"/api/animation.gif?{BASE}&step=5").content))
    assert stepped.n_frames == len(range(0, 64, 5)) + 1 + 1
    # stride 2 with dilation 2: ((8 + 2 − 5) // 2 + 1)² = 9 positions
    strided = Image.open(io.BytesIO(client.get(f"/api/animation.gif?{BASE}&stride=2&dilation=2").content))
    assert strided.n_frames == 9 + 1


def test_first_and_last_frames_equal_the_feature_map(client, settings):
    query = f"{BASE}&numbers=off"
    frames = frames_of(client.get(f"/api/animation.png?{query}").content)
    cell, input_origin, output_origin = grid_geometry(frames[0], (10, 10), (8, 8))
    picture = map_picture(client, BASE)  # (8, 8, 3): one pixel per value
    last, first = frames[-1], frames[0]
    for r in range(8):
        for c in range(8):
            block = cell_block(last, output_origin, cell, r, c)
            assert (block == picture[r, c]).all(), (r, c)
            inner = cell_block(first, output_origin, cell, r, c, inset=cell // 4)
            expected = picture[0, 0] if (r, c) == (0, 0) else (255, 255, 255)
            assert (inner == expected).all(), (r, c)
    # the input grid: the image's grey values inside, sand padding around (first frame, away from the taps)
    x = np.rint(load_array("mnist:0", "gray", 8, settings)[0, 0] * 255).astype(np.uint8)
    for r in range(10):
        for c in range(10):
            if r < 3 and c < 3:
                continue  # the taps of output (0, 0) are outlined
            block = cell_block(first, input_origin, cell, r, c, inset=cell // 4)
            inside = 1 <= r <= 8 and 1 <= c <= 8
            expected = (x[r - 1, c - 1],) * 3 if inside else SAND
            assert (block == expected).all(), (r, c)
    # the GIF's palette is quantised: close to the exact APNG
    gif = frames_of(client.get(f"/api/animation.gif?{query}").content)
    assert len(gif) == len(frames)
    assert np.abs(gif[-1].astype(int) - last.astype(int)).max() <= 24


def test_pool_and_transpose_last_frames(client):
    torch = pytest.importorskip("torch")
    query = "image=mnist:0&max_side=12&weight=sobel_x&pool=max&pool_kernel=2"
    frames = frames_of(client.get(f"/api/animation.png?{query}&kind=pool&numbers=off").content)
    assert len(frames) == 25 + 1  # 10×10 conv map pooled 2×2 → 5×5
    cell, _, output_origin = grid_geometry(frames[0], (10, 10), (5, 5))
    pooled = map_picture(client, query + "&stage=pool")
    for r in range(5):
        for c in range(5):
            assert (cell_block(frames[-1], output_origin, cell, r, c) == pooled[r, c]).all()
    # transposed: an 8×8 input, stride 2 → 17×17; the last frame is PyTorch's conv_transpose2d in colour
    from app.animation import map_colors

    frames = frames_of(
        client.get(
            "/api/animation.png?image=mnist:0&max_side=8&weight=sobel_x&stride=2&kind=transpose&numbers=off"
        ).content
    )
    assert len(frames) == 64 + 1
    cell, _, output_origin = grid_geometry(frames[0], (8, 8), (17, 17))
    from app.settings import get_settings

    x = torch.from_numpy(load_array("mnist:0", "gray", 8, get_settings()).copy())
    sobel = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]])[None, None]
    expected = torch.nn.functional.conv_transpose2d(x, sobel, stride=2)[0, 0].numpy()
    colors = map_colors(expected)
    for r in range(17):
        for c in range(17):
            block = cell_block(frames[-1], output_origin, cell, r, c)
            assert np.abs(block.astype(int) - colors[r, c].astype(int)).max() <= 1, (r, c)


def test_deterministic_bytes_etag_and_304(client):
    first = client.get(f"/api/animation.gif?{BASE}")
    second = client.get(f"/api/animation.gif?{BASE}")
    assert first.status_code == 200 and first.headers["content-type"] == "image/gif"
    assert first.content == second.content and first.headers["etag"] == second.headers["etag"]
    assert (
        client.get(f"/api/animation.gif?{BASE}", headers={"If-None-Match": first.headers["etag"]}).status_code
        == 304
    )
    other = client.get(f"/api/animation.gif?{BASE}&padding_mode=reflect")
    assert other.headers["etag"] != first.headers["etag"] and other.content != first.content
    poster = client.get(f"/api/animation.png?{BASE}&poster=true&numbers=off")
    assert poster.headers["content-type"] == "image/png"
    still = frames_of(poster.content)
    assert len(still) == 1
    animated = frames_of(client.get(f"/api/animation.png?{BASE}&numbers=off").content)
    assert (still[0] == animated[-1]).all()


def test_a_photo_animates_without_grid_and_stays_small(client):
    response = client.get(
        "/api/animation.gif?image=sample:astronaut&color=rgb&max_side=128&weight=sobel_x&padding=1"
    )
    assert response.status_code == 200
    picture = Image.open(io.BytesIO(response.content))
    assert picture.n_frames == 48 + 1 or picture.n_frames <= 49
    assert len(response.content) < 3 * 1024 * 1024


@pytest.mark.parametrize(
    ("query", "field", "words"),
    [
        (f"{BASE}&width=5000", "width", "less than or equal"),
        (f"{BASE}&frames=10&step=1", "step", "raise step"),
        (f"{BASE}&kind=pool", "kind", "needs pooling"),
        ("image=mnist:0&weight=sobel_x&kind=transpose", "max_side", "up to 16"),
        (f"{BASE}&filter=3", "filter", "1 filter"),
        ("image=mnist:0&weight=sobel_x&style=grid&width=1600&frames=400&step=2", "width", "pixels"),
        (f"{BASE}&padding=8&padding_mode=reflect", "padding_mode", "smaller than the input"),
        (f"{BASE}&kind=spin", "kind", "conv"),
    ],
)
def test_limits_answer_422(client, query, field, words):
    response = client.get(f"/api/animation.gif?{query}")
    assert response.status_code == 422, response.text
    detail = response.json()["detail"][0]
    assert detail["loc"] == ["query", field] and words in detail["msg"], detail
