"""The extraction child's entry into this package: detect, read, answer in the child's terms."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from indexer.extraction.hangul.hwp5 import is_hwp5, read_hwp5
from indexer.extraction.hangul.hwpx import is_hwpx, read_hwpx
from indexer.extraction.hangul.result import (
    HangulEncryptedError,
    HangulError,
    HangulKind,
    HangulLimitError,
    HangulText,
)
from indexer.extraction.sniff import is_hwp3, is_ole2

#: What the child reports as the parser, in the place of Tika's parser class.
PARSER_NAMES = {
    HangulKind.HWP5: "crossdoc.hangul.hwp5",
    HangulKind.HWPX: "crossdoc.hangul.hwpx",
}
# Our field names → the Tika metadata keys the classifier reads them from.
_TIKA_KEYS = {
    "title": "dc:title",
    "author": "dc:creator",
    "created": "dcterms:created",
    "modified": "dcterms:modified",
}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def detect(path: Path, head: bytes) -> HangulKind | None:
    """HWP 5 or HWPX when the bytes are one (by content: the name plays no part), else None."""
    if is_ole2(head):
        return HangulKind.HWP5 if is_hwp5(path) else None
    if head.startswith(_ZIP_MAGIC):
        return HangulKind.HWPX if is_hwpx(path) else None
    return None


def read(path: Path, kind: HangulKind, *, max_chars: int) -> HangulText:
    """Read a detected document (see `read_hwp5` and `read_hwpx` for the errors raised)."""
    if kind is HangulKind.HWP5:
        return read_hwp5(path, max_chars=max_chars)
    return read_hwpx(path, max_chars=max_chars)


def child_reply(path: str, head: bytes, *, max_chars: int) -> dict[str, Any] | None:
    """The child's reply fields for a Hangul document, or None for any other file (Tika reads it).

    HWP 3.0 gets an empty answer: the child has already flagged it and the
    classifier reports it as unsupported without running Tika. A file that
    does not parse gets an `error` the classifier turns into a status:
    encrypted (the message says "encrypted"), limit exceeded ("zip bomb") or
    parse error. `MemoryError` is left to the child, which reports it.
    """
    if is_hwp3(head):
        return {}
    kind = detect(Path(path), head)
    if kind is None:
        return None
    try:
        result = read(Path(path), kind, max_chars=max_chars)
    except (HangulEncryptedError, HangulLimitError) as err:
        return {"error": str(err), "metadata": _metadata(kind, err.metadata)}
    except HangulError as err:
        return {
            "error": f"{kind.name} parse error: {err}",
            "metadata": _metadata(kind, err.metadata),
        }
    return {
        "text": result.text[: max_chars + 1],
        "source_truncated": result.truncated or len(result.text) > max_chars,
        "metadata": _metadata(kind, result.metadata),
    }


def _metadata(kind: HangulKind, fields: dict[str, str]) -> dict[str, list[str]]:
    metadata = {
        "Content-Type": [kind.value],
        "X-TIKA:Parsed-By": [PARSER_NAMES[kind]],
    }
    for name, value in fields.items():
        if name in _TIKA_KEYS and value:
            metadata[_TIKA_KEYS[name]] = [value]
    return metadata
