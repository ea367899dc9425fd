"""Hangul letters (jamo) for suggestions as you type and for corrections.

A syllable typed halfway is a prefix of the whole one only letter by letter
(`행정아` is on its way to `행정안`), so completion keys spell words in
compatibility jamo, compound letters split (`ㅘ` → ㅗㅏ, `ㄺ` → ㄹㄱ) so any
keystroke order of a keyboard is a prefix. Initial consonants (`ㅎㅈㅇㅈㅂ` for
행정안전부, 초성 search) are a second key. Corrections compare words by edit
distance over these letters, so one wrong letter is one edit, not a whole
syllable. Other characters pass through unchanged.
"""

from __future__ import annotations

import unicodedata

_FIRST = 0xAC00
_LAST = 0xD7A3
_INITIALS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_MEDIALS = (
    "ㅏ",
    "ㅐ",
    "ㅑ",
    "ㅒ",
    "ㅓ",
    "ㅔ",
    "ㅕ",
    "ㅖ",
    "ㅗ",
    "ㅗㅏ",
    "ㅗㅐ",
    "ㅗㅣ",
    "ㅛ",
    "ㅜ",
    "ㅜㅓ",
    "ㅜㅔ",
    "ㅜㅣ",
    "ㅠ",
    "ㅡ",
    "ㅡㅣ",
    "ㅣ",
)
_FINALS = (
    "",
    "ㄱ",
    "ㄲ",
    "ㄱㅅ",
    "ㄴ",
    "ㄴㅈ",
    "ㄴㅎ",
    "ㄷ",
    "ㄹ",
    "ㄹㄱ",
    "ㄹㅁ",
    "ㄹㅂ",
    "ㄹㅅ",
    "ㄹㅌ",
    "ㄹㅍ",
    "ㄹㅎ",
    "ㅁ",
    "ㅂ",
    "ㅂㅅ",
    "ㅅ",
    "ㅆ",
    "ㅇ",
    "ㅈ",
    "ㅊ",
    "ㅋ",
    "ㅌ",
    "ㅍ",
    "ㅎ",
)
#: Compound compatibility letters a user may type as one key.
_SPLIT = {
    "ㅘ": "ㅗㅏ",
    "ㅙ": "ㅗㅐ",
    "ㅚ": "ㅗㅣ",
    "ㅝ": "ㅜㅓ",
    "ㅞ": "ㅜㅔ",
    "ㅟ": "ㅜㅣ",
    "ㅢ": "ㅡㅣ",
    "ㄳ": "ㄱㅅ",
    "ㄵ": "ㄴㅈ",
    "ㄶ": "ㄴㅎ",
    "ㄺ": "ㄹㄱ",
    "ㄻ": "ㄹㅁ",
    "ㄼ": "ㄹㅂ",
    "ㄽ": "ㄹㅅ",
    "ㄾ": "ㄹㅌ",
    "ㄿ": "ㄹㅍ",
    "ㅀ": "ㄹㅎ",
    "ㅄ": "ㅂㅅ",
}
_CONSONANTS = frozenset(_INITIALS) | frozenset("ㄳㄵㄶㄺㄻㄼㄽㄾㄿㅀㅄ")


def letters(text: str) -> str:
    """`text` (NFC, lowercased) with every Hangul syllable spelled in compatibility jamo."""
    out: list[str] = []
    for char in unicodedata.normalize("NFC", text).lower():
        code = ord(char)
        if _FIRST <= code <= _LAST:
            index = code - _FIRST
            out.append(_INITIALS[index // 588])
            out.append(_MEDIALS[(index % 588) // 28])
            out.append(_FINALS[index % 28])
        else:
            out.append(_SPLIT.get(char, char))
    return "".join(out)


def initials(text: str) -> str:
    """The initial consonants of the Hangul syllables of `text` ('' if it has none)."""
    return "".join(
        _INITIALS[(ord(c) - _FIRST) // 588]
        for c in unicodedata.normalize("NFC", text)
        if _FIRST <= ord(c) <= _LAST
    )


def is_initials(text: str) -> bool:
    """Whether `text` is only Hangul consonant letters (an initial-consonant search)."""
    return bool(text) and all(c in _CONSONANTS for c in text)


def edit_distance(a: str, b: str, limit: int) -> int:
    """Levenshtein distance of `a` and `b`, or `limit + 1` once it exceeds `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        current = [i]
        for j, cb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ca != cb)))
        if min(current) > limit:
            return limit + 1
        previous = current
    return previous[-1] if previous[-1] <= limit else limit + 1
