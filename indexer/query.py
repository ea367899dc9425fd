"""The user's search syntax, parsed into plain data.

Supported: words, "exact phrases", -excluded words and -"excluded phrases".
Nothing else is syntax: field names, wildcards, `*:*`, JSON and engine operators
are just text, which the analyser reduces to words (or to nothing). Each search
adapter turns a `UserQuery` into its engine's query with its own analyser, so
the user's text never reaches the engine's query parser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from indexer.errors import InvalidQueryError

MAX_QUERY_CHARS = 1000
MAX_CLAUSES = 32

_TOKEN = re.compile(r'(-?)"([^"]*)"?|(\S+)')


@dataclass(frozen=True)
class UserQuery:
    """A parsed search query. All `words` and `phrases` must match; no `excluded` may."""

    words: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()  # words or phrases

    @property
    def is_blank(self) -> bool:
        """True for an empty query, which lists every readable document."""
        return not (self.words or self.phrases or self.excluded)

    @property
    def has_positive(self) -> bool:
        return bool(self.words or self.phrases)


def parse_user_query(text: str | None) -> UserQuery:
    """Parse the `q` parameter. Raises `InvalidQueryError` when it is too long."""
    if not text:
        return UserQuery()
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidQueryError(f"query is longer than {MAX_QUERY_CHARS} characters")
    words: list[str] = []
    phrases: list[str] = []
    excluded: list[str] = []
    for match in _TOKEN.finditer(text):
        negated, phrase, word = match.group(1), match.group(2), match.group(3)
        if phrase is not None:
            phrase = " ".join(phrase.split())
            if not phrase:
                continue
            (excluded if negated else phrases).append(phrase)
        elif word.startswith("-") and len(word) > 1:
            excluded.append(word[1:])
        elif word != "-":
            words.append(word)
    if len(words) + len(phrases) + len(excluded) > MAX_CLAUSES:
        raise InvalidQueryError(f"query has more than {MAX_CLAUSES} words and phrases")
    return UserQuery(tuple(words), tuple(phrases), tuple(excluded))
