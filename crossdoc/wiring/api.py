"""The API process's composition root (used by `search_api.app.create_app(settings)`).

On top of the shared adapters (`crossdoc.wiring.core`) it builds what only the API
needs: tokens and their signing keys, password hashing, rate limits, and the
dispatcher that tells the indexer about new outbox rows (on the embedded default,
the in-process worker this process runs).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from auth.keys import FileKeyRing, KeyRingError
from auth.passwords import Passwords
from auth.ratelimit import (
    InProcessRateLimiter,
    NoRateLimiter,
    RateLimiter,
    RateRule,
    RateRules,
)
from auth.tokens import TokenService
from crossdoc.settings import Settings
from crossdoc.wiring.core import ConfigurationError, Core, build_core, check_settings
from crossdoc.wiring.replication import ReplicationJobs, build_jobs
from crossdoc.wiring.worker import check_celery_settings, in_process_worker, rebuild_requests
from indexer.dispatch import Dispatcher
from storage.group_commit import UploadCommits


@dataclass
class Services(Core):
    """Everything the API process works with, built once at start-up."""

    tokens: TokenService
    passwords: Passwords
    #: Started and stopped with the application (`create_app`'s lifespan).
    dispatcher: Dispatcher
    limiter: RateLimiter = field(default_factory=NoRateLimiter)
    rate_rules: RateRules = field(default_factory=RateRules)
    #: Uploads that arrive together commit together (see storage.group_commit).
    upload_commits: UploadCommits = field(init=False)
    #: The replicator and background scrub, started with the application (this
    #: process runs them when it indexes: no broker).
    jobs: ReplicationJobs = field(default_factory=ReplicationJobs)
    #: This process extracts text (it runs the indexer): /readyz checks its extractor.
    #: An API process whose indexing runs in another process (`--workers N`, or
    #: `crossdoc worker` with a broker) never extracts: nothing starts its
    #: extractor's child (~100 MB each), and its readiness does not depend on it.
    extracts: bool = True

    def __post_init__(self) -> None:
        self.upload_commits = UploadCommits(self.catalog)

    def close(self) -> None:
        self.jobs.stop()
        self.dispatcher.close()
        super().close()


def _secret_file(path: Path) -> str:
    """A secret generated once and kept (mode 0600) in the data dir."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(secret, encoding="utf-8")
    tmp.chmod(0o600)
    tmp.replace(path)
    return secret


def build_tokens(settings: Settings) -> TokenService:
    secret = (
        settings.jwt_secret.get_secret_value()
        if settings.jwt_secret is not None
        else _secret_file(settings.data_dir / "jwt-secret")
    )
    access_ttl = timedelta(minutes=settings.access_token_minutes)
    refresh_ttl = timedelta(hours=settings.refresh_token_hours)
    try:
        keys = FileKeyRing(settings.keys_file, secret, max(access_ttl, refresh_ttl))
    except KeyRingError as err:
        raise ConfigurationError(str(err)) from err
    return TokenService(keys, access_ttl=access_ttl, refresh_ttl=refresh_ttl)


def build_rate_rules(settings: Settings) -> RateRules:
    def per_minute(name: str, capacity: int) -> RateRule | None:
        return RateRule(name, capacity, 60.0) if capacity else None

    failures = settings.rate_sign_in_failures_per_user
    return RateRules(
        sign_in_per_address=per_minute("sign_in", settings.rate_sign_in_per_address),
        sign_in_failures_per_user=(
            RateRule(
                "sign_in_failures", failures, settings.rate_sign_in_failure_window_minutes * 60.0
            )
            if failures
            else None
        ),
        search_per_user=per_minute("search", settings.rate_search_per_user),
        search_per_address=per_minute("search", settings.rate_search_per_address),
        download_per_user=per_minute("download", settings.rate_download_per_user),
        download_per_address=per_minute("download", settings.rate_download_per_address),
    )


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """The buckets the API processes share.

    One API process (the embedded default): in its memory. Several
    (`CROSSDOC_API_WORKERS` above 1, or a broker, where API processes may run on
    several machines): in Redis when the broker is Redis, else in a file of the
    data dir that the processes of this machine share, so N processes do not
    allow N times the limits.
    """
    if not settings.rate_limits:
        return NoRateLimiter()
    broker = settings.broker_url or ""
    if broker.startswith(("redis://", "rediss://")):
        from auth.ratelimit_shared import RedisRateLimiter

        return RedisRateLimiter(broker)
    if settings.api_workers > 1:
        from auth.ratelimit_shared import FileRateLimiter

        return FileRateLimiter(settings.data_dir / "ratelimits.sqlite3")
    return InProcessRateLimiter()


def build_dispatcher(core: Core, *, indexer: bool = True) -> Dispatcher:
    """The in-process worker (embedded default), or Celery tasks on Redis with a
    broker; without `indexer`, a wake-up for the indexing process of
    `crossdoc serve --workers N` (`crossdoc.wiring.indexer_process`)."""
    if core.settings.broker_url:
        from indexer.celery_queue import CeleryDispatcher, CeleryQueue

        return CeleryDispatcher(CeleryQueue(core.settings.broker_url))
    if not indexer:
        from indexer.wake import WakeDispatcher

        return WakeDispatcher(core.settings.data_dir)
    # The process holding the embedded index's writer takes `crossdoc reindex`'s requests.
    return in_process_worker(core, companions=rebuild_requests(core))


def build_services(
    settings: Settings, *, passwords: Passwords | None = None, indexer: bool = True
) -> Services:
    """Build and start every adapter the API process needs (the catalog is migrated).

    The dispatcher, not started (the application's lifespan starts it), is the
    in-process worker, or with `CROSSDOC_BROKER_URL` the Celery one: then this
    process indexes nothing, `crossdoc worker` processes do. Without `indexer`
    (an API process of `crossdoc serve --workers N`) it indexes nothing either:
    it wakes the one indexing process. Raises `ConfigurationError`.
    """
    check_settings(settings)  # before anything is built or written
    if settings.broker_url:
        check_celery_settings(settings)
    tokens = build_tokens(settings)
    core = build_core(settings)
    return Services(
        **core.parts(),
        tokens=tokens,
        passwords=passwords or Passwords(),
        dispatcher=build_dispatcher(core, indexer=indexer),
        limiter=build_rate_limiter(settings),
        rate_rules=build_rate_rules(settings),
        jobs=(
            ReplicationJobs()
            if settings.broker_url  # `crossdoc worker` processes run them
            else build_jobs(settings, core.catalog, core.store, core.replica_store)
        ),
        extracts=indexer and not settings.broker_url,
    )
