"""Waking the indexing process from other processes on the same machine.

With `crossdoc serve --workers N` on the embedded engines, one process indexes
and N API processes commit outbox rows. `WakeDispatcher` is the API processes'
`Dispatcher`: after a commit it sends one datagram to the indexing process's
`WakeListener`, which wakes its outbox drainer. A lost datagram costs latency
only: the drainer also looks for due rows every idle period (the outbox is the
record of work).

The socket is in Linux's abstract namespace, named after the data directory:
no file to clean up after a crash, no path-length limit, and one per data dir.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def wake_address(data_dir: Path) -> str:
    """The abstract socket name of the indexer of `data_dir`."""
    digest = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:32]
    return f"\0crossdoc-indexer-{digest}"


class WakeDispatcher:
    """`Dispatcher` of an API process whose indexing runs in another process."""

    def __init__(self, data_dir: Path) -> None:
        self._address = wake_address(data_dir)
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._socket is None:
                self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._socket.setblocking(False)

    def notify(self, document_ids: Sequence[str]) -> None:
        del document_ids  # the drainer claims due rows oldest first
        with self._lock:
            if self._socket is None:
                return
            # Not listening (restarting) or its queue is full (a wake is already
            # pending): its next pass finds the rows anyway.
            with contextlib.suppress(OSError):
                self._socket.sendto(b"w", self._address)

    def ping(self) -> None:
        """Raise unless the indexing process listens (for /readyz, as the embedded
        default reports its in-process worker)."""
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            probe.connect(self._address)
        except OSError as err:
            raise RuntimeError(f"the indexing process is not running: {err}") from err
        finally:
            probe.close()

    def close(self) -> None:
        with self._lock:
            sock, self._socket = self._socket, None
        if sock is not None:
            sock.close()


class WakeListener:
    """The indexing process's end: calls `wake()` for each datagram received."""

    def __init__(self, data_dir: Path, wake: Callable[[], None]) -> None:
        self._wake = wake
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._socket.bind(wake_address(data_dir))
        except OSError:
            self._socket.close()
            raise
        self._socket.settimeout(0.5)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="crossdoc-wake", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._socket.recv(64)
            except TimeoutError:
                continue
            except OSError:
                return
            self._wake()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._socket.close()
