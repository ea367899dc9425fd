"""The text extraction port.

An extractor turns the bytes of one document version into plain text. Documents
come from anywhere, so every input is assumed hostile: adapters run parsers out
of process (or on a separate server) with time and memory limits, and a bad file
only ever produces an `Extraction` with a failure status, never an exception.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable


class ExtractionStatus(enum.StrEnum):
    """Outcome of an extraction. Everything but OK means "no usable text"."""

    OK = "ok"
    EMPTY = "empty"  # parsed, but no text (image-only, blank)
    ENCRYPTED = "encrypted"  # password or DRM protected
    UNSUPPORTED_FORMAT = "unsupported_format"  # e.g. HWP 3.0, binaries
    PARSE_ERROR = "parse_error"  # corrupt, truncated or malformed; detail says how
    LIMIT_EXCEEDED = "limit_exceeded"  # the parser ran out of time or memory (bombs, loops)


#: How `detail` starts when it is about OCR: "ocr" (the text was recognised in
#: images), "ocr (3 of 57 pages)", "ocr unavailable: tesseract is not installed".
OCR_NOTE = "ocr"


@dataclass(frozen=True)
class Extraction:
    """What an extractor found in one file."""

    status: ExtractionStatus
    text: str = ""
    content_type: str = "application/octet-stream"  # detected from the bytes, not the name
    detail: str = ""  # human-readable reason for a non-OK status; for OK, "ocr…" or ""
    metadata: dict[str, str] = field(default_factory=dict)  # title, author, created, language…
    truncated: bool = False  # text was cut at the configured maximum length

    @property
    def status_detail(self) -> str:
        """The catalog's `status_detail` string (API.md).

        OK: '' or, for text recognised in images, 'ocr' (with a note such as
        'ocr (20 of 57 pages)'); otherwise the status, with the reason for
        errors and limits ('parse_error: …') and for OCR that could not run
        ('empty: ocr unavailable: tesseract is not installed').
        """
        if self.status is ExtractionStatus.OK:
            return self.detail if self.detail.startswith(OCR_NOTE) else ""
        if self.status in (ExtractionStatus.PARSE_ERROR, ExtractionStatus.LIMIT_EXCEEDED) or (
            self.detail.startswith(f"{OCR_NOTE} ")
        ):
            return f"{self.status.value}: {self.detail}" if self.detail else self.status.value
        return self.status.value


@runtime_checkable
class TextExtractor(Protocol):
    """Extracts text from one file."""

    #: Bumped when the extractor's output changes, so cached text is re-extracted.
    version: str

    def extract(self, path: Path, *, filename: str = "", declared_type: str = "") -> Extraction:
        """Extract text from the local file `path`.

        `filename` and `declared_type` (from the uploader) are hints only; the
        detected type wins. Never raises for a bad document: corrupt, encrypted,
        hostile or unsupported input yields a non-OK `Extraction`. Raises
        `ExtractionUnavailableError` only when the extraction service itself is
        down (a transient fault the caller retries).
        """
        ...

    def ping(self) -> None:
        """Raise `ExtractionUnavailableError` unless the extractor can work (for /readyz)."""
        ...

    def close(self) -> None:
        """Stop child processes or connections."""
        ...
