"""NativeTikaExtractor against generated hostile and ordinary files.

Every fixture is written by the test itself (no binaries in the repository).
Each file must end with a status and never take the test process down; after
a bomb, the extractor must still read the next ordinary file. The kill paths
(timeout, memory, crash) are exercised for real, with tiny limits and with
test hooks that make the child sleep, allocate or crash.
"""

from __future__ import annotations

import io
import os
import signal
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from indexer.errors import ExtractionUnavailableError
from indexer.extraction.base import Extraction, ExtractionStatus, TextExtractor
from indexer.extraction.native import NativeTikaExtractor

pytest.importorskip("iscc_tika", reason="the embedded extractor needs the iscc-tika package")

MIB = 1024 * 1024
NOTICE = "출생신고 안내문: 주민센터에 방문하여 신고하십시오."
DOCX_TYPE = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
HOOK = "__crossdoc_hook_"

# -- fixture builders ------------------------------------------------------------------

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.wordprocessingml.document.main+xml"/>'
    '<Override PartName="/docProps/core.xml" '
    'ContentType="application/vnd.openxmlformats-package.core-properties+xml"/>'
    "</Types>"
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="word/document.xml"/>'
    '<Relationship Id="rId2" Type="http://schemas.openxmlformats.org/package/2006/'
    'relationships/metadata/core-properties" Target="docProps/core.xml"/>'
    "</Relationships>"
)
_CORE = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<cp:coreProperties xmlns:cp="http://schemas.openxmlformats.org/package/2006/metadata/'
    'core-properties" xmlns:dc="http://purl.org/dc/elements/1.1/" '
    'xmlns:dcterms="http://purl.org/dc/terms/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    "<dc:title>출생신고 안내</dc:title><dc:creator>김민원</dc:creator>"
    "<dc:language>ko-KR</dc:language>"
    '<dcterms:created xsi:type="dcterms:W3CDTF">2025-01-02T03:04:05Z</dcterms:created>'
    "</cp:coreProperties>"
)
_DOC_OPEN = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
    "<w:body><w:p><w:r><w:t>"
)
_DOC_CLOSE = "</w:t></w:r></w:p></w:body></w:document>"


def docx_bytes(text: str) -> bytes:
    """A minimal valid Word document holding `text`, with core properties."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _RELS)
        archive.writestr("word/document.xml", _DOC_OPEN + text + _DOC_CLOSE)
        archive.writestr("docProps/core.xml", _CORE)
    return buffer.getvalue()


def write_zip_bomb(path: Path, *, megabytes: int, as_docx: bool) -> Path:
    """Deflated filler: ~1000:1, so a few hundred KB on disk for `megabytes` MB inside."""
    chunk = (b"a" if as_docx else b"\x00") * MIB
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        if as_docx:
            archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
            archive.writestr("_rels/.rels", _RELS)
        name = "word/document.xml" if as_docx else "zeros.bin"
        with archive.open(name, "w", force_zip64=True) as entry:
            if as_docx:
                entry.write(_DOC_OPEN.encode())
            for _ in range(megabytes):
                entry.write(chunk)
            if as_docx:
                entry.write(_DOC_CLOSE.encode())
    return path


def billion_laughs() -> bytes:
    entities = ['<!ENTITY lol0 "lol">']
    for level in range(1, 10):
        entities.append(f'<!ENTITY lol{level} "{f"&lol{level - 1};" * 10}">')
    doctype = "<!DOCTYPE lolz [" + "".join(entities) + "]>"
    return f'<?xml version="1.0"?>{doctype}<lolz>&lol9;</lolz>'.encode()


def nested_zip(levels: int) -> bytes:
    data, name = "깊은 곳의 텍스트".encode(), "deep.txt"
    for level in range(levels):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(name, data)
        data, name = buffer.getvalue(), f"level{level}.zip"
    return data


def many_entries_zip(count: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for index in range(count):
            archive.writestr(f"entry{index:05d}.txt", f"entry {index}")
    return buffer.getvalue()


def encrypted_zip() -> bytes:
    """A zip whose entries carry the "encrypted" flag (traditional PKWARE encryption)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("secret.txt", "기밀")
        archive.writestr("plan.txt", "계획")
    data = bytearray(buffer.getvalue())
    for signature, flag_offset in ((b"PK\x03\x04", 6), (b"PK\x01\x02", 8)):
        index = data.find(signature)
        while index >= 0:
            data[index + flag_offset] |= 0x01
            index = data.find(signature, index + 4)
    return bytes(data)


ELF_HEADER = b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 8 + b"\x02\x00\x3e\x00" + b"\x00" * 2000
PE_HEADER = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00"
    + b"\x00" * 44
    + b"\x80\x00\x00\x00"
    + b"\x00" * 64
    + b"PE\x00\x00\x4c\x01"
    + b"\x00" * 500
)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """All generated fixtures, written once for the module."""
    root = tmp_path_factory.mktemp("extraction-fixtures")
    korean_docx = docx_bytes(NOTICE)
    contents: dict[str, bytes] = {
        "korean.docx": korean_docx,
        "truncated.docx": korean_docx[: len(korean_docx) // 2],
        "empty.pdf": b"",
        "cp949.txt": (NOTICE + "\n혼인신고, 사망신고도 같은 절차입니다.\n").encode("cp949"),
        "cp949-short.txt": "출생신고 안내문".encode("cp949"),
        "uhc.txt": "똠방각하 햏자 뷁: 출생신고 안내문".encode("cp949"),
        "cp949.csv": "이름,주소\n홍길동,서울특별시 강남구\n".encode("cp949"),
        "utf16.txt": NOTICE.encode("utf-16"),
        "utf16-nobom.txt": NOTICE.encode("utf-16-le"),
        "cp949.html": f"<html><body><p>똠방각하 {NOTICE}</p></body></html>".encode("cp949"),
        "elf.pdf": ELF_HEADER,
        "exe.pdf": PE_HEADER,
        "page.pdf": (
            "<!DOCTYPE html><html><head><title>공지</title></head>"
            f"<body><p>{NOTICE}</p></body></html>"
        ).encode(),
        "hwp3.hwp": b"HWP Document File V3.00 \x1a\x01\x02\x03\x04\x05" + b"\x00" * 1000,
        "laughs.xml": billion_laughs(),
        "nested.zip": nested_zip(30),
        "many.zip": many_entries_zip(2000),
        "encrypted.zip": encrypted_zip(),
        "long.txt": ("가나다라 마바사 " * 50_000).encode(),
    }
    paths = {}
    for name, data in contents.items():
        path = root / name
        path.write_bytes(data)
        paths[name] = path
    paths["bomb.zip"] = write_zip_bomb(root / "bomb.zip", megabytes=200, as_docx=False)
    paths["bomb.docx"] = write_zip_bomb(root / "bomb.docx", megabytes=200, as_docx=True)
    for hook in ("sleep", "alloc", "shm", "segv", "exit", "stdout"):
        path = root / f"{HOOK}{hook}.txt"
        path.write_text("hook", encoding="utf-8")
        paths[hook] = path
    return paths


@pytest.fixture(scope="module")
def extractor() -> Iterator[NativeTikaExtractor]:
    """One extractor for the ordinary cases (limits generous enough for real files)."""
    with NativeTikaExtractor(
        timeout_seconds=30, memory_limit_bytes=768 * MIB, max_text_chars=100_000
    ) as instance:
        yield instance


def assert_still_works(extractor: NativeTikaExtractor, files: dict[str, Path]) -> None:
    result = extractor.extract(files["korean.docx"])
    assert result.status is ExtractionStatus.OK, result
    assert result.text == NOTICE


# -- ordinary and Korean files ----------------------------------------------------------


def test_it_is_a_text_extractor(extractor: NativeTikaExtractor) -> None:
    assert isinstance(extractor, TextExtractor)
    assert extractor.version.startswith("iscc-tika-")
    extractor.ping()


def test_korean_docx_with_metadata(extractor: NativeTikaExtractor, files: dict[str, Path]) -> None:
    result = extractor.extract(files["korean.docx"], filename="안내.docx")
    assert result.status is ExtractionStatus.OK
    assert result.text == NOTICE
    assert result.content_type == DOCX_TYPE
    assert result.metadata == {
        "title": "출생신고 안내",
        "author": "김민원",
        "created": "2025-01-02T03:04:05Z",
        "language": "ko-KR",
    }


@pytest.mark.parametrize(
    ("name", "expected", "charset"),
    [
        ("cp949.txt", NOTICE, "EUC-KR"),
        ("cp949-short.txt", "출생신고 안내문", "EUC-KR"),
        ("uhc.txt", "똠방각하 햏자 뷁: 출생신고 안내문", "x-windows-949"),
        ("cp949.csv", "홍길동,서울특별시 강남구", "EUC-KR"),
        ("utf16.txt", NOTICE, "UTF-16LE"),
        ("utf16-nobom.txt", NOTICE, "UTF-16LE"),
        ("cp949.html", "똠방각하 " + NOTICE, "x-windows-949"),
    ],
)
def test_korean_legacy_encodings(
    extractor: NativeTikaExtractor, files: dict[str, Path], name: str, expected: str, charset: str
) -> None:
    result = extractor.extract(files[name])
    assert result.status is ExtractionStatus.OK, result
    assert expected in result.text
    assert result.content_type.endswith(f"charset={charset}")


def test_long_text_is_truncated(extractor: NativeTikaExtractor, files: dict[str, Path]) -> None:
    result = extractor.extract(files["long.txt"])
    assert result.status is ExtractionStatus.OK
    assert result.truncated
    assert len(result.text) == 100_000


# -- lying names, broken and unsupported files ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "content_type"),
    [
        ("elf.pdf", ExtractionStatus.UNSUPPORTED_FORMAT, "application/x-executable"),
        ("exe.pdf", ExtractionStatus.UNSUPPORTED_FORMAT, "application/x-msdownload"),
        ("page.pdf", ExtractionStatus.OK, "text/html"),
        ("hwp3.hwp", ExtractionStatus.UNSUPPORTED_FORMAT, "application/x-hwp"),
        ("empty.pdf", ExtractionStatus.EMPTY, "application/octet-stream"),
        ("truncated.docx", ExtractionStatus.PARSE_ERROR, "application/"),
        ("encrypted.zip", ExtractionStatus.ENCRYPTED, "application/zip"),
    ],
)
def test_detected_type_and_status(
    extractor: NativeTikaExtractor,
    files: dict[str, Path],
    name: str,
    status: ExtractionStatus,
    content_type: str,
) -> None:
    result = extractor.extract(files[name], declared_type="application/pdf")
    assert result.status is status, result
    assert result.content_type.startswith(content_type)
    if status is not ExtractionStatus.OK:
        assert result.detail
        assert result.text == ""


def test_html_named_pdf_keeps_its_text(
    extractor: NativeTikaExtractor, files: dict[str, Path]
) -> None:
    result = extractor.extract(files["page.pdf"])
    assert result.text == NOTICE
    assert result.metadata["title"] == "공지"


# -- bombs -------------------------------------------------------------------------------


BOUNDED = {
    ExtractionStatus.OK,
    ExtractionStatus.PARSE_ERROR,
    ExtractionStatus.LIMIT_EXCEEDED,
}


@pytest.mark.parametrize("name", ["bomb.zip", "bomb.docx", "laughs.xml", "nested.zip", "many.zip"])
def test_bombs_end_with_a_status_and_the_extractor_survives(
    extractor: NativeTikaExtractor, files: dict[str, Path], name: str
) -> None:
    started = time.monotonic()
    result = extractor.extract(files[name])
    assert time.monotonic() - started < 40
    assert result.status in BOUNDED, result
    if result.status is not ExtractionStatus.OK:
        assert result.detail
    assert len(result.text) <= 100_000
    assert_still_works(extractor, files)


def test_docx_bomb_is_stopped_by_the_memory_limit(files: dict[str, Path]) -> None:
    # Unlimited, this file takes native Tika to ~1.5 GB of RSS.
    with NativeTikaExtractor(memory_limit_bytes=300 * MIB, timeout_seconds=30) as small:
        result = small.extract(files["bomb.docx"])
        assert result.status is ExtractionStatus.LIMIT_EXCEEDED, result
        assert result.detail.startswith("memory")
        assert result.content_type == DOCX_TYPE  # sniffed: the parse never finished
        assert_still_works(small, files)


def test_slow_file_is_stopped_by_the_timeout(files: dict[str, Path]) -> None:
    with NativeTikaExtractor(timeout_seconds=0.3) as hasty:
        result = hasty.extract(files["many.zip"])
        assert result.status is ExtractionStatus.LIMIT_EXCEEDED, result
        assert result.detail == "timeout: no result within 0.3 s"
        assert result.content_type == "application/zip"


# -- kill and restart paths, driven by test hooks -----------------------------------------------


@pytest.fixture
def hooked() -> Iterator[NativeTikaExtractor]:
    with NativeTikaExtractor(
        timeout_seconds=2, memory_limit_bytes=400 * MIB, _test_hooks=True
    ) as instance:
        yield instance


def test_hanging_parser_is_killed_and_replaced(
    hooked: NativeTikaExtractor, files: dict[str, Path]
) -> None:
    assert_still_works(hooked, files)
    [first_pid] = hooked.child_pids()
    started = time.monotonic()
    result = hooked.extract(files["sleep"])
    elapsed = time.monotonic() - started
    assert result.status is ExtractionStatus.LIMIT_EXCEEDED
    assert result.detail == "timeout: no result within 2 s"
    assert 2 <= elapsed < 5
    assert hooked.child_pids() == []
    with pytest.raises(ProcessLookupError):
        os.kill(first_pid, 0)  # the hung child is gone, not left behind
    assert_still_works(hooked, files)
    assert hooked.children_started == 2


def test_allocation_is_stopped_by_rlimit_data(
    hooked: NativeTikaExtractor, files: dict[str, Path]
) -> None:
    result = hooked.extract(files["alloc"])
    assert result.status is ExtractionStatus.LIMIT_EXCEEDED
    assert result.detail.startswith("memory")
    assert_still_works(hooked, files)


def test_memory_not_seen_by_rlimit_is_stopped_by_the_rss_watchdog(
    hooked: NativeTikaExtractor, files: dict[str, Path]
) -> None:
    result = hooked.extract(files["shm"])
    assert result.status is ExtractionStatus.LIMIT_EXCEEDED
    assert result.detail == "memory: the parser used more than 400 MiB"
    assert_still_works(hooked, files)


def test_crashing_parser_is_a_parse_error(
    hooked: NativeTikaExtractor, files: dict[str, Path]
) -> None:
    result = hooked.extract(files["segv"])
    assert result.status is ExtractionStatus.PARSE_ERROR
    assert result.detail == "the parser crashed (SIGSEGV)"
    assert_still_works(hooked, files)
    result = hooked.extract(files["exit"])
    assert result.status is ExtractionStatus.PARSE_ERROR
    assert result.detail == "the parser process exited with status 3"
    assert_still_works(hooked, files)


def test_output_on_stdout_does_not_corrupt_the_protocol(
    hooked: NativeTikaExtractor, files: dict[str, Path]
) -> None:
    result = hooked.extract(files["stdout"])
    assert result.status is ExtractionStatus.OK
    assert result.text == "hook"


def test_child_killed_while_idle_is_replaced_transparently(
    hooked: NativeTikaExtractor, files: dict[str, Path]
) -> None:
    assert_still_works(hooked, files)
    [pid] = hooked.child_pids()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.1)
    assert_still_works(hooked, files)  # the file is sent to a fresh child
    assert hooked.children_started == 2


def test_hooks_are_inert_without_the_private_flag(
    extractor: NativeTikaExtractor, files: dict[str, Path]
) -> None:
    result = extractor.extract(files["sleep"])
    assert result.status is ExtractionStatus.OK
    assert result.text == "hook"


# -- pool, recycling, concurrency, lifecycle ------------------------------------------------------


def test_children_are_recycled(files: dict[str, Path]) -> None:
    with NativeTikaExtractor(recycle_after=2) as recycling:
        for _ in range(5):
            assert_still_works(recycling, files)
        assert recycling.children_started == 3
        assert all(seconds < 10 for seconds in recycling.startup_seconds)


def test_concurrent_callers_with_a_hostile_file_among_them(files: dict[str, Path]) -> None:
    names = ["korean.docx", "cp949.txt", "page.pdf", "uhc.txt"] * 4 + ["sleep"]
    with NativeTikaExtractor(pool_size=2, timeout_seconds=2, _test_hooks=True) as pool:

        def run(name: str) -> tuple[str, Extraction]:
            return name, pool.extract(files[name])

        with ThreadPoolExecutor(max_workers=6) as threads:
            results = list(threads.map(run, names))
        for name, result in results:
            expected = ExtractionStatus.LIMIT_EXCEEDED if name == "sleep" else ExtractionStatus.OK
            assert result.status is expected, (name, result)
        assert len(pool.child_pids()) <= 2


def test_close_stops_children_and_refuses_work(files: dict[str, Path]) -> None:
    instance = NativeTikaExtractor()
    assert_still_works(instance, files)
    pids = instance.child_pids()
    instance.close()
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    with pytest.raises(ExtractionUnavailableError):
        instance.extract(files["korean.docx"])
    with pytest.raises(ExtractionUnavailableError):
        instance.ping()


def test_waiting_for_a_busy_pool_is_bounded(files: dict[str, Path]) -> None:
    with NativeTikaExtractor(
        timeout_seconds=1.5, queue_timeout_seconds=0.5, _test_hooks=True
    ) as busy:
        busy.ping()
        blocker = threading.Thread(target=busy.extract, args=(files["sleep"],))
        blocker.start()
        time.sleep(0.2)
        with pytest.raises(ExtractionUnavailableError):
            busy.extract(files["korean.docx"])
        blocker.join()
        assert_still_works(busy, files)


def test_file_name_with_undecodable_bytes(extractor: NativeTikaExtractor, tmp_path: Path) -> None:
    path = tmp_path / os.fsdecode(b"\xff\xfe-\xc3(name.docx")
    path.write_bytes(docx_bytes(NOTICE))
    result = extractor.extract(path)
    assert result.status is ExtractionStatus.OK
    assert result.text == NOTICE


def test_missing_file_is_the_callers_error(extractor: NativeTikaExtractor, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        extractor.extract(tmp_path / "missing.pdf")


def test_child_that_cannot_start_makes_the_extractor_unavailable() -> None:
    from indexer.extraction._child_handle import ChildProcess

    broken = ChildProcess(
        [sys.executable, "-c", "import sys; sys.stderr.write('no tika here'); sys.exit(2)"],
        memory_limit_bytes=0,
        max_reply_bytes=1024,
    )
    with pytest.raises(ExtractionUnavailableError, match="no tika here"):
        broken.start(timeout=10)
    assert not broken.alive


def test_invalid_configuration_is_refused() -> None:
    with pytest.raises(ValueError, match="timeouts"):
        NativeTikaExtractor(timeout_seconds=0)
    with pytest.raises(ValueError, match="limits"):
        NativeTikaExtractor(pool_size=0)
    with pytest.raises(ValueError, match="MiB"):
        NativeTikaExtractor(memory_limit_bytes=64 * MIB)
