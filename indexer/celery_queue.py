"""Celery on Redis: the task queue of the scale-out deployment (`CROSSDOC_BROKER_URL`).

The one module that imports Celery (which has no type stubs): a narrow typed
wrapper, `CeleryQueue`, over an application built from arguments (never from the
environment, never at import time), and the API side's `CeleryDispatcher`.

The outbox in the catalog stays the record of work. A task message only makes a
worker drain it sooner: it carries the ids of the documents just committed (for
the logs), and its body claims the due rows, oldest first, as the in-process
worker does (`indexer.worker.InProcessWorker.drain_due`), so tasks that arrive
while a batch is indexed find their documents done or take them with the next
batch. Every worker also drains whatever is due every few seconds on its own
(the reconciler), so a message lost with a Redis restart loses no work.

Reliability: `acks_late` with `task_reject_on_worker_lost` (a message whose
worker died is delivered again), one message prefetched per process, and a
visibility timeout well above the longest task (`TASK_BUDGET_SECONDS`), so
Redis gives an unacknowledged message to another worker only once its first
worker is gone.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from celery import signals as celery_signals

log = logging.getLogger(__name__)

#: The task's name: the API sends by name and never imports the worker's code.
INDEX_TASK = "crossdoc.index_documents"
QUEUE = "crossdoc.index"
#: A task drains batch after batch for at most this long; what is left is
#: drained by the next message or the reconciler.
TASK_BUDGET_SECONDS = 300.0
#: Redis hands an unacknowledged message to another worker after this long:
#: far above the budget, so a slow task is never run twice at once.
VISIBILITY_TIMEOUT_SECONDS = 3600
#: How long a connection attempt to Redis may take (publishing, /readyz).
CONNECT_TIMEOUT_SECONDS = 2.0
#: Ids carried by one message at most (notifications that come together are merged).
MAX_IDS_PER_MESSAGE = 1000


class BrokerError(Exception):
    """The broker (Redis) does not answer."""


@dataclass(frozen=True)
class WorkerOptions:
    """How `crossdoc worker` runs its Celery worker."""

    concurrency: int = 1
    loglevel: str = "INFO"


class CeleryQueue:
    """A Celery application on Redis, configured for Crossdoc's indexing queue."""

    def __init__(self, broker_url: str) -> None:
        if not broker_url.startswith(("redis://", "rediss://")):
            raise ValueError("the broker URL must be redis:// or rediss:// (Celery on Redis)")
        self.broker_url = broker_url
        self._app: Any = Celery("crossdoc", broker=broker_url, set_as_current=False)
        self._app.conf.update(
            task_acks_late=True,
            task_reject_on_worker_lost=True,
            task_ignore_result=True,
            task_default_queue=QUEUE,
            task_serializer="json",
            accept_content=["json"],
            worker_prefetch_multiplier=1,
            worker_hijack_root_logger=False,
            worker_redirect_stdouts=False,
            # Redis down (at start or later) is waited out, never a reason to exit:
            # meanwhile the reconciler keeps indexing from the outbox.
            broker_connection_retry_on_startup=True,
            broker_connection_max_retries=None,
            broker_connection_timeout=CONNECT_TIMEOUT_SECONDS,
            broker_transport_options={
                "visibility_timeout": VISIBILITY_TIMEOUT_SECONDS,
                "socket_connect_timeout": CONNECT_TIMEOUT_SECONDS,
                "socket_timeout": 30,
            },
        )

    # -- the API side ----------------------------------------------------------------

    def send_index(self, document_ids: Sequence[str]) -> None:
        """Publish one index task for these documents; raises `BrokerError`."""
        try:
            self._app.send_task(
                INDEX_TASK,
                args=[list(document_ids)],
                queue=QUEUE,
                retry=True,
                retry_policy={
                    "max_retries": 2,
                    "interval_start": 0.2,
                    "interval_step": 0.5,
                    "interval_max": 1.0,
                },
            )
        except Exception as err:
            raise BrokerError(f"cannot publish to {self._safe_url()}: {err}") from err

    def ping(self) -> None:
        """Raise `BrokerError` unless Redis answers."""
        client = redis.Redis.from_url(
            self.broker_url,
            socket_timeout=CONNECT_TIMEOUT_SECONDS,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        )
        try:
            client.ping()
        except redis.RedisError as err:
            raise BrokerError(f"the broker does not answer ({self._safe_url()}): {err}") from err
        finally:
            client.close()

    def close(self) -> None:
        self._app.close()

    def _safe_url(self) -> str:
        """The broker URL without its password (for messages and logs)."""
        scheme, _, rest = self.broker_url.partition("://")
        return f"{scheme}://{rest.rpartition('@')[2]}"

    # -- the worker side -------------------------------------------------------------

    def register_index_task(self, drain: Callable[[list[str]], int]) -> None:
        """Make `drain(document_ids)` the body of the index task in this process."""

        def index_documents(document_ids: list[str]) -> int:
            log.debug("index task for %d documents", len(document_ids))
            return drain(document_ids)

        self._app.task(name=INDEX_TASK, acks_late=True, ignore_result=True)(index_documents)

    def run_worker(
        self,
        options: WorkerOptions,
        *,
        process_started: Callable[[], None],
        process_stopping: Callable[[], None],
        shutting_down: Callable[[], None],
    ) -> int:
        """Run a Celery worker in the foreground until SIGTERM/SIGINT (a warm shutdown:
        the running task ends first); returns its exit code (0 after such a stop).

        With concurrency 1 the tasks run in this process (the `solo` pool), so
        `process_started` is called here, before the worker starts; above 1 each
        pool child calls it after the fork (nothing built before a fork is shared).
        `process_stopping` is called where `process_started` was, at the end;
        `shutting_down` from the signal handler, to make running tasks end soon.
        """
        solo = options.concurrency == 1

        def on_child_init(**_: object) -> None:
            process_started()

        def on_child_shutdown(**_: object) -> None:
            process_stopping()

        signalled = False

        def on_shutting_down(**_: object) -> None:
            nonlocal signalled
            signalled = True
            shutting_down()

        celery_signals.worker_shutting_down.connect(on_shutting_down, weak=False)
        if not solo:
            celery_signals.worker_process_init.connect(on_child_init, weak=False)
            celery_signals.worker_process_shutdown.connect(on_child_shutdown, weak=False)
        else:
            process_started()
        try:
            worker = self._app.Worker(
                pool="solo" if solo else "prefork",
                concurrency=options.concurrency,
                loglevel=options.loglevel,
                queues=[QUEUE],
                hostname=f"crossdoc-{os.getpid()}@{socket.gethostname()}",
                without_mingle=True,
                without_gossip=True,
                quiet=True,
            )
            worker.start()
            # Celery exits 1 after Ctrl+C; a stop asked for by a signal is a clean stop.
            return 0 if signalled else int(worker.exitcode or 0)
        finally:
            if solo:
                process_stopping()
            celery_signals.worker_shutting_down.disconnect(on_shutting_down)
            if not solo:
                celery_signals.worker_process_init.disconnect(on_child_init)
                celery_signals.worker_process_shutdown.disconnect(on_child_shutdown)


class CeleryDispatcher:
    """The API's dispatcher on the scale-out deployment: notifications become index
    tasks on Redis, published from a background thread.

    `notify` only queues the ids in memory (it is called on the request path, after
    the commit) and never raises; the thread merges what came together into one
    message. A broker outage is logged and the ids dropped: the rows are due in the
    outbox and every worker's reconciler drains them.
    """

    def __init__(self, queue: CeleryQueue, *, max_pending: int = 100_000) -> None:
        self.queue = queue
        self.max_pending = max_pending
        self._pending: list[str] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._dropped = 0

    def start(self) -> None:
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._thread = threading.Thread(
                target=self._publish_loop, name="crossdoc-celery-publisher", daemon=True
            )
            self._thread.start()

    def notify(self, document_ids: Sequence[str]) -> None:
        with self._cond:
            room = self.max_pending - len(self._pending)
            if room < len(document_ids):
                self._dropped += len(document_ids) - max(room, 0)
            self._pending.extend(document_ids[: max(room, 0)])
            self._cond.notify()

    def ping(self) -> None:
        self.queue.ping()

    def close(self, timeout: float = 5.0) -> None:
        """Publish what is pending (for at most `timeout` seconds), then stop."""
        with self._cond:
            thread, self._thread = self._thread, None
            self._stopping = True
            self._cond.notify()
        if thread is not None:
            thread.join(timeout)
        self.queue.close()

    def _take(self) -> list[str] | None:
        """The next ids to publish; None once stopping with nothing left."""
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if self._dropped:
                log.warning(
                    "%d index notifications dropped (too many pending); the worker's "
                    "reconciler indexes their documents",
                    self._dropped,
                )
                self._dropped = 0
            if not self._pending:
                return None
            ids = list(dict.fromkeys(self._pending[:MAX_IDS_PER_MESSAGE]))
            del self._pending[:MAX_IDS_PER_MESSAGE]
            return ids

    def _publish_loop(self) -> None:
        while (ids := self._take()) is not None:
            try:
                self.queue.send_index(ids)
            except BrokerError as err:
                log.warning(
                    "index task for %d documents not sent; the worker's reconciler indexes "
                    "them: %s",
                    len(ids),
                    err,
                )
