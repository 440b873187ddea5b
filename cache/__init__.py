"""The stores under the origin and the keys into them; nothing about images.

``cache.seams`` declares the three seams (originals, blobs, coordinator); ``cache.folder`` and
``cache.store`` are today's implementations of them (a folder; diskcache).
"""

from cache.blobs import DiskBlobs, Entry
from cache.coordinator import DiskCoordinator, Failure
from cache.folder import FileStamp, Fingerprints, FolderOriginals, file_stamp
from cache.keys import PIPELINE_VERSION, derivative_key, face_key, mask_key
from cache.seams import BlobStore, Coordinator, Located, OriginalsStore
from cache.store import DerivativeCache

__all__ = [
    "PIPELINE_VERSION",
    "BlobStore",
    "Coordinator",
    "DerivativeCache",
    "DiskBlobs",
    "DiskCoordinator",
    "Entry",
    "Failure",
    "FileStamp",
    "Fingerprints",
    "FolderOriginals",
    "Located",
    "OriginalsStore",
    "derivative_key",
    "file_stamp",
    "mask_key",
    "face_key",
]
