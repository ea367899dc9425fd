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

from pathlib import Path

from indexer.errors import ExtractionUnavailableError
from indexer.extraction._child_handle import Reply
from indexer.extraction.child_pool import ChildPool
from indexer.extraction.native import child_command, child_environment
from indexer.extraction.ocr import REPLY_GRACE_SECONDS, OcrConfig


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
        ocr_seconds = ocr.timeout_seconds + REPLY_GRACE_SECONDS if ocr is not None else 0.0
        command = child_command(
            memory_limit_bytes=memory_limit_bytes,
            max_text_chars=max_text_chars,
            timeout_seconds=timeout_seconds,
            ocr=ocr,
            test_hooks=_test_hooks,
            local_only=True,
        )
        self._pool = ChildPool(
            command,
            size=pool_size,
            memory_limit_bytes=memory_limit_bytes,
            max_text_chars=max_text_chars,
            max_extension_seconds=ocr_seconds,
            env=child_environment(),
            startup_timeout_seconds=startup_timeout_seconds,
            queue_timeout_seconds=2 * (timeout_seconds + ocr_seconds) + startup_timeout_seconds,
        )

    def hangul(self, path: Path) -> Reply:
        """Read `path` if it is an HWP 5 or HWPX document (payload "hangul": false otherwise)."""
        return self._request({"op": "hangul", "path": str(path)})

    def ocr(self, path: Path, content_type: str) -> Reply:
        """OCR an image or image-only PDF of type `content_type` (payload "ocr" and "text")."""
        return self._request({"op": "ocr", "path": str(path), "kind": content_type})

    def ping(self) -> None:
        """Raise `ExtractionUnavailableError` unless a child starts and answers."""
        reply = self._request({"op": "ping"}, timeout=self._pool.startup_timeout)
        if reply.kind != "ok" or not reply.payload.get("pong"):
            raise ExtractionUnavailableError(f"the extraction child did not answer ({reply.kind})")

    def close(self) -> None:
        """Stop the children; a child busy with a file stops when that file is done."""
        self._pool.close()

    def child_pids(self) -> list[int]:
        """Process ids of the running children (for tests and diagnostics)."""
        return self._pool.child_pids()

    def _request(self, message: dict[str, str], timeout: float | None = None) -> Reply:
        with self._pool.borrowed() as child:
            assert child is not None
            reply = self._pool.send(child, message, timeout or self._timeout)
            if reply.kind != "ok":
                child.kill()
            return reply
