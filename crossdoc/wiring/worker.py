"""The indexing worker's composition root: the shared adapters and the outbox drainer,
and `crossdoc worker` (Celery on Redis) over them.

It builds no web objects (no tokens, passwords or rate limits) and imports nothing
of the web package: a worker process never loads `search_api`
(`tests/test_architecture.py` checks both).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from crossdoc.settings import Settings
from crossdoc.wiring.core import ConfigurationError, Core, build_core
from crossdoc.wiring.replication import ReplicationJobs, build_jobs
from indexer.rebuild import RebuildableIndex, RebuildReport, RebuildRequests, rebuild_index
from indexer.worker import Companion, InProcessWorker
from services.trash import TrashService

if TYPE_CHECKING:
    from indexer.celery_queue import CeleryQueue

log = logging.getLogger(__name__)


@dataclass
class WorkerServices(Core):
    """What an indexing process works with: `Core` and the worker that drains the outbox."""

    worker: InProcessWorker

    def close(self) -> None:
        self.worker.close()
        super().close()


#: How long the worker sleeps when the outbox is empty (a notification wakes it sooner).
IDLE_SECONDS = 2.0


def in_process_worker(
    core: Core, *, idle_seconds: float = IDLE_SECONDS, companions: Sequence[Companion] = ()
) -> InProcessWorker:
    """The outbox drainer over `core`'s catalog and pipeline, sized by settings (not started)."""
    settings = core.settings
    worker = InProcessWorker(
        core.catalog,
        core.pipeline,
        batch_size=settings.worker_batch_size,
        batch_bytes=settings.worker_batch_bytes,
        idle_seconds=idle_seconds,
        companions=companions,
    )
    # The trash's purge, with the worker's other periodic chores; it wakes the
    # worker itself so the purged documents leave the index at once.
    trash = TrashService(core.catalog, trash_retention(settings), worker.notify)
    worker.chores = (trash.purge_due,)
    return worker


def trash_retention(settings: Settings) -> timedelta:
    """How long a deleted document stays restorable in the trash."""
    return timedelta(days=settings.trash_retention_days)


def rebuild_requests(core: Core) -> list[Companion]:
    """On the embedded index, the process holding its writer (the server) takes
    `crossdoc reindex`'s rebuild requests: a thread started with its worker."""
    index = core.index
    if core.settings.search_url != "embedded" or not isinstance(index, RebuildableIndex):
        return []

    def run(progress: Callable[[int, int], None]) -> RebuildReport:
        return rebuild_index(core.catalog, core.pipeline, index, progress=progress)

    return [RebuildRequests(core.settings.index_dir, run)]


def build_worker(settings: Settings, *, idle_seconds: float = IDLE_SECONDS) -> WorkerServices:
    """Build the worker's adapters and its (not yet started) outbox drainer.

    Raises `ConfigurationError` as `build_core` does.
    """
    core = build_core(settings)
    return WorkerServices(
        **core.parts(),
        # The process holding the embedded index's writer (the indexing process
        # of `serve --workers N`) takes `crossdoc reindex`'s rebuild requests.
        worker=in_process_worker(
            core, idle_seconds=idle_seconds, companions=rebuild_requests(core)
        ),
    )


class CeleryWorker:
    """`crossdoc worker`: a Celery worker on Redis whose tasks drain the outbox.

    Each process that runs tasks (this one with concurrency 1, else each pool
    child, after the fork) builds its own `WorkerServices` and starts their
    outbox drainer with the reconcile interval as its idle time: it heartbeats,
    takes back dead workers' claims, does the periodic chores and drains what is
    due even when no message comes. The index task drains through the same
    drainer (`InProcessWorker.drain_due`), so the two never run a batch at once.
    """

    def __init__(self, settings: Settings) -> None:
        # Celery is loaded by this process only (not by the embedded default's).
        from indexer.celery_queue import CeleryQueue

        check_celery_settings(settings)
        assert settings.broker_url is not None
        self.settings = settings
        self.queue: CeleryQueue = CeleryQueue(settings.broker_url)
        self.services: WorkerServices | None = None
        self.jobs: ReplicationJobs | None = None
        self.queue.register_index_task(self._drain)

    def run(self) -> int:
        """Run in the foreground until SIGTERM/SIGINT; returns the exit code."""
        from indexer.celery_queue import WorkerOptions

        try:
            return self.queue.run_worker(
                WorkerOptions(concurrency=self.settings.worker_concurrency),
                process_started=self._start_process,
                process_stopping=self._stop_process,
                shutting_down=self._shutting_down,
            )
        finally:
            self.queue.close()

    def _start_process(self) -> None:
        self.services = build_worker(
            self.settings, idle_seconds=self.settings.worker_reconcile_seconds
        )
        self.services.worker.start()
        # Replication and scrubbing run beside the indexing, on threads of their own.
        services = self.services
        self.jobs = build_jobs(
            self.settings, services.catalog, services.store, services.replica_store
        )
        self.jobs.start()
        log.info(
            "indexing worker ready (pid %d): tasks from the broker, and the outbox drained "
            "every %.0f s",
            os.getpid(),
            self.settings.worker_reconcile_seconds,
        )

    def _stop_process(self) -> None:
        jobs, self.jobs = self.jobs, None
        if jobs is not None:
            jobs.stop()
        services, self.services = self.services, None
        if services is not None:
            services.close()  # stops the drainer and hands back this process's claims

    def _shutting_down(self) -> None:
        if self.services is not None:
            self.services.worker.request_stop()

    def _drain(self, document_ids: list[str]) -> int:
        del document_ids  # the due rows are claimed oldest first (see indexer.celery_queue)
        if self.services is None:
            raise RuntimeError("the indexing worker is not started in this process")
        from indexer.celery_queue import TASK_BUDGET_SECONDS

        return self.services.worker.drain_due(TASK_BUDGET_SECONDS)


def check_celery_settings(settings: Settings) -> None:
    """Refuse a Celery worker configuration that cannot run (`ConfigurationError`)."""
    if not settings.broker_url:
        raise ConfigurationError("CROSSDOC_BROKER_URL is not set")
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        raise ConfigurationError("CROSSDOC_BROKER_URL must be redis:// or rediss:// (Redis)")
    if settings.worker_concurrency > 1 and settings.search_url == "embedded":
        # Tantivy admits one writer per index directory: a second process would
        # hold its batches back until the first one stops.
        raise ConfigurationError(
            "CROSSDOC_WORKER_CONCURRENCY above 1 needs a shared search index "
            "(CROSSDOC_SEARCH_URL): the embedded index takes one writing process"
        )
