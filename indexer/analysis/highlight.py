"""Highlight fragments: the original text, HTML-escaped, with matched terms in <mark>.

Matches are found with the analyser, so an inflected surface is marked where its
term occurs (query 저장소 marks `<mark>저장소</mark>에서`), but without analysing
the whole text: a cheap scan finds the words that could hold a term (those
containing the term, or its first characters for stems such as 아름답 in
아름다운), and only a bounded number of those words are analysed, each on its
own (the analyser remembers words it saw lately, and sends the others to mecab
in one call). The work per document is therefore bounded whatever its size.

`surfaces` (the Hangul a query word's compound fallback matched, see
`indexer.analysis.grams`) are marked where they occur as written, e.g. `저장소`
inside a coined compound mecab reads as other pieces.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass

from indexer.analysis.korean import KoreanAnalyzer

DEFAULT_FRAGMENT_CHARS = 150
DEFAULT_MAX_FRAGMENTS = 3
#: At most this many candidate words are analysed per text.
DEFAULT_MAX_CANDIDATES = 48
#: Only this much of a text is searched for matches (bounds the work on huge bodies).
_SCAN_CHARS = 200_000
#: A candidate word longer than this is cut (blobs without spaces).
_MAX_WORD_CHARS = 64
_SPACE = re.compile(r"\s+")
#: How far a fragment edge may move to land on a space instead of mid-word.
_SNAP_CHARS = 16


@dataclass(frozen=True, slots=True)
class _Window:
    start: int
    end: int
    spans: tuple[tuple[int, int, str], ...]

    @property
    def score(self) -> tuple[int, int]:
        return len({term for _, _, term in self.spans}), len(self.spans)


def highlight(
    analyzer: KoreanAnalyzer,
    text: str,
    terms: Iterable[str],
    *,
    fragment_chars: int = DEFAULT_FRAGMENT_CHARS,
    max_fragments: int = DEFAULT_MAX_FRAGMENTS,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    surfaces: Iterable[str] = (),
) -> list[str]:
    """Up to `max_fragments` HTML fragments of `text` around matches of `terms`.

    `terms` are analysed (query-mode) terms; `surfaces` are marked where they
    occur as written. Fragments are about `fragment_chars` long, in text order,
    whitespace collapsed, with `…` where the text was cut. Returns [] when
    nothing in the scanned part of `text` matches.
    """
    wanted = frozenset(terms)
    if not text or not (wanted or surfaces):
        return []
    spans = match_spans(
        analyzer, text, wanted, max_candidates=max_candidates, surfaces=frozenset(surfaces)
    )
    if not spans:
        return []
    windows = _windows(text, spans, fragment_chars)
    best = sorted(windows, key=lambda w: (-w.score[0], -w.score[1], w.start))[:max_fragments]
    return [_render(text, w) for w in sorted(best, key=lambda w: w.start)]


def match_spans(
    analyzer: KoreanAnalyzer,
    text: str,
    terms: frozenset[str],
    *,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    surfaces: frozenset[str] = frozenset(),
) -> list[tuple[int, int, str]]:
    """Sorted, merged (start, end, first term) spans of `text` whose analysis yields a
    term, or that are one of `surfaces` as written."""
    candidates = _candidates(text, terms, max_candidates) if terms else []
    raw: list[tuple[int, int, str]] = []
    if candidates:
        words = analyzer.analyze_words([text[start:end] for start, end in candidates])
        raw = [
            (start + tok.start, start + tok.end, tok.text)
            for (start, _), tokens in zip(candidates, words, strict=True)
            for tok in tokens
            if tok.text in terms
        ]
    scan_end = min(len(text), _SCAN_CHARS)
    for surface in surfaces:
        raw.extend(
            (pos, pos + len(surface), surface)
            for pos in _occurrences(text, surface, scan_end, max_candidates)
        )
    if not raw:
        return []
    raw.sort()
    merged: list[tuple[int, int, str]] = []
    for start, end, term in raw:
        if merged and start <= merged[-1][1]:
            prev_start, prev_end, prev_term = merged[-1]
            merged[-1] = (prev_start, max(prev_end, end), prev_term)
        else:
            merged.append((start, end, term))
    return merged


def _candidates(text: str, terms: frozenset[str], limit: int) -> list[tuple[int, int]]:
    """Sorted, disjoint spans of the words (in the first _SCAN_CHARS) that may hold a term."""
    long_probes: set[str] = set()
    short_probes: set[str] = set()
    for term in terms:
        # Stems often lose their last letter in the surface (아름답 → 아름다운,
        # happi → happy); shorter terms are searched as they are.
        probe = term[:-1] if len(term) > 2 else term
        (long_probes if len(probe) > 1 else short_probes).add(probe)
    scan_end = min(len(text), _SCAN_CHARS)
    found: dict[int, int] = {}
    # Single-letter probes (저, 관) occur in many words; look for the longer
    # ones first so they cannot use up the budget.
    for probes in (long_probes, short_probes):
        if not probes or len(found) >= limit:
            continue
        hits = sorted(
            {pos for probe in probes for pos in _occurrences(text, probe, scan_end, limit)}
        )
        last_end = -1
        for pos in hits:
            if pos < last_end:
                continue  # inside a word already taken
            start, end = _word_around(text, pos, pos + 1)
            last_end = end
            found.setdefault(start, end)
            if len(found) >= limit:
                break
    spans: list[tuple[int, int]] = []
    for start, end in sorted(found.items()):
        if spans and start < spans[-1][1]:
            continue
        spans.append((start, end))
    return spans


def _occurrences(text: str, probe: str, end: int, limit: int) -> list[int]:
    """The first `limit` places of `probe` in text[:end], as written, in capitals or capitalised.

    str.find runs at memory speed; a case-insensitive regex alternation or a
    lowercased copy of a long text costs ten times more.
    """
    found: list[int] = []
    for variant in {probe, probe.upper(), probe.capitalize()}:
        pos = text.find(variant, 0, end)
        count = 0
        while pos >= 0 and count < limit:
            found.append(pos)
            count += 1
            pos = text.find(variant, pos + len(variant), end)
    return found


def _word_around(text: str, start: int, end: int) -> tuple[int, int]:
    """The whitespace-delimited word around text[start:end], at most _MAX_WORD_CHARS long."""
    lo = max(0, start - _MAX_WORD_CHARS // 2)
    word_start = start
    while word_start > lo and not text[word_start - 1].isspace():
        word_start -= 1
    hi = min(len(text), max(end, word_start + _MAX_WORD_CHARS))
    word_end = end
    while word_end < hi and not text[word_end].isspace():
        word_end += 1
    return word_start, word_end


def _windows(text: str, spans: list[tuple[int, int, str]], fragment_chars: int) -> list[_Window]:
    """Group spans greedily into windows of about `fragment_chars` characters."""
    windows: list[_Window] = []
    i = 0
    while i < len(spans):
        first_start = spans[i][0]
        # Some context before the first match, the rest of the budget after it.
        start = max(0, first_start - fragment_chars // 5)
        end = min(len(text), start + fragment_chars)
        j = i
        while j < len(spans) and spans[j][1] <= end:
            j += 1
        if j == i:  # one match longer than the window: keep it whole
            end = spans[i][1]
            j = i + 1
        start = _snap_start(text, start, first_start)
        end = _snap_end(text, end, spans[j - 1][1])
        windows.append(_Window(start, end, tuple(spans[i:j])))
        i = j
    return windows


def _snap_start(text: str, start: int, limit: int) -> int:
    if start == 0:
        return 0
    for k in range(start, min(limit, start + _SNAP_CHARS)):
        if text[k].isspace():
            start = k + 1
            break
    while start < limit and text[start].isspace():
        start += 1
    return start


def _snap_end(text: str, end: int, limit: int) -> int:
    if end >= len(text):
        return len(text)
    for k in range(end, max(limit, end - _SNAP_CHARS), -1):
        if text[k - 1].isspace():
            end = k - 1
            break
    while end > limit and text[end - 1].isspace():
        end -= 1
    return end


def _render(text: str, window: _Window) -> str:
    parts: list[str] = []
    if window.start > 0:
        parts.append("…")
    cursor = window.start
    for start, end, _ in window.spans:
        parts.append(_plain(text[cursor:start]))
        parts.append(f"<mark>{_plain(text[start:end])}</mark>")
        cursor = end
    parts.append(_plain(text[cursor : window.end]))
    if window.end < len(text):
        parts.append("…")
    # Where the fragment reaches an edge of the text, the text's own leading or
    # trailing whitespace (a final newline) is not part of it.
    if window.start == 0:
        parts[0] = parts[0].lstrip()
    if window.end >= len(text):
        parts[-1] = parts[-1].rstrip()
    return "".join(parts)


def _plain(segment: str) -> str:
    return html.escape(_SPACE.sub(" ", segment))
