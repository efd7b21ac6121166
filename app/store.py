"""The content-addressed upload store: one normalised PNG per SHA-256, in one folder on disk.

The folder is the whole truth (no in-process index), so several workers or containers can share it
and a restart loses nothing.

- **Names**: ``<sha256 hex of the PNG bytes>.png``. The id is validated against ``[0-9a-f]{64}``
  before any path is built, so no id can leave the folder.
- **Atomic writes**: the bytes go to a temporary file in the same folder, are fsynced, and are
  published with ``os.link`` (which fails if the name exists, so exactly one of many concurrent
  identical uploads "creates" it) — a crash never leaves a half-written ``<id>.png``.
- **Integrity**: every read re-hashes the bytes; a file that no longer matches its name is logged and
  reported (:class:`StoreCorrupt`, 410), never served. Uploading the same image again repairs it.
- **Eviction**: before a write that would take the folder past ``store_max_bytes``, the least
  recently used files (modification time, refreshed on every access) that are older than
  ``store_retention_seconds`` are deleted. If that is not enough, :class:`StoreFull` (507).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from app.errors import ApiError

log = logging.getLogger("convlens.store")

ID_PATTERN = re.compile(r"^[0-9a-f]{64}$")
SUFFIX = ".png"
TEMP_PREFIX = ".tmp-"
STALE_TEMP_SECONDS = 3600.0


class StoreCorrupt(ApiError):
    """A stored file no longer matches its hash (410 Gone)."""

    def __init__(self, image_id: str) -> None:
        super().__init__(
            410,
            f"stored file for image {image_id} is corrupt (its bytes no longer match their SHA-256); "
            "it is not served — upload the image again",
        )


class StoreFull(ApiError):
    """No room for a new upload without deleting recently used ones (507)."""

    def __init__(self, needed: int, limit: int, retention: float) -> None:
        super().__init__(
            507,
            f"the upload store is full: {needed} more bytes would exceed its limit of {limit} bytes and "
            f"every stored image was used within the last {retention:g} seconds; try again later",
        )


class UnknownImage(ApiError):
    """No such id in the store (404)."""

    def __init__(self, image_id: str) -> None:
        super().__init__(404, f"unknown image id {image_id!r}")


def is_upload_id(image_id: str) -> bool:
    """True for a 64-hex-digit lower-case SHA-256."""
    return bool(ID_PATTERN.match(image_id))


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
    """

    def __init__(self, root: Path, max_bytes: int, retention_seconds: float) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        self.retention_seconds = retention_seconds

    # ------------------------------------------------------------------ paths

    def path_for(self, image_id: str) -> Path:
        """The file of ``image_id``; raises :class:`UnknownImage` for anything but 64 hex digits."""
        if not is_upload_id(image_id):
            raise UnknownImage(image_id)
        return self.root / f"{image_id}{SUFFIX}"

    # ------------------------------------------------------------------ reading

    def read(self, image_id: str) -> bytes:
        """The stored PNG bytes of ``image_id``, verified against the hash and marked as used.

        Raises
        ------
        UnknownImage
            Not stored (or an invalid id).
        StoreCorrupt
            The bytes do not hash to the id.
        """
        path = self.path_for(image_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UnknownImage(image_id) from None
        if hashlib.sha256(data).hexdigest() != image_id:
            log.error("store file %s does not match its hash; refusing to serve it", path)
            raise StoreCorrupt(image_id)
        self.touch(image_id)
        return data

    def exists(self, image_id: str) -> bool:
        """True when a file for ``image_id`` is stored (not verified)."""
        return self.path_for(image_id).is_file()

    def touch(self, image_id: str) -> None:
        """Mark ``image_id`` as just used (its mtime drives the LRU eviction)."""
        try:
            os.utime(self.path_for(image_id))
        except FileNotFoundError:
            raise UnknownImage(image_id) from None

    # ------------------------------------------------------------------ writing

    def save(self, data: bytes) -> SaveResult:
        """Store ``data`` (PNG bytes) under its SHA-256, atomically.

        Returns
        -------
        SaveResult
            ``created`` is False when the same bytes were already stored (then only the use time is
            refreshed), or when a concurrent identical upload won the race.

        Raises
        ------
        StoreFull
            No room without evicting a file used within the retention window.
        """
        image_id = hashlib.sha256(data).hexdigest()
        final = self.path_for(image_id)
        self.root.mkdir(parents=True, exist_ok=True)
        if final.is_file():
            if self._verify_file(final, image_id):
                self.touch(image_id)
                return SaveResult(image_id, created=False)
            log.warning("repairing corrupt store file %s", final)
        else:
            self._make_room(len(data))
        tmp = self._write_temp(data)
        try:
            try:
                os.link(tmp, final)  # fails if another writer got there first: no clobbering
                created = True
            except FileExistsError:
                if self._verify_file(final, image_id):
                    created = False
                else:  # a corrupt file is in the way: replace it atomically
                    os.replace(tmp, final)
                    created = True
            except OSError:  # a filesystem without hard links
                created = not final.exists()
                os.replace(tmp, final)
            self._fsync_dir()
        finally:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
        self.touch(image_id)
        return SaveResult(image_id, created=created)

    def _write_temp(self, data: bytes) -> Path:
        fd, name = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=SUFFIX, dir=self.root)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
        except BaseException:
            os.unlink(name)
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

    @staticmethod
    def _verify_file(path: Path, image_id: str) -> bool:
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest() == image_id
        except FileNotFoundError:
            return False

    # ------------------------------------------------------------------ eviction

    def usage(self) -> list[tuple[float, int, Path]]:
        """``(mtime, size, path)`` of every stored file, least recently used first."""
        entries = []
        now = time.time()
        try:
            scan = list(os.scandir(self.root))
        except FileNotFoundError:
            return []
        for entry in scan:
            try:
                stat = entry.stat()
            except FileNotFoundError:
                continue
            if entry.name.startswith(TEMP_PREFIX):
                if now - stat.st_mtime > STALE_TEMP_SECONDS:  # left behind by a crash
                    _unlink_quietly(Path(entry.path))
                continue
            if entry.name.endswith(SUFFIX) and is_upload_id(entry.name[: -len(SUFFIX)]):
                entries.append((stat.st_mtime, stat.st_size, Path(entry.path)))
        entries.sort()
        return entries

    def total_bytes(self) -> int:
        """Bytes used by stored images."""
        return sum(size for _, size, _ in self.usage())

    def _make_room(self, incoming: int) -> None:
        entries = self.usage()
        total = sum(size for _, size, _ in entries)
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
            total -= size
        if total + incoming > self.max_bytes:
            raise StoreFull(incoming, self.max_bytes, self.retention_seconds)


def _unlink_quietly(path: Path) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
