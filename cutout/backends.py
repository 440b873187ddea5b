"""The storage seams chosen by settings: a folder or S3 for originals; the cache folder's diskcache, with
an S3 second tier when ``CUTOUT_SHARED_CACHE`` is set, for blobs; the cache folder or Redis
(``CUTOUT_STATE``) as coordinator. The scale-out backends import their clients (boto3, redis-py: the
``cutout[scale]`` extra) only when chosen, so the one-machine default needs neither."""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from cache import BlobStore, Coordinator, DerivativeCache, FolderOriginals, OriginalsStore
from cache.transient import transient
from cutout import metrics
from cutout.settings import Settings, SettingsError
from transform.seam import Segmenter


def queued_model(settings: Settings) -> Segmenter:
    """A server's stand-in for the model when `cutout worker` processes run it."""
    assert settings.state is not None
    from cache.redis_queue import ModelQueue
    from cutout.queued import QueuedModel

    # A read-only model_id (read from Redis), where the protocol declares a plain attribute.
    return cast(Segmenter, QueuedModel(ModelQueue(settings.state, retry_after=settings.retry_after)))


@dataclass(frozen=True)
class Stores:
    originals: OriginalsStore
    blobs: BlobStore
    coordinator: Coordinator


def _scale_extra(setting: str) -> None:
    try:
        import boto3  # noqa: F401
        import redis  # noqa: F401
    except ImportError as exc:
        raise SettingsError(f"{setting} needs the scale-out clients: pip install 'cutout[scale]' ({exc})"
                            ) from None


def open_stores(settings: Settings, cache: DerivativeCache) -> Stores:
    originals_at, _ = settings.require_paths()
    originals: OriginalsStore
    endpoint = None
    if isinstance(originals_at, str) or settings.shared_cache is not None:
        _scale_extra("CUTOUT_ORIGINALS=s3://..." if isinstance(originals_at, str) else "CUTOUT_SHARED_CACHE")
        from cache.s3 import S3Endpoint, client

        # One client and one down state for both stores: they are one storage that answers or not.
        timeout = settings.s3_timeout
        endpoint = S3Endpoint(client(settings.s3_endpoint, timeout=timeout), timeout=timeout)
    if isinstance(originals_at, str):
        from cache.s3 import S3Originals

        originals = S3Originals(originals_at, cache.directory / "originals", at=endpoint,
                                cache_size=settings.originals_cache, timeout=settings.s3_timeout)
    else:
        # One machine: what the server fetched or was sent lives in bounded folders of the cache, not
        # among the originals (cache/transient.py). On S3 every replica and worker must reach it: it stays
        # in the bucket, which a lifecycle rule expires.
        originals = transient(FolderOriginals(originals_at), cache.directory, settings.fetch_cache,
                              settings.api_upload_cache)
    blobs: BlobStore = cache
    if settings.shared_cache is not None:
        _scale_extra("CUTOUT_SHARED_CACHE")
        from cache.s3 import S3Blobs, TieredBlobs

        shared = S3Blobs(settings.shared_cache, at=endpoint, timeout=settings.s3_timeout)
        blobs = TieredBlobs(cache, shared,
                            on_shared_hit=metrics.shared_cache_hits_total.inc)
    coordinator: Coordinator = cache
    if settings.state is not None:
        _scale_extra("CUTOUT_STATE")
        from cache.redis_state import RedisCoordinator

        coordinator = RedisCoordinator(settings.state, retry_after=settings.retry_after)
    return Stores(originals, blobs, coordinator)
