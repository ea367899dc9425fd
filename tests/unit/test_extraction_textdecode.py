"""Charset decisions for plain-text files (pure)."""

from __future__ import annotations

import codecs

import pytest

from indexer.extraction.textdecode import (
    decode_korean_legacy,
    decode_text,
    decode_text_with_fallback,
    hangul_share,
)

NOTICE = "출생신고 안내문\n주민센터에 방문하여 신고하십시오."
# 똠, 햏, 뷁 exist in CP949 only (not in EUC-KR / KS X 1001).
UHC = "똠방각하 햏자 뷁 출생신고 안내문입니다."


@pytest.mark.parametrize(
    ("data", "label"),
    [
        (codecs.BOM_UTF8 + NOTICE.encode("utf-8"), "UTF-8"),
        (codecs.BOM_UTF16_LE + NOTICE.encode("utf-16-le"), "UTF-16LE"),
        (codecs.BOM_UTF16_BE + NOTICE.encode("utf-16-be"), "UTF-16BE"),
        (codecs.BOM_UTF32_LE + NOTICE.encode("utf-32-le"), "UTF-32LE"),
        (NOTICE.encode("utf-16-le"), "UTF-16LE"),  # no BOM: Tika reads this as IBM866
        (NOTICE.encode("utf-16-be"), "UTF-16BE"),
        (NOTICE.encode("utf-8"), "UTF-8"),
        (NOTICE.encode("cp949"), "EUC-KR"),
        ("출생신고 안내문".encode("cp949"), "EUC-KR"),  # short: Tika says ISO-8859-1
        (UHC.encode("cp949"), "x-windows-949"),  # Tika says KOI8-R
        (("Report 2025 version 1.2 " * 20 + "홍길동").encode("cp949"), "EUC-KR"),
    ],
)
def test_korean_text_is_decoded(data: bytes, label: str) -> None:
    decoded = decode_text(data)
    assert decoded is not None
    assert decoded.charset == label
    assert "안내문" in decoded.text or "홍길동" in decoded.text


@pytest.mark.parametrize(
    "data",
    [
        "Café crème brûlée à la française, déjà vu. Über Straße.".encode("latin-1"),
        "Привет мир, это тест кодировки.".encode("cp1251"),
        bytes(range(0x80, 0x100)),
    ],
)
def test_western_legacy_text_is_not_taken_for_korean(data: bytes) -> None:
    assert decode_text(data) is None


def test_a_character_cut_at_the_end_of_a_prefix_is_not_an_error() -> None:
    data = NOTICE.encode("cp949")
    decoded = decode_text(data[:-1], complete=False)
    assert decoded is not None
    assert decoded.text == NOTICE[:-1]
    utf8 = NOTICE.encode("utf-8")
    decoded = decode_text(utf8[:-1], complete=False)
    assert decoded is not None
    assert decoded.charset == "UTF-8"


def test_utf8_is_preferred_over_cp949() -> None:
    assert decode_korean_legacy(NOTICE.encode("utf-8")) is None


def test_fallback_uses_the_parser_charset_then_its_text_then_latin1() -> None:
    ebcdic = "IntelliStation POWER Hardware".encode("cp500")
    decoded = decode_text_with_fallback(
        ebcdic, complete=True, parser_text="?", parser_charset="IBM500"
    )
    assert (decoded.text, decoded.charset) == ("IntelliStation POWER Hardware", "IBM500")

    latin = "déjà vu".encode("latin-1")
    decoded = decode_text_with_fallback(
        latin, complete=True, parser_text="déjà vu", parser_charset="x-unknown"
    )
    assert (decoded.text, decoded.charset) == ("déjà vu", "")

    decoded = decode_text_with_fallback(latin, complete=True, parser_text="")
    assert (decoded.text, decoded.charset) == ("déjà vu", "ISO-8859-1")


def test_hangul_share() -> None:
    assert hangul_share("plain ascii") == 1.0
    assert hangul_share("한글") == 1.0
    assert hangul_share("漢字") == 0.0
