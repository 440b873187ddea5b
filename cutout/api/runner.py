"""Drives tasks to their end: asks the core for the result until it is there or has failed, keeps it
with the task, and tells the task's ``webhook_url`` (Standard Webhooks, retried with back-off)."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

import anyio
from anyio.abc import TaskGroup

from cutout import metrics
from cutout.api.errors import ApiError
from cutout.api.remover import Job, Remover
from cutout.api.tasks import FINAL, RUNNING, Tasks
from cutout.fetch import FetchPolicy
from cutout.webhooks import Delivery, RetryPolicy, Signer, deliver

log = logging.getLogger("cutout.api")

#: A driver's claim on its task; renewed each round, so a dead driver's task is swept up this soon. A
#: shorter CUTOUT_LEASE_SECONDS (the generation claims' lease) shortens it too (``running`` passes it).
LEASE_SECONDS = 30.0

#: Webhook bodies in a vendor's shape (registered by cutout.adapters), by the name a task's job gives
#: under "payload": (task, its result's bytes or None) -> the JSON body. Others get the native body.
PAYLOADS: dict[str, Callable[[dict[str, Any], bytes | None], dict[str, Any]]] = {}


class Runner:
    def __init__(
        self,
        remover: Remover,
        tasks: Tasks,
        signer: Signer | None,
        hook_policy: FetchPolicy,
        lease: float = LEASE_SECONDS,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.lease = lease
        # CUTOUT_WEBHOOK_TRIES bounds these deliveries as it does the Upload API's.
        self.retry = RetryPolicy.from_environ() if retry is None else retry
        self.remover = remover
        self.tasks = tasks
        self.signer = signer
        self.hook_policy = hook_policy
        self.owner = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.group: TaskGroup | None = None

    def start(self, task: dict[str, Any]) -> None:
        assert self.group is not None, "the runner is started by the app's lifespan"
        self.group.start_soon(self.drive, task)

    async def sweep_forever(self) -> None:
        """Pick up tasks nobody drives (after a restart, or a worker that died), now and every lease. A
        failure (the task store unreachable: Redis restarting) is logged and the sweep tried again: an
        exception here would end the app's task group, and with it every task it drives."""
        while True:
            try:
                for task in await anyio.to_thread.run_sync(self.tasks.unfinished):
                    assert self.group is not None
                    self.group.start_soon(partial(self.drive, task, resumed=True))
            except Exception as exc:
                log.warning("sweeping unfinished API tasks failed (%s); again in %.0f s", exc, self.lease)
            await anyio.sleep(self.lease)

    async def drive(self, task: dict[str, Any], resumed: bool = False) -> None:
        """``_drive``, whose failure (the task store unreachable mid-task) is logged, never raised into
        the app's task group: the task stays unfinished and the sweep picks it up once its claim lapses."""
        try:
            await self._drive(task, resumed)
        except Exception:
            log.exception("driving task %s stopped; the sweep takes it up again", task.get("task_id"))

    async def _drive(self, task: dict[str, Any], resumed: bool = False) -> None:
        """Make the task's result, then tell its webhook; either may have been begun by a driver that
        stopped (its claim lapsed): the result is asked for again, the delivery resumed where it was."""
        task_id = task["task_id"]
        if not await anyio.to_thread.run_sync(self.tasks.claim, task_id, self.owner, self.lease):
            return  # somebody else drives it
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(self._keep_claim, task_id)
                if task["status"] not in FINAL:
                    if resumed:  # swept up: its driver stopped (a restart, a dead worker)
                        metrics.api_tasks_total.labels("resumed").inc()
                    metrics.api_queue_depth.inc()
                    try:
                        ended = await self._run(task)
                    finally:
                        metrics.api_queue_depth.dec()
                    if ended is None:  # deleted while it ran: gone, webhook and all
                        group.cancel_scope.cancel()
                        return
                    task = ended
                if task["webhook_url"] and self.signer is not None:
                    await self._notify(task)
                group.cancel_scope.cancel()
        finally:
            # Shielded: when the app stops mid-task, the claim must go now, or the next process to start
            # would wait out the lease before it picks the task up.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.tasks.release, task_id)

    async def _keep_claim(self, task_id: str) -> None:
        while True:
            await anyio.sleep(self.lease / 3)
            await anyio.to_thread.run_sync(self.tasks.renew, task_id, self.owner, self.lease)

    async def _run(self, task: dict[str, Any]) -> dict[str, Any] | None:
        """The task ended (its result or its error), or None: it was deleted (DELETE /v1/tasks/<id>)."""
        task = {**task, "status": RUNNING}
        if not await anyio.to_thread.run_sync(self.tasks.update, task):
            return None
        job = Job.from_json(task["job"])
        while True:
            try:
                result = await self.remover.make(job, wait=self.lease / 3)
            except ApiError as exc:
                return await self._finish(task, error={"code": exc.code, "message": exc.detail})
            except Exception:
                # Never a task without an end: a bug here is an internal_error, logged with its traceback.
                log.exception("task %s failed", task["task_id"])
                return await self._finish(task, error={"code": "internal_error", "message": "Internal error"})
            if result is not None:
                return await self._finish(task, result=result.meta, data=result.entry.data)

    async def _finish(self, task: dict[str, Any], **outcome: Any) -> dict[str, Any] | None:
        finished = await anyio.to_thread.run_sync(partial(self.tasks.finish, task, **outcome))
        if finished is not None:
            metrics.api_tasks_total.labels(finished["status"]).inc()
        return finished

    async def _notify(self, task: dict[str, Any]) -> None:
        """Deliver (or resume delivering) the task's webhook, kept with the task after every attempt."""
        assert self.signer is not None
        if task.get("webhook") is None:
            shape = PAYLOADS.get(task["job"].get("payload", ""))
            if shape is None:
                # Standard Webhooks' recommended shape: type, timestamp (when the event occurred: the task
                # ended; each try's own time is the webhook-timestamp header) and data.
                payload = {"type": f"task.{task['status']}", "timestamp": _iso(task["finished_at"]),
                           "data": public_view(task)}  # fmt: skip
            else:
                payload = shape(task, await anyio.to_thread.run_sync(self.tasks.data, task["task_id"]))
            task = {
                **task,
                "webhook": Delivery.new(task["webhook_url"], payload, self.signer.scheme).to_json(),
            }
            if not await anyio.to_thread.run_sync(self.tasks.update, task):
                return  # deleted: nobody to tell about it
        delivery = Delivery.from_json(task["webhook"])
        if delivery.state != "pending":
            return

        async def keep(attempted: Delivery) -> None:
            nonlocal task
            task = {**task, "webhook": attempted.to_json()}
            await anyio.to_thread.run_sync(self.tasks.update, task)  # not a deleted task back

        try:
            await deliver(delivery, self.signer, self.hook_policy, self.retry, on_attempt=keep)
        except Exception:
            log.exception("webhook of task %s", task["task_id"])


def _iso(moment: float | None) -> str:
    when = datetime.now(UTC) if moment is None else datetime.fromtimestamp(moment, UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def public_view(task: dict[str, Any]) -> dict[str, Any]:
    """What clients see of a task (its job is the server's business)."""
    view = {k: task[k] for k in ("task_id", "status", "created_at", "finished_at")}
    if task["result"] is not None:
        view["result"] = task["result"]
    if task["error"] is not None:
        view["error"] = task["error"]
    return view
