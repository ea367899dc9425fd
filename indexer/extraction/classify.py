"""Turning what Tika reported about one file into an `Extraction` (pure functions).

The child process hands back a `ParserReport`: Tika's text and metadata, or
the message of the exception it raised, plus a few facts the child checked in
the bytes itself. `classify` decides the status. The rules come from what
native Tika (iscc-tika) really reports for the files in `shared/corpus`:

- encrypted: the type `application/x-tika-ooxml-protected` (password-protected
  OOXML) or `application/x-tika-ole-drm-encrypted`, an `EncryptedDocumentException`
  in `X-TIKA:warning` (legacy Office, ODF, PDF, 7z), `pdf:encrypted=true` with no
  text, or a zip archive whose entries are all encrypted;
- unsupported: HWP 3.0 (by its magic), executables, anything Tika handed to its
  `EmptyParser` (it has no parser for the type), an OLE2 container Tika could not
  identify (many HWP 5 files written by other tools end up there);
- parse error: Tika raised, or produced no text and recorded an exception;
- limit exceeded: out of memory, too deep, or a suspected zip bomb;
- empty: parsed cleanly, no text (image-only, blank).

Text is OK whenever there is some, even if a part of the file failed (a
protected sheet, a bad embedded object, an archive with one encrypted entry).
"""

from __future__ import annotations

import re
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from indexer.extraction.base import OCR_NOTE, Extraction, ExtractionStatus

#: Longest `detail` we keep: it lands in the catalog and in logs.
MAX_DETAIL_CHARS = 200
#: Longest metadata value we keep (titles, authors…); hostile files can hold megabytes.
MAX_METADATA_CHARS = 1000

_CONTENT_TYPE = "Content-Type"
_PARSED_BY = "X-TIKA:Parsed-By"
_WARNING = "X-TIKA:warning"
_EXCEPTION_PREFIX = "X-TIKA:EXCEPTION:"
_EMPTY_PARSER = "org.apache.tika.parser.EmptyParser"

# Plain-string metadata we publish, each from the first Tika key that has a value.
_METADATA_SOURCES: Mapping[str, tuple[str, ...]] = {
    "title": ("dc:title", "pdf:docinfo:title", "xmp:dc:title", "title"),
    "author": ("dc:creator", "meta:author", "pdf:docinfo:creator", "Author"),
    "created": ("dcterms:created", "meta:creation-date", "pdf:docinfo:created", "Creation-Date"),
    "modified": ("dcterms:modified", "Last-Modified", "pdf:docinfo:modified"),
    "language": ("dc:language", "language", "Content-Language"),
}
_DATE_FIELDS = frozenset({"created", "modified"})

#: Tika metadata keys the child passes back (everything else is dropped at the source).
RELEVANT_METADATA_KEYS: frozenset[str] = frozenset(
    {_CONTENT_TYPE, _PARSED_BY, _WARNING, "pdf:encrypted", "protected"}
    | {key for keys in _METADATA_SOURCES.values() for key in keys}
)

ENCRYPTED_TYPES = frozenset(
    {"application/x-tika-ooxml-protected", "application/x-tika-ole-drm-encrypted"}
)
EXECUTABLE_TYPES = frozenset(
    {
        "application/x-executable",
        "application/x-sharedlib",
        "application/x-object",
        "application/x-coredump",
        "application/x-elf",
        "application/x-msdownload",
        "application/x-dosexec",
        "application/x-mach-o",
        "application/x-mach-o-executable",
        "application/java-vm",
    }
)
ZIP_TYPES = frozenset({"application/zip", "application/x-zip-compressed"})
_GENERIC_OLE2 = "application/x-tika-msoffice"
_OCTET_STREAM = "application/octet-stream"

_ENCRYPTION = re.compile(r"EncryptedDocument|password|encrypt|decrypt", re.IGNORECASE)
_OUT_OF_MEMORY = re.compile(
    r"OutOfMemoryError|MemoryError|Could not commit .{0,40}heap", re.IGNORECASE
)
_STACK_OVERFLOW = re.compile(r"StackOverflowError", re.IGNORECASE)
_ZIP_BOMB = re.compile(r"zip bomb[^\n]*", re.IGNORECASE)
# iscc-tika raises TypeError('ParseError("Parse error occurred : <Tika message>")').
_WRAPPED_ERROR = re.compile(r'^\s*\w+\("(?:Parse error occurred\s*:\s*)?(.*)"\)\s*$', re.DOTALL)
_JAVA_IDENTITY = re.compile(r"@[0-9a-f]{6,}\b")
# "org.xml.sax.SAXParseException; …" / "java.io.IOException: …"
_JAVA_CLASS = re.compile(r"^(?:[a-z_][\w$]*\.)+([A-Z][\w$]*(?:Exception|Error))\b[:;]?")
# C0 controls other than tab, LF and CR: NUL breaks PostgreSQL text columns and
# JSON consumers, the others carry no meaning in extracted text.
_CONTROL_CHARS = dict.fromkeys(
    [*range(0x00, 0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F, 0xFFFE, 0xFFFF]
)


@dataclass(frozen=True)
class ParserReport:
    """What the extraction child saw for one file (its reply, before classification)."""

    size: int  # bytes on disk
    text: str = ""  # Tika's text (or our decoding of a text file), at most max_text_chars + 1
    metadata: Mapping[str, Sequence[str]] = field(default_factory=dict)  # Tika's, filtered
    error: str = ""  # message of the exception Tika raised, "" when it returned
    sniffed_type: str = _OCTET_STREAM  # from the magic bytes, used when Tika gives no type
    text_charset: str = ""  # set when the child decoded a text file itself
    source_truncated: bool = False  # Tika's text was cut, or the child read only a prefix
    hwp3: bool = False
    hwp5_in_ole2: bool = False  # OLE2 container with the HWP 5 signature
    zip_entries: int = 0  # counted only for zip files that reported encryption
    zip_encrypted_entries: int = 0
    parser_messages: str = ""  # tail of the child's stderr during this file
    # OCR (indexer.extraction.ocr), when the child ran it: "" (not run), "ok",
    # "empty", "unavailable", "limit_exceeded" or "parse_error"; its reason or note;
    # and whether `text` is OCR's.
    ocr_status: str = ""
    ocr_detail: str = ""
    ocr_used: bool = False


def clean_text(text: str) -> str:
    """Drop control characters (NUL and friends) that Tika passes through from binary data."""
    return text.translate(_CONTROL_CHARS)


def short(message: str, limit: int = MAX_DETAIL_CHARS) -> str:
    """First non-empty line of `message`, without control characters, at most `limit` chars."""
    for line in clean_text(message.replace("\r", "\n")).split("\n"):
        line = line.strip()
        if line:
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def error_detail(message: str) -> str:
    """A short human-readable reason from an iscc-tika or Java exception message.

    `ParseError("Parse error occurred : Couldn't find core part.")` → "Couldn't
    find core part."; `org.xml.sax.SAXParseException; lineNumber: 2; …` loses
    its class name unless nothing else is left.
    """
    match = _WRAPPED_ERROR.match(message)
    inner = short(_JAVA_IDENTITY.sub("", match.group(1) if match else message))
    java = _JAVA_CLASS.match(inner)
    if java:
        rest = inner[java.end() :].strip()
        inner = rest or java.group(1)
    return inner or "parser error"


def summarize_trace(trace: str, limit: int = 2000) -> str:
    """The first line and the `Caused by:` lines of a Java stack trace, deduplicated."""
    lines: list[str] = []
    size = 0
    for number, raw_line in enumerate(trace.splitlines()):
        line = raw_line.strip()
        wanted = number == 0 or line.startswith("Caused by:")
        if wanted and line and line not in lines:
            lines.append(line)
            size += len(line) + 1
            if size >= limit:
                break
    return "\n".join(lines)[:limit]


def base_type(content_type: str) -> str:
    """`text/plain; charset=UTF-8` → `text/plain`."""
    return content_type.split(";", 1)[0].strip().lower()


def _first(metadata: Mapping[str, Sequence[str]], key: str) -> str:
    for value in metadata.get(key, ()):
        value = short(value, MAX_METADATA_CHARS)
        if value:
            return value
    return ""


def _is_placeholder_date(value: str) -> bool:
    # Office writes the Windows FILETIME epoch (1601-01-01) for "never set".
    return value.startswith("1601-01-01")


def metadata_fields(metadata: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Title, author, created, modified and language as plain strings, when present."""
    fields: dict[str, str] = {}
    for name, sources in _METADATA_SOURCES.items():
        for key in sources:
            value = _first(metadata, key)
            if value and not (name in _DATE_FIELDS and _is_placeholder_date(value)):
                fields[name] = value
                break
    return fields


def bound_metadata(metadata: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """Keep only the metadata `classify` reads, with stack traces summarised.

    Run in the child so that a file with megabytes of metadata cannot inflate
    the reply.
    """
    kept: dict[str, list[str]] = {}
    for key, values in metadata.items():
        if key.startswith(_EXCEPTION_PREFIX) or key == _WARNING:
            kept[key] = [summarize_trace(str(value)) for value in list(values)[:8]]
        elif key in RELEVANT_METADATA_KEYS:
            kept[key] = [str(value)[: MAX_METADATA_CHARS * 4] for value in list(values)[:8]]
    return kept


def _content_type(report: ParserReport) -> str:
    tika_type = _first(report.metadata, _CONTENT_TYPE)
    if not tika_type:
        return report.sniffed_type or _OCTET_STREAM
    if report.text_charset:
        return f"{base_type(tika_type)}; charset={report.text_charset}"
    return tika_type


def _messages(report: ParserReport, *, warnings: bool) -> list[str]:
    return [
        value
        for key, values in report.metadata.items()
        if key.startswith(_EXCEPTION_PREFIX) or (warnings and key == _WARNING)
        for value in values
    ]


def _limit_signal(text: str) -> str:
    """A LIMIT_EXCEEDED detail if `text` shows the parser hit a resource limit, else ""."""
    if _OUT_OF_MEMORY.search(text):
        return "memory: the parser ran out of memory"
    if _STACK_OVERFLOW.search(text):
        return "stack: the document is nested too deeply"
    bomb = _ZIP_BOMB.search(text)
    if bomb:
        return short(f"suspected {bomb.group(0)}")
    return ""


def classify(report: ParserReport, *, max_text_chars: int) -> Extraction:
    """Decide the status of one extraction from what the child reported."""
    content_type = _content_type(report)
    metadata = metadata_fields(report.metadata)
    if report.size == 0:
        return _failed(ExtractionStatus.EMPTY, "zero-byte file", _OCTET_STREAM, metadata)
    if report.hwp3:
        detail = "HWP 3.0 document: no parser for this format"
        return _failed(ExtractionStatus.UNSUPPORTED_FORMAT, detail, "application/x-hwp", metadata)
    if report.error:
        status, detail = _classify_error(report)
        return _failed(status, detail, content_type, metadata)
    if base_type(content_type) in ENCRYPTED_TYPES:
        detail = "password or DRM protected"
        return _failed(ExtractionStatus.ENCRYPTED, detail, content_type, metadata)
    if report.zip_entries and report.zip_encrypted_entries == report.zip_entries:
        detail = f"all {report.zip_entries} archive entries are encrypted"
        return _failed(ExtractionStatus.ENCRYPTED, detail, content_type, metadata)

    text = clean_text(report.text).strip()
    if text:
        truncated = report.source_truncated or len(text) > max_text_chars
        return Extraction(
            status=ExtractionStatus.OK,
            text=text[:max_text_chars],
            content_type=content_type,
            metadata=metadata,
            truncated=truncated,
            detail=_ocr_note(report),
        )
    status, detail, content_type = _classify_no_text(report, content_type)
    ocr_failure = _ocr_failure(report)
    if status is ExtractionStatus.EMPTY and ocr_failure is not None:
        # Only when nothing more telling was found: an encrypted PDF stays
        # "encrypted", even though OCR then failed on it too.
        status, detail = ocr_failure
    return _failed(status, detail, content_type, metadata)


def _ocr_note(report: ParserReport) -> str:
    """`detail` of an OK extraction: "ocr" when the text was recognised in images."""
    if not report.ocr_used:
        return ""
    return f"{OCR_NOTE} ({short(report.ocr_detail)})" if report.ocr_detail else OCR_NOTE


def _ocr_failure(report: ParserReport) -> tuple[ExtractionStatus, str] | None:
    """Status and detail when OCR was needed (no text otherwise) and could not run."""
    detail = short(report.ocr_detail)
    if report.ocr_status == "limit_exceeded":
        return ExtractionStatus.LIMIT_EXCEEDED, detail or "OCR limit exceeded"
    if report.ocr_status == "parse_error":
        return ExtractionStatus.PARSE_ERROR, detail or "OCR failed"
    if report.ocr_status == "unavailable":
        return ExtractionStatus.EMPTY, short(f"{OCR_NOTE} unavailable: {detail}")
    return None


def _failed(
    status: ExtractionStatus, detail: str, content_type: str, metadata: dict[str, str]
) -> Extraction:
    return Extraction(status=status, content_type=content_type, detail=detail, metadata=metadata)


def _classify_error(report: ParserReport) -> tuple[ExtractionStatus, str]:
    limit = _limit_signal(f"{report.error}\n{report.parser_messages}")
    if limit:
        return ExtractionStatus.LIMIT_EXCEEDED, limit
    if _ENCRYPTION.search(report.error):
        return ExtractionStatus.ENCRYPTED, error_detail(report.error)
    return ExtractionStatus.PARSE_ERROR, error_detail(report.error)


def _classify_no_text(report: ParserReport, content_type: str) -> tuple[ExtractionStatus, str, str]:
    """Status, detail and (possibly refined) content type of a file that gave no text."""
    kind = base_type(content_type)
    problems = _messages(report, warnings=True)
    if any(_ENCRYPTION.search(message) for message in problems) or (
        _first(report.metadata, "pdf:encrypted").lower() == "true"
    ):
        return ExtractionStatus.ENCRYPTED, "password or DRM protected", content_type
    parsers = [parser for parser in report.metadata.get(_PARSED_BY, ()) if parser]
    if kind in EXECUTABLE_TYPES:
        return ExtractionStatus.UNSUPPORTED_FORMAT, f"executable ({kind})", content_type
    if not parsers or all(parser == _EMPTY_PARSER for parser in parsers):
        return ExtractionStatus.UNSUPPORTED_FORMAT, short(f"no parser for {kind}"), content_type
    if kind == _GENERIC_OLE2:
        if report.hwp5_in_ole2:
            detail = "HWP 5 document in a layout the embedded parser does not read"
            return ExtractionStatus.UNSUPPORTED_FORMAT, detail, "application/x-hwp-v5"
        return ExtractionStatus.UNSUPPORTED_FORMAT, "unrecognised OLE2 document", content_type
    if kind == _OCTET_STREAM:
        return ExtractionStatus.UNSUPPORTED_FORMAT, "unrecognised binary format", content_type
    limit = _limit_signal("\n".join([*problems, report.parser_messages]))
    if limit:
        return ExtractionStatus.LIMIT_EXCEEDED, limit, content_type
    exceptions = _messages(report, warnings=False)
    if exceptions:
        return ExtractionStatus.PARSE_ERROR, error_detail(exceptions[0]), content_type
    return ExtractionStatus.EMPTY, "no text found", content_type


def classify_child_failure(
    *,
    reason: str,
    returncode: int | None,
    parser_messages: str,
    content_type: str,
) -> Extraction:
    """The `Extraction` for a file during which the child was killed or died.

    `reason` is "timeout" or "memory" when the parent killed the child for a
    limit (its text is then the detail), "" when the child died by itself
    (`returncode` as from `Popen.returncode`: negative for a signal).
    """
    if reason:
        return Extraction(
            status=ExtractionStatus.LIMIT_EXCEEDED, content_type=content_type, detail=reason
        )
    limit = _limit_signal(parser_messages)
    if limit:
        return Extraction(
            status=ExtractionStatus.LIMIT_EXCEEDED, content_type=content_type, detail=limit
        )
    if returncode == -signal.SIGKILL:
        # Nobody here sent it: on Linux that is the kernel's OOM killer.
        detail = "memory: the parser was killed by the system (SIGKILL, likely out of memory)"
        return Extraction(
            status=ExtractionStatus.LIMIT_EXCEEDED, content_type=content_type, detail=detail
        )
    if returncode == -signal.SIGALRM:
        # The child's own deadline, armed in case the parent could not kill it.
        return Extraction(
            status=ExtractionStatus.LIMIT_EXCEEDED,
            content_type=content_type,
            detail="timeout: the parser hit its own deadline",
        )
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        detail = f"the parser crashed ({name})"
    elif returncode is None:
        detail = "the parser process stopped answering"
    else:
        detail = f"the parser process exited with status {returncode}"
    return Extraction(status=ExtractionStatus.PARSE_ERROR, content_type=content_type, detail=detail)
