"""Uploaded file names are untrusted metadata: sanitise them for storage and display.

Bytes are never stored under the uploaded name (blobs are content-addressed), so
this is about what users see and what goes into headers and logs.
"""

from __future__ import annotations

import unicodedata

MAX_FILENAME_CHARS = 255
_BIDI_AND_INVISIBLE = {
    "\u200e",
    "\u200f",
    "\u202a",
    "\u202b",
    "\u202c",
    "\u202d",
    "\u202e",
    "\u2066",
    "\u2067",
    "\u2068",
    "\u2069",
    "\u200b",
    "\ufeff",
}


def sanitize_filename(name: str | None, fallback: str = "unnamed") -> str:
    """A safe display name: last path segment, no control/bidi characters, NFC, ≤ 255 chars."""
    if not name:
        return fallback
    name = unicodedata.normalize("NFC", name)
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(
        ch for ch in name if ch not in _BIDI_AND_INVISIBLE and unicodedata.category(ch)[0] != "C"
    )
    cleaned = " ".join(cleaned.split()).strip(" .")
    if not cleaned:
        return fallback
    if len(cleaned) > MAX_FILENAME_CHARS:
        stem, dot, ext = cleaned.rpartition(".")
        if dot and 0 < len(ext) <= 16:
            cleaned = stem[: MAX_FILENAME_CHARS - len(ext) - 1].rstrip(" .") + "." + ext
        else:
            cleaned = cleaned[:MAX_FILENAME_CHARS]
    return cleaned
