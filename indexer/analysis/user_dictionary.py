"""The user dictionary: words the analyser keeps whole, in nori's `user_dictionary` format.

One entry a line, `<word> [<part 1> ... <part n>]`:

* `국민디자인단` alone is one token wherever it occurs, at index and query time;
* `세종시 세종 시` is a compound with its decomposition: documents get the whole
  word and its parts (nori's `mixed`), queries the parts only (nori's
  `discard`), as for the compounds of the system dictionary.

As in nori, `#` starts a comment (to the end of the line); blank lines are
ignored. The same file configures Elasticsearch's `nori_tokenizer`
(`user_dictionary`) and the embedded `KoreanAnalyzer`, so both engines cut text
the same way. It changes index-time tokens: after an edit, run `crossdoc reindex`.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from pathlib import Path

from indexer.errors import AnalysisConfigError


@dataclass(frozen=True, slots=True)
class UserWord:
    """One entry: the word, and its parts if it is a compound (else empty)."""

    word: str
    parts: tuple[str, ...] = ()


def parse_user_dictionary(text: str, *, source: str = "user dictionary") -> list[UserWord]:
    """The entries of a user dictionary text (NFC, in file order, later duplicates dropped).

    Raises `AnalysisConfigError` for an entry whose parts do not spell the word
    (nori would index parts that are not in the text).
    """
    entries: dict[str, UserWord] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = unicodedata.normalize("NFC", raw).split("#", 1)[0].strip()
        if not line:
            continue
        word, *parts = line.split()
        if parts and "".join(parts).lower() != word.lower():
            raise AnalysisConfigError(
                f"{source}, line {number}: the parts {' '.join(parts)!r} do not spell {word!r}"
            )
        key = word.lower()
        if key not in entries:
            entries[key] = UserWord(word, tuple(parts) if len(parts) > 1 else ())
    return list(entries.values())


def load_user_dictionary(path: Path) -> list[UserWord]:
    """The entries of the user dictionary file at `path` (UTF-8).

    Raises `AnalysisConfigError` when it cannot be read or parsed.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise AnalysisConfigError(f"cannot read the user dictionary {path}: {err}") from err
    return parse_user_dictionary(text, source=str(path))
