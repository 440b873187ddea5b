"""The model queue in Redis Streams with one consumer group (``CUTOUT_BACKGROUND_REMOVAL=queue``).

Why Streams rather than RQ, Dramatiq or arq: a job here is three strings (the derivative's key, the
request that names it, the claim's owner), not a Python call to pickle; and what a killed worker needs is
exactly what a consumer group gives: a delivered job stays *pending* until it is acknowledged, and
``XAUTOCLAIM`` hands a job idle for longer than the lease to the next worker that asks. A working worker
keeps its job's idle time near zero (``XCLAIM`` to itself, with the claim's renewal), so only a dead or
stalled worker's job moves. RQ would need its own reaper for that (abandoned jobs go to a failed
registry), arq polls a sorted set, Dramatiq adds a broker layer and actors; each is a second queue model
beside the claims that already say who generates what.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis

from cache.redis_state import PREFIX, StateUnavailable, connect

log = logging.getLogger("cutout.queue")

STREAM = PREFIX + "jobs"
GROUP = "workers"
MODEL = PREFIX + "model"  # what the workers run: model id and provider, set at each worker's start


@dataclass(frozen=True)
class Job:
    id: str
    key: str
    request: str  # the delivery path, /image/upload/<transformations>/<public_id>
    accept: str
    owner: str  # the claim on ``key`` this job carries


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class ModelQueue:
    def __init__(self, url: str, *, lease: float = 60.0, timeout: float = 2.0, retry_after: int = 5) -> None:
        self.url = url
        self.lease_ms = max(1, int(lease * 1000))
        self.client = connect(url, timeout=timeout)
        self.retry_after = retry_after
        self._group_ready = False

    def close(self) -> None:
        self.client.close()

    def _group(self) -> None:
        if self._group_ready:
            return
        try:
            self.client.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    # -- the servers' side -----------------------------------------------------------------------
    def enqueue(self, key: str, request: str, accept: str | None, owner: str) -> None:
        try:
            self._group()
            self.client.xadd(STREAM, {"key": key, "request": request, "accept": accept or "", "owner": owner})
        except redis.RedisError as exc:
            log.warning("Redis at %s: job for %s not queued: %s", self.url, key, exc)
            raise StateUnavailable(self.retry_after) from exc

    def depth(self) -> int:
        """Jobs waiting or running (entries not yet acknowledged)."""
        try:
            return int(self.client.xlen(STREAM))
        except redis.RedisError as exc:
            raise StateUnavailable(self.retry_after) from exc

    def model(self) -> str | None:
        """The model id the workers announced (the servers put it in cut-outs' keys), or None."""
        try:
            raw = self.client.hget(MODEL, "id")
        except redis.RedisError as exc:
            raise StateUnavailable(self.retry_after) from exc
        return None if raw is None else _text(raw)

    # -- the workers' side -----------------------------------------------------------------------
    def announce(self, model_id: str, provider: str) -> None:
        self.client.hset(MODEL, mapping={"id": model_id, "provider": provider})

    def take(self, consumer: str, *, block: float = 1.0) -> Job | None:
        """The next job for ``consumer``: first one whose worker stopped renewing it for a lease (died
        mid-job), else a new one, waiting up to ``block`` seconds."""
        try:
            return self._take(consumer, block)
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            self._group_ready = False  # Redis restarted without its data: the group is made again
            return self._take(consumer, block)

    def _take(self, consumer: str, block: float) -> Job | None:
        self._group()
        _, stale, _ = self.client.xautoclaim(STREAM, GROUP, consumer, min_idle_time=self.lease_ms, count=1)
        entries = stale
        if not entries:
            wait = int(block * 1000)
            got: Any = self.client.xreadgroup(GROUP, consumer, {STREAM: ">"}, count=1, block=wait)
            entries = got[0][1] if got else []
        for entry_id, fields in entries:
            if not fields:  # deleted meanwhile
                self.client.xack(STREAM, GROUP, entry_id)
                continue
            values = {_text(k): _text(v) for k, v in fields.items()}
            return Job(_text(entry_id), values["key"], values["request"], values["accept"], values["owner"])
        return None

    def heartbeat(self, job: Job, consumer: str) -> None:
        """Reset the job's idle time: it is being worked on (``XCLAIM`` to the same consumer)."""
        self.client.xclaim(STREAM, GROUP, consumer, min_idle_time=0, message_ids=[job.id], justid=True)

    def done(self, job: Job) -> None:
        pipe = self.client.pipeline()
        pipe.xack(STREAM, GROUP, job.id)
        pipe.xdel(STREAM, job.id)
        pipe.execute()

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._group()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
