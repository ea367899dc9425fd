"""The embedded search index: Tantivy with our Korean analyser.

Layout of an index document:

* `text`: every analysed token of the title, filename, tags and body in one
  field with positions (pre-tokenized by `KoreanAnalyzer`; tantivy never
  tokenizes our text), parts separated by a position gap so a phrase cannot
  span two of them. Matching, phrases and exclusions run on this one field: a
  conjunction over one field is about twice as fast as a union of per-field
  conjunctions (and its p99 five times lower) at 100k documents. A word thus
  matches when the document holds all its terms in any of its text fields;
* `title`, `filename`, `tags`: the same tokens again, per field, without
  positions, only to boost documents whose title (filename, tags) matches;
* `grams`: Hangul bigrams of the same texts, with positions (the compound
  fallback, `indexer.analysis.grams`): a query word also matches where its
  Hangul occurs as written inside a longer word, in a lower scoring tier;
* `complete`: completion keys (titles and words, spelled in jamo and in
  initial consonants) for suggestions as you type and corrections, read by
  prefix walks of the term dictionary counted over the access filter;
* `src_title`, `src_filename`, `src_body`: the NFC text as stored bytes, for hits
  and highlights (the body cut at `max_body_chars`). The analysed fields are not
  stored, because a stored pre-tokenized value stores every token too;
* keyword fields (raw, untokenized) `id`, `department`, `ministry`,
  `content_type`, `tag` (one value per tag), `folder` (the id of the folder it
  is filed in, if any), `folder_path` (that folder's ancestry) and `readers`
  (one value per principal token); `department`, `ministry`, `content_type`
  and `tag` are fast fields for aggregations;
* integer fast fields `revision` and `created_at` (microseconds since the epoch,
  UTC, so ranges and sorting are exact; tantivy's date fields are second-precise).

Synonyms are expanded at query time (`indexer.analysis.query_terms`): a word
with a synonym span requires its other terms and, for the span, either its typed
terms or one alternative as a phrase on `text`; a phrase or exclusion becomes a
union of its variants. Editing the synonyms file therefore needs no reindex.

Search = user text (scoring) AND the filter (a zero-scoring clause: the
`AccessFilter` of the port, keyword filters, date range), paged by tantivy
itself. Facets are one terms aggregation per facet field over that same query
(without the boost clauses), run on the fast fields inside tantivy (no Python
loop over matches); the same pass counts the exact total, so the ranking pass
only keeps the top hits. The phrase boosts for words standing together are
added to the first hits only (RESCORE_WINDOW), as Elasticsearch's rescore does.
Highlights re-analyse only the few words of each hit that can match (see
`indexer.analysis.highlight`).

Writes: one writer per index directory (tantivy takes a lock file), created on
the first write, guarded by a lock; searches never take it and may run from any
number of threads. Each `upsert`/`delete`/`clear` call is one commit, followed by
a reader reload, so a batch commits once and a returned call is durable and
visible. An upsert whose revision is lower than the stored one is ignored; an
equal revision replaces the stored document (so a rebuild can re-apply the same
revision, e.g. after an analyser change).

Generations (a rebuild beside the live index, `indexer.rebuild`): the directory
given is the index's home. The live index is the home itself, or the
generation directory `gen-<n>` inside it that the pointer file `CURRENT` names.
A rebuild writes a new generation while the live one keeps serving, with every
write of this process applied to both; its end writes `CURRENT` (atomically)
and swaps the new generation in under the write lock, so searches see one
index or the other, never an empty or half-built one. A process that only reads
(no writer) follows `CURRENT` on its next read. An old generation is deleted a
while after the swap (`OLD_GENERATION_GRACE_SECONDS`), or by the next rebuild.
"""

from __future__ import annotations

import logging
import operator
import os
import re
import shutil
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import repeat
from pathlib import Path
from typing import Any

import tantivy

from auth.access import visibility_token
from indexer.analysis.grams import PARTICLES, gram_runs, run_grams, strip_particle
from indexer.analysis.highlight import highlight
from indexer.analysis.jamo import edit_distance, initials, is_initials, letters
from indexer.analysis.korean import MAX_TOKEN_CHARS, KoreanAnalyzer
from indexer.analysis.process import AnalysisProcess, TokenTuple, analyze_texts
from indexer.analysis.query_terms import (
    AnalyzedQuery,
    Fallback,
    PositionedTerms,
    SynonymSpan,
    analyze_query,
    phrase_variants,
)
from indexer.analysis.synonyms import SynonymSource
from indexer.errors import (
    IndexBusyError,
    InvalidQueryError,
    RebuildInProgressError,
    SearchUnavailableError,
)
from indexer.index.base import (
    FACET_FIELDS,
    AccessFilter,
    FacetCount,
    IndexDocument,
    SearchHit,
    SearchRequest,
    SearchResults,
    SortOrder,
    Suggestion,
    SuggestionKind,
)
from storage.catalog.policy_match import PolicyMatch

log = logging.getLogger(__name__)

#: The field every analysed token goes to; all matching happens there.
TEXT_FIELD = "text"
#: Hangul bigrams of the same texts: the compound fallback (`indexer.analysis.grams`).
GRAMS_FIELD = "grams"
#: Score given to each word a document matches morphologically, on top of its
#: BM25 score: a document matching a word only through the compound fallback
#: (whose score is scaled by FALLBACK_WEIGHT, far below this) therefore always
#: ranks below one matching it morphologically, whatever the term statistics.
MORPHOLOGY_TIER = 1000.0
#: Weight of the phrase a word's terms (or all the words' terms) make, added to
#: the score of documents where they stand together: `2024년도` or `3월` rank
#: documents holding them as written above those with 2024 and 년도 apart.
ADJACENCY_BOOST = 1.0
#: The first this many hits of a relevance ranking are ranked again with the
#: adjacency boosts (ADJACENCY_BOOST), as Elasticsearch's rescore does: a
#: phrase among the optional clauses of a search is checked against the
#: positions of every document holding its terms, readable or not (tantivy's
#: union of optional clauses fills windows of 4,096 documents), which at 1M
#: documents cost more than the rest of the search; checked only on these
#: hits it costs little. Below this many matches the ranking is exact.
RESCORE_WINDOW = 50
#: Weight of the fallback's BM25 score (it only orders fallback matches among
#: themselves and adds a little to documents that match both ways).
FALLBACK_WEIGHT = 0.1
#: Extra score for a word that also matches in one of these fields.
BOOST_FIELDS: dict[str, float] = {"title": 2.0, "filename": 1.0, "tags": 1.0}
#: Positions left empty between the parts of `text` so phrases stay inside one.
_PART_GAP = 100
_KEYWORD_FIELDS = ("id", "department", "ministry", "content_type")

DEFAULT_WRITER_HEAP_BYTES = 64_000_000
DEFAULT_MAX_BODY_CHARS = 1_000_000
#: Characters of text analysed at once when indexing. Their tokens take about
#: 70 bytes a character as Python tuples (~4.5 MB here), and unpickling them
#: from the analysis child holds the GIL (~50 ms here on a loaded machine).
DEFAULT_ANALYSIS_CHUNK_CHARS = 64_000
#: Documents whose stored bodies are read at once by `update_access`.
_BODIES_BATCH = 32
#: Default deepest result reachable (offset + limit), as Elasticsearch's max_result_window.
DEFAULT_MAX_RESULT_WINDOW = 10_000
#: Buckets returned per facet; segments report more so merged counts stay exact
#: for any value that makes the top list in practice.
FACET_SIZE = 50
_FACET_SEGMENT_SIZE = 1000
_TOTAL_AGG = "_total"
#: Threads running facet passes beside the ranking passes of concurrent searches.
_FACET_THREADS = 2
#: At most this many spellings of one word get title/filename/tags boosts.
_MAX_BOOST_VARIANTS = 8
#: Up to this many reader tokens, the access filter is a union of term queries.
_READERS_UNION_MAX = 64
#: Completion keys (field COMPLETE_FIELD): `<kind><form>:<lookup>\x1f<text>`,
#: kind `t` (title) or `w` (term), form `j` (letters, see indexer.analysis.jamo)
#: or `c` (initial consonants); a prefix walk of the term dictionary on
#: `<kind><form>:<typed>` finds the texts, counted over readable documents only.
COMPLETE_FIELD = "complete"
_KEY_SEPARATOR = "\x1f"
#: Terms of one document kept as completions (title, filename and tags first).
MAX_COMPLETION_TERMS = 200
#: Longest title offered whole as a completion.
MAX_COMPLETION_TITLE = 100
#: The Hangul right after a position (the rest of a word).
_HANGUL_PREFIX = re.compile(r"[\uac00-\ud7a3]+")
#: One-syllable particles and endings never taken for a dropped noun suffix.
_PARTICLE_SYLLABLES = frozenset("의은는을를에와과이가도로만다요고며서으")
#: Terms compared with a word when looking for a correction.
_CORRECTION_CANDIDATES = 2000
#: ids per aggregation when looking up stored revisions.
_REVISION_BATCH = 1000

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: The pointer file in the index's home naming the live generation directory.
CURRENT_FILE = "CURRENT"
_GENERATION_PREFIX = "gen-"
#: Files of the home that are not the legacy (generation-less) index's own.
_HOME_FILES = (CURRENT_FILE, "REBUILD-REQUEST.json", "REBUILD-STATUS.json")
#: An old generation outlives the swap this long: searches that began on it,
#: and processes that follow `CURRENT` only on their next read, finish first.
OLD_GENERATION_GRACE_SECONDS = 60.0
#: A reading process looks at `CURRENT` at most this often.
_FOLLOW_SECONDS = 1.0

#: What a rebuild analyses with: the analyser, its child process (or None) and
#: the synonyms, read afresh (an edited user dictionary takes effect with the
#: rebuilt generation).
AnalysisSetup = tuple[KoreanAnalyzer, AnalysisProcess | None, SynonymSource | None]
#: Filename separators that mecab would otherwise glue to neighbouring words.
_FILENAME_PUNCT = re.compile(r"[_.\-+~()\[\]{}]")


class TantivyIndex:
    """`SearchIndex` on a local Tantivy directory (embedded deployments and tests)."""

    def __init__(
        self,
        path: Path,
        analyzer: KoreanAnalyzer,
        *,
        writer_heap_bytes: int = DEFAULT_WRITER_HEAP_BYTES,
        writer_threads: int = 1,
        max_body_chars: int = DEFAULT_MAX_BODY_CHARS,
        max_result_window: int = DEFAULT_MAX_RESULT_WINDOW,
        analysis_chunk_chars: int = DEFAULT_ANALYSIS_CHUNK_CHARS,
        synonyms: SynonymSource | None = None,
        analysis: AnalysisProcess | None = None,
        compound_fallback: bool = True,
        fresh_analysis: Callable[[], AnalysisSetup] | None = None,
    ) -> None:
        """Open (or create) the index whose home is directory `path` (its live
        generation, see the module docstring).

        `fresh_analysis` makes the analysis a rebuild uses (the user dictionary
        read again); without it a rebuild analyses as this index does.

        With `compound_fallback` (the default), Hangul bigrams are indexed beside
        the morphemes and a word also finds documents holding it, as written,
        inside a compound mecab reads otherwise; those rank below morphological
        matches. Without it the `grams` field stays empty and is not searched
        (for measuring what it costs; the schema is the same either way).

        With `analysis`, documents are analysed in its child process (on another
        core) instead of in the calling thread; queries always are analysed here.

        `synonyms` are applied to every query (asked for on each search, so a
        reloading source takes effect without a restart).

        `writer_heap_bytes` and `writer_threads` size tantivy's writer (its
        buffer of pending documents; beyond it tantivy writes a segment);
        `analysis_chunk_chars` is about how much text is analysed at once;
        `max_body_chars` bounds the indexed, stored and highlighted part of each
        body; `max_result_window` bounds offset + limit of a search. A directory
        holding an index built with another schema (an older release) is
        emptied and `schema_rebuilt` set: the caller must queue every document
        again. Raises `SearchUnavailableError` when the directory cannot be
        used (not writable).
        """
        if writer_heap_bytes < 15_000_000 * writer_threads:
            raise ValueError("tantivy needs at least 15 MB of writer heap per thread")
        if max_body_chars < 1:
            raise ValueError("max_body_chars must be positive")
        self._home = path
        self._fresh_analysis = fresh_analysis
        self._building: TantivyIndex | None = None
        self._building_setup: AnalysisSetup | None = None
        #: Every write and the swap of a rebuild: a write reaches both
        #: generations, or the swapped-in one alone, never only the old one.
        self._swap_lock = threading.RLock()
        self._pointer_seen: int | None = None
        self._pointer_checked = 0.0
        path = self._live_dir()
        self._path = path
        self._analyzer = analyzer
        self._analysis = analysis
        self._synonyms = synonyms
        self._heap = writer_heap_bytes
        self._threads = writer_threads
        self._max_body_chars = max_body_chars
        self._max_window = max_result_window
        self._fallback = compound_fallback
        self._analysis_chunk_chars = max(1, analysis_chunk_chars)
        self._schema = _schema()
        #: The directory held an index built with another schema (an older
        #: release): it was emptied, and every document must be indexed again.
        self.schema_rebuilt = False
        try:
            path.mkdir(parents=True, exist_ok=True)
            try:
                self._index = tantivy.Index(self._schema, str(path), reuse=True)
            except ValueError as err:
                if "schema does not match" not in str(err):
                    raise
                # The index is derived data: rebuild rather than refuse to start.
                log.warning("the search index at %s has an older schema: rebuilding it", path)
                shutil.rmtree(path)
                path.mkdir(parents=True)
                self._index = tantivy.Index(self._schema, str(path), reuse=True)
                self.schema_rebuilt = True
        except (OSError, ValueError) as err:
            raise SearchUnavailableError(f"cannot open the search index at {path}: {err}") from err
        self._write_lock = threading.Lock()
        self._writer: tantivy.IndexWriter | None = None
        self._closed = False
        # tantivy releases the GIL while it searches: the facet pass runs on
        # this pool while the calling thread ranks, so one search uses two cores.
        self._facet_pool = ThreadPoolExecutor(
            max_workers=_FACET_THREADS, thread_name_prefix="tantivy-facets"
        )

    # -- writes --------------------------------------------------------------------

    def upsert(self, docs: Sequence[IndexDocument]) -> None:
        """Add or replace documents, skipping any older than the stored revision (one commit)."""
        latest = _latest(docs)
        if not latest:
            return
        with self._swap_lock:
            with self._writing("write to the search index") as writer:
                self._add(writer, list(latest.values()))
            if self._building is not None:
                self._building.upsert(docs)

    def update_access(self, docs: Sequence[IndexDocument]) -> list[str]:
        """Re-add documents with new readers and the body stored for them (one commit).

        Tantivy cannot change one field of a document, so each is rebuilt from
        its stored body and the metadata given; the analysis runs again, but
        nothing is extracted or read from the object store. The stored bodies
        are read a few documents at a time, so a large change does not hold
        every body at once.
        """
        if not docs:
            return []
        self._check_open()
        with self._swap_lock:
            missing = self._update_access(docs)
            if self._building is not None:
                # A document the new generation does not hold yet is written
                # there whole by the rebuild, which checks revisions at its end.
                self._building.update_access(docs)
            return missing

    def _update_access(self, docs: Sequence[IndexDocument]) -> list[str]:
        latest = list(_latest(docs).values())
        found: set[str] = set()
        with self._writing("write to the search index") as writer:
            for i in range(0, len(latest), _BODIES_BATCH):
                chunk = latest[i : i + _BODIES_BATCH]
                bodies = self._stored_bodies([d.id for d in chunk])
                found.update(bodies)
                self._add(writer, [replace(d, body=bodies[d.id]) for d in chunk if d.id in bodies])
                del bodies
        return [d.id for d in docs if d.id not in found]

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents by id (one commit; missing ids are ignored)."""
        if not ids:
            return
        with self._swap_lock:
            with self._writing("remove documents from the search index") as writer:
                for doc_id in set(ids):
                    writer.delete_documents_by_term("id", doc_id)
            if self._building is not None:
                self._building.delete(ids)

    def clear(self) -> None:
        """Remove every document (one commit)."""
        with self._writing("clear the search index") as writer:
            writer.delete_all_documents()

    def refresh(self) -> None:
        """Reload the reader (writes of this process are already committed and visible;
        this picks up commits made by another process sooner than the file watcher)."""
        self._check_open()
        self._follow()
        try:
            self._index.reload()
        except ValueError as err:
            raise SearchUnavailableError(f"cannot reload the search index: {err}") from err

    # -- reads ---------------------------------------------------------------------

    def revisions(self, ids: Sequence[str]) -> dict[str, int]:
        """The stored revision of each of `ids` that is in the index."""
        self._check_open()
        self._follow()
        return self._stored_revisions(list(dict.fromkeys(ids)))

    def count(self) -> int:
        """How many (live) documents the index holds."""
        self._check_open()
        self._follow()
        try:
            return self._index.searcher().num_docs
        except ValueError as err:
            raise SearchUnavailableError(f"cannot read the search index: {err}") from err

    def ping(self) -> None:
        """Raise `SearchUnavailableError` unless the index can be read."""
        self.count()

    def search(self, request: SearchRequest, access: AccessFilter) -> SearchResults:
        """Run `request`: its text AND `access` AND its filters; see the module docstring."""
        self._check_open()
        self._follow()
        if request.offset < 0 or request.limit < 0:
            raise InvalidQueryError("offset and limit must not be negative")
        if request.offset + request.limit > self._max_window:
            raise InvalidQueryError(f"offset + limit must be at most {self._max_window}")
        empty = SearchResults(
            total=0, hits=[], facets={f: [] for f in FACET_FIELDS} if request.with_facets else {}
        )
        if access.lets_nothing_through:
            return empty  # fail closed: no principal
        lower = _micros_or_none(request.created_from)
        upper = _micros_or_none(request.created_to)
        if lower is not None and upper is not None and lower >= upper:
            return empty
        synonyms = None if self._synonyms is None else self._synonyms.current()
        analyzed = analyze_query(self._analyzer, request.query, synonyms)
        if analyzed.matches_nothing:
            return empty
        try:
            searcher = self._index.searcher()
            query = self._build_query(analyzed, request, access)
            if not request.with_facets:
                hits, total = self._top_hits(searcher, query, request, analyzed, True)
                return SearchResults(total=total, hits=hits, facets={})
            # The aggregation pass counts too, so the ranking pass need not.
            matching = self._build_query(analyzed, request, access, scoring=False)
            facet_pass = self._facet_pool.submit(self._facets, searcher, matching)
            try:
                hits, _ = self._top_hits(searcher, query, request, analyzed, False)
            finally:
                facets, total = facet_pass.result()
        except (ValueError, RuntimeError) as err:  # RuntimeError: closed meanwhile
            raise SearchUnavailableError(f"search failed: {err}") from err
        return SearchResults(total=total, hits=hits, facets=facets)

    def suggest(self, access: AccessFilter, prefix: str, limit: int) -> list[Suggestion]:
        """Titles, then terms, beginning with `prefix`, counted over the documents
        `access` lets through (see the port)."""
        self._check_open()
        self._follow()
        typed = unicodedata.normalize("NFC", prefix).strip()
        if not typed or limit < 1 or access.lets_nothing_through:
            return []
        form = "c" if is_initials(typed) else "j"
        lookup = typed if form == "c" else letters(typed)
        # Titles are nearly all distinct: completing them from one syllable (or
        # two initials) would count a good part of all titles over the access
        # filter, for a list nobody reads. Words complete from the first letter.
        enough = 3 if form == "c" else 2
        kinds = list(SuggestionKind) if len(typed) >= enough else [SuggestionKind.TERM]
        out: list[Suggestion] = []
        seen: set[str] = set()
        try:
            searcher = self._index.searcher()
            readable = self._access_query(access)
            for kind in kinds:
                if len(out) >= limit:
                    break  # titles fill the list: the words would be cut off anyway
                key = f"{'t' if kind is SuggestionKind.TITLE else 'w'}{form}:{lookup}"
                for text, count in self._completions(searcher, key, readable, limit):
                    if text and text not in seen:
                        seen.add(text)
                        out.append(Suggestion(text, kind, count))
        except ValueError as err:
            raise SearchUnavailableError(f"suggestions failed: {err}") from err
        return out[:limit]

    def _completions(
        self, searcher: tantivy.Searcher, key: str, access: tantivy.Query, limit: int
    ) -> list[tuple[str, int]]:
        """Up to `limit` completion keys starting with `key` that readable documents
        hold, with how many readable documents hold each, most first: one walk of
        the term dictionary, each key counted over the access filter's documents,
        so a key no readable document holds is never returned."""
        found = searcher.terms_with_prefix(COMPLETE_FIELD, key, filter_query=access, limit=limit)
        return [
            (term.partition(_KEY_SEPARATOR)[2], int(count)) for term, count in found if count > 0
        ]

    def corrections(self, access: AccessFilter, word: str, limit: int) -> list[Suggestion]:
        """Readable terms within a few letters of `word` (see the port)."""
        self._check_open()
        self._follow()
        typed = unicodedata.normalize("NFC", word).strip().lower()
        spelled = letters(typed)
        if len(spelled) < 2 or limit < 1 or access.lets_nothing_through:
            return []
        # Korean: about one letter in four may be wrong (at least one); other
        # scripts: one in four characters too, at most two.
        budget = max(1, min(3, len(spelled) // 4))
        # Candidates share the first letter (a first-letter typo is rarely what
        # happened, and it keeps the walk of the term dictionary short).
        try:
            found = self._index.searcher().terms_with_prefix(
                COMPLETE_FIELD,
                f"wj:{spelled[0]}",
                filter_query=self._access_query(access),
                limit=_CORRECTION_CANDIDATES,
            )
        except ValueError as err:
            raise SearchUnavailableError(f"corrections failed: {err}") from err
        scored: list[tuple[int, int, str]] = []
        for term, count in found:
            candidate_letters, _, text = term[3:].partition(_KEY_SEPARATOR)
            if count <= 0 or not text or text == typed:
                continue
            distance = edit_distance(spelled, candidate_letters, budget)
            if distance <= budget:
                scored.append((distance, -int(count), text))
        scored.sort()
        return [
            Suggestion(text, SuggestionKind.TERM, -negative) for _, negative, text in scored[:limit]
        ]

    def close(self) -> None:
        """Let merges finish and release the writer's lock; further calls raise."""
        if self._building is not None:
            self.abort_rebuild()
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._facet_pool.shutdown(wait=True)
            if self._analysis is not None:
                self._analysis.close()
            writer, self._writer = self._writer, None
            if writer is not None:
                try:
                    writer.wait_merging_threads()
                except ValueError as err:
                    raise SearchUnavailableError(f"cannot close the search index: {err}") from err

    # -- rebuilding beside the live generation (indexer.rebuild) ---------------------

    #: The workers writing this index are all in this process: they write the
    #: new generation from the moment `begin_rebuild` returns.
    rebuild_settle_seconds = 0.0

    def begin_rebuild(self) -> TantivyIndex:
        """Create a new, empty generation beside the live one and return it; from
        now on every write of this index reaches it too.

        Raises `IndexBusyError` when another process holds the live generation's
        writer (ask that process), `RebuildInProgressError` when a rebuild runs.
        """
        with self._swap_lock:
            self._check_open()
            if self._building is not None:
                raise RebuildInProgressError("a rebuild of the search index is under way")
            with self._write_lock:
                try:
                    self._open_writer()
                except SearchUnavailableError as err:
                    raise IndexBusyError(str(err)) from err
            self._remove_old_generations()
            path = self._home / f"{_GENERATION_PREFIX}{time.time_ns()}"
            setup: AnalysisSetup = (
                self._fresh_analysis()
                if self._fresh_analysis is not None
                else (self._analyzer, self._analysis, self._synonyms)
            )
            analyzer, analysis, synonyms = setup
            self._building = TantivyIndex(
                path,
                analyzer,
                writer_heap_bytes=self._heap,
                writer_threads=self._threads,
                max_body_chars=self._max_body_chars,
                max_result_window=self._max_window,
                analysis_chunk_chars=self._analysis_chunk_chars,
                synonyms=synonyms,
                analysis=analysis,
                compound_fallback=self._fallback,
            )
            self._building_setup = setup
            log.info("rebuilding the search index in %s", path)
            return self._building

    def finish_rebuild(self) -> None:
        """Swap the new generation in: `CURRENT` names it, this index reads and
        writes it from now on; the old one is deleted after a grace period."""
        with self._swap_lock:
            target, setup = self._building, self._building_setup
            if target is None or setup is None:
                raise RebuildInProgressError("no rebuild of the search index is under way")
            with self._write_lock, target._write_lock:
                _write_pointer(self._home, target._path.name)
                old_path, old_writer, old_analysis = self._path, self._writer, self._analysis
                self._index, self._writer, self._path = target._index, target._writer, target._path
                self._analyzer, self._analysis, self._synonyms = setup
                target._writer = None
                target._closed = True
                self._building = self._building_setup = None
            target._facet_pool.shutdown(wait=False)
            if old_writer is not None:
                try:
                    old_writer.wait_merging_threads()
                except ValueError as err:
                    log.warning("the old search index's writer did not close cleanly: %s", err)
            if old_analysis is not None and old_analysis is not self._analysis:
                old_analysis.close()
            log.info("the search index now reads %s (was %s)", self._path, old_path)
            timer = threading.Timer(OLD_GENERATION_GRACE_SECONDS, self._remove_old_generations)
            timer.daemon = True
            timer.start()

    def abort_rebuild(self) -> None:
        """Drop the generation being built (the live one is untouched)."""
        with self._swap_lock:
            target, setup = self._building, self._building_setup
            self._building = self._building_setup = None
            if target is None or setup is None:
                return
            if setup[1] is not None and setup[1] is not self._analysis:
                setup[1].close()
            target._analysis = None  # closed above, or ours
            try:
                target.close()
            finally:
                shutil.rmtree(target._path, ignore_errors=True)

    def _live_dir(self) -> Path:
        """The live generation: the one `CURRENT` names, else the home itself."""
        pointer = self._home / CURRENT_FILE
        try:
            name = pointer.read_text(encoding="utf-8").strip()
            self._pointer_seen = pointer.stat().st_mtime_ns
        except (FileNotFoundError, NotADirectoryError):
            # No generation yet (or no home: opening it says why).
            return self._home
        if (
            not name.startswith(_GENERATION_PREFIX)
            or "/" in name
            or not (self._home / name).is_dir()
        ):
            raise SearchUnavailableError(f"{pointer} names no generation of the index: {name!r}")
        return self._home / name

    def _follow(self) -> None:
        """In a process that only reads, open the generation `CURRENT` names when a
        rebuild in another process swapped it in (looked at once a second at most)."""
        if self._writer is not None or self._building is not None:
            return  # this process swaps generations itself
        now = time.monotonic()
        if now - self._pointer_checked < _FOLLOW_SECONDS:
            return
        self._pointer_checked = now
        try:
            seen = (self._home / CURRENT_FILE).stat().st_mtime_ns
        except FileNotFoundError:
            return
        if seen == self._pointer_seen:
            return
        with self._write_lock:
            path = self._live_dir()
            if path == self._path or self._writer is not None:
                return
            try:
                self._index = tantivy.Index(self._schema, str(path), reuse=True)
            except ValueError as err:
                raise SearchUnavailableError(
                    f"cannot open the search index at {path}: {err}"
                ) from err
            log.info("the search index now reads %s (was %s)", path, self._path)
            self._path = path

    def _remove_old_generations(self) -> None:
        """Delete every generation but the live one and the one being built (and,
        once a generation is live, the home's own legacy index files)."""
        with self._swap_lock:
            keep = {self._path}
            if self._building is not None:
                keep.add(self._building._path)
            for entry in self._home.iterdir():
                if entry in keep or entry.name in _HOME_FILES:
                    continue
                if entry.name.startswith(_GENERATION_PREFIX) and entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                elif self._path != self._home and entry.is_file():
                    entry.unlink(missing_ok=True)

    # -- internals: writing ---------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise SearchUnavailableError("the search index is closed")

    def _open_writer(self) -> tantivy.IndexWriter:
        """The writer, created on first use (so read-only processes never take the lock)."""
        self._check_open()
        if self._writer is None:
            try:
                self._writer = self._index.writer(self._heap, self._threads)
            except ValueError as err:
                raise SearchUnavailableError(
                    f"cannot open a writer on {self._path} (another process writing?): {err}"
                ) from err
        return self._writer

    @contextmanager
    def _writing(self, action: str) -> Iterator[tantivy.IndexWriter]:
        """The writer, under the write lock; committed (and made visible) on success.

        On any error the pending operations are rolled back, so a half-applied
        batch never rides along with the next commit.
        """
        with self._write_lock:
            writer = self._open_writer()
            try:
                yield writer
                writer.commit()
                # Visible now, rather than after the reader's file watcher fires.
                self._index.reload()
            except (ValueError, RuntimeError, OSError) as err:
                self._rollback(writer)
                raise SearchUnavailableError(f"cannot {action}: {err}") from err
            except BaseException:
                self._rollback(writer)
                raise

    def _rollback(self, writer: tantivy.IndexWriter) -> None:
        try:
            writer.rollback()
        except ValueError:
            # The writer is unusable; drop it so the next write opens a new one.
            self._writer = None

    def _stored_bodies(self, ids: list[str]) -> dict[str, str]:
        """The stored (already cut) body of each of `ids` that is in the index."""
        found: dict[str, str] = {}
        try:
            searcher = self._index.searcher()
            for i in range(0, len(ids), _REVISION_BATCH):
                batch = list(dict.fromkeys(ids[i : i + _REVISION_BATCH]))
                query = tantivy.Query.term_set_query(self._schema, "id", batch)
                for _, address in searcher.search(query, len(batch)).hits:
                    stored = searcher.doc(address)
                    found[str(stored.get_first("id"))] = _bytes_field(stored, "src_body")
        except ValueError as err:
            raise SearchUnavailableError(f"cannot read the search index: {err}") from err
        return found

    def _stored_revisions(self, ids: list[str]) -> dict[str, int]:
        """Revisions by id via a terms aggregation on fast fields (no stored-document reads)."""
        found: dict[str, int] = {}
        try:
            searcher = self._index.searcher()
            for i in range(0, len(ids), _REVISION_BATCH):
                batch = ids[i : i + _REVISION_BATCH]
                query = tantivy.Query.term_set_query(self._schema, "id", batch)
                agg = {
                    "ids": {
                        "terms": {"field": "id", "size": len(batch)},
                        "aggs": {"revision": {"max": {"field": "revision"}}},
                    }
                }
                result = searcher.aggregate(query, agg)
                for bucket in result["ids"]["buckets"]:
                    found[str(bucket["key"])] = int(bucket["revision"]["value"])
        except ValueError as err:
            raise SearchUnavailableError(f"cannot read the search index: {err}") from err
        return found

    def _add(self, writer: tantivy.IndexWriter, docs: Sequence[IndexDocument]) -> None:
        """Replace `docs` (one per id) in the pending commit, skipping any older than
        the stored revision.

        They are analysed and added a group of about `analysis_chunk_chars` at a
        time: the tokens of a group (tens of times the size of its text) and its
        tantivy documents are released before the next group is analysed, and
        no single call into the analyser or tantivy holds the GIL for long.
        """
        stored = self._stored_revisions([d.id for d in docs])
        # An older task must not restore older text or ACL.
        wanted = [d for d in docs if stored.get(d.id, -1) <= d.revision]
        group: list[IndexDocument] = []
        size = 0
        for doc in wanted:
            chars = len(doc.title) + len(doc.filename) + min(len(doc.body), self._max_body_chars)
            if group and size + chars > self._analysis_chunk_chars:
                self._add_group(writer, group)
                group, size = [], 0
            group.append(doc)
            size += chars
        if group:
            self._add_group(writer, group)

    def _add_group(self, writer: tantivy.IndexWriter, docs: Sequence[IndexDocument]) -> None:
        for doc, built in zip(docs, self._analyzed(docs), strict=True):
            writer.delete_documents_by_term("id", doc.id)
            writer.add_document(built)

    def _analyzed(self, docs: Sequence[IndexDocument]) -> list[tantivy.Document]:
        """The tantivy documents of `docs`, their texts analysed in one batch
        (on another core when an `AnalysisProcess` is configured)."""
        prepared = [self._texts(doc) for doc in docs]
        texts = [text for parts in prepared for _, _, text in parts]
        if self._analysis is not None:
            tokens = self._analysis.analyze_texts(texts)
        else:
            tokens = analyze_texts(self._analyzer, texts)
        out: list[tantivy.Document] = []
        cursor = 0
        for doc, parts in zip(docs, prepared, strict=True):
            out.append(self._to_tantivy(doc, parts, tokens[cursor : cursor + len(parts)]))
            cursor += len(parts)
        return out

    def _texts(self, doc: IndexDocument) -> list[tuple[str, str, str]]:
        """(field, stored text, text to analyse) of each analysed part of `doc`: its
        title, its filename, each of its tags, its body, in this order."""
        title = _nfc(doc.title)
        filename = _nfc(doc.filename)
        # Mecab glues some separators to words; spaces cut `출생신고_양식.hwp`
        # into its words while keeping offsets into the filename itself.
        parts = [
            ("title", title, title),
            ("filename", filename, _FILENAME_PUNCT.sub(" ", filename)),
        ]
        for tag in doc.tags:
            if tag:
                parts.append(("tags", _nfc(tag), _nfc(tag)))
        body = _nfc(doc.body)[: self._max_body_chars]
        parts.append(("body", body, body))
        return parts

    def _to_tantivy(
        self,
        doc: IndexDocument,
        parts: list[tuple[str, str, str]],
        part_tokens: list[list[TokenTuple]],
    ) -> tantivy.Document:
        out = tantivy.Document()
        out.add_text("id", doc.id)
        out.add_integer("revision", doc.revision)
        out.add_integer("created_at", _micros(doc.created_at))
        for name in ("department", "ministry", "content_type"):
            value: str = getattr(doc, name)
            if value:  # no empty keyword, so no empty facet bucket
                out.add_text(name, value)
        for reader in doc.readers:
            out.add_text("readers", reader)
        for tag in doc.tags:
            if tag:
                out.add_text("tag", tag)
        if doc.folder:
            out.add_text("folder", doc.folder)
        for folder in doc.folder_path:
            out.add_text("folder_path", folder)
        combined: list[tantivy.Token] = []
        grams: list[tantivy.Token] = []
        base = gram_base = 0
        for (field, text, _), tokens in zip(parts, part_tokens, strict=True):
            if self._fallback:
                gram_base = _add_grams(text, gram_base, grams)
            if not tokens:
                continue
            if field != "body":
                out.add_pre_tokenized_text(field, _pretokenized(text, tokens))
            for term, position, start, end in tokens:
                combined.append(tantivy.Token(term, base + position, start, end))
            base += tokens[-1][1] + 1 + _PART_GAP
        if combined:
            out.add_pre_tokenized_text(TEXT_FIELD, tantivy.PreTokenizedString("", combined))
        if grams:
            out.add_pre_tokenized_text(GRAMS_FIELD, tantivy.PreTokenizedString("", grams))
        keys = _completion_keys(parts, part_tokens)
        if keys:
            out.add_pre_tokenized_text(
                COMPLETE_FIELD,
                tantivy.PreTokenizedString(
                    "", list(map(tantivy.Token, keys, range(len(keys)), repeat(0), repeat(0)))
                ),
            )
        (_, title, _), (_, filename, _), (_, body, _) = parts[0], parts[1], parts[-1]
        out.add_bytes("src_title", title.encode())
        out.add_bytes("src_filename", filename.encode())
        out.add_bytes("src_body", body.encode())
        return out

    # -- internals: searching --------------------------------------------------------

    def _build_query(
        self,
        analyzed: AnalyzedQuery,
        request: SearchRequest,
        access: AccessFilter,
        *,
        scoring: bool = True,
    ) -> tantivy.Query:
        """The user's text AND the filter; without `scoring`, only what decides a match
        (the title/filename/tags boosts are left out, e.g. for aggregations). The
        adjacency boosts are not in it: `_top_hits` ranks its first hits with them."""
        occur = tantivy.Occur
        clauses: list[tuple[tantivy.Occur, tantivy.Query]] = []
        for i, terms in enumerate(analyzed.words):
            spans = analyzed.word_spans(i)
            if spans:
                morphological = self._expanded_word_query(terms, spans, scoring)
            else:
                morphological = self._word_query(terms, boosts=scoring)
            fallback = (
                analyzed.fallback(i) if self._fallback and request.compound_fallback else None
            )
            if fallback is None:
                clauses.append((occur.Must, morphological))
                continue
            clauses.append(
                (occur.Must, self._with_fallback(terms, spans, morphological, fallback, scoring))
            )
        for i, terms in enumerate(analyzed.phrases):
            clauses.append((occur.Must, self._phrases_query(terms, analyzed.phrase_spans(i))))
        for i, terms in enumerate(analyzed.excluded):
            clauses.append((occur.MustNot, self._phrases_query(terms, analyzed.excluded_spans(i))))
            excluded_fallback = analyzed.excluded_fallback(i) if self._fallback else None
            if excluded_fallback is not None:
                clauses.append((occur.MustNot, self._fallback_query(excluded_fallback)))
        restriction = self._filter_query(request, access)
        if analyzed.has_positive:
            # The filter must not score: the user's text ranks, the filter only restricts.
            clauses.append((occur.Must, tantivy.Query.const_score_query(restriction, 0.0)))
        else:
            clauses.append((occur.Must, restriction))
        return tantivy.Query.boolean_query(clauses)

    def _word_query(self, terms: PositionedTerms, *, boosts: bool) -> tantivy.Query:
        """The document holds all of the word's terms; more score if its title etc. does."""
        unique = list(dict.fromkeys(term for _, term in terms))
        matching = self._all_of(TEXT_FIELD, unique)
        if not boosts:
            return matching
        clauses = [(tantivy.Occur.Must, matching)]
        for field, boost in BOOST_FIELDS.items():
            clauses.append((tantivy.Occur.Should, _boost(self._all_of(field, unique), boost)))
        return tantivy.Query.boolean_query(clauses)

    def _expanded_word_query(
        self, terms: PositionedTerms, spans: tuple[SynonymSpan, ...], boosts: bool
    ) -> tantivy.Query:
        """A word with synonym spans: its other terms, and per span the typed terms
        or one alternative as a phrase; boosted like `_word_query` per variant."""
        occur = tantivy.Occur
        covered = {i for span in spans for i in range(span.start, span.end)}
        rest = list(dict.fromkeys(t for i, (_, t) in enumerate(terms) if i not in covered))
        clauses = [(occur.Must, self._term(TEXT_FIELD, t)) for t in rest]
        variants: list[list[str]] = [rest]
        for span in spans:
            options: list[tantivy.Query] = []
            typed = list(dict.fromkeys(t for _, t in terms[span.start : span.end]))
            span_variants: list[list[str]] = []
            if span.keep_original:
                options.append(self._all_of(TEXT_FIELD, typed))
                span_variants.append(typed)
            for alternative in span.alternatives:
                options.append(self._phrase_query(alternative))
                span_variants.append([t for _, t in alternative])
            clauses.append(
                (occur.Must, tantivy.Query.boolean_query([(occur.Should, q) for q in options]))
            )
            variants = [v + s for v in variants for s in span_variants][:_MAX_BOOST_VARIANTS]
        matching = tantivy.Query.boolean_query(clauses)
        if not boosts:
            return matching
        scored = [(occur.Must, matching)]
        for variant in variants:
            unique = list(dict.fromkeys(variant))
            for field, boost in BOOST_FIELDS.items():
                scored.append((occur.Should, _boost(self._all_of(field, unique), boost)))
        return tantivy.Query.boolean_query(scored)

    def _adjacency_boosts(self, analyzed: AnalyzedQuery) -> list[tantivy.Query]:
        """Phrase boosts: each word of several terms, and all the words together."""
        boosts: list[tantivy.Query] = []
        together: list[tuple[int, str]] = []
        for i, terms in enumerate(analyzed.words):
            if analyzed.word_spans(i):
                return boosts  # a synonym span: its alternatives are phrases already
            if len(terms) > 1:
                boosts.append(_boost(self._phrase_query(terms), ADJACENCY_BOOST))
            shift = together[-1][0] + 1 if together else 0
            together.extend((shift + position, term) for position, term in terms)
        if len(analyzed.words) > 1 and len(together) > 1:
            boosts.append(_boost(self._phrase_query(tuple(together)), ADJACENCY_BOOST))
        return boosts

    def _with_fallback(
        self,
        terms: PositionedTerms,
        spans: tuple[SynonymSpan, ...],
        morphological: tantivy.Query,
        fallback: Fallback,
        scoring: bool,
    ) -> tantivy.Query:
        """The word matched morphologically or, failing that, inside a compound.

        Scoring: a morphological match earns MORPHOLOGY_TIER on top of its own
        score, a fallback match only FALLBACK_WEIGHT times its BM25 score, so
        every morphological match ranks above every fallback-only one.
        """
        occur = tantivy.Occur
        inside = self._fallback_query(fallback)
        if not scoring:
            return tantivy.Query.boolean_query(
                [(occur.Should, morphological), (occur.Should, inside)]
            )
        plain = (
            self._expanded_word_query(terms, spans, False)
            if spans
            else self._word_query(terms, boosts=False)
        )
        return tantivy.Query.boolean_query(
            [
                (occur.Should, morphological),
                (occur.Should, tantivy.Query.const_score_query(plain, MORPHOLOGY_TIER)),
                (occur.Should, _boost(inside, FALLBACK_WEIGHT)),
            ]
        )

    def _fallback_query(self, fallback: Fallback) -> tantivy.Query:
        """Every Hangul run of the word as a phrase of grams, and its other terms."""
        parts: list[tantivy.Query] = []
        for run in fallback.runs:
            grams = run_grams(run)
            if len(grams) == 1:
                parts.append(self._term(GRAMS_FIELD, grams[0]))
            else:
                parts.append(
                    tantivy.Query.phrase_query(self._schema, GRAMS_FIELD, list(enumerate(grams)))
                )
        parts.extend(self._term(TEXT_FIELD, t) for t in fallback.terms)
        if len(parts) == 1:
            return parts[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in parts])

    def _phrases_query(
        self, terms: PositionedTerms, spans: tuple[SynonymSpan, ...]
    ) -> tantivy.Query:
        """The phrase, or any of its synonym variants."""
        if not spans:
            return self._phrase_query(terms)
        options = [self._phrase_query(v) for v in phrase_variants(terms, spans)]
        if len(options) == 1:
            return options[0]
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in options])

    def _all_of(self, field: str, terms: list[str]) -> tantivy.Query:
        if len(terms) == 1:
            return self._term(field, terms[0])
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, self._term(field, t)) for t in terms]
        )

    def _phrase_query(self, terms: PositionedTerms) -> tantivy.Query:
        """The document holds the terms at their relative positions in one text field."""
        if len(terms) == 1:
            return self._term(TEXT_FIELD, terms[0][1])
        return tantivy.Query.phrase_query(self._schema, TEXT_FIELD, list(terms))

    def _term(self, field: str, term: str) -> tantivy.Query:
        return tantivy.Query.term_query(self._schema, field, term, index_option="freq")

    def _keyword(self, field: str, value: str) -> tantivy.Query:
        return tantivy.Query.term_query(self._schema, field, value, index_option="basic")

    def _policy_match_query(self, match: PolicyMatch) -> tantivy.Query | None:
        """`PolicyMatch.matches` as a query: documents with every attribute `match`
        names (None: the match selects nothing). Visibility is a reader token."""
        if match.is_empty:
            return None  # an empty match would select everything: fail closed
        terms = [
            self._keyword(key, value)
            for key, value in (
                ("ministry", match.ministry),
                ("department", match.department),
                ("tag", match.tag),
                ("folder_path", match.folder),
            )
            if value is not None
        ]
        if match.visibility is not None:
            terms.append(self._keyword("readers", visibility_token(match.visibility)))
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, t) for t in terms])

    def _access_query(self, access: AccessFilter) -> tantivy.Query:
        """The documents `access` lets through (see `AccessFilter`)."""
        schema = self._schema
        occur = tantivy.Occur
        readers = sorted(access.tokens)
        if len(readers) <= _READERS_UNION_MAX:
            # A union of term queries can skip through postings, which makes a
            # caller with few documents (user:…) much faster than a term set,
            # which first collects every match of every token into a bitset.
            readable = tantivy.Query.boolean_query(
                [(occur.Should, self._keyword("readers", r)) for r in readers]
            )
        else:
            readable = tantivy.Query.term_set_query(schema, "readers", readers)
        by_match = [q for q in map(self._policy_match_query, access.pending) if q is not None]
        if by_match:
            readable = tantivy.Query.boolean_query(
                [(occur.Should, readable)] + [(occur.Should, q) for q in by_match]
            )
        if access.stale_ids:
            # Their indexed readers are out of date: the catalog decided them.
            stale = tantivy.Query.term_set_query(schema, "id", sorted(access.stale_ids))
            readable = tantivy.Query.boolean_query([(occur.Must, readable), (occur.MustNot, stale)])
        if access.readable_stale_ids:
            checked = sorted(access.readable_stale_ids)
            readable = tantivy.Query.boolean_query(
                [
                    (occur.Should, readable),
                    (occur.Should, tantivy.Query.term_set_query(schema, "id", checked)),
                ]
            )
        return readable

    def _filter_query(self, request: SearchRequest, access: AccessFilter) -> tantivy.Query:
        """The non-scoring restriction: readable, and every requested filter."""
        schema = self._schema
        occur = tantivy.Occur
        readable = self._access_query(access)
        clauses = [(occur.Must, readable)]
        for name in ("department", "ministry", "content_type", "tag"):
            value: str | None = getattr(request, name)
            if value:
                clauses.append((occur.Must, self._keyword(name, value)))
        if request.folders is not None:
            # An empty subtree (an unknown folder) must match nothing, not everything.
            folders = sorted(request.folders)
            clauses.append(
                (
                    occur.Must,
                    tantivy.Query.term_set_query(schema, "folder", folders)
                    if folders
                    else tantivy.Query.empty_query(),
                )
            )
        if request.created_from is not None or request.created_to is not None:
            clauses.append(
                (
                    occur.Must,
                    tantivy.Query.range_query(
                        schema,
                        "created_at",
                        tantivy.FieldType.Integer,
                        lower_bound=_micros_or_none(request.created_from),
                        upper_bound=_micros_or_none(request.created_to),
                        include_lower=True,
                        # tantivy wants an unbounded side marked inclusive.
                        include_upper=request.created_to is None,
                    ),
                )
            )
        return tantivy.Query.boolean_query(clauses)

    def _top_hits(
        self,
        searcher: tantivy.Searcher,
        query: tantivy.Query,
        request: SearchRequest,
        analyzed: AnalyzedQuery,
        count: bool,
    ) -> tuple[list[SearchHit], int]:
        """The page of hits, and the total when `count` (else 0)."""
        limit = request.limit
        sort = request.sort
        if sort is SortOrder.RELEVANCE and not analyzed.has_positive:
            sort = SortOrder.NEWEST  # nothing to rank by: list the newest first
        kwargs: dict[str, Any] = {}
        if sort is not SortOrder.RELEVANCE:
            kwargs["order_by_field"] = "created_at"
            kwargs["order"] = tantivy.Order.Desc if sort is SortOrder.NEWEST else tantivy.Order.Asc
        if limit == 0 and not count:
            return [], 0
        boosts = self._adjacency_boosts(analyzed) if sort is SortOrder.RELEVANCE else []
        if boosts and limit > 0:
            ranked, total = self._rescored(searcher, query, boosts, request, count)
        else:
            # tantivy refuses a limit of 0 (it panics), so fetch one hit and drop it.
            result = searcher.search(
                query, max(limit, 1), count=count, offset=request.offset, **kwargs
            )
            ranked = result.hits
            # `count` is missing from tantivy's type stubs.
            total = int(getattr(result, "count", 0) or 0)
        if limit == 0:
            return [], total
        terms = analyzed.highlight_terms if request.with_highlights else frozenset()
        surfaces = (
            analyzed.highlight_surfaces
            if request.with_highlights and self._fallback
            else frozenset()
        )
        hits = []
        for value, address in ranked:
            score = float(value) if sort is SortOrder.RELEVANCE else 0.0
            hits.append(self._hit(searcher.doc(address), score, terms, surfaces))
        return hits, total

    def _rescored(
        self,
        searcher: tantivy.Searcher,
        query: tantivy.Query,
        boosts: list[tantivy.Query],
        request: SearchRequest,
        count: bool,
    ) -> tuple[list[tuple[float, tantivy.DocAddress]], int]:
        """The page of a relevance ranking of `query` whose first RESCORE_WINDOW hits
        are ranked again with the adjacency `boosts` added to their scores (hits
        further down keep their order, so pages stay consistent); and the total
        when `count`."""
        window = request.offset + request.limit
        result = searcher.search(query, max(window, RESCORE_WINDOW), count=count)
        total = int(getattr(result, "count", 0) or 0)
        ranked = [(float(score), address) for score, address in result.hits]
        head = ranked[:RESCORE_WINDOW]
        bonus = self._boost_scores(searcher, boosts, [a for _, a in head])
        head = [(score + bonus.get(_address_key(a), 0.0), a) for score, a in head]
        # Ties as tantivy breaks them: the earlier document first.
        head.sort(key=lambda hit: (-hit[0], _address_key(hit[1])))
        return (head + ranked[RESCORE_WINDOW:])[request.offset : window], total

    def _boost_scores(
        self,
        searcher: tantivy.Searcher,
        boosts: list[tantivy.Query],
        addresses: list[tantivy.DocAddress],
    ) -> dict[tuple[int, int], float]:
        """What `boosts` add to the score of each of `addresses`: the score the search
        gives each boost as an optional clause, computed on these documents only.

        Each boost is a required clause beside the documents' `created_at`
        values (a union of term queries: cheap to drive, and a required phrase
        is checked on its documents alone); another document created at the
        same moment may match too, and is left out.
        """
        if not addresses:
            return {}
        moments = {
            int(m) for m in searcher.fast_field_values("created_at", addresses) if m is not None
        }
        picked = tantivy.Query.const_score_query(
            tantivy.Query.boolean_query(
                [
                    (
                        tantivy.Occur.Should,
                        tantivy.Query.term_query(self._schema, "created_at", moment),
                    )
                    for moment in sorted(moments)
                ]
            ),
            0.0,
        )
        wanted = {_address_key(a) for a in addresses}
        bonus: dict[tuple[int, int], float] = {}
        for boost in boosts:
            scored = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, boost), (tantivy.Occur.Must, picked)]
            )
            result = searcher.search(scored, len(addresses), count=True)
            found = int(getattr(result, "count", 0) or 0)
            if found > len(addresses):  # documents created at the same moments: take all
                result = searcher.search(scored, found, count=False)
            for score, address in result.hits:
                key = _address_key(address)
                if key in wanted:
                    bonus[key] = bonus.get(key, 0.0) + float(score)
        return bonus

    def _hit(
        self,
        doc: tantivy.Document,
        score: float,
        terms: frozenset[str],
        surfaces: frozenset[str],
    ) -> SearchHit:
        title = _bytes_field(doc, "src_title")
        fragments: list[str] = []
        if terms:
            body = _bytes_field(doc, "src_body")
            fragments = highlight(self._analyzer, body, terms, surfaces=surfaces)
            if not fragments:
                fragments = highlight(
                    self._analyzer, title, terms, surfaces=surfaces, max_fragments=1
                )
        created = doc.get_first("created_at")
        return SearchHit(
            id=str(doc.get_first("id")),
            score=score,
            title=title,
            filename=_bytes_field(doc, "src_filename"),
            department=str(doc.get_first("department") or ""),
            ministry=str(doc.get_first("ministry") or ""),
            content_type=str(doc.get_first("content_type") or ""),
            created_at=_EPOCH + timedelta(microseconds=int(created or 0)),
            highlights=tuple(fragments),
        )

    def _facets(
        self, searcher: tantivy.Searcher, query: tantivy.Query
    ) -> tuple[dict[str, list[FacetCount]], int]:
        """The facet counts and the total of `query`, in one aggregation pass."""
        agg: dict[str, Any] = {
            name: {
                "terms": {"field": name, "size": FACET_SIZE, "segment_size": _FACET_SEGMENT_SIZE}
            }
            for name in FACET_FIELDS
        }
        # Every document has exactly one revision, so counting them counts matches.
        agg[_TOTAL_AGG] = {"value_count": {"field": "revision"}}
        result = searcher.aggregate(query, agg)
        total = int(result.get(_TOTAL_AGG, {}).get("value") or 0)
        facets: dict[str, list[FacetCount]] = {}
        for name in FACET_FIELDS:
            buckets = result.get(name, {}).get("buckets", [])
            counts = [FacetCount(str(b["key"]), int(b["doc_count"])) for b in buckets]
            facets[name] = sorted(counts, key=lambda c: (-c.count, c.value))
        return facets, total


def _write_pointer(home: Path, name: str) -> None:
    """Name the live generation in `home/CURRENT`, atomically and durably."""
    tmp = home / f"{CURRENT_FILE}.tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(name + "\n")
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, home / CURRENT_FILE)
    directory = os.open(home, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _schema() -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    for name in _KEYWORD_FIELDS:
        builder.add_text_field(
            name, stored=True, fast=True, tokenizer_name="raw", index_option="basic"
        )
    builder.add_text_field("tag", fast=True, tokenizer_name="raw", index_option="basic")
    builder.add_text_field("folder", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("folder_path", tokenizer_name="raw", index_option="basic")
    builder.add_text_field("readers", tokenizer_name="raw", index_option="basic")
    builder.add_text_field(TEXT_FIELD, index_option="position")
    builder.add_text_field(GRAMS_FIELD, index_option="position")
    builder.add_text_field(COMPLETE_FIELD, tokenizer_name="raw", index_option="basic")
    for name in BOOST_FIELDS:
        builder.add_text_field(name, index_option="freq")
    builder.add_integer_field("revision", fast=True)
    builder.add_integer_field("created_at", stored=True, indexed=True, fast=True)
    for name in ("src_title", "src_filename", "src_body"):
        builder.add_bytes_field(name, stored=True)
    return builder.build()


def _completion_keys(
    parts: list[tuple[str, str, str]], part_tokens: list[list[TokenTuple]]
) -> list[str]:
    """The completion keys of a document (see COMPLETE_FIELD): its title, and the
    words of its text as written without their particles and endings (see
    `_add_completion_terms`), title, filename and tags first."""
    keys: list[str] = []
    title = parts[0][1].strip()
    if title and len(title) <= MAX_COMPLETION_TITLE:
        keys.append(f"tj:{letters(title)}{_KEY_SEPARATOR}{title}")
        if initials(title):
            keys.append(f"tc:{initials(title)}{_KEY_SEPARATOR}{title}")
    terms: dict[str, None] = {}
    for (_, _, analysed), tokens in zip(parts, part_tokens, strict=True):
        if len(terms) >= MAX_COMPLETION_TERMS:
            break
        _add_completion_terms(analysed, tokens, terms)
    for term in terms:
        keys.extend(_word_keys(term))
    return keys


#: Completion keys of words seen lately: the same words recur in document after
#: document, and spelling them letter by letter is most of the keys' cost.
_WORD_KEYS: dict[str, tuple[str, ...]] = {}
_WORD_KEYS_LIMIT = 200_000


def _word_keys(term: str) -> tuple[str, ...]:
    """The completion keys of one word: in letters, and in initials (two or more)."""
    known = _WORD_KEYS.get(term)
    if known is not None:
        return known
    chosung = initials(term)
    keys: tuple[str, ...] = (f"wj:{letters(term)}{_KEY_SEPARATOR}{term}",)
    if len(chosung) >= 2:
        keys += (f"wc:{chosung}{_KEY_SEPARATOR}{term}",)
    if len(_WORD_KEYS) >= _WORD_KEYS_LIMIT:
        _WORD_KEYS.clear()  # a rare reset beats bookkeeping on every hit
    _WORD_KEYS[term] = keys
    return keys


def _add_completion_terms(text: str, tokens: list[TokenTuple], out: dict[str, None]) -> None:
    """Add to `out` (up to MAX_COMPLETION_TERMS) each word of `text` from its first
    term to its last (`행정안전부는` → 행정안전부, `출생신고를` → 출생신고, whatever
    the dictionary knows of them), and each term that stands in the text as
    written (`출생`, `신고`; not the lemma of an inflected verb)."""
    word_start = word_end = -1
    for term, _, start, end in sorted(tokens, key=lambda t: (t[2], t[3])):
        if len(out) >= MAX_COMPLETION_TERMS:
            return
        if len(term) >= 2 and text[start:end].lower() == term:
            out.setdefault(term, None)
        if word_start >= 0 and start > word_end and _spaced(text, word_end, start):
            _add_word(_whole_word(text, word_start, word_end), out)  # a space ends the word
            word_start = -1
        if word_start < 0:
            word_start, word_end = start, end
        else:
            word_end = max(word_end, end)
    if word_start >= 0:
        _add_word(_whole_word(text, word_start, word_end), out)


def _whole_word(text: str, start: int, end: int) -> str:
    """text[start:end], and the one syllable after it when that is all that is left
    of the word but a particle: a noun suffix mecab dropped (`상품권을` read as
    상품/권/을 → 상품권), not an ending (`시행한다`)."""
    rest = _HANGUL_PREFIX.match(text, end)
    if rest is not None and rest.group() not in PARTICLES:
        tail = strip_particle(rest.group())
        if len(tail) == 1 and tail == rest.group()[:1] and tail not in _PARTICLE_SYLLABLES:
            end += 1
    return text[start:end]


def _spaced(text: str, start: int, end: int) -> bool:
    """Whether text[start:end] holds a space or punctuation (a word boundary)."""
    return not text[start:end].isalnum()


def _add_word(word: str, out: dict[str, None]) -> None:
    word = word.lower()
    if 2 <= len(word) <= MAX_TOKEN_CHARS and len(out) < MAX_COMPLETION_TERMS:
        out.setdefault(word, None)


def _add_grams(text: str, base: int, out: list[tantivy.Token]) -> int:
    """Append the Hangul grams of `text` from position `base`; the next part's base.

    The hot loop of the fallback at index time: grams and tokens are made by
    `map` over C functions (per-gram Python code cost a fifth of ingest).
    """
    runs = gram_runs(text)
    for start, position, run in runs:
        n = len(run) - 1
        first = base + position
        out.extend(
            map(
                tantivy.Token,
                map(operator.add, run, run[1:]),
                range(first, first + n),
                range(start, start + n),
                range(start + 2, start + 2 + n),
            )
        )
    if not runs:
        return base
    _, position, run = runs[-1]
    return base + position + len(run) + _PART_GAP


def _pretokenized(text: str, tokens: Iterable[TokenTuple]) -> tantivy.PreTokenizedString:
    return tantivy.PreTokenizedString(text, [tantivy.Token(*t) for t in tokens])


def _address_key(address: tantivy.DocAddress) -> tuple[int, int]:
    return (address.segment_ord, address.doc)


def _boost(query: tantivy.Query, boost: float) -> tantivy.Query:
    return query if boost == 1.0 else tantivy.Query.boost_query(query, boost)


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _micros(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # the port promises UTC; be lenient
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _latest(docs: Sequence[IndexDocument]) -> dict[str, IndexDocument]:
    """The highest revision of each id among `docs`, in order of first appearance."""
    latest: dict[str, IndexDocument] = {}
    for doc in docs:
        if not doc.id:
            raise ValueError("an index document needs an id")
        held = latest.get(doc.id)
        if held is None or doc.revision >= held.revision:
            latest[doc.id] = doc
    return latest


def _micros_or_none(moment: datetime | None) -> int | None:
    return None if moment is None else _micros(moment)


def _bytes_field(doc: tantivy.Document, name: str) -> str:
    value = doc.get_first(name)
    return bytes(value).decode() if value else ""
