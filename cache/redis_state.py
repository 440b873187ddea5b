"""The ``Coordinator`` seam in Redis (``CUTOUT_STATE=redis://...``), for replicas on several machines.

Claims are ``SET key owner NX PX lease``; renew and release are compare-and-set Lua scripts (only the
owner's value is extended or deleted), so a claim taken over after its lease ran out is never released
by the process that lost it. Live claims are also kept in a sorted set scored by their expiry (Redis's
own clock, ``TIME`` in the scripts, so the machines' clocks never matter): ``depth`` counts the members
not yet expired. A lease only avoids duplicate work: results are content-addressed, so a rare double
generation stores the same bytes twice and corrupts nothing.

When Redis cannot be reached, what needs agreement (a claim, the strict-mode allow-list) answers 503
with Retry-After; what is only an optimisation degrades: a remembered failure is not found (the render is
tried again), a failure to remember is logged. Cached derivatives never touch this store.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import redis

from cache.coordinator import Failure, failure_of
from grammar.errors import Overloaded

log = logging.getLogger("cutout.state")

#: Every key cutout writes starts with this, so one Redis database can be shared with other programs.
PREFIX = "cutout:"
_CLAIMS = PREFIX + "claims"  # sorted set: derivative key -> expiry (ms, Redis clock)

_NOW = "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000) "
_CLAIM = _NOW + """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  return 1
end
return 0
"""
_RENEW = _NOW + """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[2]), ARGV[3])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 1
end
return 0
"""
_DEPTH = _NOW + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


class StateUnavailable(Overloaded):
    """503: the shared state (Redis) cannot be reached; the client retries."""

    def __init__(self, retry_after: int = 5) -> None:
        super().__init__(retry_after, public="Generation state is unavailable; retry later")


def connect(url: str, *, timeout: float = 2.0) -> redis.Redis:
    """A client for ``url`` with bounded timeouts: a stopped Redis costs a request ``timeout`` seconds at
    most, never a thread held for ever."""
    return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                health_check_interval=10, decode_responses=False)


def refusal(url: str, *, timeout: float = 2.0) -> str | None:
    """What Redis at ``url`` answered when it refuses this client for good (a wrong password or user, a
    database it does not have), else None: it accepts, or does not answer now (a start before Redis is up
    is not refused for that: everything waits for it and recovers)."""
    client = connect(url, timeout=timeout)
    try:
        client.ping()
    except (redis.AuthenticationError, redis.ResponseError) as exc:  # before ConnectionError: a subclass
        return str(exc)
    except redis.RedisError:
        return None
    finally:
        client.close()
    return None


class RedisCoordinator:
    def __init__(self, url: str, *, timeout: float = 2.0, retry_after: int = 5) -> None:
        self.url = url
        self.client = connect(url, timeout=timeout)
        self.retry_after = retry_after
        self._claim = self.client.register_script(_CLAIM)
        self._renew = self.client.register_script(_RENEW)
        self._release = self.client.register_script(_RELEASE)
        self._depth = self.client.register_script(_DEPTH)

    def close(self) -> None:
        self.client.close()

    def _needed(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """A call whose answer cutout cannot do without: Redis unreachable is a 503 with Retry-After."""
        try:
            return call(*args, **kwargs)
        except redis.RedisError as exc:
            log.warning("Redis at %s: %s", self.url, exc)
            raise StateUnavailable(self.retry_after) from exc

    # -- generation claims -----------------------------------------------------------------------
    def claim(self, key: str, owner: str, *, lease: float) -> bool:
        ms = max(1, int(lease * 1000))
        return bool(self._needed(self._claim, keys=[PREFIX + "claim:" + key, _CLAIMS], args=[owner, ms, key]))

    def renew(self, key: str, owner: str, *, lease: float) -> bool:
        ms = max(1, int(lease * 1000))
        return bool(self._needed(self._renew, keys=[PREFIX + "claim:" + key, _CLAIMS], args=[owner, ms, key]))

    def release(self, key: str, owner: str) -> None:
        self._needed(self._release, keys=[PREFIX + "claim:" + key, _CLAIMS], args=[owner, key])

    def claimed(self, key: str) -> bool:
        return bool(self._needed(self.client.exists, PREFIX + "claim:" + key))

    def depth(self) -> int:
        return int(self._needed(self._depth, keys=[_CLAIMS]))

    # -- failures --------------------------------------------------------------------------------
    def remember_failure(self, key: str, status: int, message: str, *, ttl: float) -> None:
        value = json.dumps([status, message, math.ceil(ttl)])
        try:
            self.client.set(PREFIX + "fail:" + key, value, px=max(1, int(ttl * 1000)))
        except redis.RedisError as exc:  # an optimisation lost: the next request tries again
            log.warning("Redis at %s: failure of %s not remembered: %s", self.url, key, exc)

    def failure(self, key: str) -> Failure | None:
        try:
            raw = self.client.get(PREFIX + "fail:" + key)
        except redis.RedisError as exc:
            log.warning("Redis at %s: %s", self.url, exc)
            return None
        return None if raw is None else failure_of(json.loads(raw))

    def failed_again(self, key: str, *, keep: float) -> int:
        name = PREFIX + "streak:" + key
        try:
            with self.client.pipeline() as pipe:  # MULTI: two processes failing at once count two
                pipe.incr(name)
                pipe.pexpire(name, max(1, int(keep * 1000)))
                count, _ = pipe.execute()
            return int(count)
        except redis.RedisError as exc:  # an optimisation lost: counted as a first failure
            log.warning("Redis at %s: failure of %s not counted: %s", self.url, key, exc)
            return 1

    def succeeded(self, key: str) -> None:
        try:
            self.client.delete(PREFIX + "streak:" + key)
        except redis.RedisError as exc:  # the count lapses on its own
            log.warning("Redis at %s: %s", self.url, exc)

    # -- eager allow-list (strict mode) ----------------------------------------------------------
    def allow(self, name: str) -> None:
        self._needed(self.client.sadd, PREFIX + "eager", name)

    def allowed(self, name: str) -> bool:
        return bool(self._needed(self.client.sismember, PREFIX + "eager", name))

    def writable(self) -> bool:
        try:
            return bool(self.client.set(PREFIX + "probe:writable", b"1", px=60_000))
        except redis.RedisError:
            return False
