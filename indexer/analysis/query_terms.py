"""A `UserQuery` analysed into index terms, ready for an engine to turn into its own query.

Everything the user typed goes through the analyser, never through an engine's
query parser: `*:*`, `title:x` or JSON become plain words (or nothing).

Synonyms (see `indexer.analysis.synonyms`) are applied here, at query time, to
the analysed terms: a run of terms a rule applies to becomes a `SynonymSpan`
that may be matched by the typed terms or by any alternative as a phrase.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from indexer.analysis.grams import has_hangul, query_runs
from indexer.analysis.korean import AnalysisMode, KoreanAnalyzer
from indexer.analysis.synonyms import PositionedTerms, Synonyms, SynonymSpan
from indexer.query import UserQuery

__all__ = [
    "AnalyzedQuery",
    "Fallback",
    "PositionedTerms",
    "SynonymSpan",
    "analyze_query",
    "phrase_variants",
]

#: At most this many variants of one phrase are searched (the product of its spans' options).
MAX_PHRASE_VARIANTS = 16


@dataclass(frozen=True)
class Fallback:
    """How a word is found inside compounds mecab reads otherwise (see `indexer.analysis.grams`).

    A document matches the fallback when each of `runs` occurs, as written, in
    its Hangul (as a phrase of the run's grams) and it holds every one of
    `terms` (the word's non-Hangul terms, e.g. `2024` or `ai`, on the
    morphological field). Matches of the fallback rank below morphological ones.
    """

    runs: tuple[str, ...]
    terms: tuple[str, ...]


@dataclass(frozen=True)
class AnalyzedQuery:
    """The terms of a query.

    A document matches when, for every entry of `words`, some text field holds
    all of that word's terms; every entry of `phrases` occurs as a phrase in
    some text field; and no entry of `excluded` occurs as a phrase in any.

    With synonyms, the `*_synonyms` tuples hold, per clause (same index), the
    spans of its terms a synonym rule applies to: for a word, the terms of a
    span may be replaced by one of its alternatives occurring as a phrase (the
    word's other terms are still required); a phrase or an exclusion is each of
    its `phrase_variants`. Empty tuples mean no synonyms anywhere.
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
    word_synonyms: tuple[tuple[SynonymSpan, ...], ...] = ()
    phrase_synonyms: tuple[tuple[SynonymSpan, ...], ...] = ()
    excluded_synonyms: tuple[tuple[SynonymSpan, ...], ...] = ()
    #: Per entry of `words` (same index): the text the user typed for it, from
    #: its first term to its last (particles and endings after it left out:
    #: `저장소에서` → `저장소`), for the compound fallback. Empty: no fallback
    #: (also for a word of the user dictionary, whose bounds the dictionary fixes).
    word_surfaces: tuple[str, ...] = ()
    #: The same per entry of `excluded`: an excluded word is also excluded where
    #: it occurs inside a compound (what the word would find, it excludes).
    excluded_surfaces: tuple[str, ...] = ()

    @property
    def has_positive(self) -> bool:
        """Whether there is a positive clause (otherwise: all readable documents)."""
        return bool(self.words or self.phrases)

    @property
    def highlight_terms(self) -> frozenset[str]:
        """The terms to mark in highlights (positive clauses and their synonyms)."""
        typed = {term for group in (*self.words, *self.phrases) for _, term in group}
        for spans in (*self.word_synonyms, *self.phrase_synonyms):
            for span in spans:
                typed.update(term for alt in span.alternatives for _, term in alt)
        return frozenset(typed)

    @property
    def highlight_surfaces(self) -> frozenset[str]:
        """Hangul text to mark as written (where the compound fallback matched)."""
        return frozenset(
            run
            for i in range(len(self.words))
            if (fallback := self.fallback(i)) is not None
            for run in fallback.runs
        )

    def fallback(self, index: int) -> Fallback | None:
        """The compound fallback of `words[index]` (None: the word has no Hangul
        run of two syllables or more, so only the morphological match counts)."""
        if any(not span.keep_original for span in self.word_spans(index)):
            return None  # a one-way synonym replaces what was typed, so it is not sought
        surface = self.word_surfaces[index] if index < len(self.word_surfaces) else ""
        return _fallback(surface, self.words[index])

    def excluded_fallback(self, index: int) -> Fallback | None:
        """The compound fallback of `excluded[index]`, when it is one word."""
        if any(not span.keep_original for span in self.excluded_spans(index)):
            return None
        surface = self.excluded_surfaces[index] if index < len(self.excluded_surfaces) else ""
        return _fallback(surface, self.excluded[index])

    def word_spans(self, index: int) -> tuple[SynonymSpan, ...]:
        """The synonym spans of `words[index]`."""
        return _at(self.word_synonyms, index)

    def phrase_spans(self, index: int) -> tuple[SynonymSpan, ...]:
        """The synonym spans of `phrases[index]`."""
        return _at(self.phrase_synonyms, index)

    def excluded_spans(self, index: int) -> tuple[SynonymSpan, ...]:
        """The synonym spans of `excluded[index]`."""
        return _at(self.excluded_synonyms, index)


def _fallback(surface: str, terms: PositionedTerms) -> Fallback | None:
    runs = tuple(dict.fromkeys(query_runs(surface)))
    if not runs:
        return None
    return Fallback(runs, tuple(dict.fromkeys(t for _, t in terms if not has_hangul(t))))


def _at(spans: tuple[tuple[SynonymSpan, ...], ...], index: int) -> tuple[SynonymSpan, ...]:
    return spans[index] if index < len(spans) else ()


def analyze_query(
    analyzer: KoreanAnalyzer, query: UserQuery, synonyms: Synonyms | None = None
) -> AnalyzedQuery:
    """Analyse every word and phrase of `query` in query mode (compound parts only).

    The positive words are analysed together, as the sentence the user typed:
    morphological analysis depends on context (`빈 파일` is 비+파일, `빈` alone
    is the noun 빈), and documents are analysed in context too. With
    `synonyms`, a rule may also span words (`행정 안전부` is `행정안전부`): the
    words it spans become one entry of `words`.
    """
    in_context = [
        (t, s) for t, s in zip(*_words_in_context(analyzer, query.words), strict=True) if t
    ]
    words = tuple(t for t, _ in in_context)
    surfaces = tuple(_fallback_surface(analyzer, s) for _, s in in_context)
    phrases = tuple(t for t in (_positioned(analyzer, p) for p in query.phrases) if t)
    excluded_pairs = [(_positioned(analyzer, e), _one_word(e)) for e in query.excluded]
    excluded = tuple(t for t, _ in excluded_pairs if t)
    excluded_surfaces = tuple(_fallback_surface(analyzer, s) for t, s in excluded_pairs if t)
    matches_nothing = query.has_positive and not (words or phrases)
    if synonyms is None or not len(synonyms):
        return AnalyzedQuery(
            words,
            phrases,
            excluded,
            matches_nothing,
            word_surfaces=surfaces,
            excluded_surfaces=excluded_surfaces,
        )
    words, word_spans, surfaces = _words_with_synonyms(words, surfaces, synonyms)
    phrase_spans = tuple(tuple(synonyms.spans(_texts(p))) for p in phrases)
    excluded_spans = tuple(tuple(synonyms.spans(_texts(e))) for e in excluded)
    return AnalyzedQuery(
        words,
        phrases,
        excluded,
        matches_nothing,
        word_spans if any(word_spans) else (),
        phrase_spans if any(phrase_spans) else (),
        excluded_spans if any(excluded_spans) else (),
        surfaces,
        excluded_surfaces,
    )


def phrase_variants(
    terms: PositionedTerms, spans: tuple[SynonymSpan, ...], limit: int = MAX_PHRASE_VARIANTS
) -> list[PositionedTerms]:
    """Every way to write the phrase `terms` with its synonym spans replaced (at most `limit`).

    The typed phrase comes first (when every span keeps it); positions after a
    replaced span shift by the difference in length.
    """
    if not spans:
        return [terms]
    segments: list[list[PositionedTerms]] = []
    cursor = 0
    for span in spans:
        if cursor < span.start:
            segments.append([terms[cursor : span.start]])
        options = [terms[span.start : span.end]] if span.keep_original else []
        segments.append(options + list(span.alternatives))
        cursor = span.end
    if cursor < len(terms):
        segments.append([terms[cursor:]])
    out: list[PositionedTerms] = []
    for choice in itertools.product(*segments):
        variant: list[tuple[int, str]] = []
        shift = 0
        for piece in choice:
            if not piece:
                continue
            base = piece[0][0]
            variant.extend((shift + pos - base, term) for pos, term in piece)
            shift = variant[-1][0] + 1
        out.append(tuple(variant))
        if len(out) >= limit:
            break
    return out


def _texts(terms: PositionedTerms) -> list[str]:
    return [term for _, term in terms]


def _words_with_synonyms(
    words: tuple[PositionedTerms, ...], surfaces: tuple[str, ...], synonyms: Synonyms
) -> tuple[tuple[PositionedTerms, ...], tuple[tuple[SynonymSpan, ...], ...], tuple[str, ...]]:
    """The words, those a synonym span crosses merged into one, each word's spans,
    and each word's surface (merged words' surfaces joined by a space)."""
    owner = [i for i, word in enumerate(words) for _ in word]  # flat term -> its word
    flat = [term for word in words for _, term in word]
    found = synonyms.spans(flat)
    if not found:
        return words, (), surfaces
    # Words joined by a span: each word starts a group unless a span enters it from before.
    joined_to_previous = [False] * len(words)
    for span in found:
        for w in range(owner[span.start] + 1, owner[span.end - 1] + 1):
            joined_to_previous[w] = True
    merged: list[PositionedTerms] = []
    merged_surfaces: list[str] = []
    merged_spans: list[tuple[SynonymSpan, ...]] = []
    starts: list[int] = []  # flat index where each merged word begins
    flat_index = 0
    for w, word in enumerate(words):
        if joined_to_previous[w]:
            previous = merged[-1]
            shift = previous[-1][0] + 1
            merged[-1] = previous + tuple((shift + pos, term) for pos, term in word)
            merged_surfaces[-1] += " " + surfaces[w]
        else:
            merged.append(word)
            merged_surfaces.append(surfaces[w])
            starts.append(flat_index)
        flat_index += len(word)
    merged_spans = [() for _ in merged]
    group = 0
    for span in found:
        while group + 1 < len(starts) and starts[group + 1] <= span.start:
            group += 1
        base = starts[group]
        merged_spans[group] = (
            *merged_spans[group],
            SynonymSpan(span.start - base, span.end - base, span.alternatives, span.keep_original),
        )
    return tuple(merged), tuple(merged_spans), tuple(merged_surfaces)


def _words_in_context(
    analyzer: KoreanAnalyzer, words: tuple[str, ...]
) -> tuple[list[PositionedTerms], list[str]]:
    """Each word's terms, from one analysis of all the words joined by spaces, and
    each word's surface from its first term to its last."""
    spans: list[tuple[int, int]] = []
    offset = 0
    for word in words:
        spans.append((offset, offset + len(word)))
        offset += len(word) + 1
    joined = " ".join(words)
    tokens = analyzer.analyze(joined, AnalysisMode.QUERY)
    grouped: list[list[tuple[int, str]]] = [[] for _ in words]
    extents: list[tuple[int, int] | None] = [None for _ in words]
    for tok in tokens:
        for i, (start, end) in enumerate(spans):
            if start <= tok.start < end:
                grouped[i].append((tok.position, tok.text))
                seen = extents[i]
                extents[i] = (
                    (tok.start, min(tok.end, end))
                    if seen is None
                    else (min(seen[0], tok.start), max(seen[1], min(tok.end, end)))
                )
                break
    out: list[PositionedTerms] = []
    for group in grouped:
        first = group[0][0] if group else 0
        out.append(tuple((position - first, text) for position, text in group))
    surfaces = ["" if e is None else joined[e[0] : e[1]] for e in extents]
    return out, surfaces


def _fallback_surface(analyzer: KoreanAnalyzer, surface: str) -> str:
    """`surface`, or '' (no compound fallback) when it is a user-dictionary word:
    the dictionary says where such a word starts and ends (`산업부` is not in
    `산업부문`), which matching it inside any compound would undo."""
    runs = query_runs(surface)
    if any(analyzer.is_user_word(run) for run in runs) or analyzer.is_user_word(surface):
        return ""
    return surface


def _one_word(text: str) -> str:
    """`text` if it is one word (an excluded word, not a phrase), else ''."""
    return "" if len(text.split()) != 1 else text.strip()


def _positioned(analyzer: KoreanAnalyzer, text: str) -> PositionedTerms:
    tokens = analyzer.analyze(text, AnalysisMode.QUERY)
    if not tokens:
        return ()
    first = tokens[0].position
    return tuple((tok.position - first, tok.text) for tok in tokens)
