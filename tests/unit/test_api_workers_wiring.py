"""What the API's root builds for one process (the embedded default, unchanged) and
for an API process of `crossdoc serve --workers N`."""

from __future__ import annotations

from pathlib import Path

from auth.ratelimit import InProcessRateLimiter, NoRateLimiter
from auth.ratelimit_shared import FileRateLimiter, RedisRateLimiter
from crossdoc.settings import Settings
from crossdoc.wiring.api import build_rate_limiter


def test_one_process_keeps_its_buckets_in_memory(tmp_path: Path) -> None:
    assert Settings().api_workers == 1
    assert isinstance(build_rate_limiter(Settings(data_dir=tmp_path)), InProcessRateLimiter)
    assert isinstance(
        build_rate_limiter(Settings(data_dir=tmp_path, rate_limits=False)), NoRateLimiter
    )


def test_several_processes_share_a_file_or_redis(tmp_path: Path) -> None:
    shared = build_rate_limiter(Settings(data_dir=tmp_path, api_workers=2))
    assert isinstance(shared, FileRateLimiter)
    shared.close()
    assert (tmp_path / "ratelimits.sqlite3").exists()
    # With a Redis broker, API processes may run on several machines: Redis.
    assert isinstance(
        build_rate_limiter(Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:1/0")),
        RedisRateLimiter,
    )
