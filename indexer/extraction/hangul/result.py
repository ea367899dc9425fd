"""What the Hangul readers return, and the errors they raise."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

HWP5_CONTENT_TYPE = "application/x-hwp"
HWPX_CONTENT_TYPE = "application/hwp+zip"


class HangulKind(enum.Enum):
    """The two Hangul formats we read (HWP 3.0 is recognised elsewhere, and not read)."""

    HWP5 = HWP5_CONTENT_TYPE
    HWPX = HWPX_CONTENT_TYPE


@dataclass
class HangulText:
    """Text and metadata of one document, as far as they could be read."""

    kind: HangulKind
    text: str = ""
    truncated: bool = False  # stopped at the caller's maximum number of characters
    #: title, author, created, modified (ISO 8601), when the document records them
    metadata: dict[str, str] = field(default_factory=dict)


class HangulError(Exception):
    """The document cannot be read: malformed, truncated, or a part is not what it claims.

    `metadata` holds what could be read before the failure (an encrypted HWP 5
    file still tells its title).
    """

    def __init__(self, message: str, *, metadata: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.metadata = dict(metadata or {})


class HangulEncryptedError(HangulError):
    """The document is password-protected or DRM-protected: its text cannot be read."""


class HangulLimitError(HangulError):
    """A part of the document inflates or nests past our limits (a bomb, or absurd input)."""


def join_bounded(sections: Iterable[Iterable[str]], max_chars: int) -> tuple[str, bool]:
    """The paragraphs of every section joined, and whether `max_chars` cut them short.

    Lazy: sections after the cut are never read (nor decompressed).
    """
    parts: list[str] = []
    length = 0
    for paragraphs in sections:
        for text in paragraphs:
            parts.append(text)
            length += len(text)
            if length > max_chars:
                return "".join(parts), True
    return "".join(parts), False
