"""One cache folder as both diskcache seams: the ``BlobStore`` (``blobs/``) and the ``Coordinator``
(``state/``), opened together because every process serving the folder shares both."""

from __future__ import annotations

from pathlib import Path

from cache.blobs import DiskBlobs, Entry
from cache.coordinator import DiskCoordinator, Failure

__all__ = ["DerivativeCache", "Entry", "Failure"]


class DerivativeCache(DiskBlobs, DiskCoordinator):
    def __init__(self, directory: str | Path, *, size_limit: int = 2 << 30) -> None:
        self.directory = Path(directory)
        DiskBlobs.__init__(self, directory, size_limit=size_limit)
        DiskCoordinator.__init__(self, directory)

    def close(self) -> None:
        DiskBlobs.close(self)
        DiskCoordinator.close(self)
