"""What must be true before the service can do its job: a usable upload store and loadable data files.

Used twice: at start-up (:class:`app.middleware.StartupCheckMiddleware` refuses to start with one log
line when something is wrong) and by ``GET /readyz`` (the Docker HEALTHCHECK), which re-checks while
the server runs — a store remounted read-only or a full disk turns readiness red while ``/healthz``
(liveness) stays green.
"""

from __future__ import annotations

import os
from pathlib import Path

from app.settings import REPO_ROOT, Settings

REQUIRED_FILES = (
    "templates/index.html",
    "static/js/main.js",
    "data/weights/simple_convnet.npz",
)
"""Files of the source tree the page and the API cannot work without (relative to ``REPO_ROOT``)."""


MIN_FREE_BYTES = 1024 * 1024
"""Readiness fails when the disk under a writable store has less free space than this."""


def store_problem(settings: Settings, min_free: int = 0) -> str | None:
    """None when the upload store can be used as configured; else a sentence saying what is wrong.

    Writable mode: the folder exists (or can be created), a file can be created and removed in it, and
    at least ``min_free`` bytes are free on its disk. Read-only mode (``CONVLENS_STORE_READ_ONLY``): the
    folder exists and can be listed.
    """
    from app.image_source import store_for  # late: image_source imports the store and settings

    store = store_for(settings)
    root = Path(settings.store_dir)
    if settings.store_read_only:
        try:
            is_dir = root.is_dir()
        except OSError as exc:
            return f"the upload store {root} (CONVLENS_STORE_DIR) cannot be reached: {exc.strerror}"
        if not is_dir:
            return f"the upload store {root} (CONVLENS_STORE_DIR) is not a directory"
        if not os.access(root, os.R_OK | os.X_OK):
            return f"the upload store {root} (CONVLENS_STORE_DIR) cannot be read by uid {os.getuid()}"
        return None
    reason = store.check_writable()
    if reason is None:
        try:
            stats = os.statvfs(root)
        except OSError:
            return None
        free = stats.f_bavail * stats.f_frsize
        if free < min_free:
            return f"the disk that holds the upload store {root} is full ({free} bytes free)"
        return None
    return (
        f"the upload store (CONVLENS_STORE_DIR) cannot be used: {reason}, running as uid {os.getuid()} "
        f"gid {os.getgid()}; make it a directory that user can write (e.g. chown 10001:10001 on a bind "
        "mount) or set CONVLENS_STORE_READ_ONLY=1 to serve the stored images without uploads"
    )


def data_problem(settings: Settings) -> str | None:
    """None when the bundled data files are found and load; else a sentence saying what is missing."""
    missing = [name for name in REQUIRED_FILES if not (REPO_ROOT / name).is_file()]
    from app.image_source import SAMPLES, SAMPLES_DIR

    missing += [
        f"data/samples/{s.filename}" for s in SAMPLES.values() if not (SAMPLES_DIR / s.filename).is_file()
    ]
    if missing:
        return (
            f"the data files are not where the app looks for them ({REPO_ROOT}): missing "
            f"{', '.join(missing[:4])}; install the app from its source tree (pip install -e .), not as "
            "a bare wheel"
        )
    try:
        from app.image_source import mnist_set

        mnist_set(settings)
    except (OSError, ValueError) as exc:
        return f"the MNIST digits cannot be loaded: {exc}"
    return None


def startup_problem(settings: Settings) -> str | None:
    """The first reason the server must not start (store unusable, data files missing), or None."""
    return store_problem(settings) or data_problem(settings)


def problems(settings: Settings) -> list[str]:
    """Every reason the service is not ready (empty when it is); a full disk counts here."""
    found = (store_problem(settings, MIN_FREE_BYTES), data_problem(settings))
    return [p for p in found if p]
