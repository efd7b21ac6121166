"""compose.yaml for a school server, and its two-replica profile rehearsed for real (issue 11).

There is no Docker daemon on the build machines, so the static part reads compose.yaml (named volume,
restart policy, readiness healthcheck, a "replicas" profile with two app services on the same volume behind
the official nginx image), and the rehearsal runs deploy/nginx.conf with Debian's nginx in front of two real
uvicorn processes on one store directory: an upload through one replica is served and convolved through the
other, and stopping one replica while requests flow loses none of them (nginx retries on the other).
"""

from __future__ import annotations

import io
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml
from live_server import REPO, LiveServer, free_port
from PIL import Image

COMPOSE = REPO / "compose.yaml"
NGINX_CONF = REPO / "deploy" / "nginx.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def app_services(compose: dict) -> dict[str, dict]:
    return {name: s for name, s in compose["services"].items() if s.get("build") == "."}


# ------------------------------------------------------------------------------------------ static checks


def test_compose_runs_the_app_with_a_named_volume_restart_and_readiness(compose):
    apps = app_services(compose)
    default = [name for name, s in apps.items() if not s.get("profiles")]
    assert default == ["app"], "exactly one app service starts with a plain `docker compose up`"
    for name, service in apps.items():
        volume, _, target = service["volumes"][0].partition(":")
        assert target == "/data" and volume in compose["volumes"], f"{name}: the store is on a named volume"
        assert service["restart"] in ("unless-stopped", "always")
        test = " ".join(service["healthcheck"]["test"])
        assert "/readyz" in test, f"{name}: the healthcheck is readiness"
    assert compose["services"]["app"]["ports"] == ["8000:8000"]


def test_replicas_profile_puts_two_apps_on_one_volume_behind_official_nginx(compose):
    replicas = {name for name, s in compose["services"].items() if "replicas" in s.get("profiles", [])}
    apps = app_services(compose)
    upstream_apps = {"app"} | (replicas & set(apps))
    assert len(upstream_apps) == 2
    assert len({apps[name]["volumes"][0] for name in upstream_apps}) == 1, "both replicas share one store"
    proxy = compose["services"]["proxy"]
    assert "replicas" in proxy["profiles"]
    assert re.fullmatch(r"nginx:[0-9.]+(-alpine)?", proxy["image"]), "the official nginx image, pinned"
    source, target = proxy["volumes"][0].split(":")[:2]
    assert (REPO / source).resolve() == NGINX_CONF and target == "/etc/nginx/conf.d/default.conf"
    servers = re.findall(r"^\s*server\s+([\w.-]+):8000", NGINX_CONF.read_text(), flags=re.MULTILINE)
    assert sorted(servers) == sorted(upstream_apps), "nginx's upstream names the replica services"
    assert set(proxy["depends_on"]) == upstream_apps
    assert all(proxy["depends_on"][name]["condition"] == "service_healthy" for name in upstream_apps)


# ------------------------------------------------------------------------------------------ rehearsal


def local_nginx_conf(ports: dict[str, int], listen: int, work: Path) -> Path:
    """deploy/nginx.conf as the image would include it, with the service names mapped to local ports."""
    site = NGINX_CONF.read_text()
    for name, port in ports.items():
        site, count = re.subn(rf"\bserver\s+{re.escape(name)}:8000\b", f"server 127.0.0.1:{port}", site)
        assert count == 1, name
    site, count = re.subn(r"listen\s+80;", f"listen 127.0.0.1:{listen};", site)
    assert count == 1
    (work / "site.conf").write_text(site)
    for folder in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (work / folder).mkdir()
    main = f"""
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
error_log {work}/error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {work}/access.log;
    client_body_temp_path {work}/body;
    proxy_temp_path {work}/proxy;
    fastcgi_temp_path {work}/fastcgi;
    uwsgi_temp_path {work}/uwsgi;
    scgi_temp_path {work}/scgi;
    include {work}/site.conf;
}}
"""
    (work / "nginx.conf").write_text(main)
    return work / "nginx.conf"


@pytest.fixture
def replicas(tmp_path) -> Iterator[tuple[LiveServer, LiveServer, str]]:
    """Two app processes on one store behind nginx running deploy/nginx.conf: (replica 1, replica 2, url)."""
    if not os.access(NGINX, os.X_OK):
        pytest.skip("nginx is not installed (apt-get install nginx)")
    store = tmp_path / "store"
    env = {"CONVLENS_STORE_DIR": str(store)}
    first, second = LiveServer(env=env, workers=2), LiveServer(env=env, workers=2)
    work = tmp_path / "nginx"
    work.mkdir()
    listen = free_port()
    conf = local_nginx_conf({"app": first.port, "app-2": second.port}, listen, work)
    check = subprocess.run([NGINX, "-t", "-p", str(work), "-c", str(conf), "-e", str(work / "error.log")],
                           capture_output=True, text=True, timeout=30)
    assert check.returncode == 0, check.stderr
    with first, second:
        proxy = subprocess.Popen([NGINX, "-p", str(work), "-c", str(conf), "-e", str(work / "error.log")],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        url = f"http://127.0.0.1:{listen}"
        try:
            deadline = time.monotonic() + 20
            while True:
                try:
                    if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline and proxy.poll() is None, (work / "error.log").read_text()
                time.sleep(0.1)
            yield first, second, url
        finally:
            os.killpg(proxy.pid, signal.SIGQUIT)
            proxy.wait(timeout=15)


def picture(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.slow
def test_an_upload_through_one_replica_is_served_and_convolved_by_the_other(replicas):
    first, second, url = replicas
    with first.client() as one, second.client() as two, httpx.Client(base_url=url, timeout=60) as proxy:
        created = one.post("/api/images", files={"file": ("p.png", picture(1), "image/png")})
        assert created.status_code == 201
        image_id = created.json()["id"]
        png = two.get(f"/api/images/{image_id}.png")
        assert png.status_code == 200 and png.content == one.get(f"/api/images/{image_id}.png").content
        conv = two.post("/api/conv", json={"image": image_id, "weight": "sobel_x", "color": "rgb"})
        assert conv.status_code == 200 and conv.json()["conv"]["shape"] == [1, 1, 38, 48]
        # and through the proxy, whichever replica answers
        for _ in range(4):
            assert proxy.get(f"/api/images/{image_id}").json()["id"] == image_id
        again = proxy.post("/api/images", files={"file": ("p.png", picture(1), "image/png")})
        assert again.status_code == 200 and again.json()["id"] == image_id  # stored once, by content


@pytest.mark.slow
def test_stopping_one_replica_loses_no_request(replicas):
    first, second, url = replicas
    image_id = httpx.post(url + "/api/images", files={"file": ("p.png", picture(2), "image/png")},
                          timeout=60).json()["id"]
    results: list[int] = []
    errors: list[str] = []
    stop = threading.Event()

    def traffic(seed: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    if n % 3 == 0:
                        r = client.post("/api/images", files={"file": ("q.png", picture(seed * 1000 + n),
                                                                       "image/png")})
                    elif n % 3 == 1:
                        r = client.post("/api/conv", json={"image": image_id, "weight": "sobel_y",
                                                           "stride": 1 + n % 2})
                    else:
                        r = client.get(f"/api/images/{image_id}.png")
                    results.append(r.status_code)
                except httpx.HTTPError as exc:
                    errors.append(repr(exc))

    threads = [threading.Thread(target=traffic, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(1.5)
    first.stop()  # SIGTERM: uvicorn finishes what it is doing and closes its socket
    time.sleep(2.5)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors[:3]
    assert len(results) > 20 and set(results) <= {200, 201}, sorted(set(results))
    # the surviving replica serves everything, including uploads made through the stopped one
    with second.client() as two:
        assert two.get(f"/api/images/{image_id}.png").status_code == 200
