"""The content-addressed upload store: atomic writes, concurrency, LRU eviction / 507, corruption."""

from __future__ import annotations

import hashlib
import io
import os
import threading
import time

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.errors import ApiError
from app.main import create_app
from app.settings import Settings
from app.store import StoreCorrupt, StoreFull, UnknownImage, UploadStore


def png_of(seed: int, side: int = 32) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "L").save(buffer, format="PNG")
    return buffer.getvalue()


def files(root) -> list[str]:
    return sorted(os.listdir(root)) if os.path.isdir(root) else []


def test_save_and_read_round_trip(tmp_path):
    store = UploadStore(tmp_path, max_bytes=10**9, retention_seconds=0)
    data = png_of(1)
    first = store.save(data)
    assert first.image_id == hashlib.sha256(data).hexdigest() and first.created
    assert store.save(data).created is False
    assert store.read(first.image_id) == data
    assert files(tmp_path) == [f"{first.image_id}.png"]


@pytest.mark.parametrize("bad", ["../x", "A" * 64, "g" * 64, "a" * 63, "", "a" * 64 + "/..", "mnist:1"])
def test_ids_cannot_leave_the_folder(tmp_path, bad):
    store = UploadStore(tmp_path, max_bytes=10**9, retention_seconds=0)
    with pytest.raises(UnknownImage):
        store.path_for(bad)


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    store = UploadStore(tmp_path, max_bytes=10**9, retention_seconds=0)

    def crash(fd):
        raise OSError("disk died")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(ApiError) as raised:  # an I/O error is a 503 with a sentence, never a 500
        store.save(png_of(2))
    assert raised.value.status_code == 503 and "could not store" in raised.value.message
    assert files(tmp_path) == []


def test_leftover_temp_files_are_not_images(tmp_path):
    store = UploadStore(tmp_path, max_bytes=10**9, retention_seconds=0)
    (tmp_path / ".tmp-crashed.png").write_bytes(b"half")
    assert store.usage() == []
    old = time.time() - 7200
    os.utime(tmp_path / ".tmp-crashed.png", (old, old))
    store.usage()  # a stale temp file from a crash is cleaned up
    assert files(tmp_path) == []


def test_twenty_threads_same_bytes_one_file(tmp_path):
    store = UploadStore(tmp_path, max_bytes=10**9, retention_seconds=0)
    data = png_of(3, side=200)
    results = []
    barrier = threading.Barrier(20)

    def worker():
        barrier.wait()
        results.append(store.save(data))

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.image_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert files(tmp_path) == [f"{results[0].image_id}.png"]


def test_twenty_parallel_http_uploads(client, settings):
    data = png_of(4, side=100)
    statuses, ids = [], []
    barrier = threading.Barrier(20)

    def worker():
        barrier.wait()
        response = client.post("/api/images", files={"file": ("a.png", data, "image/png")})
        statuses.append(response.status_code)
        ids.append(response.json()["id"])

    threads = [threading.Thread(target=worker) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(ids)) == 1
    assert sorted(statuses) == [200] * 19 + [201]
    # the PNG and its sidecar (the size before downscaling), once each
    assert files(settings.store_dir) == [f"{ids[0]}.json", f"{ids[0]}.png"]


def test_corrupt_file_is_reported_not_served(client, settings):
    body = client.post("/api/images", files={"file": ("a.png", png_of(5), "image/png")}).json()
    path = settings.store_dir / f"{body['id']}.png"
    path.write_bytes(path.read_bytes()[:-10] + b"0123456789")
    for url in (f"/api/images/{body['id']}.png", f"/api/images/{body['id']}"):
        response = client.get(url)
        assert response.status_code == 410
        assert "corrupt" in response.json()["detail"]
    conv = client.post("/api/conv", json={"image": body["id"], "max_side": 31})  # not in the array cache
    assert conv.status_code == 410
    # uploading the same image again repairs it
    again = client.post("/api/images", files={"file": ("a.png", png_of(5), "image/png")})
    assert again.status_code == 201
    assert client.get(f"/api/images/{body['id']}.png").status_code == 200


def test_read_of_corrupt_file_raises(tmp_path):
    store = UploadStore(tmp_path, max_bytes=10**9, retention_seconds=0)
    saved = store.save(png_of(6))
    (tmp_path / f"{saved.image_id}.png").write_bytes(b"garbage")
    with pytest.raises(StoreCorrupt):
        store.read(saved.image_id)


def test_lru_eviction_past_retention(tmp_path):
    blobs = [png_of(seed) for seed in range(4)]
    size = max(len(b) for b in blobs)
    store = UploadStore(tmp_path, max_bytes=size * 3, retention_seconds=60)
    ids = [store.save(b).image_id for b in blobs[:3]]
    now = time.time()
    # ages: ids[0] used 2 h ago, ids[1] 3 h ago (least recent), ids[2] just now
    for image_id, age in zip(ids, (7200, 10800, 0), strict=True):
        os.utime(tmp_path / f"{image_id}.png", (now - age, now - age))
    store.read(ids[0])  # reading refreshes: ids[0] is now recent
    new = store.save(blobs[3])
    remaining = {name[:-4] for name in files(tmp_path)}
    assert ids[1] not in remaining  # least recently used and past retention → evicted
    assert {ids[0], ids[2], new.image_id} <= remaining


def test_full_store_of_recent_uploads_is_507(tmp_path):
    blobs = [png_of(seed) for seed in range(3)]
    store = UploadStore(tmp_path, max_bytes=len(blobs[0]) + len(blobs[1]), retention_seconds=3600)
    store.save(blobs[0])
    store.save(blobs[1])
    with pytest.raises(StoreFull):
        store.save(blobs[2])
    assert len(files(tmp_path)) == 2


def test_full_store_is_507_over_http(tmp_path):
    from app.uploads import normalise_upload

    blobs = [png_of(seed) for seed in range(3)]
    stored_sizes = [len(normalise_upload(b, 512, 10**6).png) for b in blobs]
    settings = Settings(
        store_dir=tmp_path, store_max_bytes=sum(stored_sizes[:2]), store_retention_seconds=3600
    )
    with TestClient(create_app(settings)) as client:
        for blob in blobs[:2]:
            assert client.post("/api/images", files={"file": ("a.png", blob, "image/png")}).status_code == 201
        for sidecar in tmp_path.glob("*.json"):
            sidecar.unlink()  # not counted toward the limit; this test is about the PNGs
        response = client.post("/api/images", files={"file": ("c.png", blobs[2], "image/png")})
        assert response.status_code == 507
        assert "full" in response.json()["detail"]
        # an image already stored is still accepted (no new bytes needed)
        assert client.post("/api/images", files={"file": ("a.png", blobs[0], "image/png")}).status_code == 200
    assert len([name for name in files(tmp_path) if name.endswith(".png")]) == 2


def test_restart_keeps_uploads(tmp_path):
    settings = Settings(store_dir=tmp_path)
    with TestClient(create_app(settings)) as first:
        image_id = first.post("/api/images", files={"file": ("a.png", png_of(7), "image/png")}).json()["id"]
    with TestClient(create_app(Settings(store_dir=tmp_path))) as second:
        assert second.get(f"/api/images/{image_id}").status_code == 200
