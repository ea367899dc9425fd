"""The `RateLimiter` port over every adapter: in-process, a shared file, Redis.

The shared adapters must also hold the limit across processes: two limiters over
the same store (two API processes) spend from the same buckets, so N processes
do not allow N times the limit. The Redis leg needs `CROSSDOC_TEST_REDIS_URL`
(`infra/dev/engines up redis`); it skips without it.

Redis keeps its own clock, so the rules here refill too slowly to matter during a
test (three an hour), and no test turns a clock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from auth.ratelimit import InProcessRateLimiter, RateLimiter, RateRule
from auth.ratelimit_shared import FileRateLimiter, RedisRateLimiter

RULE = RateRule("sign_in_failures", 3, 3600.0)
REDIS_ENV = "CROSSDOC_TEST_REDIS_URL"

#: A maker of limiters over one shared store (the in-process one shares nothing).
Maker = Callable[[], RateLimiter]


@pytest.fixture(params=["in_process", "file", "redis"])
def make(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Maker]:
    if request.param == "in_process":
        one = InProcessRateLimiter()
        yield lambda: one
    elif request.param == "file":
        made: list[FileRateLimiter] = []

        def file_limiter() -> RateLimiter:
            made.append(FileRateLimiter(tmp_path / "ratelimits.sqlite3"))
            return made[-1]

        yield file_limiter
        for limiter in made:
            limiter.close()
    else:
        url = os.environ.get(REDIS_ENV)
        if not url:
            pytest.skip(f"Redis leg: set {REDIS_ENV} (`infra/dev/engines up redis` prints it)")
        yield lambda: RedisRateLimiter(url)


def key() -> str:
    return f"user:test-{uuid.uuid4().hex}"


def test_burst_then_refused_with_retry_after(make: Maker) -> None:
    limiter, k = make(), key()
    assert all(limiter.consume(k, RULE).allowed for _ in range(3))
    refused = limiter.consume(k, RULE)
    assert not refused.allowed
    # One unit comes back every 1200 s.
    assert 1100 < refused.retry_after <= 1200
    assert refused.retry_after_header in {str(s) for s in range(1100, 1201)}


def test_check_spends_nothing_and_keys_are_separate(make: Maker) -> None:
    limiter, a, b = make(), key(), key()
    for _ in range(5):
        assert limiter.check(a, RULE).allowed
    assert all(limiter.consume(a, RULE).allowed for _ in range(3))
    assert not limiter.check(a, RULE).allowed
    assert limiter.check(b, RULE).allowed
    assert limiter.consume(b, RULE).allowed


def test_reset_fills_the_bucket(make: Maker) -> None:
    limiter, k = make(), key()
    for _ in range(3):
        limiter.consume(k, RULE)
    assert not limiter.check(k, RULE).allowed
    limiter.reset(k)
    assert all(limiter.consume(k, RULE).allowed for _ in range(3))


def test_two_limiters_over_one_store_share_the_limit(make: Maker) -> None:
    first, second, k = make(), make(), key()
    assert first.consume(k, RULE).allowed
    assert second.consume(k, RULE).allowed
    assert first.consume(k, RULE).allowed
    assert not second.consume(k, RULE).allowed  # not 3 each: 3 in all
    assert not first.check(k, RULE).allowed
    second.reset(k)  # an administrator's unlock, in any process, lifts it for all
    assert first.check(k, RULE).allowed


_SPEND = """
import sys
from pathlib import Path
from auth.ratelimit import RateRule
from auth.ratelimit_shared import FileRateLimiter
limiter = FileRateLimiter(Path(sys.argv[1]))
rule = RateRule("sign_in_failures", 3, 3600.0)
print(sum(limiter.consume(sys.argv[2], rule).allowed for _ in range(int(sys.argv[3]))))
"""


def test_the_file_is_shared_by_processes(tmp_path: Path) -> None:
    """Two processes spending from one file get three units between them, not six."""
    path, k = tmp_path / "ratelimits.sqlite3", key()

    def spend(n: int) -> int:
        out = subprocess.run(
            [sys.executable, "-c", _SPEND, str(path), k, str(n)],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return int(out.stdout)

    assert spend(2) == 2
    assert spend(3) == 1
    limiter = FileRateLimiter(path)
    try:
        assert not limiter.check(k, RULE).allowed
    finally:
        limiter.close()


def test_redis_down_falls_back_to_per_process_buckets() -> None:
    """An unreachable Redis neither switches the limits off nor fails the request."""
    limiter = RedisRateLimiter("redis://127.0.0.1:1/0", timeout=0.2)
    k = key()
    assert all(limiter.consume(k, RULE).allowed for _ in range(3))
    assert not limiter.consume(k, RULE).allowed
    assert not limiter.check(k, RULE).allowed
