"""Large 16-bit, float and RGBA uploads decode at bounded memory (peak RSS measured in a subprocess).

Each file is written by one subprocess and normalised by another, which reports the growth of its peak
resident size (``ru_maxrss``) during :func:`app.uploads.normalise_upload` — what the decoding really costs,
Pillow's C buffers included. Before the bounded decoding, the 6300×6300 float TIFF took 1.5 GB.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from app.errors import ApiError
from app.uploads import normalise_upload

REPO = Path(__file__).resolve().parent.parent
EXTRA_LIMIT_MB = 256

WRITE = r"""
import sys, numpy as np
from PIL import Image
kind, n, path = sys.argv[1], int(sys.argv[2]), sys.argv[3]
if kind == "float":
    image = Image.fromarray(np.full((n, n), 0.5, np.float32), "F")
    image.save(path, format="TIFF", compression="tiff_deflate")
elif kind == "rgba":
    a = np.zeros((n, n, 4), np.uint8); a[..., 0] = 200; a[..., 3] = 128
    Image.fromarray(a, "RGBA").save(path, format="PNG", compress_level=1)
else:
    Image.fromarray(np.full((n, n), 30000, np.uint16)).save(path, format="PNG", compress_level=1)
"""

MEASURE = r"""
import io, json, resource, sys
import numpy as np
from PIL import Image
from app.uploads import normalise_upload
data = open(sys.argv[1], "rb").read()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = normalise_upload(data, 512, 40_000_000)
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
pixels = np.asarray(Image.open(io.BytesIO(out.png)))
print(json.dumps({"extra_mb": (after - before) / 1024, "size": [out.width, out.height],
                  "original": [out.original_width, out.original_height],
                  "mode": Image.open(io.BytesIO(out.png)).mode,
                  "centre": pixels[pixels.shape[0] // 2, pixels.shape[1] // 2].tolist()}))
"""


def run(code: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=True
    )
    return done.stdout


@pytest.mark.parametrize(
    ("kind", "side", "centre"),
    [
        ("float", 6300, 128),  # 0.5 in [0, 1] → rint(127.5) = 128
        ("i16", 6300, 117),  # 30000 / 257 = 116.7 → 117
        ("rgba", 5000, [227, 127, 127]),  # (200, 0, 0) at alpha 128/255 on white: 200·a + 255·(1 − a)
    ],
)
def test_large_uploads_decode_at_bounded_memory(tmp_path, kind, side, centre) -> None:
    path = tmp_path / f"{kind}.img"
    run(WRITE, kind, str(side), str(path))
    result = json.loads(run(MEASURE, str(path)))
    assert result["extra_mb"] < EXTRA_LIMIT_MB, result
    assert result["size"] == [512, 512]
    assert result["original"] == [side, side]
    got = result["centre"]
    if isinstance(centre, list):
        assert result["mode"] == "RGB"
        assert all(abs(a - b) <= 1 for a, b in zip(got, centre, strict=True)), got
    else:
        assert result["mode"] == "L" and abs(got - centre) <= 1, got


def test_an_image_too_large_to_decode_is_refused_before_decoding(tmp_path) -> None:
    path = tmp_path / "float.img"
    run(WRITE, "float", "600", str(path))  # 600·600·4 = 1,440,000 bytes decoded
    with pytest.raises(ApiError) as refused:
        normalise_upload(path.read_bytes(), 512, 40_000_000, max_decode_bytes=1_000_000)
    assert refused.value.status_code == 413
    assert "fewer pixels" in refused.value.message
    assert normalise_upload(path.read_bytes(), 512, 40_000_000, max_decode_bytes=1_440_000).width == 512
