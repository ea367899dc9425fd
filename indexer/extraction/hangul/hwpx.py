"""HWPX documents: a zip package of OWPML XML parts (KS X 6101).

- `mimetype` holds `application/hwp+zip` (some writers leave it or the
  manifest out: `Contents/section<n>.xml` is then what marks the format);
- `Contents/section<n>.xml`: the body. Every paragraph (`hp:p`), wherever it
  sits (body, table cells, headers and footers, foot- and endnotes, text
  boxes, hidden comments), holds its text in `hp:t` elements, where `hp:tab`,
  `hp:lineBreak` and friends stand for characters; nested paragraphs follow
  in document order. `Contents/masterpage<n>.xml` holds master-page text;
- `Contents/content.hpf`: an OPF package whose metadata has the title,
  creator and dates;
- `META-INF/manifest.xml` lists `encryption-data` when the document is
  password-protected.

XML is parsed with lxml with entity expansion, DTD loading and network access
off; a part that declares a DTD at all is refused (OWPML never has one), so
no entity trick reaches the parser. Part sizes are bounded before reading.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from lxml import etree

from indexer.extraction.hangul.result import (
    HWPX_CONTENT_TYPE,
    HangulEncryptedError,
    HangulError,
    HangulKind,
    HangulLimitError,
    HangulText,
    join_bounded,
)

#: Largest XML part we read (uncompressed); the biggest real sections are a few MiB.
MAX_PART_BYTES = 128 * 1024 * 1024
#: Largest sum of the parts we read (uncompressed).
MAX_TOTAL_BYTES = 512 * 1024 * 1024
MAX_PARTS = 10_000

_SECTION = re.compile(r"^Contents/section(\d{1,6})\.xml$")
_MASTER_PAGE = re.compile(r"^Contents/masterpage(\d{1,6})\.xml$")
_CONTENT_PACKAGE = "Contents/content.hpf"
_MANIFEST = "META-INF/manifest.xml"
_MIMETYPE = "mimetype"
# A document type declaration before the root element (after an optional BOM,
# XML declaration, comments and processing instructions).
_DOCTYPE = re.compile(
    rb"^(?:\xef\xbb\xbf)?\s*(?:(?:<\?.*?\?>|<!--.*?-->)\s*)*<!DOCTYPE", re.DOTALL | re.IGNORECASE
)
# Characters some OWPML elements inside `hp:t` stand for.
_CHARACTER_ELEMENTS = {
    "tab": "\t",
    "lineBreak": "\n",
    "nbSpace": " ",
    "fwSpace": " ",
    "hyphen": "-",
}


def is_hwpx(path: Path) -> bool:
    """True for a zip package declaring `application/hwp+zip` or holding OWPML sections."""
    try:
        with zipfile.ZipFile(path) as package:
            return _is_hwpx_package(package)
    except Exception:  # noqa: BLE001 - not a zip we can open: not an HWPX file we read
        return False


def _is_hwpx_package(package: zipfile.ZipFile) -> bool:
    names = set(package.namelist())
    if _MIMETYPE in names:
        info = package.getinfo(_MIMETYPE)
        if info.file_size <= 256:
            declared = package.read(info).strip()
            if declared == HWPX_CONTENT_TYPE.encode():
                return True
            if declared:
                return False  # another zip-based format that says what it is (ODF, EPUB…)
    return any(_SECTION.match(name) for name in names)


def read_hwpx(path: Path, *, max_chars: int) -> HangulText:
    """Text and metadata of the HWPX file `path`, at most `max_chars` (+1) characters.

    Raises `HangulEncryptedError` for a password-protected package,
    `HangulLimitError` for parts past the size limits, and `HangulError` for
    anything malformed.
    """
    try:
        with zipfile.ZipFile(path) as package:
            return _read(package, max_chars)
    except (HangulError, MemoryError):
        raise
    except Exception as err:
        raise HangulError(f"malformed HWPX file: {type(err).__name__}: {err}") from err


def _read(package: zipfile.ZipFile, max_chars: int) -> HangulText:
    infos = package.infolist()
    if len(infos) > MAX_PARTS:
        raise HangulLimitError(f"suspected zip bomb: {len(infos)} parts")
    names = {info.filename: info for info in infos}
    if _MANIFEST in names and b"encryption-data" in _read_part(package, names[_MANIFEST]):
        raise HangulEncryptedError("encrypted HWPX document (password-protected)")
    sections = _numbered(names, _SECTION)
    if not sections:
        raise HangulError("no Contents/section*.xml part")
    parts = [*sections, *_numbered(names, _MASTER_PAGE)]
    total = sum(names[name].file_size for name in parts)
    if total > MAX_TOTAL_BYTES:
        raise HangulLimitError(f"suspected zip bomb: the text parts hold {total >> 20} MiB")
    result = HangulText(kind=HangulKind.HWPX)
    if _CONTENT_PACKAGE in names:
        result.metadata = _package_metadata(_read_part(package, names[_CONTENT_PACKAGE]))

    result.text, result.truncated = join_bounded(
        (paragraph_texts(_read_part(package, names[name])) for name in parts), max_chars
    )
    return result


def _numbered(names: dict[str, zipfile.ZipInfo], pattern: re.Pattern[str]) -> list[str]:
    found = [(int(match.group(1)), name) for name in names if (match := pattern.match(name))]
    return [name for _, name in sorted(found)]


def _read_part(package: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """One part's bytes, refusing parts past MAX_PART_BYTES (zipfile stops at the declared size)."""
    if info.file_size > MAX_PART_BYTES:
        raise HangulLimitError(
            f"suspected zip bomb: {info.filename} holds {info.file_size >> 20} MiB"
        )
    if info.flag_bits & 0x1:
        raise HangulEncryptedError("encrypted HWPX document (encrypted zip entries)")
    return package.read(info)


def _parser_source(data: bytes) -> IO[bytes]:
    import io

    if _DOCTYPE.match(data):
        raise HangulError("XML part with a document type declaration refused")
    return io.BytesIO(data)


def _local(tag: object) -> str:
    if not isinstance(tag, str):
        return ""  # comments and processing instructions
    return tag.rpartition("}")[2]


def _events(data: bytes, *, starts: bool = False) -> Iterator[tuple[str, etree._Element]]:
    return etree.iterparse(  # type: ignore[no-any-return]
        _parser_source(data),
        events=("start", "end") if starts else ("end",),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def paragraph_texts(data: bytes) -> Iterator[str]:
    """The text of each paragraph (`hp:p`) of one OWPML part, each ending with a newline.

    A paragraph that holds others (a table, a text box) yields its own text
    when it ends, after the nested paragraphs, which ended before it.
    """
    open_paragraphs: list[list[str]] = []  # text of the paragraphs still open, innermost last
    try:
        for event, element in _events(data, starts=True):
            name = _local(element.tag)
            if event == "start":
                if name == "p":
                    open_paragraphs.append([])
                continue
            if name == "t":
                pieces = [element.text or ""]
                for child in element:
                    pieces.append(_CHARACTER_ELEMENTS.get(_local(child.tag), ""))
                    pieces.append(child.tail or "")
                if open_paragraphs:
                    open_paragraphs[-1].append("".join(pieces))
                element.clear(keep_tail=True)
            elif name == "p" and open_paragraphs:
                text = "".join(open_paragraphs.pop())
                if text.strip():
                    yield text + "\n"
                element.clear(keep_tail=True)
                # Paragraphs already read are not needed again: keep memory flat.
                parent = element.getparent()
                if parent is not None:
                    while element.getprevious() is not None:
                        del parent[0]
    except etree.XMLSyntaxError as err:
        raise HangulError(f"malformed XML: {err}") from err


def _package_metadata(data: bytes) -> dict[str, str]:
    """Title, author and dates from the OPF metadata of `Contents/content.hpf`."""
    fields: dict[str, str] = {}
    names = {"creator": "author", "CreatedDate": "created", "ModifiedDate": "modified"}
    try:
        for _event, element in _events(data):
            name = _local(element.tag)
            if name == "title":
                value = " ".join((element.text or "").split())
                if value:
                    fields.setdefault("title", value)
            elif name == "meta":
                field = names.get(str(element.get("name", "")))
                value = " ".join((element.text or "").split())
                if field and value:
                    fields.setdefault(field, value)
    except (etree.XMLSyntaxError, HangulError):
        return fields  # metadata is optional; the text still counts
    return fields
