"""Our own readers (HWP 5, HWPX, OCR) in sandboxed children, for an extractor whose Tika is remote.

A Tika server parses most files, but it reads HWP 5 worse than our reader
(no distribution or password detection) and HWPX not at all (it lists the
zip's parts), and OCR must run our way (`OcrConfig`: Tesseract with our
limits and languages). These readers take untrusted bytes, so they run where
the embedded extractor runs them: in an extraction child process
(`indexer.extraction._child_main` started in its "local" mode, without Tika),
under the same time and memory limits, killed and replaced when it misbehaves.
"""

from __future__ import annotations

import queue
import threading
from pathlib import Path

from indexer.errors import ExtractionUnavailableError
from indexer.extraction._child_handle import ChildProcess, Reply
from indexer.extraction.native import child_command, child_environment
from indexer.extraction.ocr import REPLY_GRACE_SECONDS, OcrConfig

_MIB = 1024 * 1024


class LocalReaders:
    """A small pool of Tika-less extraction children: `hangul` and `ocr` requests.

    Thread-safe like `NativeTikaExtractor`: each request borrows one child.
    A request that ends other than "ok" (timeout, memory, crash) leaves the
    child killed (the next request starts a fresh one) and is returned as is,
    for the caller to classify.
    """

    def __init__(
        self,
        *,
        timeout_seconds: float,
        memory_limit_bytes: int,
        max_text_chars: int,
        ocr: OcrConfig | None,
        pool_size: int = 1,
        startup_timeout_seconds: float = 30.0,
        _test_hooks: bool = False,
    ) -> None:
        self._timeout = timeout_seconds
        self._startup_timeout = startup_timeout_seconds
        ocr_seconds = ocr.timeout_seconds + REPLY_GRACE_SECONDS if ocr is not None else 0.0
        self._queue_timeout = 2 * (timeout_seconds + ocr_seconds) + startup_timeout_seconds
        command = child_command(
            memory_limit_bytes=memory_limit_bytes,
            max_text_chars=max_text_chars,
            timeout_seconds=timeout_seconds,
            ocr=ocr,
            test_hooks=_test_hooks,
            local_only=True,
        )
        self._children = [
            ChildProcess(
                command,
                memory_limit_bytes=memory_limit_bytes,
                max_reply_bytes=max_text_chars * 6 + 8 * _MIB,
                max_extension_seconds=ocr_seconds,
                env=child_environment(),
            )
            for _ in range(pool_size)
        ]
        self._idle: queue.Queue[ChildProcess] = queue.Queue()
        for child in self._children:
            self._idle.put(child)
        self._lock = threading.Lock()
        self._closed = False

    def hangul(self, path: Path) -> Reply:
        """Read `path` if it is an HWP 5 or HWPX document (payload "hangul": false otherwise)."""
        return self._request({"op": "hangul", "path": str(path)})

    def ocr(self, path: Path, content_type: str) -> Reply:
        """OCR an image or image-only PDF of type `content_type` (payload "ocr" and "text")."""
        return self._request({"op": "ocr", "path": str(path), "kind": content_type})

    def ping(self) -> None:
        """Raise `ExtractionUnavailableError` unless a child starts and answers."""
        reply = self._request({"op": "ping"}, timeout=self._startup_timeout)
        if reply.kind != "ok" or not reply.payload.get("pong"):
            raise ExtractionUnavailableError(f"the extraction child did not answer ({reply.kind})")

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
        return [child.pid for child in self._children if child.alive and child.pid is not None]

    def _request(self, message: dict[str, str], timeout: float | None = None) -> Reply:
        if self._closed:
            raise ExtractionUnavailableError("the extractor is closed")
        try:
            child = self._idle.get(timeout=self._queue_timeout)
        except queue.Empty:
            raise ExtractionUnavailableError(
                f"no extraction child free within {self._queue_timeout:g} s"
            ) from None
        try:
            reply: Reply | None = None
            # A child that died while idle never saw the request: start a fresh
            # one and send it again, once.
            for _attempt in range(2):
                if not child.alive:
                    child.start(self._startup_timeout)
                reply = child.request(message, timeout or self._timeout)
                if reply.kind != "unsent":
                    break
            assert reply is not None
            if reply.kind == "unsent":
                raise ExtractionUnavailableError("the extraction child dies before taking work")
            if reply.kind != "ok":
                child.kill()
            return reply
        finally:
            with self._lock:
                closed = self._closed
                if not closed:
                    self._idle.put(child)
            if closed:
                child.stop()
