"""The extraction child process: runs Tika on one file at a time for `NativeTikaExtractor`.

Started by the parent as `python -P -c <bootstrap> <package root> <settings…>`.
It talks JSON lines: the parent writes `{"path": …}` or `{"op": "ping"}` on
stdin; the child answers one line on its protocol channel (the original
stdout). It imports only the standard library, `iscc_tika` and the pure
helper modules, so that starting it stays cheap.

Everything that reads the untrusted bytes happens here, under the limits the
parent configured: `RLIMIT_DATA` (the native image's allocator fails, Java
raises OutOfMemoryError) and an alarm that ends the process by itself if the
parent ever fails to (the parent normally kills it first, on its own clock).
"""

from __future__ import annotations

import json
import math
import os
import resource
import signal
import sys
import time
import zipfile
from collections.abc import Callable
from typing import IO, Any

from indexer.extraction.classify import ZIP_TYPES, base_type, bound_metadata, clean_text
from indexer.extraction.hangul.reply import child_reply as hangul_reply
from indexer.extraction.ocr import REPLY_GRACE_SECONDS, OcrConfig, OcrRunner, wants_ocr
from indexer.extraction.sniff import (
    SNIFF_BYTES,
    is_hwp3,
    ole2_is_hwp5,
    sniff_content_type,
)
from indexer.extraction.textdecode import decode_korean_legacy, decode_text_with_fallback
from indexer.lifeline import die_with_parent

_TEXT_PARSER = "org.apache.tika.parser.csv.TextAndCSVParser"
_HTML_PARSER = "org.apache.tika.parser.html.JSoupParser"
#: Largest HTML file we re-decode ourselves (the whole file is read into memory).
_MAX_HTML_REDECODE_BYTES = 32 * 1024 * 1024
#: Prefix of an OLE2 file searched for the HWP 5 signature.
_HWP5_SCAN_BYTES = 1024 * 1024
#: Worst-case UTF-8/UTF-32 bytes per character, to size the prefix of a text file.
_MAX_BYTES_PER_CHAR = 4
_UTF8_BOM = b"\xef\xbb\xbf"
#: signal.alarm takes a C unsigned int; a week is "no deadline" for our purpose.
_MAX_ALARM_SECONDS = 7 * 24 * 3600

# Test hooks, honoured only when the parent starts the child in test mode:
# a file whose name starts with one of these makes the child misbehave.
_HOOK_PREFIX = "__crossdoc_hook_"


class _Settings:
    """Command-line settings from the parent (the arguments after the package root)."""

    def __init__(self, argv: list[str]) -> None:
        self.memory_limit_bytes = int(argv[0])
        self.max_text_chars = int(argv[1])
        self.timeout_seconds = float(argv[2])
        self.test_hooks = argv[3] == "1"
        #: OCR settings as JSON (absent: no OCR).
        self.ocr = OcrConfig.from_json(argv[4]) if len(argv) > 4 and argv[4] else None
        #: "local": no Tika here (a Tika server parses); only our Hangul reader and OCR.
        self.local_only = len(argv) > 5 and argv[5] == "local"


def _protocol_channel() -> IO[bytes]:
    """Take stdout for the protocol and send fd 1 to stderr.

    The native parser (Java code) may print to stdout; that must never corrupt
    the protocol, so the protocol gets a private duplicate of the pipe.
    """
    channel = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return channel


def _limit_memory(limit: int) -> None:
    if limit > 0:
        # RLIMIT_DATA, not RLIMIT_AS: the GraalVM native image reserves a large
        # address space up front and does not start under RLIMIT_AS.
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _send(channel: IO[bytes], message: dict[str, Any]) -> None:
    # ensure_ascii=False keeps Korean at 3 bytes a character; "replace" turns
    # any lone surrogate from the parser into "?" instead of failing.
    line = json.dumps(message, ensure_ascii=False, separators=(",", ":"))
    channel.write(line.encode("utf-8", "replace") + b"\n")


def _read_prefix(path: str, limit: int) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(limit)


class _Worker:
    def __init__(
        self, settings: _Settings, extend_deadline: Callable[[float], None] = lambda _s: None
    ) -> None:
        self.settings = settings
        self.ocr: OcrRunner | None = None
        if settings.ocr is not None and settings.ocr.enabled:
            self.ocr = OcrRunner(
                settings.ocr, max_text_chars=settings.max_text_chars, on_start=extend_deadline
            )
        if settings.local_only:
            return
        import iscc_tika  # imported after the memory limit is set

        # The setters return a new Extractor (builder style). One character more
        # than we keep, so that the parent can tell a text was cut.
        self.extractor = iscc_tika.Extractor().set_extract_string_max_length(
            settings.max_text_chars + 1
        )
        # The first parse initialises Tika's classes (~150 ms): do it now, not
        # on the first document's clock.
        self.extractor.extract_bytes_to_string(bytearray(b"warm-up"))

    def extract(self, path: str) -> dict[str, Any]:
        size = os.stat(path).st_size
        head = _read_prefix(path, SNIFF_BYTES)
        reply: dict[str, Any] = {
            "size": size,
            "sniffed_type": sniff_content_type(head),
            "hwp3": is_hwp3(head),
        }
        if size == 0:
            return reply  # Tika refuses empty input; there is nothing to parse
        # HWP 5 and HWPX (detected by content) are read by our own code, not Tika.
        hangul = hangul_reply(path, head, max_chars=self.settings.max_text_chars)
        if hangul is not None:
            reply.update(hangul)
            return reply
        try:
            text, metadata = self._parse(path)
        except MemoryError:
            reply["error"] = "MemoryError"
            return reply
        except Exception as err:  # noqa: BLE001 - every parser failure becomes a status
            reply["error"] = str(err)[:4000] or type(err).__name__
            return reply
        except BaseException as err:
            # pyo3 raises PanicException (a BaseException) when the Rust side panics.
            if isinstance(err, KeyboardInterrupt | SystemExit):
                raise
            reply["error"] = f"{type(err).__name__}: {err}"[:4000]
            return reply

        kept = bound_metadata(metadata)
        reply["metadata"] = kept
        # Binary junk (NULs from an archive of zeros) would only bloat the reply.
        reply["text"] = clean_text(text)
        reply["source_truncated"] = len(text) > self.settings.max_text_chars
        tika_type = (kept.get("Content-Type") or [""])[0]
        parsers = kept.get("X-TIKA:Parsed-By") or [""]
        kind = base_type(tika_type)
        if parsers[-1] == _TEXT_PARSER:
            self._decode_text_file(path, size, text, _charset_of(tika_type), reply)
        elif parsers[-1] == _HTML_PARSER:
            self._redecode_korean_html(path, size, tika_type, reply)
        elif kind == "application/x-tika-msoffice":
            reply["hwp5_in_ole2"] = ole2_is_hwp5(_read_prefix(path, _HWP5_SCAN_BYTES))
        elif kind in ZIP_TYPES and _mentions_encryption(kept):
            reply["zip_entries"], reply["zip_encrypted_entries"] = _count_zip_entries(path)
        if self.ocr is not None and wants_ocr(kind, reply["text"], metadata):
            self._add_ocr(path, kind, reply)
        return reply

    def hangul(self, path: str) -> dict[str, Any]:
        """Our own reading of an HWP 5 or HWPX file ("hangul": false for any other file)."""
        head = _read_prefix(path, SNIFF_BYTES)
        found = (
            None
            if is_hwp3(head)
            else hangul_reply(path, head, max_chars=self.settings.max_text_chars)
        )
        if found is None:
            return {"hangul": False}
        return {"hangul": True, "size": os.stat(path).st_size, **found}

    def ocr_only(self, path: str, kind: str) -> dict[str, Any]:
        """OCR of an image or image-only PDF a Tika server has parsed ({}: OCR is off)."""
        if self.ocr is None:
            return {}
        outcome = self.ocr.run(path, kind)
        return {"ocr": outcome.to_reply(), "text": clean_text(outcome.text)}

    def _add_ocr(self, path: str, kind: str, reply: dict[str, Any]) -> None:
        """OCR an image or image-only PDF; its text replaces Tika's (near) nothing."""
        outcome = self.ocr.run(path, kind) if self.ocr is not None else None
        if outcome is None:
            return
        reply["ocr"] = outcome.to_reply()
        if outcome.status == "ok" and len(outcome.text.strip()) > len(reply["text"].strip()):
            reply["text"] = clean_text(outcome.text)
            reply["source_truncated"] = outcome.truncated
            reply["ocr"]["used"] = True

    def _parse(self, path: str) -> tuple[str, dict[str, list[str]]]:
        try:
            path.encode("utf-8")
        except UnicodeEncodeError:
            # The native library takes UTF-8 paths only; a name with undecodable
            # bytes is read through our own descriptor instead (its extension,
            # a detection hint, is lost, the magic bytes still decide).
            with open(path, "rb") as handle:
                result: tuple[str, dict[str, list[str]]] = self.extractor.extract_file_to_string(
                    f"/proc/self/fd/{handle.fileno()}"
                )
                return result
        parsed: tuple[str, dict[str, list[str]]] = self.extractor.extract_file_to_string(path)
        return parsed

    def _decode_text_file(
        self, path: str, size: int, tika_text: str, tika_charset: str, reply: dict[str, Any]
    ) -> None:
        budget = (self.settings.max_text_chars + 1) * _MAX_BYTES_PER_CHAR
        data = _read_prefix(path, budget)
        complete = size <= len(data)
        decoded = decode_text_with_fallback(
            data, complete=complete, parser_text=tika_text, parser_charset=tika_charset
        )
        limit = self.settings.max_text_chars
        reply["text"] = clean_text(decoded.text[: limit + 1])
        reply["text_charset"] = decoded.charset
        reply["source_truncated"] = not complete or len(decoded.text) > limit

    def _redecode_korean_html(
        self, path: str, size: int, tika_type: str, reply: dict[str, Any]
    ) -> None:
        # Java's EUC-KR lacks the CP949 extension, and without a <meta charset>
        # Tika guesses KOI8-R for Korean pages. Re-parse legacy Korean HTML as
        # UTF-8 with a byte-order mark, which Tika's charset detection obeys first.
        if "charset=utf-8" in tika_type.lower().replace(" ", "") or size > _MAX_HTML_REDECODE_BYTES:
            return
        decoded = decode_korean_legacy(_read_prefix(path, size))
        if decoded is None:
            return
        utf8 = bytearray(_UTF8_BOM + decoded.text.encode("utf-8"))
        try:
            text, _metadata = self.extractor.extract_bytes_to_string(utf8)
        except Exception:  # noqa: BLE001 - keep Tika's first reading
            return
        reply["text"] = clean_text(text)
        reply["text_charset"] = decoded.charset
        reply["source_truncated"] = len(text) > self.settings.max_text_chars


def _charset_of(content_type: str) -> str:
    """`text/plain; charset=IBM500` → `IBM500` ("" when absent)."""
    for parameter in content_type.split(";")[1:]:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"')
    return ""


def _mentions_encryption(metadata: dict[str, list[str]]) -> bool:
    return any(
        "encrypt" in value.lower()
        for key, values in metadata.items()
        if key.startswith("X-TIKA:")
        for value in values
    )


def _count_zip_entries(path: str) -> tuple[int, int]:
    """(file entries, encrypted file entries) from the zip's central directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            files = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return 0, 0
    return len(files), sum(1 for info in files if info.flag_bits & 0x1)


def _run_hook(name: str) -> dict[str, Any] | None:
    """Misbehave on purpose (test mode only) so the parent's kill paths can be tested."""
    hook = name[len(_HOOK_PREFIX) :].split(".", 1)[0]
    if hook == "sleep":
        time.sleep(3600)
    elif hook == "alloc":
        # Ordinary heap allocation: stopped by RLIMIT_DATA (MemoryError).
        hoard: list[bytearray] = []
        try:
            while True:
                hoard.append(bytearray(16 * 1024 * 1024))
        except MemoryError:
            hoard.clear()
            return {"size": 1, "error": "MemoryError"}
    elif hook == "shm":
        # Shared anonymous memory is not counted by RLIMIT_DATA: only the
        # parent's RSS watchdog can stop this one.
        import mmap

        maps: list[mmap.mmap] = []
        while True:
            block = mmap.mmap(-1, 16 * 1024 * 1024, flags=mmap.MAP_SHARED)
            block.write(b"\x01" * len(block))
            maps.append(block)
    elif hook == "segv":
        os.kill(os.getpid(), signal.SIGSEGV)
    elif hook == "exit":
        os._exit(3)
    elif hook == "stdout":
        # Noise on fd 1, as a chatty native library would print.
        os.write(1, b"noise on stdout\n")
        return None
    return None


def _serve(channel: IO[bytes], worker: _Worker, settings: _Settings) -> None:
    alarm_seconds = min(math.ceil(settings.timeout_seconds * 2) + 5, _MAX_ALARM_SECONDS)
    read_line: Callable[[], bytes] = sys.stdin.buffer.readline
    while True:
        line = read_line()
        if not line:
            return  # the parent closed our stdin: shut down
        request = json.loads(line)
        if request.get("op") == "ping":
            _send(channel, {"pong": True})
            continue
        path = str(request["path"])
        # A hard deadline of our own, in case the parent is gone or stuck:
        # SIGALRM's default action ends the process even while the native
        # parser holds the GIL.
        signal.alarm(alarm_seconds)
        try:
            reply = None
            if settings.test_hooks and os.path.basename(path).startswith(_HOOK_PREFIX):
                reply = _run_hook(os.path.basename(path))
            if reply is None and request.get("op") == "hangul":
                reply = worker.hangul(path)
            elif reply is None and request.get("op") == "ocr":
                reply = worker.ocr_only(path, str(request.get("kind", "")))
            elif reply is None:
                reply = worker.extract(path)
        except OSError as err:
            reply = {"size": -1, "error": f"cannot read the file: {err.strerror or err}"}
        except MemoryError:
            # Our own post-processing hit RLIMIT_DATA; the parent recycles us.
            reply = {"size": -1, "error": "MemoryError"}
        except Exception as err:  # noqa: BLE001 - a bug here must not cost a restart
            reply = {"size": -1, "error": f"{type(err).__name__}: {err}"[:4000]}
        finally:
            signal.alarm(0)
        _send(channel, reply)


def main(argv: list[str]) -> None:
    """Entry point of the child process."""
    # Killed with the parent, even mid-parse (stdin EOF ends us between files).
    die_with_parent()
    settings = _Settings(argv)
    channel = _protocol_channel()
    _limit_memory(settings.memory_limit_bytes)

    def extend_deadline(seconds: float) -> None:
        # OCR has a time budget of its own: move our alarm and the parent's deadline.
        seconds += REPLY_GRACE_SECONDS
        signal.alarm(min(math.ceil(seconds * 2) + 5, _MAX_ALARM_SECONDS))
        _send(channel, {"extend_seconds": seconds})

    worker = _Worker(settings, extend_deadline)
    _send(channel, {"ready": True, "pid": os.getpid()})
    _serve(channel, worker, settings)
