"""Decoding plain-text files whose charset is not declared (pure functions).

Tika guesses the charset of a text file statistically and gets Korean legacy
files wrong: CP949 text with characters outside EUC-KR (똠, 햏…) comes out as
KOI8-R, short CP949 text or mostly-ASCII text with a few Hangul words as
ISO-8859-1, and UTF-16 without a byte-order mark as IBM866. For text we
therefore decide ourselves, with rules that cannot be fooled by a few bytes:
a byte-order mark, then UTF-16 when NUL bytes say so, strict UTF-8, strict
CP949 that actually reads as Hangul, and only then Tika's own guess (which is
right for EBCDIC, Arabic, Cyrillic…) or Latin-1.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

_BOMS: tuple[tuple[bytes, str, str], ...] = (
    # UTF-32 before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one.
    (codecs.BOM_UTF32_LE, "utf-32-le", "UTF-32LE"),
    (codecs.BOM_UTF32_BE, "utf-32-be", "UTF-32BE"),
    (codecs.BOM_UTF8, "utf-8", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "UTF-16LE"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "UTF-16BE"),
)

_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# Hangul syllables, conjoining jamo and compatibility jamo.
_HANGUL = re.compile(r"[\uac00-\ud7a3\u1100-\u11ff\u3130-\u318f]")

#: Minimum share of Hangul among the non-ASCII characters of a CP949 reading.
#: Western text misread as CP949 decodes to Hanja and rare symbols, not Hangul.
MIN_HANGUL_SHARE = 0.5


@dataclass(frozen=True)
class DecodedText:
    """Text decoded from bytes, with the charset label to record."""

    text: str
    charset: str  # IANA-style label, e.g. "UTF-8", "EUC-KR"; "" when Tika's reading was kept


def _decode(data: bytes, codec: str, *, complete: bool, errors: str = "strict") -> str:
    # An incremental decoder tolerates a multi-byte character cut at the end
    # of a prefix (we read at most a bounded number of bytes).
    decoder = codecs.getincrementaldecoder(codec)(errors=errors)
    return decoder.decode(data, final=complete)


def _strict(data: bytes, codec: str, *, complete: bool) -> str | None:
    try:
        return _decode(data, codec, complete=complete)
    except UnicodeDecodeError:
        return None


def hangul_share(text: str) -> float:
    """Share of Hangul characters among the non-ASCII characters of `text` (1.0 if none)."""
    non_ascii = len(_NON_ASCII.findall(text))
    if non_ascii == 0:
        return 1.0
    return len(_HANGUL.findall(text)) / non_ascii


def _utf16_without_bom(data: bytes, *, complete: bool) -> DecodedText | None:
    sample = data[:8192]
    if b"\x00" not in sample or len(sample) < 4:
        return None
    # ASCII characters in UTF-16 leave a NUL in their high byte: at odd offsets
    # for little-endian, even offsets for big-endian.
    even = sample[0::2].count(0)
    odd = sample[1::2].count(0)
    if odd >= 2 * even and odd:
        codec, label = "utf-16-le", "UTF-16LE"
    elif even >= 2 * odd and even:
        codec, label = "utf-16-be", "UTF-16BE"
    else:
        return None
    text = _strict(data, codec, complete=complete)
    if text is None or "\x00" in text:
        return None
    return DecodedText(text, label)


def decode_korean_legacy(data: bytes, *, complete: bool = True) -> DecodedText | None:
    """Read `data` as CP949 if it is not UTF-8 and reads as Hangul in CP949, else None.

    The label is "EUC-KR" when the bytes stay within EUC-KR, else "x-windows-949"
    (CP949 adds 8,822 Hangul syllables that EUC-KR lacks).
    """
    if _strict(data, "utf-8", complete=complete) is not None:
        return None
    text = _strict(data, "cp949", complete=complete)
    if text is None or "\x00" in text or hangul_share(text) < MIN_HANGUL_SHARE:
        return None
    label = "EUC-KR" if _strict(data, "euc_kr", complete=complete) is not None else "x-windows-949"
    return DecodedText(text, label)


def decode_text(data: bytes, *, complete: bool = True) -> DecodedText | None:
    """Decode plain-text bytes when the encoding can be told with confidence.

    `complete` is False when `data` is only a prefix of the file (a character
    cut at the end is then dropped, not an error). Returns None when no rule is
    sure: the caller then falls back to another guess.
    """
    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            return DecodedText(
                _decode(data[len(bom) :], codec, complete=complete, errors="replace"), label
            )
    utf16 = _utf16_without_bom(data, complete=complete)
    if utf16 is not None:
        return utf16
    utf8 = _strict(data, "utf-8", complete=complete)
    if utf8 is not None:
        return DecodedText(utf8, "UTF-8")
    return decode_korean_legacy(data, complete=complete)


def decode_text_with_fallback(
    data: bytes, *, complete: bool, parser_text: str, parser_charset: str = ""
) -> DecodedText:
    """`decode_text`, else the parser's guess, else Latin-1 (never fails).

    `parser_charset` and `parser_text` are Tika's guess and its reading. When our
    rules are not sure, the bytes are decoded with Tika's charset if Python
    knows it (the whole prefix, not only what Tika kept), else Tika's text is
    kept as is (label ""); Latin-1 is the last resort.
    """
    decoded = decode_text(data, complete=complete)
    if decoded is not None:
        return decoded
    if parser_charset:
        try:
            codecs.lookup(parser_charset)
        except LookupError:
            pass
        else:
            text = _decode(data, parser_charset, complete=complete, errors="replace")
            return DecodedText(text, parser_charset)
    if parser_text:
        return DecodedText(parser_text, "")
    return DecodedText(data.decode("latin-1"), "ISO-8859-1")
