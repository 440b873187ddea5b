"""The HTTP API's tasks in Redis (``CUTOUT_STATE``), so that every replica knows every task: a task made
on one replica is read, driven and deleted through any other (nginx's hash sends ``/v1/tasks/<id>``
wherever its URL falls). The same records and calls as ``cutout.api.tasks.Tasks``: a JSON record and
its result's bytes under keys that expire ``CUTOUT_TASK_TTL`` after the task was made; the driver's
claim a ``SET NX PX`` that lapses when its replica dies, so another replica's sweep takes the task up.
"""

from __future__ import annotations

import json
import time
from typing import Any

from cache.redis_state import PREFIX, connect
from cutout.api.tasks import ERROR, FINAL, PENDING, SUCCESS, Tasks, _hook_pending, new_id

_TASK = PREFIX + "task:"
_NOTE = PREFIX + "note:"  # the vendor adapters' notes (``Tasks.note``), JSON
_OPEN = PREFIX + "tasks:open"  # a set of the ids of tasks not yet final (what the sweeps look at)


class RedisTasks(Tasks):
    """Every call of ``Tasks`` (a subclass so the runner and routes take either), none of its folder."""

    def __init__(self, url: str, ttl: float) -> None:  # no super().__init__: no diskcache folder here
        self.client = connect(url)
        self.ttl = ttl

    def close(self) -> None:
        self.client.close()

    def _remaining_ms(self, task: dict[str, Any]) -> int:
        return max(1000, int((task["created_at"] + self.ttl - time.time()) * 1000))

    def create(self, job: dict[str, Any], webhook_url: str | None, owner: str = "") -> dict[str, Any]:
        task = {"task_id": new_id(), "status": PENDING, "created_at": time.time(), "finished_at": None,
                "job": job, "webhook_url": webhook_url, "result": None, "error": None, "owner": owner}
        self.put(task)
        return task

    def put(self, task: dict[str, Any]) -> None:
        self._write(task, only_if_there=False)

    def update(self, task: dict[str, Any]) -> bool:
        # SET XX: atomic, so a DELETE between the driver's read and write wins.
        return self._write(task, only_if_there=True)

    def _write(self, task: dict[str, Any], only_if_there: bool) -> bool:
        pipe = self.client.pipeline()
        pipe.set(_TASK + task["task_id"], json.dumps(task), px=self._remaining_ms(task), xx=only_if_there)
        if task["status"] in FINAL and not _hook_pending(task):
            pipe.srem(_OPEN, task["task_id"])
        else:
            pipe.sadd(_OPEN, task["task_id"])
        written = bool(pipe.execute()[0])
        if not written:  # deleted: not listed as open either (the sweep would drop it, a lease later)
            self.client.srem(_OPEN, task["task_id"])
        return written

    def get(self, task_id: str) -> dict[str, Any] | None:
        raw = self.client.get(_TASK + task_id)
        if raw is None:
            return None
        task: dict[str, Any] = json.loads(raw)
        return task

    def finish(self, task: dict[str, Any], *, result: dict[str, Any] | None = None, data: bytes | None = None,
               error: dict[str, Any] | None = None) -> dict[str, Any] | None:
        task = {**task, "status": SUCCESS if error is None else ERROR, "finished_at": time.time(),
                "result": result, "error": error}
        if data is not None:
            self.client.set(_TASK + task["task_id"] + ":data", data, px=self._remaining_ms(task))
        if not self.update(task):
            self.client.delete(_TASK + task["task_id"] + ":data")
            return None
        return task

    def data(self, task_id: str) -> bytes | None:
        raw = self.client.get(_TASK + task_id + ":data")
        return raw if isinstance(raw, bytes) else None

    def delete(self, task_id: str) -> bool:
        pipe = self.client.pipeline()
        pipe.delete(_TASK + task_id)
        pipe.delete(_TASK + task_id + ":data", _TASK + task_id + ":claim")
        pipe.srem(_OPEN, task_id)
        found, _, _ = pipe.execute()
        return bool(found)

    def note(self, name: str, value: Any) -> None:
        self.client.set(_NOTE + name, json.dumps(value), px=max(1000, int(self.ttl * 1000)))

    def noted(self, name: str) -> Any:
        raw = self.client.get(_NOTE + name)
        return None if raw is None else json.loads(raw)

    def claim(self, task_id: str, owner: str, lease: float) -> bool:
        return bool(self.client.set(_TASK + task_id + ":claim", owner, nx=True, px=max(1, int(lease * 1000))))

    def renew(self, task_id: str, owner: str, lease: float) -> None:
        self.client.set(_TASK + task_id + ":claim", owner, px=max(1, int(lease * 1000)))

    def release(self, task_id: str) -> None:
        self.client.delete(_TASK + task_id + ":claim")

    def unfinished(self) -> list[dict[str, Any]]:
        found = []
        for raw_id in self.client.smembers(_OPEN):
            task_id = raw_id.decode() if isinstance(raw_id, bytes) else str(raw_id)
            task = self.get(task_id)
            if task is None:  # expired: no longer open
                self.client.srem(_OPEN, task_id)
            elif task["status"] not in FINAL or _hook_pending(task):
                found.append(task)
        return found
