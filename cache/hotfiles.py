"""A folder of local copies bounded by their total size, least recently used (by mtime) out first: the
S3 originals' local copies, and the images the server fetched or was sent (``cache.transient``). Each
process counts the files it found at start and those it added since, so with several worker processes
the folder may hold up to about one limit per process until the next start."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path


class HotFiles:
    """A folder of files bounded by total size, least recently used (by mtime: ``touch``) out first."""

    def __init__(self, folder: Path, limit: int) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.limit = folder, limit
        self._lock = threading.Lock()
        self._sizes = {p: p.stat().st_size for p in folder.iterdir()
                       if p.is_file() and not p.name.startswith(".")}

    def path(self, key: str, etag: str, ext: str) -> Path:
        name = hashlib.sha256(f"{key}\x1f{etag}".encode()).hexdigest()[:40]
        return self.folder / f"{name}.{ext.lower()}"

    def touch(self, path: Path) -> bool:
        try:
            os.utime(path)
        except FileNotFoundError:
            return False
        return True

    def added(self, path: Path) -> None:
        with self._lock:
            self._sizes[path] = path.stat().st_size
            total = sum(self._sizes.values())
            if total <= self.limit:
                return
            by_age = sorted(self._sizes, key=lambda p: p.stat().st_mtime if p.exists() else 0)
            for old in by_age:
                if total <= self.limit or old == path:
                    continue
                total -= self._sizes.pop(old)
                # A render holding it open keeps reading the unlinked file; the next one fetches again.
                old.unlink(missing_ok=True)

    def removed(self, path: Path) -> bool:
        """Remove ``path`` (a file of this folder); whether it was there."""
        with self._lock:
            self._sizes.pop(path, None)
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        return True
