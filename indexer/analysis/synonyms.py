"""Query-time synonyms, from a file in Solr's synonym format (what Elasticsearch reads).

One rule a line; blank lines and lines starting with `#` are ignored:

* `행안부, 행정안전부, 행정자치부`: equivalent; a query for any of them also
  finds the others;
* `행정자치부 => 행정안전부`: one-way; a query for the left side searches the
  right side instead (add the left side on the right to keep it too).

`\\,` is a literal comma. Every entry is analysed like a query, so it may be
several words, and a rule's entries are matched against a query's analysed
terms, never its raw text: `행안부의` is `행안부` for the rule. An alternative
of several terms is searched as a phrase (its terms next to each other, in
order), so `행정 안전 부` scattered over a document does not count as
`행정안전부`.

Synonyms only change queries, so an edited file needs no reindex: `SynonymsFile`
rereads it when it changes. Elasticsearch's `synonym_graph` filter reads the same
file (see infra/elasticsearch/index-settings.json).
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from indexer.analysis.korean import AnalysisMode, KoreanAnalyzer
from indexer.errors import AnalysisConfigError

log = logging.getLogger(__name__)

#: A run of terms with their positions relative to the first one.
PositionedTerms = tuple[tuple[int, str], ...]

_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
#: How often (seconds) `SynonymsFile` looks at the file's modification time.
DEFAULT_CHECK_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class SynonymRule:
    """One line of the file: `inputs` may be searched as any of `outputs`."""

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SynonymSpan:
    """Terms `start:end` of a query clause and what may stand in their place."""

    start: int
    end: int
    #: Equivalent runs of terms; each is searched as a phrase.
    alternatives: tuple[PositionedTerms, ...]
    #: Whether the typed terms still count (False for a one-way rule replacing them).
    keep_original: bool = True


def parse_synonyms(text: str, *, source: str = "synonyms") -> list[SynonymRule]:
    """The rules of a Solr-format synonyms text. Raises `AnalysisConfigError`."""
    rules: list[SynonymRule] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = unicodedata.normalize("NFC", raw).strip()
        if not line or line.startswith("#"):
            continue
        sides = line.split("=>")
        if len(sides) > 2:
            raise AnalysisConfigError(f"{source}, line {number}: more than one '=>'")
        groups = [_entries(side) for side in sides]
        if any(not group for group in groups):
            raise AnalysisConfigError(f"{source}, line {number}: an empty side")
        if len(groups) == 1:
            if len(groups[0]) > 1:
                rules.append(SynonymRule(groups[0], groups[0]))
        else:
            rules.append(SynonymRule(groups[0], groups[1]))
    return rules


def _entries(side: str) -> tuple[str, ...]:
    out = []
    for item in _UNESCAPED_COMMA.split(side):
        entry = " ".join(item.replace("\\,", ",").replace("\\\\", "\\").split())
        if entry:
            out.append(entry)
    return tuple(out)


@dataclass(frozen=True, slots=True)
class _Expansion:
    alternatives: tuple[PositionedTerms, ...]
    keep_original: bool


class Synonyms:
    """Rules compiled with the query analyser: what a run of query terms may stand for."""

    def __init__(self, rules: Iterable[SynonymRule], analyzer: KoreanAnalyzer) -> None:
        """Analyse every entry. Raises `AnalysisConfigError` for an entry with no terms."""
        cache: dict[str, PositionedTerms] = {}

        def analysed(entry: str) -> PositionedTerms:
            terms = cache.get(entry)
            if terms is None:
                tokens = analyzer.analyze(entry, AnalysisMode.QUERY)
                if not tokens:
                    raise AnalysisConfigError(f"synonym {entry!r} has no searchable word")
                first = tokens[0].position
                terms = tuple((t.position - first, t.text) for t in tokens)
                cache[entry] = terms
            return terms

        alternatives: dict[tuple[str, ...], dict[tuple[str, ...], PositionedTerms]] = {}
        keep: dict[tuple[str, ...], bool] = {}
        for rule in rules:
            outputs = {_key(analysed(o)): analysed(o) for o in rule.outputs}
            for entry in rule.inputs:
                key = _key(analysed(entry))
                found = alternatives.setdefault(key, {})
                found.update((k, v) for k, v in outputs.items() if k != key)
                keep[key] = keep.get(key, False) or key in outputs
        self._rules: dict[tuple[str, ...], _Expansion] = {
            key: _Expansion(tuple(found.values()), keep[key])
            for key, found in alternatives.items()
            if found or not keep[key]
        }
        self._longest = max((len(k) for k in self._rules), default=0)

    def __len__(self) -> int:
        return len(self._rules)

    def current(self) -> Synonyms:
        """This set itself (so a fixed set is a `SynonymSource`)."""
        return self

    def spans(self, terms: Sequence[str]) -> list[SynonymSpan]:
        """The runs of `terms` a rule applies to, left to right, longest first, not overlapping."""
        out: list[SynonymSpan] = []
        if not self._rules:
            return out
        i = 0
        while i < len(terms):
            for length in range(min(self._longest, len(terms) - i), 0, -1):
                found = self._rules.get(tuple(terms[i : i + length]))
                if found is not None:
                    out.append(SynonymSpan(i, i + length, found.alternatives, found.keep_original))
                    i += length
                    break
            else:
                i += 1
        return out


def _key(terms: PositionedTerms) -> tuple[str, ...]:
    return tuple(term for _, term in terms)


class SynonymSource(Protocol):
    """Where the search gets its synonyms from, per query."""

    def current(self) -> Synonyms:
        """The synonyms in force now."""
        ...


class SynonymsFile:
    """The synonyms of a file, reread when the file changes (thread-safe).

    The file is checked at most every `check_seconds`. An edit that does not
    parse is logged and ignored: searches keep the last good rules.
    """

    def __init__(
        self,
        path: Path,
        analyzer: KoreanAnalyzer,
        *,
        check_seconds: float = DEFAULT_CHECK_SECONDS,
    ) -> None:
        """Read the file now. Raises `AnalysisConfigError` if it cannot be read or parsed."""
        self._path = path
        self._analyzer = analyzer
        self._check_seconds = check_seconds
        self._lock = threading.Lock()
        self._stamp = self._read_stamp()
        self._synonyms = self._load()
        self._checked = time.monotonic()

    @property
    def path(self) -> Path:
        return self._path

    def current(self) -> Synonyms:
        """The rules of the file as it was when last checked."""
        now = time.monotonic()
        if now - self._checked < self._check_seconds:
            return self._synonyms
        with self._lock:
            if now - self._checked < self._check_seconds:
                return self._synonyms
            self._checked = now
            try:
                stamp = self._read_stamp()
                if stamp != self._stamp:
                    self._stamp = stamp  # a bad edit is reported once, not every check
                    self._synonyms = self._load()
                    log.info(
                        "synonyms reloaded from %s (%d rules)", self._path, len(self._synonyms)
                    )
            except AnalysisConfigError as err:
                log.error(
                    "synonyms file %s not reloaded, keeping the last good one: %s", self._path, err
                )
        return self._synonyms

    def _read_stamp(self) -> tuple[int, int]:
        try:
            st = os.stat(self._path)
        except OSError as err:
            raise AnalysisConfigError(f"cannot read the synonyms file {self._path}: {err}") from err
        return st.st_mtime_ns, st.st_size

    def _load(self) -> Synonyms:
        try:
            text = self._path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as err:
            raise AnalysisConfigError(f"cannot read the synonyms file {self._path}: {err}") from err
        return Synonyms(parse_synonyms(text, source=str(self._path)), self._analyzer)
