"""Korean + English analysis with mecab-ko (the dictionary Elasticsearch's `nori` uses).

`KoreanAnalyzer.analyze` turns text into index terms with positions and character
offsets into the caller's text:

* content morphemes are kept (nouns, pronouns, numerals, roots, foreign words,
  numbers, hanja, determiners, general adverbs, and verb/adjective stems as their
  lemma); particles, endings, affixes, copulas, auxiliaries, punctuation and
  symbols are dropped without leaving position gaps, so `출생 신고를` and
  `출생신고` give the same phrase;
* Latin words are lowercased and Snowball-stemmed (`running` → `run`);
* dictionary compounds are indexed whole and decomposed (nori's `mixed` mode):
  the parts take consecutive positions and the whole shares the first part's
  position. At query time only the parts are used (nori's `discard`), so a
  query for `도서관` finds `국립중앙도서관` and `국립 중앙 도서관` alike;
* `user_words` (the user dictionary, see `indexer.analysis.user_dictionary`) are
  kept whole: found in the text first, they replace whatever mecab's tokens
  overlap them (mecab still sees the whole text, so the words around them are
  analysed in context). An entry with a decomposition is treated like a
  dictionary compound (whole and parts in documents, parts in queries). A match
  is dropped where a noun of mecab's runs on past its end (`산업부` in
  `산업부문`, `고용부` in `고용부담금`), unless what runs on is a particle
  (`고용노동부의`, read by mecab as `…노동/부의`).
"""

from __future__ import annotations

import enum
import re
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import mecab_ko
import tantivy

from indexer.analysis.unicode_offsets import to_nfc
from indexer.analysis.user_dictionary import UserWord
from indexer.errors import IndexerError

#: mecab-ko-dic tags of morphemes worth indexing as they are.
_KEEP_TAGS = frozenset(
    {
        "NNG",  # general noun
        "NNP",  # proper noun
        "NNB",  # bound noun
        "NNBC",  # unit noun
        "NR",  # numeral
        "NP",  # pronoun
        "XR",  # root
        "SL",  # foreign word
        "SN",  # number
        "SH",  # hanja
        "MM",  # determiner (also mecab's reading of 저 in 저장소)
        "MAG",  # general adverb
    }
)
#: Verb and adjective stems: indexed as their lemma from the expression.
_STEM_TAGS = frozenset({"VV", "VA"})
_CONTENT_TAGS = _KEEP_TAGS | _STEM_TAGS
#: Tags of character runs that mecab splits by length, not by meaning.
_RUN_TAGS = frozenset({"SL", "SN"})
#: Nouns that, running on past the end of a user word, show it was only the
#: start of a longer word (`산업부` + `부문`).
_NOUN_TAGS = frozenset({"NNG", "NNP", "NNB"})
#: What may follow a user word inside one of mecab's nouns without making it
#: part of a longer word: particles mecab glued to the word's last syllable.
_PARTICLE_TAILS = frozenset(
    "의 가 이 은 는 을 를 에 와 과 도 로 만 께 랑 이나 나 에게 에서 으로 부터 까지 보다".split()  # noqa: SIM905
)

#: Characters mecab must never see: NUL ends its C string, the other controls and
#: lone surrogates break its input encoding. Each becomes one space, so offsets hold.
_UNSAFE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_ASCII_WORD = re.compile(r"[a-z]+")

#: Longer "words" are blobs (base64, hashes, run-together URLs): useless as terms,
#: and tantivy refuses terms over 64 KB anyway.
MAX_TOKEN_CHARS = 80
#: Text goes to mecab in pieces of at most this many characters (cut at a line
#: break or space when possible) to bound its lattice memory.
DEFAULT_CHUNK_CHARS = 4000
_STEM_CACHE_LIMIT = 50_000


#: Words whose query-mode analysis `analyze_words` remembers.
WORD_CACHE_SIZE = 50_000


class AnalysisMode(enum.Enum):
    """How compounds are emitted."""

    #: Whole compound and its parts (documents).
    INDEX = "index"
    #: Parts only (queries), so a query never requires the whole-compound term.
    QUERY = "query"


@dataclass(frozen=True, slots=True)
class Token:
    """One term with its position and its character span in the analysed text."""

    text: str
    position: int
    start: int
    end: int


class KoreanAnalyzer:
    """Morphological analyser for Korean and English text (thread-safe).

    One mecab tagger per instance, used under a lock (mecab taggers are not
    thread-safe); create one analyser per process and share it.
    """

    def __init__(
        self,
        user_words: Iterable[str | UserWord] = (),
        *,
        chunk_chars: int = DEFAULT_CHUNK_CHARS,
    ) -> None:
        """Load mecab-ko-dic. Raises `IndexerError` when the tagger cannot start.

        `user_words` are terms kept whole (e.g. `국민디자인단`, `정부3.0`), matched
        case-insensitively wherever they occur, even inside a longer word (but
        see the module docstring for nouns running on); a `UserWord` with parts
        is a compound with that decomposition.
        """
        if chunk_chars < 100:
            raise ValueError("chunk_chars must be at least 100")
        self._chunk_chars = chunk_chars
        #: What this analyser was built from (another process builds the same one).
        self.user_words: tuple[UserWord, ...] = tuple(
            entry if isinstance(entry, UserWord) else UserWord(entry) for entry in user_words
        )
        try:
            self._tagger = mecab_ko.Tagger()
        except RuntimeError as err:
            raise IndexerError(f"cannot start mecab-ko: {err}") from err
        self._lock = threading.Lock()
        self._words: OrderedDict[str, tuple[Token, ...]] = OrderedDict()
        self._words_lock = threading.Lock()
        self._stemmer = (
            tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.stemmer("english"))
            .build()
        )
        self._stems: dict[str, str] = {}
        #: Lowercased NFC user word -> its lowercased parts (empty: kept whole only).
        self._user_parts: dict[str, tuple[str, ...]] = {}
        for entry in self.user_words:
            word = to_nfc(entry.word.strip())[0].lower()
            if word and word not in self._user_parts:
                self._user_parts[word] = tuple(to_nfc(p)[0].lower() for p in entry.parts)
        words = sorted(
            self._user_parts,
            key=len,
            reverse=True,  # longest first, so the regex prefers the longest entry
        )
        self._user_words: re.Pattern[str] | None = (
            re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE) if words else None
        )

    @property
    def chunk_chars(self) -> int:
        return self._chunk_chars

    def is_user_word(self, text: str) -> bool:
        """Whether `text` is an entry of the user dictionary (case-insensitive, NFC)."""
        return to_nfc(text.strip())[0].lower() in self._user_parts

    def analyze(self, text: str, mode: AnalysisMode = AnalysisMode.INDEX) -> list[Token]:
        """Analyse `text`; offsets index into `text` itself, whatever its normal form."""
        if not text:
            return []
        nfc, offset_map = to_nfc(text)
        if _UNSAFE.search(nfc):
            nfc = _UNSAFE.sub(" ", nfc)
        user = _UserSpans(
            []
            if self._user_words is None
            else [(m.start(), m.end()) for m in self._user_words.finditer(nfc)],
            self._user_parts,
            mode,
        )
        tokens: list[Token] = []
        position = 0
        # The tagger and the stemmer are not thread-safe; the work is GIL-bound
        # anyway, so one lock around the whole call costs nothing.
        with self._lock:
            for chunk_start, chunk_end in _chunks(nfc, 0, len(nfc), self._chunk_chars):
                position = self._tag(nfc, chunk_start, chunk_end, mode, position, tokens, user)
        user.flush(nfc, len(nfc), position, tokens)
        if offset_map is not None:
            remapped: list[Token] = []
            for tok in tokens:
                start, end = offset_map.span(tok.start, tok.end)
                remapped.append(Token(tok.text, tok.position, start, end))
            tokens = remapped
        return tokens

    def analyze_words(self, words: Sequence[str]) -> list[tuple[Token, ...]]:
        """Query-mode tokens of each word, offsets into that word.

        For highlighting, which analyses the same words hit after hit: words seen
        lately are remembered; the others go through mecab in one call, one word
        per line, so each is analysed on its own.
        """
        out: list[tuple[Token, ...] | None] = []
        missing: dict[str, int] = {}
        with self._words_lock:
            for word in words:
                known = self._words.get(word)
                if known is not None:
                    self._words.move_to_end(word)
                elif word not in missing:
                    missing[word] = len(missing)
                out.append(known)
        if missing:
            found = self._analyze_separately(list(missing))
            with self._words_lock:
                for word, tokens in zip(missing, found, strict=True):
                    self._words[word] = tokens
                while len(self._words) > WORD_CACHE_SIZE:
                    self._words.popitem(last=False)
            out = [found[missing[w]] if t is None else t for w, t in zip(words, out, strict=True)]
        return [t for t in out if t is not None]

    def _analyze_separately(self, words: list[str]) -> list[tuple[Token, ...]]:
        """Each word's query-mode tokens, from one analyser call over the words joined
        by newlines (offsets mapped back into each word)."""
        starts: list[int] = []
        cursor = 0
        for word in words:
            starts.append(cursor)
            cursor += len(word) + 1
        per_word: list[list[Token]] = [[] for _ in words]
        index = 0
        for tok in self.analyze("\n".join(words), AnalysisMode.QUERY):
            while index + 1 < len(starts) and starts[index + 1] <= tok.start:
                index += 1
            shift = starts[index]
            per_word[index].append(
                Token(tok.text, tok.position, tok.start - shift, tok.end - shift)
            )
        return [tuple(tokens) for tokens in per_word]

    def terms(self, text: str) -> list[str]:
        """Query-mode terms of `text`, in order (duplicates kept)."""
        return [tok.text for tok in self.analyze(text, AnalysisMode.QUERY)]

    # -- internals ---------------------------------------------------------------

    def _tag(
        self,
        text: str,
        chunk_start: int,
        chunk_end: int,
        mode: AnalysisMode,
        position: int,
        out: list[Token],
        user: _UserSpans,
    ) -> int:
        """Append the tokens of text[chunk_start:chunk_end]; return the next position.

        mecab sees the whole chunk, user words included (so the words around
        them are analysed in context); its tokens overlapping a user word are
        replaced by the user word.
        """
        chunk = text[chunk_start:chunk_end]
        if chunk.isspace():
            return position
        morphemes = list(self._morphemes(chunk))
        if user.pending:
            user.drop_run_ons(text, chunk_start, morphemes)
        for found, surface, tag, kind, expression in morphemes:
            start = chunk_start + found
            end = start + len(surface)
            position = user.flush(text, start, position, out)
            if user.overlaps(start, end):
                continue
            if kind == "*":
                if tag in _KEEP_TAGS:
                    term = self._normalise(surface, tag)
                    if term:
                        out.append(Token(term, position, start, end))
                        position += 1
                elif tag in _STEM_TAGS:
                    out.append(Token(surface, position, start, end))
                    position += 1
                continue
            parts = _content_parts(expression)
            if kind == "Compound":
                position = self._emit_compound(surface, tag, parts, start, mode, position, out)
            else:  # Inflect, Preanalysis: contracted forms, parts share the span
                for part, part_tag in parts:
                    term = self._normalise(part, part_tag)
                    if term:
                        out.append(Token(term, position, start, end))
                        position += 1
        return position

    def _morphemes(self, chunk: str) -> Iterator[tuple[int, str, str, str, str]]:
        """mecab's morphemes of `chunk` as (offset, surface, tag, type, expression).

        mecab cuts unknown Latin and digit runs longer than about 24 characters
        into pieces; contiguous pieces are joined back into one morpheme.
        """
        cursor = 0
        run_start = run_end = -1
        run_tag = ""
        parsed: str = self._tagger.parse(chunk)
        for line in parsed.split("\n"):
            tab = line.find("\t")
            if tab <= 0:
                continue  # "EOS" and blank lines
            surface = line[:tab]
            # mecab drops whitespace and otherwise echoes the input, so the
            # surface is next after the cursor; anything else is skipped rather
            # than given a wrong offset.
            found = chunk.find(surface, cursor)
            if found < 0 or (found - cursor > 8 and not chunk[cursor:found].isspace()):
                continue
            cursor = found + len(surface)
            features = line[tab + 1 :].split(",")
            tag = features[0]
            if tag in _RUN_TAGS:
                if tag == run_tag and found == run_end:
                    run_end = cursor
                    continue
                if run_tag:
                    yield run_start, chunk[run_start:run_end], run_tag, "*", "*"
                run_start, run_end, run_tag = found, cursor, tag
                continue
            if run_tag:
                yield run_start, chunk[run_start:run_end], run_tag, "*", "*"
                run_tag = ""
            if len(features) > 7:
                yield found, surface, tag, features[4], features[7]
            else:
                yield found, surface, tag, "*", "*"
        if run_tag:
            yield run_start, chunk[run_start:run_end], run_tag, "*", "*"

    def _emit_compound(
        self,
        surface: str,
        tag: str,
        parts: list[tuple[str, str]],
        start: int,
        mode: AnalysisMode,
        position: int,
        out: list[Token],
    ) -> int:
        end = start + len(surface)
        whole = surface.lower() if tag in _CONTENT_TAGS else ""
        if len(whole) > MAX_TOKEN_CHARS:
            whole = ""
        if not parts or (len(parts) == 1 and parts[0][0].lower() == whole):
            if whole:
                out.append(Token(whole, position, start, end))
                return position + 1
            return position
        if mode is AnalysisMode.INDEX and whole:
            out.append(Token(whole, position, start, end))
        cursor = 0
        for part, part_tag in parts:
            term = self._normalise(part, part_tag)
            if not term:
                continue
            found = surface.find(part, cursor)
            if found >= 0:
                cursor = found + len(part)
                out.append(Token(term, position, start + found, start + found + len(part)))
            else:
                out.append(Token(term, position, start, end))
            position += 1
        return position

    def _normalise(self, surface: str, tag: str) -> str:
        """The index term of one kept morpheme ('' to drop it)."""
        if len(surface) > MAX_TOKEN_CHARS:
            return ""
        if tag != "SL":
            return surface
        lowered = surface.lower()
        if not _ASCII_WORD.fullmatch(lowered):
            return lowered
        stem = self._stems.get(lowered)
        if stem is None:
            stems = self._stemmer.analyze(lowered)
            stem = stems[0] if stems else lowered
            if len(self._stems) < _STEM_CACHE_LIMIT:
                self._stems[lowered] = stem
        return stem


class _UserSpans:
    """The user-word matches of one text, emitted in order among mecab's tokens."""

    __slots__ = ("_mode", "_next", "_parts", "_spans")

    def __init__(
        self,
        spans: list[tuple[int, int]],
        parts: dict[str, tuple[str, ...]],
        mode: AnalysisMode,
    ) -> None:
        self._spans = spans
        self._parts = parts
        self._mode = mode
        self._next = 0

    @property
    def pending(self) -> bool:
        """Whether user words remain to be emitted."""
        return self._next < len(self._spans)

    def drop_run_ons(
        self, text: str, offset: int, morphemes: list[tuple[int, str, str, str, str]]
    ) -> None:
        """Forget the pending matches that are only the start of a longer noun.

        `morphemes` are mecab's, as `_morphemes` yields them, for the text at `offset`.
        """
        ends: dict[int, tuple[int, str]] = {}  # match end -> (run-on end, run-on tag)
        pending = self._spans[self._next :]
        wanted = {end for _, end in pending}
        for found, surface, tag, _, _ in morphemes:
            start = offset + found
            end = start + len(surface)
            for inside in range(start + 1, end):
                if inside in wanted:
                    ends[inside] = (end, tag)
        if not ends:
            return
        kept = []
        for start, end in pending:
            run_on = ends.get(end)
            if (
                run_on is not None
                and run_on[1] in _NOUN_TAGS
                and text[end : run_on[0]] not in _PARTICLE_TAILS
            ):
                continue
            kept.append((start, end))
        self._spans[self._next :] = kept

    def flush(self, text: str, before: int, position: int, out: list[Token]) -> int:
        """Emit the user words starting at or before `before`; return the next position."""
        spans = self._spans
        while self._next < len(spans) and spans[self._next][0] <= before:
            start, end = spans[self._next]
            word = text[start:end].lower()
            parts = self._parts.get(word, ())
            if not parts or self._mode is AnalysisMode.INDEX:
                out.append(Token(word, position, start, end))
            if parts:
                cursor = start
                for i, part in enumerate(parts):
                    found = word.find(part, cursor - start)
                    if found >= 0:
                        cursor = start + found + len(part)
                        out.append(Token(part, position + i, start + found, cursor))
                    else:
                        out.append(Token(part, position + i, start, end))
                position += len(parts)
            else:
                position += 1
            self._next += 1
        return position

    def overlaps(self, start: int, end: int) -> bool:
        """Whether [start, end) overlaps the last emitted or the next user word."""
        spans = self._spans
        if self._next > 0 and spans[self._next - 1][1] > start:
            return True
        return self._next < len(spans) and spans[self._next][0] < end


def _content_parts(expression: str) -> list[tuple[str, str]]:
    """The (surface, tag) content morphemes of a mecab expression like `국립/NNG/*+중앙/NNG/*`."""
    parts: list[tuple[str, str]] = []
    if expression == "*":
        return parts
    for item in expression.split("+"):
        fields = item.split("/")
        if len(fields) >= 2 and fields[0] and fields[1] in _CONTENT_TAGS:
            parts.append((fields[0], fields[1]))
    return parts


def _chunks(text: str, start: int, end: int, size: int) -> Iterator[tuple[int, int]]:
    """Cut text[start:end] into pieces of at most `size` chars, at a line break or space if any."""
    while end - start > size:
        limit = start + size
        cut = text.rfind("\n", start + size // 2, limit)
        if cut < 0:
            cut = text.rfind(" ", start + size // 2, limit)
        cut = limit if cut < 0 else cut + 1
        yield start, cut
        start = cut
    if end > start:
        yield start, end
