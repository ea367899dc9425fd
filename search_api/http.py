"""Small HTTP helpers shared by routers."""

from __future__ import annotations

import re
from urllib.parse import quote

from storage.filenames import sanitize_filename

#: What the ASCII fallback name keeps besides letters and digits: nothing that ends a
#: quoted string or a header (`"`, `\`, CR, LF), separates parameters (`;`), may be
#: percent-decoded by a browser (`%`), names a folder (`/`), or Windows refuses.
_FALLBACK_KEEPS = frozenset(" -_.,()[]+=@&!#$~'")
_FALLBACK_STEM = "document"
_RUNS = re.compile(r"([ ._-])[ ._-]*")


def _ascii_fallback(name: str) -> str:
    """A readable ASCII name for clients that ignore `filename*` (curl -OJ, old agents).

    The ASCII parts of the name and its extension are kept; characters outside ASCII
    (Hangul) are dropped, not replaced by underscores: `2026년 예산안 v2.xlsx` → `2026 v2.xlsx`,
    `보고서.docx` → `document.docx`, `회의록 (1).hwp` → `document (1).hwp`.
    """
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem or not (ext.isascii() and ext.isalnum() and len(ext) <= 16):
        stem, ext = name, ""
    kept = "".join(
        ch if ch.isascii() and (ch.isalnum() or ch in _FALLBACK_KEEPS) else " " for ch in stem
    )
    # Runs of separators left where Hangul was become one; none at either end.
    kept = _RUNS.sub(lambda m: m.group(1), kept).strip(" ._-")
    if not any(ch.isascii() and ch.isalpha() for ch in kept):
        # Nothing readable left (`보고서`, `회의록 (1)`, `2026 예산`): say what it is.
        kept = f"{_FALLBACK_STEM} {kept}".strip()
    return f"{kept}.{ext}" if ext else kept


def content_disposition(filename: str) -> str:
    """`attachment` with a readable ASCII fallback and the UTF-8 name (RFC 6266 / 5987).

    Both forms come from the sanitised name (last path segment, no control or bidi
    characters), and the fallback keeps only safe ASCII: no header injection.
    """
    name = sanitize_filename(filename, fallback="download")
    return (
        f"attachment; filename=\"{_ascii_fallback(name)}\"; filename*=UTF-8''{quote(name, safe='')}"
    )


DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'",
    "Cache-Control": "private, no-store",
}
