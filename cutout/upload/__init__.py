"""The Upload and Admin API (issue 11): Cloudinary's write side, ``/v1_1/<cloud>/...``, over the same
core as the delivery URLs. ``routes`` is the face, ``auth`` checks signatures and Basic credentials,
``params`` reads requests, ``images`` checks uploaded files, ``assets`` keeps records beside the
originals, ``uploads`` answers the upload and read calls, ``manage`` the calls that change or delete many
(rename, tags, context, by prefix or tag), ``parts`` keeps chunked uploads' parts, and ``jobs`` drives
what is left (background removals, eager batches, notifications)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.to_thread

from cutout.service import Service
from cutout.settings import Settings
from cutout.upload.routes import ROUTES
from cutout.upload.uploads import Uploads

__all__ = ["ROUTES", "Uploads", "running"]

log = logging.getLogger("cutout.upload")


@asynccontextmanager
async def running(settings: Settings, service: Service) -> AsyncIterator[Uploads | None]:
    """The Upload API while the app runs (None when it is off): its jobs live in this task group."""
    if not settings.upload:
        yield None
        return
    uploads = Uploads(settings, service)
    async with anyio.create_task_group() as group:
        uploads.jobs.group = group
        group.start_soon(uploads.jobs.sweep_forever)
        group.start_soon(uploads.parts.sweep_forever)
        group.start_soon(_once, uploads.assets.index_existing, "indexing the tags")
        group.start_soon(_once, uploads.assets.upright_existing, "turning upright the recorded size")
        yield uploads
        group.cancel_scope.cancel()


async def _once(work: Callable[[], int], what: str) -> None:
    """One of the stores' one-time repairs of records written by older versions (``Assets.index_existing``,
    ``upright_existing``), in the background: a failure is logged, and the next start tries again."""
    try:
        done = await anyio.to_thread.run_sync(work)
    except Exception:
        log.exception("%s of existing assets failed; the next start tries again", what)
        return
    if done:
        log.info("%s of %d existing assets: done", what, done)
