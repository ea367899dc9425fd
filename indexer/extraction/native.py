"""Embedded text extraction: Apache Tika compiled to native code (`iscc-tika`), out of process.

Tika runs in long-lived child processes (`indexer.extraction._child_main`), never in
the caller's process: a hostile file (zip bomb, billion laughs, a parser that
loops or crashes) can at worst take down one child, which is killed and
replaced, and the file ends with a non-OK `Extraction`. Children are reused
across files because starting one costs a few hundred milliseconds, and are
recycled after a number of files so that slow leaks in the parser cannot pile
up.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib import metadata as importlib_metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from indexer.errors import ExtractionUnavailableError
from indexer.extraction._child_handle import ChildProcess, Reply
from indexer.extraction.base import Extraction, ExtractionStatus
from indexer.extraction.child_pool import ChildPool
from indexer.extraction.classify import (
    ParserReport,
    classify,
    classify_child_failure,
    clean_text,
)
from indexer.extraction.hangul import HANGUL_REVISION
from indexer.extraction.ocr import REPLY_GRACE_SECONDS, OcrConfig, probe_engine
from indexer.extraction.sniff import SNIFF_BYTES, sniff_content_type
from indexer.extraction.textdecode import decode_text

logger = logging.getLogger(__name__)

#: Bumped when our post-processing of Tika's output changes (part of `version`).
_ADAPTER_REVISION = 2
#: Files with these names and plain-text bytes are decoded without Tika.
PLAIN_TEXT_SUFFIXES = frozenset({"", ".txt", ".text", ".log"})
PLAIN_TEXT_MAX_BYTES = 8 * 1024 * 1024

# The package root, put on the child's sys.path: the child imports our modules
# whether or not the project is installed.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from indexer.extraction._child_main import main; main(sys.argv[2:])"
)
#: The extraction child's PATH: a directory that does not exist.
_NO_PROGRAMS = "/nonexistent/crossdoc-extraction-child"
_MIB = 1024 * 1024
_MIN_MEMORY_LIMIT = 256 * _MIB


def _tika_version() -> str:
    try:
        return importlib_metadata.version("iscc-tika")
    except importlib_metadata.PackageNotFoundError:
        return "unknown"


class NativeTikaExtractor:
    """`TextExtractor` running native Tika in a small pool of child processes.

    Thread-safe: each call borrows one child for the duration of one file, so
    up to `pool_size` files are parsed at once and further callers wait for a
    free child (at most `queue_timeout_seconds`).

    Limits, per file:

    - `timeout_seconds`: wall-clock time; the child is killed and replaced,
      the file ends LIMIT_EXCEEDED "timeout: …".
    - `memory_limit_bytes`: the child's `RLIMIT_DATA` (Java then raises
      OutOfMemoryError) and, as a backstop, the parent kills the child when
      its resident memory (VmRSS, ~130 MiB at rest) exceeds it: LIMIT_EXCEEDED
      "memory: …". 0 disables both.
    - `max_text_chars`: longer text is cut and marked `truncated`.
    - `ocr`: images and image-only PDFs are OCR'd with Tesseract in the same
      child, under the limits of `OcrConfig` (its own time budget, on top of
      `timeout_seconds`); None or disabled: no OCR.

    A child that dies (segfault, kernel OOM killer, native panic) is replaced;
    the file ends PARSE_ERROR or LIMIT_EXCEEDED with the reason.
    """

    def __init__(
        self,
        *,
        timeout_seconds: float = 60.0,
        memory_limit_bytes: int = 1024 * _MIB,
        max_text_chars: int = 1_000_000,
        pool_size: int = 1,
        recycle_after: int = 1000,
        startup_timeout_seconds: float = 30.0,
        queue_timeout_seconds: float | None = None,
        ocr: OcrConfig | None = None,
        _test_hooks: bool = False,
    ) -> None:
        """Configure the pool; children start lazily, on first use.

        `queue_timeout_seconds` bounds how long a caller waits for a free
        child (default: twice `timeout_seconds` plus the start-up time);
        `_test_hooks` (tests only) lets specially named files make the child
        hang, allocate or crash.
        """
        if timeout_seconds <= 0 or startup_timeout_seconds <= 0:
            raise ValueError("timeouts must be positive")
        if memory_limit_bytes < 0 or max_text_chars < 1 or pool_size < 1 or recycle_after < 1:
            raise ValueError("invalid extractor limits")
        if 0 < memory_limit_bytes < _MIN_MEMORY_LIMIT:
            # The child needs ~130 MiB at rest (Python and the native image).
            raise ValueError(f"memory_limit_bytes below {_MIN_MEMORY_LIMIT // _MIB} MiB")
        ocr = ocr.resolved() if ocr is not None and ocr.enabled else None
        # Cached text depends on OCR: its switch, engine and languages are in the version.
        ocr_tag = "off"
        if ocr is not None:
            probe = probe_engine(ocr)
            if not probe.available:
                logger.warning("OCR unavailable, images will have no text: %s", probe.reason)
            ocr_tag = f"{probe.tag}.{ocr.languages}"
        self.version = (
            f"iscc-tika-{_tika_version()}+crossdoc.{_ADAPTER_REVISION}"
            f".hangul{HANGUL_REVISION}+ocr.{ocr_tag}"
        )
        self.ocr = ocr
        self._timeout = timeout_seconds
        self._memory_limit = memory_limit_bytes
        self._max_text_chars = max_text_chars
        self._recycle_after = recycle_after
        ocr_seconds = ocr.timeout_seconds + REPLY_GRACE_SECONDS if ocr is not None else 0.0
        queue_timeout = (
            queue_timeout_seconds
            if queue_timeout_seconds is not None
            else 2 * (timeout_seconds + ocr_seconds) + startup_timeout_seconds
        )
        command = child_command(
            memory_limit_bytes=memory_limit_bytes,
            max_text_chars=max_text_chars,
            timeout_seconds=timeout_seconds,
            ocr=ocr,
            test_hooks=_test_hooks,
        )
        self._test_hooks = _test_hooks
        self._pool = ChildPool(
            command,
            size=pool_size,
            memory_limit_bytes=memory_limit_bytes,
            max_text_chars=max_text_chars,
            max_extension_seconds=ocr_seconds,
            env=child_environment(),
            startup_timeout_seconds=startup_timeout_seconds,
            queue_timeout_seconds=queue_timeout,
        )

    # -- TextExtractor -----------------------------------------------------

    def extract(self, path: Path, *, filename: str = "", declared_type: str = "") -> Extraction:
        """Extract text from the local file `path` (see `TextExtractor.extract`).

        `filename` is used in log lines only; `declared_type` is ignored (the
        detected type wins). Raises `FileNotFoundError` if `path` does not
        exist (the caller's bug, not a bad document) and
        `ExtractionUnavailableError` if no child can be started or none frees
        up in time.
        """
        target = Path(path).resolve(strict=True)
        label = filename or target.name
        plain = self._plain_text(target, filename)
        if plain is not None:
            return plain
        with self._pool.borrowed() as child:
            assert child is not None
            return self._extract_with(child, target, label)

    def _plain_text(self, target: Path, filename: str) -> Extraction | None:
        """Plain text files, decoded here without Tika (None: not one, use Tika).

        Native Tika costs ~25 ms a file whatever the file (it probes for the OCR
        program on every call), which caps small-document ingest.
        """
        if self._test_hooks:
            return None
        return plain_text_extraction(target, filename, max_text_chars=self._max_text_chars)

    def ping(self) -> None:
        """Raise `ExtractionUnavailableError` unless a child starts and answers.

        When every child is busy parsing, the extractor is evidently working
        and `ping` returns at once.
        """
        with self._pool.borrowed(wait_seconds=1.0) as child:
            if child is None:
                return
            reply = self._pool.send(child, {"op": "ping"}, self._pool.startup_timeout)
            if reply.kind != "ok" or not reply.payload.get("pong"):
                child.kill()
                raise ExtractionUnavailableError(
                    f"the extraction child did not answer ({reply.kind})"
                )

    def close(self) -> None:
        """Stop the children; a child busy with a file stops when that file is done."""
        self._pool.close()

    def __enter__(self) -> NativeTikaExtractor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- observability -----------------------------------------------------

    @property
    def children_started(self) -> int:
        """How many child processes were started so far (first starts, restarts, recycles)."""
        return self._pool.starts

    @property
    def startup_seconds(self) -> list[float]:
        """Start-up time of each child started so far, in order."""
        return list(self._pool.startup_seconds)

    def child_pids(self) -> list[int]:
        """Process ids of the running children (for tests and diagnostics)."""
        return self._pool.child_pids()

    # -- internals ---------------------------------------------------------

    def _extract_with(self, child: ChildProcess, target: Path, label: str) -> Extraction:
        reply = self._pool.send(child, {"path": str(target)}, self._timeout)
        if reply.kind != "ok":
            child.kill()
            memory = f"the parser used more than {self._memory_limit // _MIB} MiB"
            extraction = child_failure(reply, _sniff(target), self._timeout, memory)
            logger.warning(
                "extraction child %s on %r: %s; stderr tail %r",
                reply.kind,
                label,
                extraction.detail,
                reply.messages[-300:],
            )
            return extraction

        report = _report_from(reply.payload, reply.messages)
        if report is None:
            child.kill()
            return Extraction(
                status=ExtractionStatus.PARSE_ERROR,
                content_type=_sniff(target),
                detail="the extraction child sent a malformed reply",
            )
        extraction = classify(report, max_text_chars=self._max_text_chars)
        child.jobs += 1
        # After an OutOfMemoryError or a native error the parser's state is
        # unknown: start the next file on a fresh child. Otherwise recycle
        # every `recycle_after` files to shed slow leaks.
        if (
            extraction.status is ExtractionStatus.LIMIT_EXCEEDED
            or "JniError" in report.error
            or child.jobs >= self._recycle_after
        ):
            child.stop()
        return extraction


def child_failure(reply: Reply, content_type: str, timeout: float, memory: str) -> Extraction:
    """The `Extraction` of a file during which its child was killed or died.

    `memory`: what went over its limit, said for a child killed for memory.
    """
    if reply.kind == "timeout":
        reason = f"timeout: no result within {timeout:g} s"
    elif reply.kind == "memory":
        reason = f"memory: {memory}"
    elif reply.kind == "garbled":
        return Extraction(
            status=ExtractionStatus.PARSE_ERROR,
            content_type=content_type,
            detail="the extraction child sent an unreadable reply",
        )
    else:
        reason = ""
    return classify_child_failure(
        reason=reason,
        returncode=reply.returncode,
        parser_messages=reply.messages,
        content_type=content_type,
    )


def child_command(
    *,
    memory_limit_bytes: int,
    max_text_chars: int,
    timeout_seconds: float,
    ocr: OcrConfig | None,
    test_hooks: bool = False,
    local_only: bool = False,
) -> list[str]:
    """The command line of an extraction child (`indexer.extraction._child_main`).

    `local_only`: a child without Tika, for our own readers (HWP 5, HWPX, OCR)
    beside a Tika server.
    """
    return [
        sys.executable,
        "-P",  # do not put the working directory on the child's sys.path
        "-c",
        _BOOTSTRAP,
        str(_PACKAGE_ROOT),
        str(memory_limit_bytes),
        str(max_text_chars),
        repr(timeout_seconds),
        "1" if test_hooks else "0",
        ocr.to_json() if ocr is not None else "",
        "local" if local_only else "tika",
    ]


def child_environment() -> dict[str, str]:
    """The extraction child's environment: ours, without a search path.

    Native Tika probes for `tesseract` on the search path several times per
    file (~60 ms); without a search path it skips its own OCR, and ours calls
    the programs by absolute path.
    """
    return {**os.environ, "PATH": _NO_PROGRAMS}


def plain_text_extraction(target: Path, filename: str, *, max_text_chars: int) -> Extraction | None:
    """A plain text file decoded by our rules, without any parser (None: not one).

    Only files named like text (`PLAIN_TEXT_SUFFIXES`), of at most
    `PLAIN_TEXT_MAX_BYTES`, whose bytes look like text and whose encoding our
    rules are sure of (`decode_text`: UTF-8, UTF-16, Korean CP949…): no
    third-party code runs on them, nothing that can loop. Shared by every
    extractor, so a Korean text file reads the same whichever one runs.
    """
    suffix = Path(filename or target.name).suffix.lower()
    if suffix not in PLAIN_TEXT_SUFFIXES:
        return None
    size = target.stat().st_size
    if size == 0 or size > PLAIN_TEXT_MAX_BYTES:
        return None
    data = target.read_bytes()
    if sniff_content_type(data[:SNIFF_BYTES]) != "text/plain":
        return None
    decoded = decode_text(data)
    if decoded is None:
        return None  # not sure of the encoding: let Tika guess
    text = clean_text(decoded.text)
    content_type = f"text/plain; charset={decoded.charset}"
    if not text.strip():
        return Extraction(ExtractionStatus.EMPTY, content_type=content_type)
    truncated = len(text) > max_text_chars
    return Extraction(
        ExtractionStatus.OK,
        text=text[:max_text_chars],
        content_type=content_type,
        truncated=truncated,
    )


def _sniff(target: Path) -> str:
    """Content type from the magic bytes, for files whose parse never finished."""
    try:
        with open(target, "rb") as handle:
            return sniff_content_type(handle.read(SNIFF_BYTES))
    except OSError:
        return "application/octet-stream"


def _report_from(payload: dict[str, Any], messages: str) -> ParserReport | None:
    """Build a `ParserReport` from the child's JSON reply, None if it is malformed."""
    try:
        raw_metadata = payload.get("metadata") or {}
        metadata = {
            str(key): [str(value) for value in values]
            for key, values in raw_metadata.items()
            if isinstance(values, list)
        }
        ocr = payload.get("ocr") or {}
        if not isinstance(ocr, dict):
            return None
        return ParserReport(
            size=int(payload.get("size", -1)),
            text=str(payload.get("text", "")),
            metadata=metadata,
            error=str(payload.get("error", "")),
            sniffed_type=str(payload.get("sniffed_type", "application/octet-stream")),
            text_charset=str(payload.get("text_charset", "")),
            source_truncated=bool(payload.get("source_truncated", False)),
            hwp3=bool(payload.get("hwp3", False)),
            hwp5_in_ole2=bool(payload.get("hwp5_in_ole2", False)),
            zip_entries=int(payload.get("zip_entries", 0)),
            zip_encrypted_entries=int(payload.get("zip_encrypted_entries", 0)),
            parser_messages=messages,
            ocr_status=str(ocr.get("status", "")),
            ocr_detail=str(ocr.get("detail", "")),
            ocr_used=bool(ocr.get("used", False)),
        )
    except (TypeError, ValueError, AttributeError):
        return None
