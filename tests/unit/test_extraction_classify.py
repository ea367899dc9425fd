"""Classification of Tika's reports into extraction statuses (pure, no child process).

The metadata and messages below are what native Tika (iscc-tika 0.6) really
reports for the files of `shared/corpus` and for generated hostile files.
"""

from __future__ import annotations

import dataclasses
import signal
from collections.abc import Mapping, Sequence

import pytest

from indexer.extraction.base import ExtractionStatus
from indexer.extraction.classify import (
    MAX_DETAIL_CHARS,
    ParserReport,
    bound_metadata,
    classify,
    classify_child_failure,
    clean_text,
    error_detail,
    metadata_fields,
    summarize_trace,
)

DEFAULT = "org.apache.tika.parser.DefaultParser"
OFFICE = "org.apache.tika.parser.microsoft.OfficeParser"
EMPTY_PARSER = "org.apache.tika.parser.EmptyParser"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
ENCRYPTED_WARNING = "EncryptedDocumentException: Unable to process: document is encrypted"


def report(
    content_type: str = "application/pdf",
    *,
    text: str = "",
    parsers: Sequence[str] = (DEFAULT, "org.apache.tika.parser.pdf.PDFParser"),
    extra: Mapping[str, Sequence[str]] | None = None,
    size: int = 1000,
    **fields: object,
) -> ParserReport:
    """A report as the child would send it, with Tika's usual keys filled in."""
    metadata: dict[str, Sequence[str]] = {
        "Content-Type": [content_type],
        "X-TIKA:Parsed-By": list(parsers),
    }
    metadata.update(extra or {})
    return dataclasses.replace(ParserReport(size=size, text=text, metadata=metadata), **fields)


def status_of(parser_report: ParserReport) -> ExtractionStatus:
    return classify(parser_report, max_text_chars=1000).status


# -- OK and EMPTY ------------------------------------------------------------


def test_text_is_ok_with_detected_type_and_stripped_text() -> None:
    result = classify(report(DOCX, text="\n\n출생신고 안내문\n"), max_text_chars=1000)
    assert result.status is ExtractionStatus.OK
    assert result.text == "출생신고 안내문"
    assert result.content_type == DOCX
    assert result.detail == ""
    assert not result.truncated


def test_long_text_is_cut_and_marked_truncated() -> None:
    result = classify(report(text="가" * 1001), max_text_chars=1000)
    assert result.status is ExtractionStatus.OK
    assert len(result.text) == 1000
    assert result.truncated


def test_text_cut_by_the_child_is_marked_truncated() -> None:
    result = classify(report(text="short", source_truncated=True), max_text_chars=1000)
    assert result.truncated


def test_control_characters_are_removed_from_text() -> None:
    result = classify(report(text="a\x00b\x07c\td\ne\x1bf"), max_text_chars=1000)
    assert result.text == "abc\td\nef"


@pytest.mark.parametrize("text", ["", "\n\n\n\t ", "\x00\x00\x00"])
def test_clean_parse_without_text_is_empty(text: str) -> None:
    result = classify(report(text=text), max_text_chars=1000)
    assert result.status is ExtractionStatus.EMPTY
    assert result.detail == "no text found"


def test_zero_byte_file_is_empty() -> None:
    result = classify(ParserReport(size=0), max_text_chars=1000)
    assert result.status is ExtractionStatus.EMPTY
    assert result.detail == "zero-byte file"
    assert result.content_type == "application/octet-stream"


def test_partial_text_with_embedded_failures_is_still_ok() -> None:
    # testZipEncrypted.zip: one entry readable, one encrypted.
    parsed = report(
        "application/zip",
        text="unencrypted.txt\nhello world\nencrypted.txt",
        extra={
            "X-TIKA:EXCEPTION:embedded_stream_exception": [
                "org.apache.commons.compress.archivers.zip.UnsupportedZipFeatureException: "
                "Unsupported feature encryption used in entry encrypted.txt"
            ]
        },
        zip_entries=2,
        zip_encrypted_entries=1,
    )
    assert status_of(parsed) is ExtractionStatus.OK


# -- ENCRYPTED ----------------------------------------------------------------


@pytest.mark.parametrize(
    "content_type",
    ["application/x-tika-ooxml-protected", "application/x-tika-ole-drm-encrypted"],
)
def test_protected_container_types_are_encrypted(content_type: str) -> None:
    parsed = report(content_type, parsers=(DEFAULT, OFFICE), extra={"X-TIKA:warning": []})
    result = classify(parsed, max_text_chars=1000)
    assert result.status is ExtractionStatus.ENCRYPTED
    assert result.content_type == content_type


@pytest.mark.parametrize(
    "content_type",
    [
        "application/vnd.ms-excel",  # password.xls
        "application/msword",
        "application/vnd.oasis.opendocument.text",  # testODTEncrypted.odt
        "application/x-7z-compressed",  # full_encrypted.7z
        "application/x-tika-msoffice",
    ],
)
def test_encrypted_document_warning_is_encrypted(content_type: str) -> None:
    parsed = report(
        content_type, parsers=(DEFAULT, OFFICE), extra={"X-TIKA:warning": [ENCRYPTED_WARNING]}
    )
    assert status_of(parsed) is ExtractionStatus.ENCRYPTED


def test_drm_warning_is_encrypted() -> None:
    warning = (
        "EncryptedDocumentException: DRM encrypted document is not yet supported by Apache POI"
    )
    parsed = report(
        "application/msword", parsers=(DEFAULT, OFFICE), extra={"X-TIKA:warning": [warning]}
    )
    assert status_of(parsed) is ExtractionStatus.ENCRYPTED


def test_pdf_marked_encrypted_without_text_is_encrypted() -> None:
    assert status_of(report(extra={"pdf:encrypted": ["true"]})) is ExtractionStatus.ENCRYPTED


def test_pdf_with_owner_password_only_still_gives_text() -> None:
    # Permissions-only encryption: Tika reads the text, and that is what counts.
    parsed = report(text="본문", extra={"pdf:encrypted": ["true"]})
    assert status_of(parsed) is ExtractionStatus.OK


def test_sheet_protection_is_not_encryption() -> None:
    # protectedSheets.xlsx: protected sheets, readable workbook.
    parsed = report(DOCX, text="Лист1 1 2 3", extra={"protected": ["true"]})
    assert status_of(parsed) is ExtractionStatus.OK


def test_zip_with_every_entry_encrypted_is_encrypted_even_with_names_as_text() -> None:
    parsed = report("application/zip", text="secret.txt", zip_entries=3, zip_encrypted_entries=3)
    result = classify(parsed, max_text_chars=1000)
    assert result.status is ExtractionStatus.ENCRYPTED
    assert result.detail == "all 3 archive entries are encrypted"


def test_password_error_raised_by_the_parser_is_encrypted() -> None:
    parsed = ParserReport(
        size=100,
        error='ParseError("Parse error occurred : Error decrypting document, password is wrong")',
    )
    assert status_of(parsed) is ExtractionStatus.ENCRYPTED


# -- UNSUPPORTED_FORMAT ---------------------------------------------------------


def test_hwp3_is_unsupported_whatever_tika_says() -> None:
    parsed = report("application/x-hwp", parsers=(EMPTY_PARSER,), hwp3=True)
    result = classify(parsed, max_text_chars=1000)
    assert result.status is ExtractionStatus.UNSUPPORTED_FORMAT
    assert result.content_type == "application/x-hwp"
    assert "HWP 3.0" in result.detail


@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-executable",
        "application/x-msdownload; format=pe32",
        "application/x-sharedlib",
    ],
)
def test_executables_are_unsupported(content_type: str) -> None:
    result = classify(report(content_type, parsers=(EMPTY_PARSER,)), max_text_chars=1000)
    assert result.status is ExtractionStatus.UNSUPPORTED_FORMAT
    assert result.detail.startswith("executable")
    assert result.content_type == content_type  # recorded, even for a file named .pdf


def test_type_without_parser_is_unsupported() -> None:
    result = classify(report("application/x-isatab", parsers=(EMPTY_PARSER,)), max_text_chars=1000)
    assert result.status is ExtractionStatus.UNSUPPORTED_FORMAT
    assert result.detail == "no parser for application/x-isatab"


def test_generic_ole2_with_hwp5_signature_is_unsupported_hwp5() -> None:
    parsed = report("application/x-tika-msoffice", parsers=(DEFAULT, OFFICE), hwp5_in_ole2=True)
    result = classify(parsed, max_text_chars=1000)
    assert result.status is ExtractionStatus.UNSUPPORTED_FORMAT
    assert result.content_type == "application/x-hwp-v5"


def test_generic_ole2_without_text_is_unsupported() -> None:
    parsed = report("application/x-tika-msoffice", parsers=(DEFAULT, OFFICE))
    result = classify(parsed, max_text_chars=1000)
    assert result.status is ExtractionStatus.UNSUPPORTED_FORMAT
    assert result.content_type == "application/x-tika-msoffice"


def test_unrecognised_binary_is_unsupported() -> None:
    parsed = report("application/octet-stream", parsers=(DEFAULT,))
    assert status_of(parsed) is ExtractionStatus.UNSUPPORTED_FORMAT


# -- PARSE_ERROR and LIMIT_EXCEEDED from Tika ---------------------------------------


def test_parser_exception_is_parse_error_with_short_detail_and_sniffed_type() -> None:
    parsed = ParserReport(
        size=763,
        error='ParseError("Parse error occurred : Couldn\'t find core part.")',
        sniffed_type=DOCX,
    )
    result = classify(parsed, max_text_chars=1000)
    assert result.status is ExtractionStatus.PARSE_ERROR
    assert result.detail == "Couldn't find core part."
    assert result.status_detail == "parse_error: Couldn't find core part."
    assert result.content_type == DOCX


def test_recorded_exception_without_text_is_parse_error() -> None:
    # A truncated docx: Tika returns, with the XML error as a warning-level exception.
    trace = (
        "org.xml.sax.SAXParseException; lineNumber: 2; columnNumber: 44; "
        "XML document structures must start and end within the same entity.\n"
        "\tat java.xml/com.sun.org.apache.xerces.internal.util.ErrorHandlerWrapper"
    )
    parsed = report(DOCX, extra={"X-TIKA:EXCEPTION:warn": [trace]})
    result = classify(parsed, max_text_chars=1000)
    assert result.status is ExtractionStatus.PARSE_ERROR
    assert "XML document structures must start and end" in result.detail
    assert "org.xml.sax" not in result.detail


def test_java_out_of_memory_is_limit_exceeded() -> None:
    parsed = ParserReport(
        size=300_000,
        error="JniError(JavaException)",
        parser_messages='Exception in thread "main": java.lang.OutOfMemoryError\n'
        "java.lang.OutOfMemoryError: Could not commit an unaligned heap chunk.",
    )
    result = classify(parsed, max_text_chars=1000)
    assert result.status is ExtractionStatus.LIMIT_EXCEEDED
    assert result.detail.startswith("memory")


def test_python_memory_error_in_the_child_is_limit_exceeded() -> None:
    result = classify(ParserReport(size=10, error="MemoryError"), max_text_chars=1000)
    assert result.status is ExtractionStatus.LIMIT_EXCEEDED


def test_suspected_zip_bomb_without_text_is_limit_exceeded() -> None:
    trace = (
        "org.apache.tika.exception.TikaException: TIKA-237: Illegal SAXException\n"
        "Caused by: org.apache.tika.sax.SecureContentHandler$SecureSAXException: "
        "Suspected zip bomb: 100 levels of XML element nesting"
    )
    parsed = report("application/zip", extra={"X-TIKA:EXCEPTION:embedded_exception": [trace]})
    result = classify(parsed, max_text_chars=1000)
    assert result.status is ExtractionStatus.LIMIT_EXCEEDED
    assert "zip bomb" in result.detail


def test_stack_overflow_is_limit_exceeded() -> None:
    parsed = ParserReport(
        size=10, error="JniError(JavaException)", parser_messages="java.lang.StackOverflowError"
    )
    assert status_of(parsed) is ExtractionStatus.LIMIT_EXCEEDED


def test_no_metadata_falls_back_to_sniffed_type() -> None:
    parsed = ParserReport(size=5, error="boom", sniffed_type="application/x-executable")
    assert classify(parsed, max_text_chars=1000).content_type == "application/x-executable"


# -- content type and metadata ----------------------------------------------------------


def test_own_text_decoding_replaces_the_charset_parameter() -> None:
    parsed = report("text/plain; charset=KOI8-R", text="똠방각하", text_charset="x-windows-949")
    assert classify(parsed, max_text_chars=1000).content_type == "text/plain; charset=x-windows-949"


def test_metadata_fields_are_plain_strings() -> None:
    metadata = {
        "dc:title": ["  출생신고 안내  ", "second title"],
        "dc:creator": ["김민원"],
        "dcterms:created": ["2025-01-02T03:04:05Z"],
        "dcterms:modified": ["1601-01-01T00:00:00Z"],  # Office's "never set"
        "dc:language": ["ko-KR"],
        "X-TIKA:Parsed-By": [DEFAULT],
    }
    assert metadata_fields(metadata) == {
        "title": "출생신고 안내",
        "author": "김민원",
        "created": "2025-01-02T03:04:05Z",
        "language": "ko-KR",
    }


def test_metadata_fallback_keys_and_hostile_values() -> None:
    metadata = {
        "dc:title": ["", "\x00\x00"],
        "pdf:docinfo:title": ["제목\x1b[31m 빨강"],
        "meta:author": ["x" * 10_000],
    }
    fields = metadata_fields(metadata)
    assert fields["title"] == "제목[31m 빨강"
    assert len(fields["author"]) <= 1000


def test_metadata_reaches_the_extraction_even_when_not_ok() -> None:
    parsed = report(
        "application/x-tika-ooxml-protected",
        extra={"dc:title": ["기밀 문서"]},
        parsers=(DEFAULT, OFFICE),
    )
    assert classify(parsed, max_text_chars=1000).metadata == {"title": "기밀 문서"}


def test_bound_metadata_keeps_what_classify_reads_and_summarises_traces() -> None:
    trace = (
        "java.io.IOException: bad\n"
        + "\tat x.y.Z(Z.java:1)\n" * 5000
        + "Caused by: java.util.zip.ZipException: nope\n"
    )
    kept = bound_metadata(
        {
            "Content-Type": ["application/zip"],
            "X-TIKA:EXCEPTION:warn": [trace],
            "custom:Junk": ["x" * 100_000],
            "dc:title": ["t"] * 100,
        }
    )
    assert set(kept) == {"Content-Type", "X-TIKA:EXCEPTION:warn", "dc:title"}
    assert kept["X-TIKA:EXCEPTION:warn"] == [
        "java.io.IOException: bad\nCaused by: java.util.zip.ZipException: nope"
    ]
    assert len(kept["dc:title"]) == 8


# -- messages --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("message", "detail"),
    [
        (
            'ParseError("Parse error occurred : Unable to unpack document stream")',
            "Unable to unpack document stream",
        ),
        (
            'ParseError("Parse error occurred : InputStream must have > 0 bytes")',
            "InputStream must have > 0 bytes",
        ),
        (
            'ParseError("Parse error occurred : TIKA-237: Illegal SAXException from '
            'org.apache.tika.parser.DefaultParser@55008fb7")',
            "TIKA-237: Illegal SAXException from org.apache.tika.parser.DefaultParser",
        ),
        ("java.lang.NullPointerException", "NullPointerException"),
        ("java.io.IOException: Truncated ZIP file", "Truncated ZIP file"),
        ("JniError(JavaException)", "JniError(JavaException)"),
        ("", "parser error"),
        ("line one\nline two", "line one"),
    ],
)
def test_error_detail(message: str, detail: str) -> None:
    assert error_detail(message) == detail


def test_error_detail_is_short_and_clean() -> None:
    detail = error_detail("x\x1b[2J" + "y" * 1000)
    assert len(detail) <= MAX_DETAIL_CHARS
    assert "\x1b" not in detail


def test_summarize_trace_keeps_first_line_and_causes_once() -> None:
    trace = "A: top\n\tat f\nCaused by: B: mid\n\tat g\nCaused by: B: mid\nCaused by: C: root\n"
    assert summarize_trace(trace) == "A: top\nCaused by: B: mid\nCaused by: C: root"


def test_clean_text_keeps_tabs_and_newlines() -> None:
    assert clean_text("a\tb\r\nc\x00\x0c\x7f") == "a\tb\r\nc"


# -- a child that was killed or died -----------------------------------------------------


def failure(
    reason: str = "", returncode: int | None = None, messages: str = ""
) -> tuple[ExtractionStatus, str]:
    result = classify_child_failure(
        reason=reason,
        returncode=returncode,
        parser_messages=messages,
        content_type="application/zip",
    )
    assert result.content_type == "application/zip"
    return result.status, result.detail


def test_child_killed_for_a_limit() -> None:
    assert failure("timeout: no result within 60 s", -9) == (
        ExtractionStatus.LIMIT_EXCEEDED,
        "timeout: no result within 60 s",
    )


def test_child_segfault_is_parse_error() -> None:
    assert failure(returncode=-signal.SIGSEGV) == (
        ExtractionStatus.PARSE_ERROR,
        "the parser crashed (SIGSEGV)",
    )


def test_child_killed_by_the_kernel_is_memory() -> None:
    status, detail = failure(returncode=-signal.SIGKILL)
    assert status is ExtractionStatus.LIMIT_EXCEEDED
    assert detail.startswith("memory")


def test_child_own_alarm_is_timeout() -> None:
    status, detail = failure(returncode=-signal.SIGALRM)
    assert status is ExtractionStatus.LIMIT_EXCEEDED
    assert detail.startswith("timeout")


def test_child_exit_after_java_oom_is_memory() -> None:
    status, _detail = failure(returncode=1, messages="java.lang.OutOfMemoryError: Java heap space")
    assert status is ExtractionStatus.LIMIT_EXCEEDED


def test_child_exit_status_is_parse_error() -> None:
    assert failure(returncode=3) == (
        ExtractionStatus.PARSE_ERROR,
        "the parser process exited with status 3",
    )
