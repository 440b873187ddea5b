"""The Upload and Admin API (issue 11): Cloudinary's write side, ``/v1_1/<cloud>/...``, over the same
core as the delivery URLs. ``routes`` is the face, ``auth`` checks signatures and Basic credentials,
``params`` reads requests, ``images`` checks uploaded files, ``assets`` keeps records beside the
originals, ``uploads`` does the work (uploads, background removal jobs, notifications, eager)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from cutout.service import Service
from cutout.settings import Settings
from cutout.upload.routes import ROUTES
from cutout.upload.uploads import Uploads

__all__ = ["ROUTES", "Uploads", "running"]


@asynccontextmanager
async def running(settings: Settings, service: Service) -> AsyncIterator[Uploads | None]:
    """The Upload API while the app runs (None when it is off): its jobs live in this task group."""
    if not settings.upload:
        yield None
        return
    uploads = Uploads(settings, service)
    async with anyio.create_task_group() as group:
        uploads.group = group
        group.start_soon(uploads.sweep_forever)
        yield uploads
        group.cancel_scope.cancel()
