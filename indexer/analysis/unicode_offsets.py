"""NFC normalisation that remembers where each output character came from.

Analysis runs on NFC text (mecab's dictionary is NFC, and a decomposed Hangul
syllable is three jamo), but token offsets must point into the text the caller
gave us, which may be NFD or mixed. `to_nfc` returns the normalised text and, only
when normalisation changed something, a map from NFC offsets back to the input.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# A cluster that keeps growing is pathological input (thousands of combining
# marks); past this length we stop growing it so the work stays linear, and the
# final consistency check falls back to the coarse per-word map if that broke
# composition.
_MAX_CLUSTER = 32

_WORD = re.compile(r"\S+")


@dataclass(frozen=True, slots=True)
class OffsetMap:
    """Maps a character span of the NFC text back to a span of the original text."""

    #: For NFC character i: the original offset where its source begins.
    starts: tuple[int, ...]
    #: For NFC character i: the original offset where its source ends.
    ends: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """The original span covering NFC characters [start, end) (end > start)."""
        return self.starts[start], self.ends[end - 1]


def to_nfc(text: str) -> tuple[str, OffsetMap | None]:
    """Return `text` in NFC and a map back to `text`, or None when it was already NFC."""
    if unicodedata.is_normalized("NFC", text):
        return text, None
    nfc = unicodedata.normalize("NFC", text)
    starts: list[int] = []
    ends: list[int] = []
    prev = 0
    # Whitespace never composes with its neighbours, so each word normalises on
    # its own and the gaps between words map one to one.
    for match in _WORD.finditer(text):
        for k in range(prev, match.start()):
            starts.append(k)
            ends.append(k + 1)
        _map_word(text, match.start(), match.end(), starts, ends)
        prev = match.end()
    for k in range(prev, len(text)):
        starts.append(k)
        ends.append(k + 1)
    if len(starts) != len(nfc):  # pragma: no cover - whitespace never composes
        # Still return a valid (if useless) map rather than wrong offsets.
        return nfc, OffsetMap((0,) * len(nfc), (len(text),) * len(nfc))
    return nfc, OffsetMap(tuple(starts), tuple(ends))


def _map_word(text: str, begin: int, end: int, starts: list[int], ends: list[int]) -> None:
    """Append the map entries of the NFC form of text[begin:end]."""
    word = text[begin:end]
    if unicodedata.is_normalized("NFC", word):
        starts.extend(range(begin, end))
        ends.extend(range(begin + 1, end + 1))
        return
    target = unicodedata.normalize("NFC", word)
    pieces: list[str] = []
    local_starts: list[int] = []
    local_ends: list[int] = []
    i = begin
    while i < end:
        j = i + 1
        current = unicodedata.normalize("NFC", text[i:j])
        # Grow the cluster while the next character composes into it (its NFC
        # does not get longer) or is a combining mark that belongs to it.
        while j < end and j - i < _MAX_CLUSTER:
            grown = unicodedata.normalize("NFC", text[i : j + 1])
            if len(grown) <= len(current) or unicodedata.combining(text[j]):
                current = grown
                j += 1
            else:
                break
        pieces.append(current)
        local_starts.extend([i] * len(current))
        local_ends.extend([j] * len(current))
        i = j
    if "".join(pieces) != target:
        # Composition crossed our cluster boundaries: map every character of
        # the word to the whole word. Coarse, but always valid.
        local_starts = [begin] * len(target)
        local_ends = [end] * len(target)
    starts.extend(local_starts)
    ends.extend(local_ends)
