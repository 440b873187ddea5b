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
# The model id above never expires (it names the cut-outs already made); liveness is apart: each worker's
# heartbeat is its member here, scored by when it lapses (ms, Redis's clock, as the claims' sorted set).
WORKERS = PREFIX + "workers"
#: key -> the job queued for it (owner and stream id), so a key waits in the stream once however often
#: its claim lapses while no worker takes it. Long-lived only as a bound: ``done`` deletes it.
WAITING = PREFIX + "waiting:"
WAITING_MS = 24 * 3600 * 1000
#: A heartbeat lasts a lease, and at least three of an idle worker's announcements (every 5 s).
BEAT_MS = 15_000

_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
_BEAT = _NOW + """
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
"""
_ALIVE = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
_WAITING = """
local owner = redis.call('HGET', KEYS[1], 'owner')
local id = redis.call('HGET', KEYS[1], 'id')
if owner and id and #redis.call('XRANGE', KEYS[2], id, id) > 0 then return owner end
return false
"""
_FORGET = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""

# A job handed back by the worker holding it: queued again as a new entry (a waiting worker's XREADGROUP
# takes it at once; the old one would move only once idle for a lease), the old one gone, its waiting note
# pointing at the new one. Only while this consumer still holds it: one taken over meanwhile stays.
_GIVE_BACK = """
local held = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #held == 0 or held[1][2] ~= ARGV[7] then return false end
local new = redis.call('XADD', KEYS[1], '*', 'key', ARGV[3], 'request', ARGV[4], 'accept', ARGV[5],
                       'owner', ARGV[6])
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
if redis.call('HGET', KEYS[2], 'owner') == ARGV[6] then redis.call('HSET', KEYS[2], 'id', new) end
return new
"""


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
    def __init__(self, url: str, *, lease: float = 60.0, timeout: float = 2.0, retry_after: int = 5,
                 beat: float = BEAT_MS / 1000) -> None:
        self.url = url
        self.lease_ms = max(1, int(lease * 1000))
        self.beat_ms = max(self.lease_ms, int(beat * 1000))
        self.client = connect(url, timeout=timeout)
        self.retry_after = retry_after
        self._group_ready = False
        self._beat = self.client.register_script(_BEAT)
        self._alive = self.client.register_script(_ALIVE)
        self._waiting = self.client.register_script(_WAITING)
        self._forget = self.client.register_script(_FORGET)
        self._give_back = self.client.register_script(_GIVE_BACK)

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
            entry = self.client.xadd(STREAM, {"key": key, "request": request, "accept": accept or "",
                                              "owner": owner})
        except redis.RedisError as exc:
            log.warning("Redis at %s: job for %s not queued: %s", self.url, key, exc)
            raise StateUnavailable(self.retry_after) from exc
        try:
            self.client.hset(WAITING + key, mapping={"owner": owner, "id": _text(entry)})
            self.client.pexpire(WAITING + key, WAITING_MS)
        except redis.RedisError as exc:  # queued all the same: at worst a later lapse queues it again
            log.warning("Redis at %s: job for %s not noted as waiting: %s", self.url, key, exc)

    def waiting(self, key: str) -> str | None:
        """The owner of the job still in the stream for ``key``, if there is one: its claim lapsed (no
        worker took it within a lease), and taking the claim again under that owner lets the job that
        waits stand for the new request, instead of a duplicate that counts toward CUTOUT_QUEUE_SIZE."""
        try:
            owner = self._waiting(keys=[WAITING + key, STREAM])
        except redis.RedisError as exc:
            raise StateUnavailable(self.retry_after) from exc
        return None if owner is None else _text(owner)

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

    def alive(self) -> int:
        """Workers whose heartbeat has not lapsed (``beat``)."""
        try:
            return int(self._alive(keys=[WORKERS]))
        except redis.RedisError as exc:
            raise StateUnavailable(self.retry_after) from exc

    # -- the workers' side -----------------------------------------------------------------------
    def announce(self, model_id: str, provider: str, consumer: str) -> None:
        self.client.hset(MODEL, mapping={"id": model_id, "provider": provider})
        self.beat(consumer)

    def beat(self, consumer: str) -> None:
        """``consumer`` is alive for one more lease: it beats between jobs (``announce``, every few
        seconds) and during one (``heartbeat``, every third of a lease)."""
        self._beat(keys=[WORKERS], args=[consumer, self.beat_ms])

    def leave(self, consumer: str) -> None:
        """``consumer`` stopped: its heartbeat goes now rather than when it lapses, so /readyz stops
        counting it alive at once."""
        self.client.zrem(WORKERS, consumer)

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
        self.beat(consumer)

    def give_back(self, job: Job, consumer: str) -> bool:
        """``consumer`` stops before ``job`` is done: the job is queued again for the next worker, with
        the claim it carries (its owner). False when ``consumer`` no longer held it."""
        args = [GROUP, job.id, job.key, job.request, job.accept, job.owner, consumer]
        return self._give_back(keys=[STREAM, WAITING + job.key], args=args) is not None

    def done(self, job: Job) -> None:
        pipe = self.client.pipeline()
        pipe.xack(STREAM, GROUP, job.id)
        pipe.xdel(STREAM, job.id)
        self._forget(keys=[WAITING + job.key], args=[job.owner], client=pipe)
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
