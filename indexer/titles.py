"""Title rules: what title a document shows and is found by.

A title typed by the uploader always wins, and a new version keeps the title;
otherwise the title recorded in the file itself, unless it is a placeholder or
body text, else the file name.
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


#: Titles that authoring tools (or people trying them out) fill in by
#: themselves: a file name says more.
_PLACEHOLDER_TITLE = re.compile(
    r"(?:powerpoint presentation|presentation|slide|title|untitled|document|"
    r"microsoft(?: \w+)?|제목(?: ?없음)?|개요|글머리|필드|문서|양쪽 정렬|"
    r"새 문서|빈 문서|표|그림|"
    r"start|test(?:ing)?|sample|example|draft|default|new|normal|heading|body|text|"
    r"테스트|시험|샘플|예시|예제|시작|초안|기본|바탕글|본문|내용|본문 ?내용|"
    r"제목을? 입력(?:하세요|하십시오)?|제목 ?\d*|문서 ?제목|글 ?제목|hwp|한글)\s*[\d.]*",
    re.IGNORECASE,
)
#: "Microsoft Word - 보고서.docx", as PDF printers record the source file: the
#: uploaded file's own name says as much, and is what the uploader chose.
_PRINTED_FROM = re.compile(r"^microsoft (?:office )?(?:word|excel|powerpoint) ?- ", re.IGNORECASE)
_OFFICE_SUFFIX = re.compile(r"\.(?:docx?|xlsx?|pptx?|hwpx?|txt)$", re.IGNORECASE)
#: The same run written twice or more ("본문내용본문내용", "test test"): filler.
_REPEATED = re.compile(r"(.{1,40}?)(?:\s*\1)+", re.DOTALL)
#: A sentence end followed by more text: a paragraph, not a title.
_SENTENCE_INSIDE = re.compile(r"(?:[다요죠][.!?]|[!?。]|[a-z]{3}\.)\s+\S")
#: Longer than this, a recorded "title" is the start of the body text.
MAX_METADATA_TITLE_CHARS = 120


def looks_like_body_text(title: str) -> bool:
    """Whether a recorded title is rather a run of body text (a paragraph, or filler)."""
    return (
        len(title) > MAX_METADATA_TITLE_CHARS
        or bool(_SENTENCE_INSIDE.search(title))
        or bool(_REPEATED.fullmatch(title))
    )


def metadata_title(raw: str) -> str:
    """The title recorded in a file, or "" when it is a placeholder rather than a title.

    Authoring tools often record no real title: Hangul takes the first
    paragraph's style, its text or a number, Office "Slide 1" or "PowerPoint
    Presentation", PDF printers "Microsoft Word - name.docx"; templates carry
    "제목 없음", "테스트" or "본문내용본문내용". Each of these gives way to the
    file name, as does a title that reads as body text.
    """
    title = " ".join(raw.split())
    if _PRINTED_FROM.match(title):
        return ""
    title = _OFFICE_SUFFIX.sub("", title).strip()
    letters = sum(ch.isalpha() for ch in title)
    if letters < 2 or _PLACEHOLDER_TITLE.fullmatch(title) or looks_like_body_text(title):
        return ""
    return title[:MAX_TITLE_CHARS]


def title_is_kept(doc: DocumentRecord) -> bool:
    """Whether the catalog's title stays as it is, whatever the file says.

    A typed title always stays; so does any title once a new version was
    uploaded: the document keeps the name people know it by (the first
    version's automatic title), rather than taking the new file's name.
    """
    return doc.title_from_user or doc.version > 1


def effective_title(doc: DocumentRecord, extraction: Extraction) -> str:
    """A kept title (typed, or of a later version) wins; otherwise the automatic one."""
    return doc.title if title_is_kept(doc) else automatic_title(doc, extraction)
