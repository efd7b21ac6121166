"""The content-addressed upload store: one normalised PNG per SHA-256, in one folder on disk.

It also holds the activations the Layers view opens in the convolution view (``POST /api/stack/activation``):
one ``.npy`` (float32, shape ``(C, H, W)``, written and read without pickle) per SHA-256 of its bytes, with
the id ``act:<sha256>``, under exactly the same rules (atomic writes, integrity, eviction, disk errors).

The folder is the whole truth (no in-process index), so several workers or containers can share it
and a restart loses nothing.

- **Names**: ``<sha256 hex of the PNG bytes>.png`` (id: the hex) and ``<sha256 hex of the .npy bytes>.npy``
  (id: ``act:`` + the hex). The id is validated against ``[0-9a-f]{64}`` / ``act:[0-9a-f]{64}`` before any
  path is built, so no id can leave the folder, and an image id can never name an activation.
- **Atomic writes**: the bytes go to a temporary file ``.tmp-*`` in the same folder (held under an
  exclusive ``flock`` while it is written), are fsynced, and are published with ``os.link`` (which fails
  if the name exists, so exactly one of many concurrent identical uploads "creates" it) — a crash never
  leaves a half-written ``<id>.png``. A failed write (full disk, ...) removes its temporary file.
- **Only regular files**: every stored path is opened with ``O_NOFOLLOW | O_NONBLOCK`` and checked with
  ``fstat``; a symlink, directory, FIFO or device at ``<id>.png`` is never followed or served — it is
  reported like a corrupt file (:class:`StoreCorrupt`, 410) and replaced by the next upload of the image.
- **Integrity**: every read re-hashes the bytes; a file that no longer matches its name is logged and
  reported (:class:`StoreCorrupt`, 410), never served. Uploading the same image again repairs it.
- **Eviction**: before a write that would take the folder past ``store_max_bytes``, the least
  recently used files (modification time, refreshed on every access when the disk allows it) that are
  older than ``store_retention_seconds`` are deleted. If that is not enough, :class:`StoreFull` (507).
  Temporary files count toward the limit; those whose writer is gone (no lock held: the process
  crashed) are deleted at start-up (:meth:`UploadStore.remove_orphans`) and by every later scan.
- **Disk errors**: a full disk is :class:`DiskFull` (507), a read-only or unwritable folder
  :class:`StoreReadOnly` (503) for uploads while every stored image is still served; any other I/O
  error is :class:`StoreUnavailable` (503). None of them is a 500.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from app.errors import ApiError

log = logging.getLogger("convlens.store")

ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")
ACTIVATION_PREFIX = "act:"
ACTIVATION_PATTERN = re.compile(r"^act:[0-9a-f]{64}$")
SUFFIX = ".png"
ARRAY_SUFFIX = ".npy"
"""An activation (``act:<sha256>``) is stored as ``<sha256>.npy``."""
SUFFIXES = (SUFFIX, ARRAY_SUFFIX)
INFO_SUFFIX = ".json"
"""``<id>.json`` beside ``<id>.png``: facts about the upload that are not pixels (its size before
downscaling), so the PNG itself carries no metadata. Optional: without it the PNG's size is reported."""
TEMP_PREFIX = ".tmp-"
ORPHAN_MIN_AGE_SECONDS = 5.0
"""An unlocked temporary file younger than this may be one a writer has just created and not locked yet."""

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


class StoreCorrupt(ApiError):
    """A stored file no longer matches its hash, or is not a regular file (410 Gone)."""

    def __init__(self, image_id: str) -> None:
        super().__init__(
            410,
            f"stored file for image {image_id} is corrupt (its bytes no longer match their SHA-256, or it "
            "is not a regular file); it is not served — upload the image again",
        )


class StoreUnreadable(ApiError):
    """A stored file matches its hash but cannot be decoded (stored by an older version): 410 Gone."""

    def __init__(self, image_id: str, exc: Exception) -> None:
        super().__init__(
            410,
            f"stored file for image {image_id} cannot be decoded ({exc}); it was probably stored by an older "
            "version of convlens — upload the image again (it gets a new id)",
        )


class StoreFull(ApiError):
    """No room for a new upload without deleting recently used ones (507)."""

    def __init__(self, needed: int, limit: int, retention: float) -> None:
        super().__init__(
            507,
            f"the upload store is full: {needed} more bytes would exceed its limit of {limit} bytes and "
            f"every stored image was used within the last {retention:g} seconds; try again later",
        )


class DiskFull(ApiError):
    """The disk under the store has no space left (507); nothing was stored."""

    def __init__(self) -> None:
        super().__init__(
            507,
            "the disk that holds the upload store is full, so the image was not stored (nothing partial "
            "was left behind); stored images are still served — ask the server's operator to free space, "
            "then upload again",
        )


class StoreReadOnly(ApiError):
    """The store cannot be written (read-only file system, permissions, or read-only mode): 503."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            503,
            f"uploads are switched off because the upload store cannot be written ({reason}); stored images "
            "are still served and computed on — try again later or ask the server's operator",
        )


class StoreUnavailable(ApiError):
    """Any other I/O error of the store (503)."""

    def __init__(self, what: str, exc: OSError) -> None:
        super().__init__(
            503,
            f"the upload store could not {what} ({exc.strerror or exc.__class__.__name__}); "
            "try again later or ask the server's operator",
        )


class UnknownImage(ApiError):
    """No such id in the store (404)."""

    def __init__(self, image_id: str) -> None:
        super().__init__(404, f"unknown image id {image_id!r}")


def write_error(exc: OSError) -> ApiError:
    """The answer for an ``OSError`` raised while writing to the store."""
    if exc.errno in _FULL_ERRNOS:
        return DiskFull()
    if exc.errno in _READ_ONLY_ERRNOS:
        return StoreReadOnly(exc.strerror or "permission denied")
    return StoreUnavailable("store the image", exc)


def is_upload_id(image_id: str) -> bool:
    """True for a 64-hex-digit lower-case SHA-256."""
    return bool(ID_PATTERN.match(image_id))


def is_activation_id(image_id: str) -> bool:
    """True for ``act:`` followed by a 64-hex-digit lower-case SHA-256 (a stored activation)."""
    return bool(ACTIVATION_PATTERN.match(image_id))


def is_stored_id(image_id: str) -> bool:
    """True for the id of anything kept in the store (an upload or an activation)."""
    return is_upload_id(image_id) or is_activation_id(image_id)


def _digest_and_suffix(image_id: str) -> tuple[str, str]:
    """``(sha256 hex, file suffix)`` of a stored id; raises :class:`UnknownImage` for anything else."""
    if is_upload_id(image_id):
        return image_id, SUFFIX
    if is_activation_id(image_id):
        return image_id[len(ACTIVATION_PREFIX) :], ARRAY_SUFFIX
    raise UnknownImage(image_id)


@dataclass
class SaveResult:
    """What :meth:`UploadStore.save` did: the id, and whether this call created the file."""

    image_id: str
    created: bool


class UploadStore:
    """A folder of ``<sha256>.png`` files.

    Parameters
    ----------
    root : Path
        Created on first write.
    max_bytes : int
        Total size at which eviction starts.
    retention_seconds : float
        Files used more recently than this are never evicted.
    read_only : bool
        Never write (uploads of new images are 503; images already stored are still served).
    """

    def __init__(self, root: Path, max_bytes: int, retention_seconds: float, read_only: bool = False) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.retention_seconds = retention_seconds
        self.read_only = read_only

    # ------------------------------------------------------------------ paths

    def path_for(self, image_id: str) -> Path:
        """The file of ``image_id``; raises :class:`UnknownImage` for anything but 64 hex digits (an
        upload's ``.png``) or ``act:`` and 64 hex digits (an activation's ``.npy``)."""
        digest, suffix = _digest_and_suffix(image_id)
        return self.root / f"{digest}{suffix}"

    # ------------------------------------------------------------------ reading

    def read(self, image_id: str) -> bytes:
        """The stored bytes of ``image_id`` (PNG, or ``.npy`` for an activation), verified against the hash
        and marked as used.

        Raises
        ------
        UnknownImage
            Not stored (or an invalid id).
        StoreCorrupt
            The bytes do not hash to the id, or the path is not a regular file (symlink, folder, ...).
        StoreUnavailable
            Any other I/O error (503).
        """
        path = self.path_for(image_id)
        try:
            data = _read_regular(path, touch=True)
        except FileNotFoundError:
            raise UnknownImage(image_id) from None
        except _NotRegular:
            log.error("store path %s is not a regular file; refusing to serve it", path)
            raise StoreCorrupt(image_id) from None
        except OSError as exc:
            log.error("cannot read store file %s: %s", path, exc)
            raise StoreUnavailable("read the image", exc) from None
        if hashlib.sha256(data).hexdigest() != _digest_and_suffix(image_id)[0]:
            log.error("store file %s does not match its hash; refusing to serve it", path)
            raise StoreCorrupt(image_id)
        return data

    def exists(self, image_id: str) -> bool:
        """True when a regular file for ``image_id`` is stored (not verified; symlinks do not count)."""
        try:
            return stat.S_ISREG(os.lstat(self.path_for(image_id)).st_mode)
        except OSError:
            return False

    def touch(self, image_id: str) -> None:
        """Mark ``image_id`` as just used (its mtime drives the LRU eviction); best effort.

        On a read-only disk the use time simply stays as it was.
        """
        path = self.path_for(image_id)
        try:
            os.utime(path, follow_symlinks=False)
        except FileNotFoundError:
            raise UnknownImage(image_id) from None
        except OSError as exc:
            log.debug("cannot refresh the use time of %s: %s", path, exc)

    # ------------------------------------------------------------------ writing

    def save(self, data: bytes, info: dict[str, int] | None = None, activation: bool = False) -> SaveResult:
        """Store ``data`` (PNG bytes) under its SHA-256, atomically, with ``info`` in ``<id>.json``.

        The first upload's ``info`` is kept (the same pixels can come from different originals). With
        ``activation``, ``data`` is the bytes of a ``.npy`` and the id is ``act:<sha256>``.

        Returns
        -------
        SaveResult
            ``created`` is False when the same bytes were already stored (then only the use time is
            refreshed), or when a concurrent identical upload won the race.

        Raises
        ------
        StoreFull
            No room without evicting a file used within the retention window (507).
        DiskFull
            The disk is full (507); no partial file is left.
        StoreReadOnly
            The store cannot be written (503).
        StoreUnavailable
            Any other I/O error (503).
        """
        digest = hashlib.sha256(data).hexdigest()
        image_id = ACTIVATION_PREFIX + digest if activation else digest
        final = self.path_for(image_id)
        state = _entry_state(final, digest)
        if state == "valid":
            self.touch(image_id)
            return SaveResult(image_id, created=False)
        if self.read_only:
            raise StoreReadOnly("the server runs with CONVLENS_STORE_READ_ONLY")
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            if state == "other":
                log.warning("replacing non-file store entry %s", final)
                _remove_entry(final)
            elif state == "corrupt":
                log.warning("repairing corrupt store file %s", final)
            else:
                self._make_room(len(data))
            created = self._publish(data, final, digest)
        except OSError as exc:
            log.error("cannot store %s: %s", final.name, exc)
            raise write_error(exc) from None
        if info is not None:
            self._save_info(image_id, info)
        self.touch(image_id)
        return SaveResult(image_id, created=created)

    def _save_info(self, image_id: str, info: dict[str, int]) -> None:
        """Write ``<id>.json`` unless a valid one exists (best effort: it is only a convenience)."""
        if self.read_info(image_id) is not None:
            return
        path = self.root / f"{image_id}{INFO_SUFFIX}"
        try:
            _remove_entry(path)  # a corrupt one, or something else in the way
            tmp = self._write_temp(json.dumps(info, sort_keys=True).encode())
            try:
                os.link(tmp, path)
            except FileExistsError:
                pass  # a concurrent upload of the same pixels wrote it first
            finally:
                _unlink_quietly(tmp)
        except OSError as exc:
            log.warning("cannot write %s: %s", path, exc)

    def read_info(self, image_id: str) -> dict[str, int] | None:
        """The ``info`` saved with ``image_id`` (only integer values), or None when there is none."""
        path = self.path_for(image_id).with_suffix(INFO_SUFFIX)
        try:
            raw = _read_regular(path, limit=4096)
            value = json.loads(raw)
        except (OSError, _NotRegular, ValueError, RecursionError):
            return None
        if not isinstance(value, dict):
            return None
        return {k: v for k, v in value.items() if isinstance(k, str) and type(v) is int}

    def _publish(self, data: bytes, final: Path, image_id: str) -> bool:
        """Write ``data`` to a temporary file and link it to ``final``; True when this call created it."""
        tmp = self._write_temp(data)
        try:
            try:
                os.link(tmp, final)  # fails if another writer got there first: no clobbering
                created = True
            except FileExistsError:
                if _entry_state(final, image_id) == "valid":
                    created = False
                else:  # a corrupt file is in the way: replace it atomically
                    if _entry_state(final, image_id) == "other":
                        _remove_entry(final)
                    os.replace(tmp, final)
                    created = True
            except OSError as exc:  # a filesystem without hard links
                if exc.errno in _FULL_ERRNOS | _READ_ONLY_ERRNOS:
                    raise
                created = not final.exists()
                os.replace(tmp, final)
            self._fsync_dir()
        finally:
            _unlink_quietly(tmp)
        return created

    def _write_temp(self, data: bytes) -> Path:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=SUFFIX, dir=self.root)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # "being written": remove_orphans leaves it alone
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            _unlink_quietly(Path(name))
            raise
        return Path(name)

    def _fsync_dir(self) -> None:
        try:
            fd = os.open(self.root, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)

    # ------------------------------------------------------------------ health

    def check_writable(self) -> str | None:
        """None when a file can be created and removed in the store; else the reason, as a phrase.

        Creates the folder if it is missing.
        """
        try:
            if self.root.exists() and not self.root.is_dir():
                return f"{self.root} exists but is not a directory"
            self.root.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX + "probe-", dir=self.root)
            os.close(fd)
            os.unlink(name)
        except OSError as exc:
            return f"{self.root} is not writable ({exc.strerror or exc})"
        return None

    # ------------------------------------------------------------------ eviction

    def usage(self) -> list[tuple[float, int, Path]]:
        """``(mtime, size, path)`` of every stored file, least recently used first.

        Only regular files named ``<sha256>.png`` or ``<sha256>.npy`` count; orphaned temporary files are
        removed on the way.
        """
        return self._scan()[0]

    def temp_bytes(self) -> int:
        """Bytes held by temporary files (uploads being written, or orphans not yet removed)."""
        return self._scan()[1]

    def total_bytes(self) -> int:
        """Bytes used by stored images and temporary files."""
        entries, temp = self._scan()
        return temp + sum(size for _, size, _ in entries)

    def remove_orphans(self, min_age: float = ORPHAN_MIN_AGE_SECONDS) -> int:
        """Delete temporary files no live writer holds (left by a crash); the number deleted.

        A writer holds an exclusive ``flock`` on its temporary file until it is published, so a file
        that can be locked (and is older than ``min_age`` seconds) belongs to a process that died.
        """
        removed = 0
        try:
            scan = list(os.scandir(self.root))
        except OSError:
            return 0
        now = time.time()
        for entry in scan:
            if entry.name.startswith(TEMP_PREFIX) and _remove_if_orphan(Path(entry.path), now, min_age):
                removed += 1
        if removed:
            log.info("removed %d temporary file(s) left by a crash in %s", removed, self.root)
        return removed

    def _scan(self) -> tuple[list[tuple[float, int, Path]], int]:
        entries = []
        temp = 0
        now = time.time()
        try:
            scan = list(os.scandir(self.root))
        except OSError:
            return [], 0
        for entry in scan:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if not stat.S_ISREG(info.st_mode):
                continue
            if entry.name.startswith(TEMP_PREFIX):
                if not _remove_if_orphan(Path(entry.path), now, ORPHAN_MIN_AGE_SECONDS):
                    temp += info.st_size
                continue
            stem, suffix = os.path.splitext(entry.name)
            if suffix in SUFFIXES and is_upload_id(stem):
                entries.append((info.st_mtime, info.st_size, Path(entry.path)))
        entries.sort()
        return entries, temp

    def _make_room(self, incoming: int) -> None:
        entries, temp = self._scan()
        total = temp + sum(size for _, size, _ in entries)
        if total + incoming <= self.max_bytes:
            return
        cutoff = time.time() - self.retention_seconds
        for mtime, size, path in entries:
            if total + incoming <= self.max_bytes:
                break
            if mtime > cutoff:
                break  # sorted by mtime: everything after this is newer still
            log.info("evicting %s (last used %.0f s ago)", path.name, time.time() - mtime)
            _unlink_quietly(path)
            _unlink_quietly(path.with_suffix(INFO_SUFFIX))
            total -= size
        if total + incoming > self.max_bytes:
            raise StoreFull(incoming, self.max_bytes, self.retention_seconds)


class _NotRegular(Exception):
    """The path is a symlink, folder, FIFO, socket or device."""


def _read_regular(path: Path, touch: bool = False, limit: int = -1) -> bytes:
    """The bytes of ``path`` if it is a regular file (never following a symlink, never blocking on a FIFO).

    With ``touch``, the file's times are refreshed through the open descriptor (best effort); ``limit``
    caps the bytes read.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # a symlink
            raise _NotRegular from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _NotRegular
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(limit)
        if touch:
            try:
                os.utime(fd)
            except OSError as exc:  # read-only disk, or a file someone else owns
                log.debug("cannot refresh the use time of %s: %s", path, exc)
        return data
    finally:
        os.close(fd)


def _entry_state(path: Path, image_id: str) -> str:
    """``"missing"``, ``"valid"`` (a regular file with the right hash), ``"corrupt"`` or ``"other"``."""
    try:
        data = _read_regular(path)
    except FileNotFoundError:
        return "missing"
    except _NotRegular:
        return "other"
    except OSError:
        return "corrupt"
    return "valid" if hashlib.sha256(data).hexdigest() == image_id else "corrupt"


def _remove_entry(path: Path) -> None:
    """Remove whatever is at ``path`` (a symlink itself, never its target; a folder with its contents)."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            shutil.rmtree(path)
        else:
            os.unlink(path)
    except FileNotFoundError:
        pass


def _remove_if_orphan(path: Path, now: float, min_age: float) -> bool:
    """Delete the temporary file ``path`` if no writer holds it; True when it was deleted."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or now - info.st_mtime < min_age:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live writer holds it
        try:
            os.unlink(path)
        except OSError:
            return False
        return True
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
