"""The derivative cache. Knows keys, bytes, claims and leases; nothing about images."""

from cache.keys import PIPELINE_VERSION, Fingerprints, derivative_key, mask_key
from cache.store import DerivativeCache, Entry, Failure

__all__ = [
    "PIPELINE_VERSION",
    "DerivativeCache",
    "Entry",
    "Failure",
    "Fingerprints",
    "derivative_key",
    "mask_key",
]
