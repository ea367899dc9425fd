"""The indexing worker's composition root: the shared adapters and the outbox drainer.

It builds no web objects (no tokens, passwords or rate limits) and imports nothing
of the web package: a worker process never loads `search_api`
(`tests/test_architecture.py` checks both).
"""

from __future__ import annotations

from dataclasses import dataclass

from crossdoc.settings import Settings
from crossdoc.wiring.core import Core, build_core
from indexer.worker import InProcessWorker


@dataclass
class WorkerServices(Core):
    """What an indexing process works with: `Core` and the worker that drains the outbox."""

    worker: InProcessWorker

    def close(self) -> None:
        self.worker.close()
        super().close()


#: How long the worker sleeps when the outbox is empty (a notification wakes it sooner).
IDLE_SECONDS = 2.0


def in_process_worker(core: Core, *, idle_seconds: float = IDLE_SECONDS) -> InProcessWorker:
    """The outbox drainer over `core`'s catalog and pipeline, sized by settings (not started)."""
    settings = core.settings
    return InProcessWorker(
        core.catalog,
        core.pipeline,
        batch_size=settings.worker_batch_size,
        batch_bytes=settings.worker_batch_bytes,
        idle_seconds=idle_seconds,
    )


def build_worker(settings: Settings, *, idle_seconds: float = IDLE_SECONDS) -> WorkerServices:
    """Build the worker's adapters and its (not yet started) outbox drainer.

    Raises `ConfigurationError` as `build_core` does.
    """
    core = build_core(settings)
    return WorkerServices(
        **core.parts(),
        worker=in_process_worker(core, idle_seconds=idle_seconds),
    )
