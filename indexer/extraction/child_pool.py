"""A pool of sandboxed extraction children, lent one request at a time.

Shared by the embedded extractor (`native.NativeTikaExtractor`: Tika and our
readers in each child) and the Tika server extractor's local readers
(`local_readers.LocalReaders`: our readers only). Children start lazily; a
child that died while idle is started again and the request resent, once.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from indexer.errors import ExtractionUnavailableError
from indexer.extraction._child_handle import ChildProcess, Reply

_MIB = 1024 * 1024


class ChildPool:
    """Thread-safe: each caller borrows one child for its request."""

    def __init__(
        self,
        command: list[str],
        *,
        size: int,
        memory_limit_bytes: int,
        max_text_chars: int,
        max_extension_seconds: float,
        env: dict[str, str],
        startup_timeout_seconds: float,
        queue_timeout_seconds: float,
    ) -> None:
        self.startup_timeout = startup_timeout_seconds
        self.queue_timeout = queue_timeout_seconds
        self.children = [
            ChildProcess(
                command,
                memory_limit_bytes=memory_limit_bytes,
                # JSON escapes control characters as 6 bytes; leave room for metadata.
                max_reply_bytes=max_text_chars * 6 + 8 * _MIB,
                max_extension_seconds=max_extension_seconds,
                env=env,
            )
            for _ in range(size)
        ]
        self._idle: queue.Queue[ChildProcess] = queue.Queue()
        for child in self.children:
            self._idle.put(child)
        self._lock = threading.Lock()
        self._closed = False
        #: Children started so far (first starts, restarts, recycles), and how long each took.
        self.starts = 0
        self.startup_seconds: list[float] = []

    @contextmanager
    def borrowed(self, wait_seconds: float | None = None) -> Iterator[ChildProcess | None]:
        """A child for one request, back in the pool afterwards.

        With `wait_seconds`, yields None when none frees up in time; without it,
        waits up to the queue timeout and raises `ExtractionUnavailableError`.
        """
        if self._closed:
            raise ExtractionUnavailableError("the extractor is closed")
        try:
            child = self._idle.get(timeout=wait_seconds or self.queue_timeout)
        except queue.Empty:
            if wait_seconds is not None:
                yield None
                return
            raise ExtractionUnavailableError(
                f"no extraction child free within {self.queue_timeout:g} s"
            ) from None
        try:
            yield child
        finally:
            self._release(child)

    def send(self, child: ChildProcess, message: dict[str, str], timeout: float) -> Reply:
        """Start `child` if needed and send `message`; a child that died while idle
        never saw it: start a fresh one and send it again, once."""
        reply: Reply | None = None
        for _attempt in range(2):
            self.ensure_started(child)
            reply = child.request(message, timeout)
            if reply.kind != "unsent":
                break
        assert reply is not None
        if reply.kind == "unsent":
            raise ExtractionUnavailableError("the extraction child dies before taking work")
        return reply

    def ensure_started(self, child: ChildProcess) -> None:
        if child.alive:
            return
        child.start(self.startup_timeout)
        with self._lock:
            self.starts += 1
            self.startup_seconds.append(child.startup_seconds)

    def close(self) -> None:
        """Stop the children; a child busy with a file stops when that file is done."""
        with self._lock:
            self._closed = True
        while True:
            try:
                child = self._idle.get_nowait()
            except queue.Empty:
                return
            child.stop()

    def child_pids(self) -> list[int]:
        """Process ids of the running children (for tests and diagnostics)."""
        return [child.pid for child in self.children if child.alive and child.pid is not None]

    def _release(self, child: ChildProcess) -> None:
        # Under the lock, so that `close` either drains this child or we see
        # that it ran: no child is left running after `close`.
        with self._lock:
            closed = self._closed
            if not closed:
                self._idle.put(child)
        if closed:
            child.stop()
