"""Title rules: what title a document shows and is found by.

A title typed by the uploader always wins; otherwise the title recorded in the
file itself, unless it is an authoring tool's placeholder, else the file name.
"""

from __future__ import annotations

import re

from indexer.extraction.base import Extraction
from storage.catalog.records import DocumentRecord

#: Longest title the catalog stores.
MAX_TITLE_CHARS = 500


def automatic_title(doc: DocumentRecord, extraction: Extraction) -> str:
    """The title a document shows when its uploader typed none.

    The title recorded in the file itself (HWP summary information, HWPX and
    OOXML core properties, PDF info…) when there is one, else the file name.
    """
    found = metadata_title(extraction.metadata.get("title", ""))
    return found or doc.filename


#: Titles that authoring tools fill in by themselves: a file name says more.
_PLACEHOLDER_TITLE = re.compile(
    r"(?:powerpoint presentation|presentation|slide|title|untitled|document|"
    r"microsoft(?: \w+)?|제목(?: ?없음)?|개요|글머리|필드|문서|양쪽 정렬|"
    r"새 문서|빈 문서|표|그림)\s*\d*",
    re.IGNORECASE,
)
#: "Microsoft Word - 보고서.docx", as PDF printers record the source file.
_PRINTED_FROM = re.compile(r"^microsoft (?:word|excel|powerpoint) - ", re.IGNORECASE)
_OFFICE_SUFFIX = re.compile(r"\.(?:docx?|xlsx?|pptx?|hwpx?|txt)$", re.IGNORECASE)


def metadata_title(raw: str) -> str:
    """The title recorded in a file, or "" when it is a placeholder rather than a title.

    Authoring tools often record no real title: Hangul takes the first
    paragraph's style or a number, Office "Slide 1" or "PowerPoint
    Presentation", PDF printers "Microsoft Word - name.docx".
    """
    title = " ".join(raw.split())
    title = _OFFICE_SUFFIX.sub("", _PRINTED_FROM.sub("", title)).strip()
    letters = sum(ch.isalpha() for ch in title)
    if letters < 2 or _PLACEHOLDER_TITLE.fullmatch(title):
        return ""
    return title[:MAX_TITLE_CHARS]


def effective_title(doc: DocumentRecord, extraction: Extraction) -> str:
    """A typed title always wins; otherwise the automatic one."""
    return doc.title if doc.title_from_user else automatic_title(doc, extraction)
