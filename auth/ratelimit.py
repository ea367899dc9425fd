"""Rate limits (token buckets) behind a small port.

`RateLimiter` is the port: the API asks it whether a key (e.g. `search:user:kim`)
may spend one unit under a `RateRule`. `InProcessRateLimiter` keeps the buckets
in this process's memory (the embedded default: one API process). A scale-out
deployment with several API processes needs shared buckets: a Redis adapter
implements the same two methods (one Lua script each) and is chosen in
`crossdoc.wiring.api`.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class RateRule:
    """`capacity` units at most, refilled at `capacity` per `period_seconds`."""

    name: str
    capacity: int
    period_seconds: float

    @property
    def per_second(self) -> float:
        return self.capacity / self.period_seconds


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after: float = 0.0  # seconds until one unit is available again

    @property
    def retry_after_header(self) -> str:
        """`Retry-After` as whole seconds (at least 1)."""
        return str(max(1, math.ceil(self.retry_after)))


class RateLimiter(Protocol):
    """Token buckets by key. Implementations are safe to call from many threads."""

    #: True when answers come from this process's memory, without I/O: the API
    #: then asks on its event loop rather than on a worker thread. A shared
    #: (network) limiter says False.
    in_memory: bool

    def consume(self, key: str, rule: RateRule, cost: float = 1.0) -> RateDecision:
        """Spend `cost` units from the key's bucket if it holds them; say when it will."""
        ...

    def check(self, key: str, rule: RateRule) -> RateDecision:
        """Whether one unit is available now, without spending it."""
        ...

    def reset(self, key: str) -> None:
        """Forget the key's bucket (it is full again): an administrator's unlock."""
        ...


MAX_PERIOD_SECONDS = 3600.0


class InProcessRateLimiter:
    """Token buckets in memory, bounded to `max_keys` buckets.

    A bucket left alone long enough is full again, the same as no bucket, so
    those are forgotten first when the table grows (rules' periods are at most an
    hour); beyond that the least recently used go.
    """

    in_memory = True

    def __init__(
        self, *, max_keys: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, at
        self._lock = threading.Lock()
        self._max_keys = max_keys
        self._clock = clock

    def _level(self, key: str, rule: RateRule, now: float) -> float:
        tokens, at = self._buckets.get(key, (float(rule.capacity), now))
        return min(float(rule.capacity), tokens + (now - at) * rule.per_second)

    def consume(self, key: str, rule: RateRule, cost: float = 1.0) -> RateDecision:
        with self._lock:
            now = self._clock()
            level = self._level(key, rule, now)
            if level >= cost:
                self._buckets[key] = (level - cost, now)
                self._buckets.move_to_end(key)
                self._trim(now)
                return RateDecision(True)
            self._buckets[key] = (level, now)
            self._buckets.move_to_end(key)
            return RateDecision(False, (cost - level) / rule.per_second)

    def check(self, key: str, rule: RateRule) -> RateDecision:
        with self._lock:
            level = self._level(key, rule, self._clock())
            if level >= 1:
                return RateDecision(True)
            return RateDecision(False, (1 - level) / rule.per_second)

    def reset(self, key: str) -> None:
        with self._lock:
            self._buckets.pop(key, None)

    def _trim(self, now: float) -> None:
        if len(self._buckets) <= self._max_keys:
            return
        for key in [k for k, (_, at) in self._buckets.items() if now - at > MAX_PERIOD_SECONDS]:
            del self._buckets[key]
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)


class NoRateLimiter:
    """Every request allowed (rate limits switched off in the settings)."""

    in_memory = True

    def consume(self, key: str, rule: RateRule, cost: float = 1.0) -> RateDecision:
        return RateDecision(True)

    def check(self, key: str, rule: RateRule) -> RateDecision:
        return RateDecision(True)

    def reset(self, key: str) -> None:
        pass


@dataclass(frozen=True)
class RateRules:
    """The limits the API applies; None switches one off."""

    sign_in_per_address: RateRule | None = None
    sign_in_failures_per_user: RateRule | None = None
    search_per_user: RateRule | None = None
    search_per_address: RateRule | None = None
    download_per_user: RateRule | None = None
    download_per_address: RateRule | None = None
