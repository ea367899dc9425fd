"""The indexing process of `crossdoc serve --workers N` on the embedded task queue.

N API processes take requests; exactly one process (this one, started and
restarted by the supervisor) drains the outbox and writes the search index: the
embedded Tantivy index takes one writer. It is the in-process worker of the
embedded default, in a process of its own, woken by the API processes'
datagrams (`indexer.wake`) and polling the outbox besides. It builds no web
objects and never loads the web package.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from crossdoc.settings import Settings
from crossdoc.wiring.worker import build_worker
from indexer.wake import WakeListener

log = logging.getLogger(__name__)

#: Poll period of the outbox without a wake: a lost datagram costs at most this.
IDLE_SECONDS = 1.0


def run_indexer(settings: Settings) -> None:
    """Index until SIGTERM/SIGINT, then finish the batch in hand and return."""
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    services = build_worker(settings, idle_seconds=IDLE_SECONDS)
    try:
        listener = WakeListener(settings.data_dir, services.worker.notify)
        try:
            services.worker.start()
            log.info("indexing process ready (pid %d)", os.getpid())
            while not stop.wait(1.0):
                pass
            services.worker.request_stop()
        finally:
            listener.close()
    finally:
        services.close()  # stops the drainer, hands back its claims, closes the index
