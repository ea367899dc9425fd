"""The in-process token buckets, on a clock the test turns."""

from __future__ import annotations

import threading

import pytest

from auth.ratelimit import InProcessRateLimiter, RateRule


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


RULE = RateRule("search", 6, 60.0)  # six a minute: one every ten seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def test_burst_then_refill(clock: Clock) -> None:
    limiter = InProcessRateLimiter(clock=clock)
    assert all(limiter.consume("u", RULE).allowed for _ in range(6))
    refused = limiter.consume("u", RULE)
    assert not refused.allowed
    assert refused.retry_after == pytest.approx(10.0)
    assert refused.retry_after_header == "10"
    clock.now += 4
    assert limiter.consume("u", RULE).retry_after == pytest.approx(6.0)
    clock.now += 6
    assert limiter.consume("u", RULE).allowed
    assert not limiter.consume("u", RULE).allowed
    clock.now += 3600
    assert sum(limiter.consume("u", RULE).allowed for _ in range(10)) == 6  # capped at capacity


def test_keys_are_separate_and_check_spends_nothing(clock: Clock) -> None:
    limiter = InProcessRateLimiter(clock=clock)
    for _ in range(6):
        assert limiter.check("a", RULE).allowed
    assert all(limiter.consume("a", RULE).allowed for _ in range(6))
    assert not limiter.check("a", RULE).allowed
    assert limiter.check("b", RULE).allowed
    assert limiter.consume("b", RULE).allowed


def test_the_table_stays_bounded(clock: Clock) -> None:
    limiter = InProcessRateLimiter(max_keys=100, clock=clock)
    for i in range(1000):
        limiter.consume(f"address:{i}", RULE)
    assert len(limiter._buckets) <= 100
    # The most recent bucket is remembered: one unit of six already spent.
    assert sum(limiter.consume("address:999", RULE).allowed for _ in range(6)) == 5


def test_threads_never_overspend() -> None:
    limiter = InProcessRateLimiter()
    rule = RateRule("download", 100, 3600.0)
    allowed: list[bool] = []

    def hammer() -> None:
        for _ in range(100):
            allowed.append(limiter.consume("u", rule).allowed)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(allowed) == 100


def test_reset_forgets_a_bucket_so_it_is_full_again() -> None:
    limiter = InProcessRateLimiter(clock=lambda: 0.0)
    rule = RateRule("sign_in_failures", 2, 900)
    limiter.consume("k", rule)
    limiter.consume("k", rule)
    limiter.consume("other", rule)
    assert not limiter.check("k", rule).allowed
    limiter.reset("k")
    limiter.reset("never-seen")
    assert limiter.consume("k", rule).allowed and limiter.consume("k", rule).allowed
    # Other keys keep their level (one unit left).
    assert limiter.consume("other", rule).allowed and not limiter.consume("other", rule).allowed
