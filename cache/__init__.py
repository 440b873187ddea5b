"""The derivative cache. Knows keys, bytes, claims and leases; nothing about images."""

from cache.keys import PIPELINE_VERSION, FileStamp, Fingerprints, derivative_key, file_stamp, mask_key
from cache.store import DerivativeCache, Entry, Failure

__all__ = [
    "PIPELINE_VERSION",
    "DerivativeCache",
    "Entry",
    "Failure",
    "FileStamp",
    "Fingerprints",
    "derivative_key",
    "file_stamp",
    "mask_key",
]
