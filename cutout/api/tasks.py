"""Tasks: a request whose result is not ready at once (``async=true``, or the sync wait ran out).

A task is a small JSON record in its own diskcache folder, kept ``CUTOUT_TASK_TTL`` (diskcache expires
it; an expired id is a 404) together with its result's bytes. It names its job (original and
transformations), not a queue entry: whoever drives it asks the core for the result, which claims and
queues the generation like any request. So a task survives a restart, and one whose driver died (its
claim on ``task:<id>`` lapses) is picked up again by the next sweep: it never ends without a result or
an error."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from pathlib import Path
from typing import Any

import diskcache

PENDING, RUNNING, SUCCESS, ERROR = "pending", "running", "success", "error"
FINAL = (SUCCESS, ERROR)


def owner_of(key: str) -> str:
    """What a task keeps of the key that made it: a digest (the task store never holds a key), '' for an
    API open without keys."""
    return hashlib.sha256(b"cutout task owner\0" + key.encode()).hexdigest()[:32] if key else ""


def visible(task: dict[str, Any] | None, owner: str) -> dict[str, Any] | None:
    """``task`` when the caller ``owner`` may see it (its own; a task from before owners were kept has
    none and is anyone's), else None: another key's task is answered as an unknown one, a 404."""
    if task is None or task.get("owner", owner) != owner:
        return None
    return task


def new_id() -> str:
    return "tsk_" + uuid.uuid4().hex


class Tasks:
    def __init__(self, folder: Path, ttl: float) -> None:
        self.cache = diskcache.Cache(str(folder))
        self.ttl = ttl

    def close(self) -> None:
        self.cache.close()

    def create(self, job: dict[str, Any], webhook_url: str | None, owner: str = "") -> dict[str, Any]:
        """``owner``: ``owner_of`` the key that asked for it; only that key sees the task."""
        task = {
            "task_id": new_id(),
            "status": PENDING,
            "created_at": time.time(),
            "finished_at": None,
            "job": job,
            "webhook_url": webhook_url,
            "result": None,
            "error": None,
            "owner": owner,
        }
        self.put(task)
        return task

    def put(self, task: dict[str, Any]) -> None:
        # Expiry counts from creation: a task and its result live CUTOUT_TASK_TTL in all.
        remaining = max(1.0, task["created_at"] + self.ttl - time.time())
        self.cache.set(task["task_id"], task, expire=remaining)

    def update(self, task: dict[str, Any]) -> bool:
        """``put`` a task that exists, and say whether it did: its driver's writes (running, finished,
        the webhook's progress) never bring back a task that a DELETE removed meanwhile."""
        with self.cache.transact():
            if task["task_id"] not in self.cache:
                return False
            self.put(task)
        return True

    def get(self, task_id: str) -> dict[str, Any] | None:
        task: dict[str, Any] | None = self.cache.get(task_id)
        return task

    def finish(
        self,
        task: dict[str, Any],
        *,
        result: dict[str, Any] | None = None,
        data: bytes | None = None,
        error: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """The task finished, or None when it was deleted meanwhile (then nothing of it is kept)."""
        task = {
            **task,
            "status": SUCCESS if error is None else ERROR,
            "finished_at": time.time(),
            "result": result,
            "error": error,
        }
        if data is not None:
            remaining = max(1.0, task["created_at"] + self.ttl - time.time())
            self.cache.set(f"{task['task_id']}:data", data, expire=remaining)
        if not self.update(task):
            self.cache.delete(f"{task['task_id']}:data")
            return None
        return task

    def data(self, task_id: str) -> bytes | None:
        data: bytes | None = self.cache.get(f"{task_id}:data")
        return data

    def delete(self, task_id: str) -> bool:
        found = self.cache.delete(task_id)
        self.cache.delete(f"{task_id}:data")
        self.cache.delete(f"{task_id}:claim")
        return bool(found)

    def note(self, name: str, value: Any) -> None:
        """Keep a small record beside the tasks for CUTOUT_TASK_TTL: the vendor adapters' own ids (a
        Runware taskUUID -> its task, a Perfect Corp file id -> its original). Never a task itself."""
        self.cache.set(f"note:{name}", value, expire=self.ttl)

    def noted(self, name: str) -> Any:
        return self.cache.get(f"note:{name}")

    def claim(self, task_id: str, owner: str, lease: float) -> bool:
        """Become the one driver of a task (atomic ``add``, as the coordinator's claims); the lease lets
        a dead driver's task be picked up by the next sweep."""
        return bool(self.cache.add(f"{task_id}:claim", owner, expire=lease))

    def renew(self, task_id: str, owner: str, lease: float) -> None:
        self.cache.set(f"{task_id}:claim", owner, expire=lease)

    def release(self, task_id: str) -> None:
        self.cache.delete(f"{task_id}:claim")

    def unfinished(self) -> list[dict[str, Any]]:
        """Tasks without their result yet, or whose webhook is not yet delivered (nor given up)."""
        found = []
        for key in list(self.cache.iterkeys()):
            if isinstance(key, str) and ":" not in key.removeprefix("tsk_"):
                task = self.get(key)
                if task is not None and (task["status"] not in FINAL or _hook_pending(task)):
                    found.append(task)
        return found


def _hook_pending(task: dict[str, Any]) -> bool:
    if not task.get("webhook_url"):
        return False
    webhook = task.get("webhook")
    return webhook is None or json.loads(webhook)["state"] == "pending"
