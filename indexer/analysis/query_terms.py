"""A `UserQuery` analysed into index terms, ready for an engine to turn into its own query.

Everything the user typed goes through the analyser, never through an engine's
query parser: `*:*`, `title:x` or JSON become plain words (or nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.analysis.korean import AnalysisMode, KoreanAnalyzer
from indexer.query import UserQuery

#: A run of terms with their positions relative to the first one.
PositionedTerms = tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class AnalyzedQuery:
    """The terms of a query.

    A document matches when, for every entry of `words`, some text field holds
    all of that word's terms; every entry of `phrases` occurs as a phrase in
    some text field; and no entry of `excluded` occurs as a phrase in any.
    """

    #: One entry per positive word that produced terms: its terms in order.
    words: tuple[PositionedTerms, ...] = ()
    #: One entry per positive phrase that produced terms.
    phrases: tuple[PositionedTerms, ...] = ()
    #: Excluded words and phrases that produced terms.
    excluded: tuple[PositionedTerms, ...] = ()
    #: The user asked for something (a word or phrase) but none of it analysed
    #: to a term (e.g. `*:*`): the query matches nothing.
    matches_nothing: bool = False

    @property
    def has_positive(self) -> bool:
        """Whether there is a positive clause (otherwise: all readable documents)."""
        return bool(self.words or self.phrases)

    @property
    def highlight_terms(self) -> frozenset[str]:
        """The terms to mark in highlights (positive clauses only)."""
        return frozenset(term for group in (*self.words, *self.phrases) for _, term in group)


def analyze_query(analyzer: KoreanAnalyzer, query: UserQuery) -> AnalyzedQuery:
    """Analyse every word and phrase of `query` in query mode (compound parts only).

    The positive words are analysed together, as the sentence the user typed:
    morphological analysis depends on context (`빈 파일` is 비+파일, `빈` alone
    is the noun 빈), and documents are analysed in context too.
    """
    words = tuple(t for t in _words_in_context(analyzer, query.words) if t)
    phrases = tuple(t for t in (_positioned(analyzer, p) for p in query.phrases) if t)
    excluded = tuple(t for t in (_positioned(analyzer, e) for e in query.excluded) if t)
    matches_nothing = query.has_positive and not (words or phrases)
    return AnalyzedQuery(words, phrases, excluded, matches_nothing)


def _words_in_context(analyzer: KoreanAnalyzer, words: tuple[str, ...]) -> list[PositionedTerms]:
    """Each word's terms, from one analysis of all the words joined by spaces."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for word in words:
        spans.append((offset, offset + len(word)))
        offset += len(word) + 1
    tokens = analyzer.analyze(" ".join(words), AnalysisMode.QUERY)
    grouped: list[list[tuple[int, str]]] = [[] for _ in words]
    for tok in tokens:
        for i, (start, end) in enumerate(spans):
            if start <= tok.start < end:
                grouped[i].append((tok.position, tok.text))
                break
    out: list[PositionedTerms] = []
    for group in grouped:
        first = group[0][0] if group else 0
        out.append(tuple((position - first, text) for position, text in group))
    return out


def _positioned(analyzer: KoreanAnalyzer, text: str) -> PositionedTerms:
    tokens = analyzer.analyze(text, AnalysisMode.QUERY)
    if not tokens:
        return ()
    first = tokens[0].position
    return tuple((tok.position - first, tok.text) for tok in tokens)
