"""Issue 11 against real uvicorn servers: a full or read-only disk, odd store entries, a store that cannot be
used, crash leftovers, bugs and hostile query strings and multipart bodies never give a bare 500.

Disk-full and read-only cases mount a small tmpfs (and remount it read-only), so they need root; elsewhere
they are skipped with the reason. Every upload and read goes over a socket to a real server.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from live_server import REPO, LiveServer, free_port
from PIL import Image

SECURITY_HEADERS = ("content-security-policy", "x-content-type-options", "referrer-policy")


# ----------------------------------------------------------------------------------------------- helpers


def png_bytes(pixels: np.ndarray, mode: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode).save(buffer, "PNG")
    return buffer.getvalue()


def noise_png(seed: int, side: int = 64) -> bytes:
    """Incompressible gray noise: the stored PNG is about side² bytes."""
    return png_bytes(np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8), "L")


def upload(client: httpx.Client, data: bytes, name: str = "a.png") -> httpx.Response:
    return client.post("/api/images", files={"file": (name, data, "application/octet-stream")})


def read_requests(image_id: str) -> list[tuple[str, str, dict | None]]:
    """Every way of reading an upload: (method, url, json)."""
    return [
        ("GET", f"/api/images/{image_id}.png", None),
        ("GET", f"/api/images/{image_id}", None),
        ("POST", "/api/conv", {"image": image_id, "weight": "sobel_x", "padding": 1}),
        ("POST", "/api/explain", {"image": image_id, "position": [0, 1, 1]}),
        ("POST", "/api/im2col", {"image": image_id, "weight": "sobel_x"}),
        ("POST", "/api/backward", {"image": image_id, "weight": "sobel_x"}),
        ("POST", "/api/network", {"image": image_id}),
        ("GET", f"/api/conv.png?image={image_id}&weight=sobel_y", None),
    ]


def statuses(client: httpx.Client, image_id: str) -> dict[str, int]:
    answers = {}
    for method, url, body in read_requests(image_id):
        response = client.request(method, url, json=body)
        answers[f"{method} {url.split('?')[0]}"] = response.status_code
    return answers


def store_names(store: Path) -> list[str]:
    return sorted(os.listdir(store))


def needs_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (full or read-only disk) needs root")


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A 3 MB tmpfs mounted at a fresh folder (unmounted afterwards)."""
    needs_root()
    mount = tmp_path / "disk"
    mount.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0755", "tmpfs", str(mount)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def remount(mount: Path, mode: str) -> None:
    result = subprocess.run(["mount", "-o", f"remount,{mode}", str(mount)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def fill(mount: Path, leave: int) -> Path:
    """Fill the file system at ``mount`` until about ``leave`` bytes are free."""
    filler = mount / "filler.bin"
    stats = os.statvfs(mount)
    with open(filler, "wb") as handle:
        handle.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
    return filler


# ------------------------------------------------------------------------------------------- full disk


def test_full_disk_is_507_with_nothing_partial_then_recovers(tmpfs):
    store = tmpfs / "uploads"
    kept = noise_png(1, side=32)
    with LiveServer(env={"CONVLENS_STORE_DIR": str(store)}) as live, live.client() as client:
        first = upload(client, kept)
        assert first.status_code == 201, first.text
        before = store_names(store)
        filler = fill(tmpfs, leave=20_000)
        big = noise_png(2, side=300)  # ~90 kB stored: does not fit in the 20 kB left
        full = upload(client, big)
        assert full.status_code == 507, full.text
        assert "disk" in full.json()["detail"] and "full" in full.json()["detail"]
        assert store_names(store) == before, "no partial or temporary file may stay behind"
        # stored images are still served and computed on
        assert set(statuses(client, first.json()["id"]).values()) == {200}
        ready = client.get("/readyz")
        assert ready.status_code == 200 or "full" in " ".join(ready.json()["problems"])
        filler.unlink()
        again = upload(client, big)
        assert again.status_code == 201, again.text
        assert client.get(f"/api/images/{again.json()['id']}.png").content == (
            store / f"{again.json()['id']}.png").read_bytes()
    assert "Traceback" not in live.log()


def test_disk_filled_to_the_last_byte_still_never_500(tmpfs):
    store = tmpfs / "uploads"
    with LiveServer(env={"CONVLENS_STORE_DIR": str(store)}) as live, live.client() as client:
        fill(tmpfs, leave=0)
        answers = {upload(client, noise_png(seed, side=40)).status_code for seed in range(3)}
        assert answers == {507}
        assert client.get("/readyz").status_code == 503
        assert client.get("/healthz").status_code == 200  # liveness: the process still serves
        assert [n for n in store_names(store) if n.startswith(".tmp-")] == []


# ------------------------------------------------------------------------------------------- read-only


def test_read_only_store_serves_every_read_and_refuses_uploads_with_503(tmpfs):
    store = tmpfs / "uploads"
    with LiveServer(env={"CONVLENS_STORE_DIR": str(store)}) as live, live.client() as client:
        stored = upload(client, noise_png(3, side=48))
        assert stored.status_code == 201
        image_id = stored.json()["id"]
        remount(tmpfs, "ro")
        try:
            # every read of an existing upload (each touches the use time, which a read-only disk refuses)
            assert set(statuses(client, image_id).values()) == {200}, statuses(client, image_id)
            new = upload(client, noise_png(4, side=48))
            assert new.status_code == 503, new.text
            assert "cannot be written" in new.json()["detail"] and "still served" in new.json()["detail"]
            # already stored: nothing to write, so it is still a 200
            assert upload(client, noise_png(3, side=48)).status_code == 200
            ready = client.get("/readyz")
            assert ready.status_code == 503 and "not writable" in ready.json()["problems"][0]
            assert client.get("/healthz").status_code == 200
        finally:
            remount(tmpfs, "rw")
    assert "Traceback" not in live.log()


def test_fresh_server_on_a_read_only_store(tmpfs):
    store = tmpfs / "uploads"
    with LiveServer(env={"CONVLENS_STORE_DIR": str(store)}) as live, live.client() as client:
        image_id = upload(client, noise_png(5, side=40)).json()["id"]
    remount(tmpfs, "ro")
    try:
        # without read-only mode it refuses to start, with one clear line saying why and what to do
        refused = LiveServer(env={"CONVLENS_STORE_DIR": str(store)}, startup_timeout=30)
        with pytest.raises(RuntimeError) as failed:
            refused.start()
        lines = [line for line in str(failed.value).splitlines() if "convlens cannot start" in line]
        assert len(lines) == 1, str(failed.value)
        assert "not writable" in lines[0] and "CONVLENS_STORE_READ_ONLY" in lines[0] and "chown" in lines[0]
        assert "Traceback" not in str(failed.value)
        # in read-only mode it serves what is stored; /readyz is green (uploads are off on purpose)
        env = {"CONVLENS_STORE_DIR": str(store), "CONVLENS_STORE_READ_ONLY": "1"}
        with LiveServer(env=env) as live, live.client() as client:
            assert set(statuses(client, image_id).values()) == {200}
            refused_upload = upload(client, noise_png(6, side=40))
            assert refused_upload.status_code == 503 and "READ_ONLY" in refused_upload.json()["detail"]
            assert client.get("/readyz").json() == {"status": "ready", "problems": []}
    finally:
        remount(tmpfs, "rw")


@pytest.mark.skipif(os.geteuid() != 0, reason="runs the server as another user, which needs root")
def test_store_owned_by_another_user_refuses_to_start():
    """The container case: a root-owned bind mount at /data, the app running as 10001:10001."""
    import tempfile

    top = Path(tempfile.mkdtemp(prefix="convlens-owned-", dir="/tmp"))  # reachable by any user
    os.chmod(top, 0o755)
    store = top / "uploads"
    store.mkdir(mode=0o755)
    try:
        _refuses_as_other_user(store)
    finally:
        shutil.rmtree(top)


def _refuses_as_other_user(store: Path) -> None:
    python = Path(sys.executable)
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    probe = subprocess.run(["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", str(python), "-c",
                            "import app.main"], cwd=REPO, capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"uid 10001 cannot run this checkout's Python: {probe.stderr.strip()[-200:]}")
    port = free_port()
    # one process: this checkout's venv cannot run uvicorn's multiprocessing supervisor as another user
    command = ["setpriv", "--reuid=10001", "--regid=10001", "--clear-groups", str(python), "-m", "uvicorn",
               "app.main:app", "--host", "127.0.0.1", "--port", str(port)]
    result = subprocess.run(command, cwd=REPO, env={**os.environ, "CONVLENS_STORE_DIR": str(store)},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "convlens cannot start" in output and "uid 10001" in output and "chown 10001:10001" in output
    assert "Traceback" not in output


# ------------------------------------------------------------------------------- odd entries in the store


def test_a_store_path_that_is_a_file_refuses_to_start(tmp_path):
    not_a_folder = tmp_path / "uploads"
    not_a_folder.write_text("oops")
    for workers in (1, 2):
        env = {"CONVLENS_STORE_DIR": str(not_a_folder)}
        server = LiveServer(env=env, workers=workers, startup_timeout=60)
        with pytest.raises(RuntimeError) as failed:
            server.start()
        message = str(failed.value)
        assert "server exited" in message, message  # it stops instead of restarting workers for ever
        lines = [line for line in message.splitlines() if "convlens cannot start" in line]
        assert lines and all("is not a directory" in line for line in lines), message
        assert "Traceback" not in message


@pytest.fixture(scope="module")
def live(tmp_path_factory) -> Iterator[LiveServer]:
    store = tmp_path_factory.mktemp("store")
    with LiveServer(env={"CONVLENS_STORE_DIR": str(store)}) as server:
        server.store = store  # type: ignore[attr-defined]
        yield server


@pytest.mark.parametrize("kind", ["directory", "symlink", "fifo", "dangling-symlink"])
def test_non_file_at_a_stored_path_is_410_and_reupload_repairs(live, tmp_path, kind):
    store: Path = live.store  # type: ignore[attr-defined]
    data = noise_png({"directory": 10, "symlink": 11, "fifo": 12, "dangling-symlink": 13}[kind], side=24)
    with live.client(timeout=20) as client:
        image_id = upload(client, data).json()["id"]
        path = store / f"{image_id}.png"
        outside = tmp_path / "elsewhere.png"
        outside.write_bytes(path.read_bytes())  # a valid copy: a followed symlink would serve it
        path.unlink()
        if kind == "directory":
            path.mkdir()
            (path / "inside").write_text("x")
        elif kind == "symlink":
            path.symlink_to(outside)
        elif kind == "dangling-symlink":
            path.symlink_to(tmp_path / "missing.png")
        else:
            os.mkfifo(path)  # opening it for reading would block for ever
        answers = statuses(client, image_id)
        assert set(answers.values()) == {410}, answers
        detail = client.get(f"/api/images/{image_id}").json()["detail"]
        assert "upload the image again" in detail
        again = upload(client, data)
        assert again.status_code == 201, again.text
        assert path.is_file() and not path.is_symlink()
        assert set(statuses(client, image_id).values()) == {200}
        assert outside.read_bytes() == path.read_bytes()  # the symlink's target was not touched


def test_orphaned_temp_files_are_removed_at_start_up(tmp_path):
    store = tmp_path / "uploads"
    store.mkdir()
    orphan = store / ".tmp-crashed.png"
    orphan.write_bytes(b"\0" * 100_000)
    old = time.time() - 60
    os.utime(orphan, (old, old))
    with LiveServer(env={"CONVLENS_STORE_DIR": str(store)}):
        assert not orphan.exists()


# ---------------------------------------------------------------------------------- unexpected errors


def test_an_unexpected_exception_is_a_500_with_request_id_headers_and_a_usable_connection(tmp_path):
    """A route that raises (added by tests/faulty_app.py, never by the service) on a real server."""
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "faulty_app:app", "--app-dir", str(REPO / "tests"),
               "--host", "127.0.0.1", "--port", str(port)]
    with LiveServer(command=command, port=port, env={"CONVLENS_STORE_DIR": str(tmp_path)}) as server:
        with server.client() as client:
            response = client.get("/boom")
            assert response.status_code == 500
            body = response.json()
            request_id = body["request_id"]
            assert len(request_id) == 16 and request_id in body["detail"]
            assert response.headers["x-request-id"] == request_id
            for header in SECURITY_HEADERS:
                assert header in response.headers, header
            # the keep-alive connection survives: the next request on it is answered
            assert client.get("/healthz").status_code == 200
        time.sleep(0.3)
        log_lines = [line for line in server.log().splitlines() if request_id in line]
        assert log_lines and "RuntimeError" in log_lines[0] and "/boom" in log_lines[0]


# ---------------------------------------------------------------------------------- strict, clear input


def test_deeply_nested_weight_on_conv_png_is_422_naming_weight(live):
    with live.client() as client:
        for depth in (1000, 5000):
            weight = "[" * depth + "1" + "]" * depth
            response = client.get("/api/conv.png", params={"image": "mnist:0", "weight": weight})
            assert response.status_code == 422, response.text
            assert response.json()["detail"][0]["loc"] == ["query", "weight"]
            for header in SECURITY_HEADERS:
                assert header in response.headers
        assert client.get("/healthz").status_code == 200  # same connection, still open


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"stride": "--5"}, "stride"),
        ({"stride": "1,x"}, "stride"),
        ({"dilation": "²"}, "dilation"),
        ({"padding": "[1,"}, "padding"),
        ({"pool": "max", "pool_kernel": "--2"}, "pool_kernel"),
        ({"pool": "max", "pool_stride": "0"}, "pool_stride"),
        ({"pool": "max", "pool_kernel": "3", "pool_padding": "2"}, "pool_padding"),
        ({"stride": "0"}, "stride"),
        ({"stage": "middle"}, "stage"),
        ({"weight": "[[1,2],[3]]"}, "weight"),
        ({"padding": "99"}, "padding"),
    ],
)
def test_query_string_errors_name_the_query_field(live, query, field):
    with live.client() as client:
        response = client.get("/api/conv.png", params={"image": "mnist:0", **query})
    assert response.status_code == 422, response.text
    locs = [error["loc"] for error in response.json()["detail"]]
    assert ["query", field] in locs, locs


@pytest.mark.parametrize("value", ["1", True, 1.0, "true", [1, "2"], [True, 1]])
@pytest.mark.parametrize("field", ["stride", "dilation", "groups", "max_side"])
def test_integers_are_integers(live, field, value):
    with live.client() as client:
        response = client.post("/api/conv", json={"image": "mnist:0", field: value})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"][:2] == ["body", field]


def test_pool_and_region_integers_are_strict(live):
    with live.client() as client:
        pool = client.post("/api/conv", json={"image": "mnist:0", "pool": {"kernel_size": "2"}})
        region = client.post("/api/conv", json={"image": "mnist:0", "region": {"y0": 0, "y1": True,
                                                                                "x0": 0, "x1": 4}})
        good = client.post("/api/conv", json={"image": "mnist:0", "stride": 2, "pool": {"kernel_size": 2}})
    assert pool.status_code == 422 and pool.json()["detail"][0]["loc"][:3] == ["body", "pool", "kernel_size"]
    assert region.status_code == 422 and region.json()["detail"][0]["loc"][:3] == ["body", "region", "y1"]
    assert good.status_code == 200


def raw_multipart(boundary: str, filename: str = "a.png", close: bool = True, extra: bytes = b"") -> bytes:
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: image/png\r\n\r\n").encode() + noise_png(20, side=8) + b"\r\n" + extra
    return body + (f"--{boundary}--\r\n".encode() if close else b"")


@pytest.mark.parametrize(
    ("body", "content_type", "words"),
    [
        (raw_multipart("B0und", close=False), "multipart/form-data; boundary=B0und", "closing boundary"),
        (raw_multipart("B0und", filename="x" * 4096), "multipart/form-data; boundary=B0und",
         "file name is 4096 bytes long; at most 255"),
        (raw_multipart("B0und", extra=b'--B0und\r\nContent-Disposition: form-data; name="note"\r\n\r\n'
                       + b"n" * 200_000 + b"\r\n"), "multipart/form-data; boundary=B0und",
         "at most 65536 bytes"),
        (raw_multipart("B0und"), "multipart/form-data", "no boundary"),
        (b"no multipart here", "multipart/form-data; boundary=B0und", "does not contain its boundary"),
        (raw_multipart("B0und").replace(b"\r\n\r\n", b"\r\n", 1), "multipart/form-data; boundary=B0und",
         "headers do not end"),
    ],
    ids=["no-closing-boundary", "long-filename", "big-field", "no-boundary-param", "no-boundary", "no-blank"],
)
def test_multipart_errors_name_what_is_wrong(live, body, content_type, words):
    with live.client() as client:
        response = client.post("/api/images", content=body, headers={"content-type": content_type})
    assert response.status_code == 400, response.text
    assert words in response.json()["detail"]


# ---------------------------------------------------------------------------------------- health checks


def test_readyz_is_readiness_and_healthz_liveness(live):
    with live.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        assert client.get("/readyz").json() == {"status": "ready", "problems": []}


def test_start_up_from_another_working_directory(tmp_path):
    """The installed app finds data/, static/ and templates/ whatever directory it is started from."""
    elsewhere = tmp_path / "somewhere-else"
    elsewhere.mkdir()
    env = {"CONVLENS_STORE_DIR": str(tmp_path / "uploads"), "PYTHONPATH": ""}
    with LiveServer(env=env, cwd=elsewhere) as server, server.client() as client:
        assert client.get("/readyz").status_code == 200
        page = client.get("/")
        assert page.status_code == 200 and "<html" in page.text.lower()
        assert client.get("/static/js/main.js").status_code == 200
        conv = client.post("/api/conv", json={"image": "sample:camera", "weight": "sobel_x", "max_side": 64})
        assert conv.status_code == 200, conv.text
        assert client.post("/api/network", json={"image": "mnist:3"}).status_code == 200
    assert list(elsewhere.iterdir()) == []  # nothing written into the working directory


def test_store_unit_temp_files_count_toward_the_limit(tmp_path):
    """A temporary file held by a live writer is counted (and kept); a dead writer's one is removed."""
    import fcntl

    from app.store import StoreFull, UploadStore

    store = UploadStore(tmp_path, max_bytes=150_000, retention_seconds=3600)
    live_temp = tmp_path / ".tmp-writing.png"
    live_temp.write_bytes(b"\0" * 120_000)
    old = time.time() - 60
    os.utime(live_temp, (old, old))
    with open(live_temp, "rb") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # as a writer in another process would
        assert store.temp_bytes() == 120_000
        with pytest.raises(StoreFull):
            store.save(noise_png(30, side=200))
        assert store.remove_orphans() == 0 and live_temp.exists()
    assert store.remove_orphans() == 1 and not live_temp.exists()
    assert store.save(noise_png(30, side=200)).created


def test_http_client_errors_never_reset_the_connection(live):
    with httpx.Client(base_url=live.url, timeout=30) as client:
        for _ in range(3):
            response = client.get("/api/conv.png", params={"image": "mnist:0", "stride": "--5"})
            assert response.status_code == 422
        assert client.get("/healthz").status_code == 200


def test_missing_data_files_are_a_reason_not_to_start(monkeypatch, tmp_path):
    """A bare wheel (app/ and core/ without data/, templates/, static/) is refused, not half served."""
    import app.readiness as readiness
    from app.settings import Settings

    settings = Settings(store_dir=tmp_path / "uploads")
    assert readiness.startup_problem(settings) is None
    monkeypatch.setattr(readiness, "REPO_ROOT", tmp_path / "site-packages")
    problem = readiness.startup_problem(settings)
    assert problem is not None and "templates/index.html" in problem and "pip install -e ." in problem
    assert readiness.problems(settings) == [problem]
