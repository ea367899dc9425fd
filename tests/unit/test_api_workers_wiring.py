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


def test_an_api_process_that_does_not_index_starts_no_extraction_child(tmp_path: Path) -> None:
    # `--workers N`: only the indexing process extracts. An API process's /readyz
    # used to ping its own extractor, which starts an extraction child (~100 MB,
    # one per API process) that nothing ever uses.
    import json

    from crossdoc.wiring.api import build_services
    from indexer.extraction.native import NativeTikaExtractor
    from indexer.wake import WakeListener
    from search_api.routers.health import readyz
    from tests.conftest import fast_passwords

    settings = Settings(data_dir=tmp_path, demo=False, analysis_process=False)
    services = build_services(settings, passwords=fast_passwords(), indexer=False)
    listener = WakeListener(tmp_path, lambda: None)  # the indexing process's end
    try:
        assert not services.extracts
        extractor = services.extractor
        assert isinstance(extractor, NativeTikaExtractor)
        answer = readyz(services)
        assert extractor.children_started == 0
        assert extractor.child_pids() == []
        assert answer.status_code == 200, answer.body
        assert json.loads(answer.body)["checks"] == [
            "catalog",
            "object_store",
            "search_index",
            "worker",
        ]
    finally:
        listener.close()
        services.close()


def test_the_process_that_indexes_still_checks_its_extractor(tmp_path: Path) -> None:
    from crossdoc.wiring.api import build_services
    from tests.conftest import fast_passwords

    services = build_services(Settings(data_dir=tmp_path, demo=False), passwords=fast_passwords())
    try:
        assert services.extracts  # the embedded default: /readyz pings its extractor
    finally:
        services.close()
