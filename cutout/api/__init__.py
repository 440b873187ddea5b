"""The HTTP API (issue 12): ``/v1/...`` over the same core as the delivery URLs. ``routes`` is the face,
``intake`` reads requests, ``options`` compiles them onto engine operations, ``remover`` talks to the
core, ``tasks`` and ``runner`` keep what is not ready at once, ``auth`` checks keys and rates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from cutout.api.auth import Gate, enabled
from cutout.api.remover import Remover
from cutout.api.routes import DOC_ROUTES, ROUTES, Api
from cutout.api.runner import LEASE_SECONDS, Runner
from cutout.api.tasks import Tasks
from cutout.fetch import FetchPolicy
from cutout.remote import RemoteOriginals
from cutout.service import Service
from cutout.settings import Settings
from cutout.webhooks import StandardSigner, webhook_policy

__all__ = ["DOC_ROUTES", "ROUTES", "Api", "running"]


@asynccontextmanager
async def running(
    settings: Settings, service: Service, remote: RemoteOriginals | None = None
) -> AsyncIterator[Api | None]:
    """The API while the app runs (None when it is off): its tasks' drivers live in this task group.
    ``remote``: the fetched originals of /image/fetch/, which image_url and bg_image_url share."""
    if not enabled(settings):
        yield None
        return
    _, cache_dir = settings.require_paths()
    tasks: Tasks
    if settings.state is not None:  # several replicas: every one must know every task
        from cutout.api.redis_tasks import RedisTasks

        tasks = RedisTasks(settings.state, settings.task_ttl)
    else:
        tasks = Tasks(cache_dir / "api-tasks", settings.task_ttl)
    secret = settings.api_webhook_secret
    signer = StandardSigner(secret) if secret else None
    # image_url and bg_image_url share /image/fetch/'s store of fetched images (the same folder: diskcache
    # takes several handles), so each URL is downloaded once and revalidated after CUTOUT_FETCH_TTL.
    fetched = remote or RemoteOriginals(
        service.originals, cache_dir / "fetched", FetchPolicy.from_environ(), settings.fetch_ttl,
        settings.max_pixels,
    )
    remover = Remover(service, FetchPolicy.from_environ(), tasks, fetched)
    lease = min(LEASE_SECONDS, settings.lease_seconds)
    runner = Runner(remover, tasks, signer, webhook_policy(), lease=lease)
    try:
        async with anyio.create_task_group() as group:
            runner.group = group
            group.start_soon(runner.sweep_forever)
            yield Api(settings, Gate(settings), runner.remover, tasks, runner)
            group.cancel_scope.cancel()
    finally:
        tasks.close()
        if remote is None:
            fetched.close()
