"""The full scale-out stack for the API tests: OpenSearch, Tika server, Celery on Redis
with a real `crossdoc worker` process, PostgreSQL and moto's S3 server.

`tests/api/conftest.py` runs every API test module twice, on the embedded default
and on this stack (`stack` = "full"). On the full leg `tests.conftest.start_server`
asks `FullStack.start` for the server: the API runs in the test process (its
services stay inspectable) with a Celery dispatcher, and a `crossdoc worker`
process indexes what it accepts.

Isolation is per data directory (in practice per test module, plus the few tests
that start a server of their own): a PostgreSQL database, an index alias, a bucket
and a Redis database of its own, so the engines are shared and nothing leaks from
one module into the next. A server started again on the same data directory (a
restart) finds the same catalog, index and bucket. `close` drops them all.

The engines come from `infra/dev/engines up` (their `CROSSDOC_TEST_…` settings);
without them the full leg skips, naming what is missing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
from minio import Minio
from sqlalchemy.engine import make_url

from tests.pg_databases import ThrowawayDatabases

#: The settings of each engine (printed by `infra/dev/engines up`).
ENGINE_ENV = {
    "search": "CROSSDOC_TEST_ELASTICSEARCH_URL",
    "tika": "CROSSDOC_TEST_TIKA_URL",
    "redis": "CROSSDOC_TEST_REDIS_URL",
    "postgres": "CROSSDOC_TEST_DATABASE_URL",
    "s3": "CROSSDOC_TEST_MOTO_S3_ENDPOINT",
}
S3_KEYS = ("CROSSDOC_TEST_MOTO_S3_ACCESS_KEY", "CROSSDOC_TEST_MOTO_S3_SECRET_KEY")
#: Settings a test passes that choose engines itself: such a module runs on the
#: embedded leg only (it builds the stack it needs).
ENGINE_SETTINGS = frozenset(
    {"search_url", "tika_url", "broker_url", "database_url", "storage_url", "s3_endpoint"}
)
#: Redis databases the full leg uses, one per data directory at a time (database 0
#: is the Celery tests' own, which they empty).
REDIS_DATABASES = range(1, 16)


def missing_engines() -> list[str]:
    """The settings the full stack needs that are not set (empty: it can run)."""
    names = [*ENGINE_ENV.values(), *S3_KEYS]
    return [name for name in names if not os.environ.get(name)]


@dataclass
class _Resources:
    """What one data directory owns on the shared engines."""

    database: str
    index: str
    bucket: str
    redis_db: int


class FullStack:
    """Settings and clean-up of the full stack for the servers of one test module."""

    def __init__(self, template: str | None = None) -> None:
        """`template`: a migrated database each new catalog is copied from (see
        `migrated_template`), which spares every module the migrations."""
        self.template = template
        env = os.environ
        self.search_url = env[ENGINE_ENV["search"]]
        self.tika_url = env[ENGINE_ENV["tika"]]
        self.redis_url = env[ENGINE_ENV["redis"]]
        self.postgres_url = make_url(env[ENGINE_ENV["postgres"]])
        self.s3_endpoint = env[ENGINE_ENV["s3"]]
        self.s3_keys = (env[S3_KEYS[0]], env[S3_KEYS[1]])
        self.s3_region = env.get("CROSSDOC_TEST_MOTO_S3_REGION") or "us-east-1"
        self._databases = ThrowawayDatabases(self.postgres_url, "crossdoc_api")
        self._by_dir: dict[Path, _Resources] = {}
        self._free_redis = list(REDIS_DATABASES)

    def settings_for(self, data_dir: Path) -> dict[str, Any]:
        """The engine settings of the server on `data_dir` (its own catalog, index, bucket)."""
        key = data_dir.resolve()
        res = self._by_dir.get(key)
        if res is None:
            if not self._free_redis:
                raise RuntimeError("more servers at once than Redis databases for the full leg")
            tag = uuid.uuid4().hex[:12]
            res = _Resources(
                database=str(make_url(self._databases.new(template=self.template)).database),
                index=f"crossdoc-api-{tag}",
                bucket=f"crossdoc-api-{tag}",
                redis_db=self._free_redis.pop(0),
            )
            self._redis(res.redis_db).flushdb()
            self._by_dir[key] = res
        return {
            "database_url": self.postgres_url.set(database=res.database).render_as_string(
                hide_password=False
            ),
            "search_url": self.search_url,
            "search_index": res.index,
            "tika_url": self.tika_url,
            "broker_url": self._redis_url(res.redis_db),
            "storage_url": f"s3://{res.bucket}",
            "s3_endpoint": self.s3_endpoint,
            "s3_access_key": self.s3_keys[0],
            "s3_secret_key": self.s3_keys[1],
            "s3_secure": False,
            "s3_region": self.s3_region,
        }

    def adopt(self, data_dir: Path, *, database: str, index: str, bucket: str) -> None:
        """Let the server on `data_dir` run on these (a restore's targets, say): its own
        from then on, dropped by `close` with the others."""
        if not self._free_redis:
            raise RuntimeError("more servers at once than Redis databases for the full leg")
        res = _Resources(database, index, bucket, self._free_redis.pop(0))
        self._redis(res.redis_db).flushdb()
        self._by_dir[data_dir.resolve()] = res

    def close(self) -> None:
        """Drop every database, index and bucket of this module's servers."""
        from tests.conftest import drop_search_index

        errors: list[str] = []
        for res in self._by_dir.values():
            for what, drop in (
                ("database", lambda r=res: self._drop_database(r.database)),
                ("index", lambda r=res: drop_search_index(self.search_url, r.index)),
                ("bucket", lambda r=res: self._drop_bucket(r.bucket)),
                ("redis", lambda r=res: self._redis(r.redis_db).flushdb()),
            ):
                try:
                    drop()
                except Exception as err:  # clean-up goes on; the failure is reported
                    errors.append(f"{what}: {err}")
        self._by_dir.clear()
        self._free_redis = list(REDIS_DATABASES)
        if errors:
            raise AssertionError(f"full stack clean-up failed: {errors}")

    # -- engines -----------------------------------------------------------------

    def _redis_url(self, db: int) -> str:
        return urlsplit(self.redis_url)._replace(path=f"/{db}").geturl()

    def _redis(self, db: int) -> redis.Redis:
        return redis.Redis.from_url(self._redis_url(db), socket_timeout=10)

    def _drop_database(self, name: str) -> None:
        self._databases.drop(name)

    def minio(self) -> Minio:
        return Minio(
            self.s3_endpoint,
            access_key=self.s3_keys[0],
            secret_key=self.s3_keys[1],
            secure=False,
            region=self.s3_region,
        )

    def _drop_bucket(self, bucket: str) -> None:
        client = self.minio()
        if not client.bucket_exists(bucket):
            return
        for obj in client.list_objects(bucket, recursive=True, include_version=True):
            if obj.object_name is not None:
                client.remove_object(bucket, obj.object_name, version_id=obj.version_id)
        client.remove_bucket(bucket)


#: Settings `tests.api.worker_process.WorkerProcess` sets itself.
_SET_BY_WORKER_PROCESS = frozenset(
    {"data_dir", "demo", "admin_password", "broker_url", "worker_reconcile_seconds"}
)


def worker_env(settings: dict[str, Any]) -> dict[str, str]:
    """`settings` (Settings field names) as the environment of a `crossdoc worker`."""
    env: dict[str, str] = {}
    for name, value in settings.items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        env[f"CROSSDOC_{name.upper()}"] = str(value)
    return env


def migrated_template() -> Iterator[str]:
    """A PostgreSQL database migrated to the head, as a template for the full leg's
    catalogs (copying it takes a fraction of running the migrations); dropped after."""
    with ThrowawayDatabases(os.environ[ENGINE_ENV["postgres"]], "crossdoc_api_template") as dbs:
        yield str(make_url(dbs.new(migrated=True)).database)


def require_full_stack() -> FullStack:
    """The full stack, or a skip naming the settings it lacks."""
    missing = missing_engines()
    if missing:
        pytest.skip(
            "full stack leg: set "
            + ", ".join(missing)
            + " (`infra/dev/engines up` starts every engine and prints them)"
        )
    return FullStack()


def stack_servers(
    stack: FullStack,
    data_dir: Path,
    overrides: dict[str, Any],
    *,
    engines: dict[str, Any] | None = None,
) -> Iterator[Any]:
    """The API on `data_dir` over the full stack with its `crossdoc worker` (see module doc).

    `engines` replaces engine settings (a fault trial points a client at a relay it
    can cut). A test that brings its own broker (`broker_url` in `overrides`) runs its
    own workers: none is started, and `Server.engine_env` is the environment they need.
    """
    from tests.api.worker_process import WorkerProcess
    from tests.conftest import start_embedded_server

    settings = {**stack.settings_for(data_dir), **(engines or {}), **overrides}
    # What a process beside the API needs to work on the same engines (a worker, a
    # command); not the settings WorkerProcess sets itself.
    env = worker_env({k: v for k, v in settings.items() if k not in _SET_BY_WORKER_PROCESS})
    data_dir.mkdir(parents=True, exist_ok=True)
    own_workers = "broker_url" in overrides
    worker = None
    if not own_workers and stack.template:
        # Started first: it comes up while the API does (the catalog is migrated
        # already, so neither migrates it under the other).
        worker = WorkerProcess(
            data_dir, settings["broker_url"], reconcile_seconds=1.0, extra_env=env, ready_line=""
        )
    try:
        running = start_embedded_server(data_dir, **settings)
        server = next(running)
    except BaseException:
        if worker is not None:
            worker.kill()
        raise
    server.engine_env = env
    try:
        if not own_workers:
            if worker is None:
                worker = WorkerProcess(
                    data_dir, settings["broker_url"], reconcile_seconds=1.0, extra_env=env
                )
            worker.wait_ready()
            server.worker = worker
        yield server
    finally:
        try:
            if worker is not None:
                # SIGKILL: its catalog, index and bucket are dropped next, and its
                # children die with it (clean stops are tested in test_celery_worker.py).
                worker.kill()
        finally:
            running.close()
