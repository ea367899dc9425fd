"""Rate limits shared by several API processes: the same `RateLimiter` port and the
same token buckets as `InProcessRateLimiter`, kept where every process sees them.

* `RedisRateLimiter`: in Redis (one Lua script per call, on Redis's clock), for
  API processes on several machines (the scale-out deployment, whose broker is
  Redis). When Redis does not answer, each process falls back to its own
  in-memory buckets (logged): the limits hold per process meanwhile, never
  switched off.
* `FileRateLimiter`: in a small SQLite file of the data directory, for the
  processes of `crossdoc serve --workers N` on one machine. Bucket state is not
  the record of anything: the file is written without fsync and may be deleted.

Without them, N processes would each allow the full limit: N times the sign-in
failures before a lockout.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auth.ratelimit import MAX_PERIOD_SECONDS, InProcessRateLimiter, RateDecision, RateRule

log = logging.getLogger(__name__)

#: Spend (or only check) `cost` units of the bucket KEYS[1]; Redis's own clock.
#: ARGV: capacity, refill per second, cost, 1 to spend / 0 to check.
#: Returns {allowed (1/0), seconds until `cost` units are there (a string:
#: Lua numbers become integers in replies)}.
_BUCKET_SCRIPT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local spend = ARGV[4] == '1'
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
local level = math.min(capacity, tokens + math.max(0, now - at) * rate)
local ttl = math.ceil(capacity / rate) + 1
if level >= cost then
  if spend then
    redis.call('HSET', KEYS[1], 'tokens', tostring(level - cost), 'at', tostring(now))
    redis.call('EXPIRE', KEYS[1], ttl)
  end
  return {1, '0'}
end
if spend then
  redis.call('HSET', KEYS[1], 'tokens', tostring(level), 'at', tostring(now))
  redis.call('EXPIRE', KEYS[1], ttl)
end
return {0, tostring((cost - level) / rate)}
"""

KEY_PREFIX = "crossdoc:rate:"


class RedisRateLimiter:
    """Token buckets in Redis, shared by every API process that uses the same Redis."""

    in_memory = False

    def __init__(self, url: str, *, timeout: float = 0.5, client: Any = None) -> None:
        import redis

        self._errors: tuple[type[BaseException], ...] = (redis.RedisError, OSError)
        self._redis = client or redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout
        )
        self._script = self._redis.register_script(_BUCKET_SCRIPT)
        self._fallback = InProcessRateLimiter()
        self._warned_at = 0.0

    def _call(self, key: str, rule: RateRule, cost: float, spend: bool) -> RateDecision:
        try:
            allowed, retry = self._script(
                keys=[KEY_PREFIX + key],
                args=[rule.capacity, repr(rule.per_second), repr(cost), "1" if spend else "0"],
            )
        except self._errors as err:
            now = time.monotonic()
            if now - self._warned_at > 60:
                self._warned_at = now
                log.warning(
                    "rate limits: Redis unavailable (%s); per-process buckets meanwhile", err
                )
            if spend:
                return self._fallback.consume(key, rule, cost)
            return self._fallback.check(key, rule)
        return RateDecision(bool(int(allowed)), float(retry))

    def consume(self, key: str, rule: RateRule, cost: float = 1.0) -> RateDecision:
        return self._call(key, rule, cost, True)

    def check(self, key: str, rule: RateRule) -> RateDecision:
        return self._call(key, rule, 1.0, False)

    def reset(self, key: str) -> None:
        self._fallback.reset(key)
        try:
            self._redis.delete(KEY_PREFIX + key)
        except self._errors as err:
            log.warning("rate limits: cannot reset %s in Redis: %s", key, err)


class FileRateLimiter:
    """Token buckets in an SQLite file shared by the processes of one machine.

    Each spend is one short write transaction (`BEGIN IMMEDIATE`: read, decide and
    write under the file's write lock, so two processes cannot both take the last
    unit); a check only reads. The wall clock is the processes' common clock (a
    clock that goes back only makes a bucket refill later).
    """

    in_memory = False

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=OFF")  # buckets are not the record of anything
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS buckets "
            "(key TEXT PRIMARY KEY, tokens REAL NOT NULL, at REAL NOT NULL) WITHOUT ROWID"
        )
        self._spends = 0

    def _level(self, key: str, rule: RateRule, now: float) -> float:
        row = self._db.execute("SELECT tokens, at FROM buckets WHERE key = ?", (key,)).fetchone()
        if row is None:
            return float(rule.capacity)
        tokens, at = row
        return float(min(float(rule.capacity), tokens + max(0.0, now - at) * rule.per_second))

    def consume(self, key: str, rule: RateRule, cost: float = 1.0) -> RateDecision:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                now = self._clock()
                level = self._level(key, rule, now)
                allowed = level >= cost
                self._db.execute(
                    "INSERT OR REPLACE INTO buckets (key, tokens, at) VALUES (?, ?, ?)",
                    (key, level - cost if allowed else level, now),
                )
                self._spends += 1
                if self._spends % 1000 == 0:
                    # A bucket left alone for the longest period is full: forget it.
                    self._db.execute(
                        "DELETE FROM buckets WHERE at < ?", (now - MAX_PERIOD_SECONDS,)
                    )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if allowed:
            return RateDecision(True)
        return RateDecision(False, (cost - level) / rule.per_second)

    def check(self, key: str, rule: RateRule) -> RateDecision:
        with self._lock:
            level = self._level(key, rule, self._clock())
        if level >= 1:
            return RateDecision(True)
        return RateDecision(False, (1 - level) / rule.per_second)

    def reset(self, key: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM buckets WHERE key = ?", (key,))

    def close(self) -> None:
        with self._lock:
            self._db.close()
