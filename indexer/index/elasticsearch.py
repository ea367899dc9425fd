"""`SearchIndex` on Elasticsearch or OpenSearch (the scale-out adapter, issue 10).

The index uses the settings and mapping of
`infra/elasticsearch/index-settings.json` (nori), behind an alias (see
`ElasticsearchIndex`); one request per search, shaped as
`indexer.index.base.AccessFilter` documents it: the user's text in `must` (the
only scoring clause), the request's filters and the access filter in `filter`,
`from`/`size`, `track_total_hits`, facets as `terms` aggregations.

Writes go through `_bulk` with the revision as an external version
(`version_type=external_gte`): the engine itself refuses an older revision, so
an old task never overwrites newer text or a newer ACL, and the same revision
written twice is idempotent.

Suggestions and corrections read the keyword field `complete`: the completion
keys our Python code writes with each document, the very keys of the Tantivy
adapter (titles and words in jamo letters and in initial consonants), found by
`prefix` under the ACCESS filter and counted by a `terms` aggregation over the
documents that filter lets through (`completion_body`).

The engine is detected from `GET /`: OpenSearch is spoken to with
`opensearch-py`, anything else with the official `elasticsearch` client; both
sit behind `_EngineClient`, the only place that knows either library.

Not the same as Tantivy (see NOTES-es-adapter.md): our query analysis
(`indexer.analysis.query_terms`) does not run here — the user's words go to the
engine as `match`/`match_phrase` on the nori-analysed fields.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import logging
import time
import unicodedata
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from importlib import resources
from typing import Any, Protocol

from indexer.analysis.grams import PARTICLES
from indexer.analysis.highlight import highlight
from indexer.analysis.jamo import edit_distance, is_initials, letters
from indexer.analysis.korean import AnalysisMode, KoreanAnalyzer
from indexer.analysis.process import AnalysisProcess, analyze_texts
from indexer.analysis.query_terms import analyze_query
from indexer.errors import InvalidQueryError, RebuildInProgressError, SearchUnavailableError
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

# One definition of the completion keys for both engines: the Tantivy adapter's
# (the behavioural reference), so suggestions and corrections agree key for key.
from indexer.index.tantivy_index import (
    _CORRECTION_CANDIDATES,
    _FILENAME_PUNCT,
    _KEY_SEPARATOR,
    DEFAULT_ANALYSIS_CHUNK_CHARS,
    DEFAULT_MAX_BODY_CHARS,
    _completion_keys,
)
from indexer.query import UserQuery
from storage.catalog.policy_match import PolicyMatch

log = logging.getLogger(__name__)

DEFAULT_MAX_RESULT_WINDOW = 10_000
FACET_SIZE = 50
_BULK_CHUNK = 500
#: ...and at most about this many characters of JSON per bulk request (up to
#: ~48 MB of UTF-8 Korean: the engines refuse a request over
#: `http.max_content_length`, 100 MB by default).
_BULK_CHARS = 16 * 1024 * 1024
#: Every write is searchable when it returns: the pipeline records a document
#: indexed right after writing it, and from then on searches trust the index's
#: readers for it (a stale entry is no longer decided by the catalog), so an
#: entry not yet refreshed would show its old readers (a revoked reader would
#: still find it). One refresh per bulk request (a batch), not per document.
#: And a write goes to the alias or nowhere: were the alias deleted under a
#: running process, the engine would otherwise create a plain index of that
#: name with a guessed (dynamic) mapping, without nori or the readers' keywords.
_VISIBLE = {"refresh": "true", "require_alias": "true"}
#: Documents whose stored text is read back at once by an access update.
_STORED_BATCH = 100
_HIGHLIGHT_FRAGMENT_CHARS = 150
#: Every process looks for the rebuild marker alias at most this often (a
#: rebuild waits twice as long before its full pass: see `begin_rebuild`).
REBUILD_MARKER_SECONDS = 1.0
#: The old concrete index outlives the swap this long (searches begun on it end).
OLD_INDEX_GRACE_SECONDS = 5.0
_HIGHLIGHT_FRAGMENTS = 3
#: The score of a word found only inside a compound (below any precise match).
_FALLBACK_SCORE = 0.0001
#: Words this close together score as standing together (a phrase with slop).
_ADJACENT_SLOP = 2


class _EngineClient(Protocol):
    """The one call the adapter needs from a client library: a REST request.

    Returns the decoded JSON body; raises `SearchUnavailableError` when the
    engine cannot be reached and `_EngineError` when it answers with an error.
    """

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any: ...

    def close(self) -> None: ...


class _EngineError(Exception):
    """The engine answered with an HTTP error (status and its JSON body)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body


class _OpenSearchClient:
    """`_EngineClient` over opensearch-py."""

    def __init__(self, url: str, timeout: float) -> None:
        import opensearchpy

        self._errors = opensearchpy.exceptions
        self._client = opensearchpy.OpenSearch(hosts=[url], timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        # opensearch-py sends its own JSON content type, which `_bulk` accepts for
        # newline-delimited JSON too (a second header would be refused).
        try:
            return self._client.transport.perform_request(method, path, params=params, body=body)
        except self._errors.ConnectionError as err:
            raise SearchUnavailableError(f"the search engine cannot be reached: {err}") from err
        except self._errors.TransportError as err:
            status = err.status_code if isinstance(err.status_code, int) else 500
            raise _EngineError(status, err.info) from err

    def close(self) -> None:
        self._client.close()


class _ElasticsearchClient:
    """`_EngineClient` over the official elasticsearch client's transport.

    Through `transport.perform_request`, not the client's own `perform_request`:
    the client rewrites `application/json` into its major version's compatibility
    media type (`compatible-with=9` for a 9.x client, which an Elasticsearch 8
    server refuses) and insists on the `X-Elastic-Product` header. The transport
    sends our plain JSON (which Elasticsearch 8 and 9 both accept) and leaves the
    status to us, so any client version speaks to any server of the shared API.
    """

    def __init__(self, url: str, timeout: float) -> None:
        import elasticsearch

        self._errors = elasticsearch
        self._client = elasticsearch.Elasticsearch(url, request_timeout=timeout)
        self._timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
    ) -> Any:
        headers = {"accept": "application/json"}
        if isinstance(body, str):
            headers["content-type"] = "application/x-ndjson"
            raw: Any = body.encode()
        elif body is not None:
            headers["content-type"] = "application/json"
            raw = body
        else:
            raw = None
        if params:
            path = f"{path}?{urllib.parse.urlencode(params)}"
        try:
            meta, answer = self._client.transport.perform_request(
                method, path, headers=headers, body=raw, request_timeout=self._timeout
            )
        except self._errors.ConnectionError as err:
            raise SearchUnavailableError(f"the search engine cannot be reached: {err}") from err
        except self._errors.TransportError as err:  # timeouts, TLS, serialisation
            raise SearchUnavailableError(f"the search engine did not answer: {err}") from err
        if not 200 <= meta.status < 300:
            raise _EngineError(meta.status, answer)
        return answer

    def close(self) -> None:
        self._client.close()


def detect_engine(url: str, timeout: float = 10.0) -> str:
    """`"opensearch"` or `"elasticsearch"`, from the engine's answer to `GET /`.

    Credentials in the URL (`https://user:password@host:9200`) are sent as basic
    authentication and never appear in an error message."""
    parts = urllib.parse.urlsplit(url)
    bare = parts._replace(netloc=parts.hostname or "")
    if parts.port is not None:
        bare = bare._replace(netloc=f"{parts.hostname}:{parts.port}")
    shown = urllib.parse.urlunsplit(bare)
    request = urllib.request.Request(shown.rstrip("/") + "/")  # noqa: S310 - our own setting
    if parts.username is not None:
        pair = (
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        )
        request.add_header("Authorization", "Basic " + base64.b64encode(pair.encode()).decode())
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            info = json.loads(response.read())
    except (OSError, ValueError) as err:
        raise SearchUnavailableError(
            f"the search engine at {shown} cannot be reached: {err}"
        ) from err
    distribution = str(info.get("version", {}).get("distribution", ""))
    return "opensearch" if distribution == "opensearch" else "elasticsearch"


def redacted(url: str) -> str:
    """`url` without its credentials (for messages and logs)."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port is not None else host
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _connect(url: str, timeout: float) -> _EngineClient:
    if detect_engine(url, timeout) == "opensearch":
        return _OpenSearchClient(url, timeout)
    return _ElasticsearchClient(url, timeout)


def index_settings() -> dict[str, Any]:
    """The index settings and mapping shipped in `infra/elasticsearch/index-settings.json`."""
    text = resources.files("infra.elasticsearch").joinpath("index-settings.json").read_text()
    settings: dict[str, Any] = json.loads(text)
    return settings


def schema_version() -> str:
    """A short digest of the shipped settings and mapping: the suffix of the
    concrete index (`<alias>-<version>`), so any change to the file gives a new
    index and a reindex, never a mapping the engine cannot change in place."""
    canonical = json.dumps(index_settings(), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


class ElasticsearchIndex:
    """`SearchIndex` on Elasticsearch/OpenSearch, reached through an alias.

    Reads and writes go to the alias `alias`, which points at one concrete index
    `<alias>-<schema_version()>` created from `infra/elasticsearch/index-settings.json`.
    When the shipped settings change (a new release), opening creates the new
    concrete index, moves the alias to it in one atomic `_aliases` request,
    deletes the old concrete index (the index is derived data: the catalog is
    the record, and `schema_rebuilt` makes the caller queue every document
    again) and sets `schema_rebuilt`. Opening sets it too whenever it has to
    create the alias (a first start, or a deployment moving from the embedded
    index: its documents are indexed again).

    A rebuild (`indexer.rebuild`, `crossdoc reindex`) creates the concrete index
    `<alias>-<schema_version()>-g<n>` beside the live one and the marker alias
    `<alias>-rebuild` on it; while the marker exists every process's writes go
    to it too (looked at once every `REBUILD_MARKER_SECONDS`), and its end moves
    the alias and drops the marker in one `_aliases` request.
    """

    def __init__(
        self,
        url: str,
        alias: str,
        analyzer: KoreanAnalyzer,
        *,
        timeout: float = 30.0,
        max_result_window: int = DEFAULT_MAX_RESULT_WINDOW,
        max_body_chars: int = DEFAULT_MAX_BODY_CHARS,
        analysis: AnalysisProcess | None = None,
        client: _EngineClient | None = None,
    ) -> None:
        """Connect to the engine at `url` and open (or create) the index behind `alias`.

        `analyzer` makes the completion keys of each document at write time and
        the highlights of each hit (our mecab analysis, as the Tantivy adapter:
        both engines suggest, correct and mark the same words). `max_body_chars`
        bounds the part of each body analysed for completions. With `analysis`,
        documents are analysed in that child process, on another core (closed
        with this index).

        `client` replaces the REST client (tests). Raises `SearchUnavailableError`
        when the engine cannot be reached or refuses the index settings.
        """
        self._client = client if client is not None else _connect(url, timeout)
        self._index = alias
        self._concrete = f"{alias}-{schema_version()}"
        #: While it exists, the index being rebuilt: every write goes there too.
        self._marker: str | None = f"{alias}-rebuild"
        self._marker_checked = -REBUILD_MARKER_SECONDS
        self._marker_exists = False
        self._grace_seconds = OLD_INDEX_GRACE_SECONDS
        self._max_window = max_result_window
        self._max_body_chars = max_body_chars
        self._analyzer = analyzer
        self._analysis = analysis
        #: This opening created the concrete index (first start, or a new schema):
        #: the caller must queue every document again from the record.
        self.schema_rebuilt = False
        self._ensure_index()

    # -- plumbing ------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: dict[str, str] | None = None,
        what: str,
    ) -> Any:
        try:
            return self._client.request(method, path, body=body, params=params)
        except _EngineError as err:
            raise SearchUnavailableError(f"cannot {what}: {err}") from err

    def _read(self, method: str, path: str, *, body: Any = None, what: str) -> Any:
        """A search or a count: its answer, only if every shard of the index answered."""
        result = self._call(method, path, body=body, what=what)
        _check_shards(result, what)
        return result

    def _aliased(self, alias: str | None = None) -> list[str]:
        """The concrete indices the alias (or `alias`) points at (none when it does not exist)."""
        try:
            # GET, not HEAD: the clients answer a HEAD 404 with False, not an error.
            found = self._client.request("GET", f"/_alias/{alias or self._index}")
        except _EngineError as err:
            if err.status == 404:
                return []
            raise SearchUnavailableError(f"cannot open the search index: {err}") from err
        return sorted(found)

    def _ensure_index(self) -> None:
        current = self._aliased()
        if len(current) == 1 and self._current_schema(current[0]):
            return
        try:
            self._client.request("PUT", f"/{self._concrete}", body=index_settings())
        except _EngineError as err:
            # Already there: another process won the race, or an earlier start
            # stopped before moving the alias.
            if "resource_already_exists" not in str(err.body):
                raise SearchUnavailableError(
                    f"cannot create the search index {self._concrete}: {err}"
                ) from err
        actions: list[dict[str, Any]] = [
            {"remove": {"index": old, "alias": self._index}} for old in current
        ]
        actions.append({"add": {"index": self._concrete, "alias": self._index}})
        try:
            self._client.request("POST", "/_aliases", body={"actions": actions})
        except _EngineError as err:
            # A 404 on removing: another process moved the alias between our read and ours.
            if err.status == 404 and current and self._aliased() == [self._concrete]:
                return
            raise SearchUnavailableError(
                f"cannot point the alias {self._index} at {self._concrete} (an index of "
                f"that name, not an alias, would be in the way): {err}"
            ) from err
        if current:
            log.warning(
                "the search index %s had an older schema (%s): moved to %s, reindexing",
                self._index,
                ", ".join(current),
                self._concrete,
            )
        for old in current:
            try:
                self._client.request("DELETE", f"/{old}")
            except _EngineError as err:
                if err.status != 404:
                    log.warning("could not delete the old search index %s: %s", old, err)
        # The alias was missing or pointed elsewhere: whatever the catalog holds
        # is not (all) in this index.
        self.schema_rebuilt = True

    # -- writes --------------------------------------------------------------------

    def upsert(self, docs: Sequence[IndexDocument]) -> None:
        """Index documents by id; the engine refuses any older than the stored revision."""
        self._bulk_index(list(_latest(docs).values()))

    def _bulk_index(
        self, docs: list[IndexDocument], stored_keys: dict[str, list[str]] | None = None
    ) -> None:
        """Write `docs` with their completion keys: those of `stored_keys` (an
        access update keeps the text, hence the keys) or made here.

        Analysed a group of about `DEFAULT_ANALYSIS_CHUNK_CHARS` at a time (as Tantivy:
        the tokens of a text take tens of times its size; only the keys are
        kept), sent `_BULK_CHUNK` documents or `_BULK_CHARS` at a time.
        """
        lines: list[str] = []
        size = 0
        for group in self._analysis_groups(docs, analysed=stored_keys is None):
            if stored_keys is not None:
                keys = [stored_keys.get(d.id, []) for d in group]
            else:
                keys = self._completion_keys(group)
            for doc, doc_keys in zip(group, keys, strict=True):
                action = {
                    "index": {
                        "_index": self._index,
                        "_id": doc.id,
                        "version": doc.revision,
                        "version_type": "external_gte",
                    }
                }
                lines.append(json.dumps(action))
                lines.append(json.dumps(_source(doc, doc_keys), ensure_ascii=False))
                size += len(lines[-1]) + len(lines[-2])
                if len(lines) >= 2 * _BULK_CHUNK or size >= _BULK_CHARS:
                    self._send_bulk(lines)
                    lines, size = [], 0
        if lines:
            self._send_bulk(lines)

    def _analysis_groups(
        self, docs: list[IndexDocument], *, analysed: bool
    ) -> Iterator[list[IndexDocument]]:
        """`docs` in groups of about `DEFAULT_ANALYSIS_CHUNK_CHARS` of text to analyse
        (one group when nothing is analysed)."""
        if not analysed:
            yield docs
            return
        group: list[IndexDocument] = []
        chars = 0
        for doc in docs:
            size = len(doc.title) + len(doc.filename) + min(len(doc.body), self._max_body_chars)
            if group and chars + size > DEFAULT_ANALYSIS_CHUNK_CHARS:
                yield group
                group, chars = [], 0
            group.append(doc)
            chars += size
        if group:
            yield group

    def _send_bulk(self, lines: list[str], what: str = "write to the search index") -> None:
        # The index being rebuilt first: were the alias swapped between the two
        # requests, the second one (through the alias) reaches the new index too.
        self._write_rebuilt(lines, what)
        result = self._call(
            "POST",
            "/_bulk",
            body="\n".join(lines) + "\n",
            params=_VISIBLE,
            what=what,
        )
        self._check_bulk(result)

    def _write_rebuilt(self, lines: list[str], what: str) -> None:
        """While a rebuild runs, send the same bulk to the index being rebuilt."""
        if not self._rebuilding():
            return
        assert self._marker is not None
        retargeted: list[str] = []
        source_next = False
        for line in lines:
            if source_next:  # the source of an `index` action, as it is
                retargeted.append(line)
                source_next = False
                continue
            action = json.loads(line)
            ((kind, meta),) = action.items()
            meta["_index"] = self._marker
            retargeted.append(json.dumps(action))
            source_next = kind != "delete"
        result = self._call(
            "POST", "/_bulk", body="\n".join(retargeted) + "\n", params=_VISIBLE, what=what
        )
        # The marker gone meanwhile (the rebuild ended): the alias reaches that index now.
        self._check_bulk(result, missing_index_ok=True)

    def _rebuilding(self) -> bool:
        """Whether the marker alias of a rebuild exists (looked at once a second at most)."""
        if self._marker is None:
            return False
        now = time.monotonic()
        if now - self._marker_checked >= REBUILD_MARKER_SECONDS:
            # `_cat/aliases` answers an empty list, not a 404 (which the clients log).
            found = self._call(
                "GET",
                f"/_cat/aliases/{self._marker}",
                params={"format": "json"},
                what="read the search index's aliases",
            )
            self._marker_exists = bool(found)
            self._marker_checked = now
        return self._marker_exists

    def _completion_keys(self, docs: list[IndexDocument]) -> list[list[str]]:
        """The completion keys of each document, from our analysis of its texts,
        exactly as the Tantivy adapter makes them (title, filename, tags, body)."""
        prepared: list[list[tuple[str, str, str]]] = []
        for doc in docs:
            title = _nfc(doc.title)
            filename = _nfc(doc.filename)
            parts = [
                ("title", title, title),
                ("filename", filename, _FILENAME_PUNCT.sub(" ", filename)),
            ]
            parts += [("tags", _nfc(tag), _nfc(tag)) for tag in doc.tags if tag]
            body = _nfc(doc.body)[: self._max_body_chars]
            parts.append(("body", body, body))
            prepared.append(parts)
        texts = [text for parts in prepared for _, _, text in parts]
        if self._analysis is not None:
            tokens = self._analysis.analyze_texts(texts)
        else:
            tokens = analyze_texts(self._analyzer, texts)
        out: list[list[str]] = []
        cursor = 0
        for parts in prepared:
            out.append(_completion_keys(parts, tokens[cursor : cursor + len(parts)]))
            cursor += len(parts)
        return out

    def _check_bulk(self, result: Any, *, missing_index_ok: bool = False) -> None:
        """Raise on any failed item but a version conflict (an older revision, ignored),
        and (with `missing_index_ok`) but a missing index or alias."""
        if not result.get("errors"):
            return
        failures = []
        for item in result.get("items", []):
            outcome = next(iter(item.values()))
            status = int(outcome.get("status", 200))
            if status < 300 or status == 409:
                continue
            if status == 404 and "delete" in item:
                continue
            if missing_index_ok and status == 404:
                continue
            failures.append(f"{outcome.get('_id')}: {outcome.get('error')}")
        if failures:
            raise SearchUnavailableError(
                f"the search index refused {len(failures)} document(s): {failures[:3]}"
            )

    def update_access(self, docs: Sequence[IndexDocument]) -> list[str]:
        """Re-index documents with new readers and metadata and the body stored for them.

        The stored source is read back and written again under the new revision
        (external versions cannot be given to partial updates, and the revision
        rule must hold); nothing is extracted. Returns the ids not in the index.
        """
        if not docs:
            return []
        latest = list(_latest(docs).values())
        found: set[str] = set()
        for i in range(0, len(latest), _STORED_BATCH):
            chunk = latest[i : i + _STORED_BATCH]
            stored = self._stored_texts([d.id for d in chunk])
            found.update(stored)
            self._bulk_index(
                [replace(d, body=stored[d.id][0]) for d in chunk if d.id in stored],
                {doc_id: keys for doc_id, (_, keys) in stored.items()},
            )
        return [d.id for d in docs if d.id not in found]

    def _stored_texts(self, ids: list[str]) -> dict[str, tuple[str, list[str]]]:
        """The stored body and completion keys of each of `ids` in the index."""
        result = self._call(
            "POST",
            f"/{self._index}/_mget",
            body={"ids": ids},
            params={"_source_includes": "body,complete"},
            what="read the search index",
        )
        _check_docs(result, "read the search index")
        return {
            d["_id"]: (
                str(d.get("_source", {}).get("body", "")),
                [str(k) for k in d.get("_source", {}).get("complete", [])],
            )
            for d in result.get("docs", [])
            if d.get("found")
        }

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents by id (missing ids are ignored)."""
        unique = list(dict.fromkeys(ids))
        for i in range(0, len(unique), _BULK_CHUNK):
            lines = [
                json.dumps({"delete": {"_index": self._index, "_id": doc_id}})
                for doc_id in unique[i : i + _BULK_CHUNK]
            ]
            self._send_bulk(lines, "remove documents from the search index")

    def clear(self) -> None:
        """Remove every document."""
        result = self._call(
            "POST",
            f"/{self._index}/_delete_by_query",
            body={"query": {"match_all": {}}},
            params={"refresh": "true", "conflicts": "proceed"},
            what="clear the search index",
        )
        if result.get("failures"):
            raise SearchUnavailableError(f"cannot clear the search index: {result['failures'][:3]}")

    def refresh(self) -> None:
        """Make every write so far visible to the next search."""
        result = self._call("POST", f"/{self._index}/_refresh", what="refresh the search index")
        # Counted over every copy: an unassigned replica (one node) is not a failure.
        failed = int(result.get("_shards", {}).get("failed", 0))
        if failed:
            raise SearchUnavailableError(
                f"cannot refresh the search index: {failed} shard(s) failed "
                f"{result['_shards'].get('failures', [])[:3]}"
            )

    # -- reads ---------------------------------------------------------------------

    def revisions(self, ids: Sequence[str]) -> dict[str, int]:
        """The stored revision of each of `ids` that is in the index."""
        unique = list(dict.fromkeys(ids))
        if not unique:
            return {}
        result = self._call(
            "POST",
            f"/{self._index}/_mget",
            body={"ids": unique},
            params={"_source_includes": "revision"},
            what="read the search index",
        )
        _check_docs(result, "read the search index")
        return {
            d["_id"]: int(d["_source"]["revision"])
            for d in result.get("docs", [])
            if d.get("found")
        }

    def count(self) -> int:
        """How many documents the index holds."""
        result = self._read("GET", f"/{self._index}/_count", what="read the search index")
        return int(result["count"])

    def ping(self) -> None:
        """Raise `SearchUnavailableError` unless the index answers."""
        self.count()

    def search(self, request: SearchRequest, access: AccessFilter) -> SearchResults:
        """One request: the user's text scores, the filters and `access` restrict."""
        if request.offset < 0 or request.limit < 0:
            raise InvalidQueryError("offset and limit must not be negative")
        if request.offset + request.limit > self._max_window:
            raise InvalidQueryError(
                f"offset + limit must not exceed {self._max_window} (narrow the search)"
            )
        if access.lets_nothing_through:
            return SearchResults(
                total=0,
                hits=[],
                facets={name: [] for name in FACET_FIELDS} if request.with_facets else {},
            )
        body = search_body(
            request,
            access,
            engine_highlights=False,
            runs_of=self._fallback_runs,
            plain_of=self._without_particle,
        )
        if request.with_highlights:
            body["_source"].append("body")
        result = self._read(
            "POST", f"/{self._index}/_search", body=body, what="search the search index"
        )
        hits = [_hit(h) for h in result["hits"]["hits"]]
        if request.with_highlights and request.query.has_positive:
            hits = self._highlighted(request, hits, result["hits"]["hits"])
        facets: dict[str, list[FacetCount]] = {}
        if request.with_facets:
            aggs = result.get("aggregations", {})
            for name in FACET_FIELDS:
                counts = [
                    FacetCount(str(b["key"]), int(b["doc_count"]))
                    for b in aggs.get(name, {}).get("buckets", [])
                ]
                facets[name] = sorted(counts, key=lambda c: (-c.count, c.value))
        return SearchResults(total=int(result["hits"]["total"]["value"]), hits=hits, facets=facets)

    def _without_particle(self, word: str) -> str:
        """`word` without a particle our analysis leaves after its last term
        (`국민디자인단의` → 국민디자인단), which nori may read as a noun of its own
        (의 after a user word) and then require."""
        tokens = self._analyzer.analyze(word, AnalysisMode.QUERY)
        if not tokens:
            return word
        end = max(t.end for t in tokens)
        return word[:end] if word[end:] in PARTICLES else word

    def _fallback_runs(self, word: str, excluded: bool) -> tuple[str, ...]:
        """The Hangul runs our analysis seeks inside compounds for `word` (alone:
        without the context of the other words, unlike Tantivy)."""
        if excluded:
            analyzed = analyze_query(self._analyzer, UserQuery(excluded=(word,)))
            fallback = analyzed.excluded_fallback(0) if analyzed.excluded else None
        else:
            analyzed = analyze_query(self._analyzer, UserQuery(words=(word,)))
            fallback = analyzed.fallback(0) if analyzed.words else None
        return fallback.runs if fallback is not None else ()

    def _highlighted(
        self, request: SearchRequest, hits: list[SearchHit], raw: list[dict[str, Any]]
    ) -> list[SearchHit]:
        """`hits` with highlights of our own analysis of the query (see `__init__`)."""
        analyzed = analyze_query(self._analyzer, request.query)
        terms = analyzed.highlight_terms
        # Where the compound fallback may have matched, the word is marked as written.
        surfaces = analyzed.highlight_surfaces if request.compound_fallback else frozenset()
        marked = []
        for hit, source in zip(hits, (r.get("_source", {}) for r in raw), strict=True):
            body = str(source.get("body", ""))
            fragments = highlight(self._analyzer, body, terms, surfaces=surfaces)
            if not fragments:
                fragments = highlight(
                    self._analyzer, hit.title, terms, surfaces=surfaces, max_fragments=1
                )
            marked.append(replace(hit, highlights=tuple(fragments)))
        return marked

    def suggest(self, access: AccessFilter, prefix: str, limit: int) -> list[Suggestion]:
        """Titles, then terms, beginning with `prefix`, counted over the documents
        `access` lets through (see the port; the same keys and rules as Tantivy)."""
        typed = unicodedata.normalize("NFC", prefix).strip()
        if not typed or limit < 1 or access.lets_nothing_through:
            return []
        form = "c" if is_initials(typed) else "j"
        lookup = typed if form == "c" else letters(typed)
        # As Tantivy: one syllable (two initials) completes words, not titles.
        enough = 3 if form == "c" else 2
        kinds = list(SuggestionKind) if len(typed) >= enough else [SuggestionKind.TERM]
        out: list[Suggestion] = []
        seen: set[str] = set()
        for kind in kinds:
            if len(out) >= limit:
                break  # titles fill the list: the words would be cut off anyway
            key = f"{'t' if kind is SuggestionKind.TITLE else 'w'}{form}:{lookup}"
            for text, count in self._completions(access, key, limit):
                if text and text not in seen:
                    seen.add(text)
                    out.append(Suggestion(text, kind, count))
        return out[:limit]

    def _completions(self, access: AccessFilter, key: str, limit: int) -> list[tuple[str, int]]:
        """Up to `limit` completion keys starting with `key` that readable documents
        hold, with how many readable documents hold each, most first (then by key)."""
        return [
            (found.partition(_KEY_SEPARATOR)[2], count)
            for found, count in self._raw_completions(access, key, limit)
            if count > 0
        ]

    def corrections(self, access: AccessFilter, word: str, limit: int) -> list[Suggestion]:
        """Readable terms within a few letters of `word` (see the port; as Tantivy)."""
        typed = unicodedata.normalize("NFC", word).strip().lower()
        spelled = letters(typed)
        if len(spelled) < 2 or limit < 1 or access.lets_nothing_through:
            return []
        budget = max(1, min(3, len(spelled) // 4))
        scored: list[tuple[int, int, str]] = []
        for key, count in self._raw_completions(access, f"wj:{spelled[0]}", _CORRECTION_CANDIDATES):
            candidate_letters, _, text = key[3:].partition(_KEY_SEPARATOR)
            if count <= 0 or not text or text == typed:
                continue
            distance = edit_distance(spelled, candidate_letters, budget)
            if distance <= budget:
                scored.append((distance, -count, text))
        scored.sort()
        return [
            Suggestion(text, SuggestionKind.TERM, -negative) for _, negative, text in scored[:limit]
        ]

    def _raw_completions(self, access: AccessFilter, key: str, limit: int) -> list[tuple[str, int]]:
        """The completion keys themselves (see `completion_body`) with their counts."""
        result = self._read(
            "POST",
            f"/{self._index}/_search",
            body=completion_body(access, key, limit),
            what="read completions from the search index",
        )
        buckets = result.get("aggregations", {}).get("keys", {}).get("buckets", [])
        return [(str(b["key"]), int(b["doc_count"])) for b in buckets]

    def close(self) -> None:
        """Release the client's connections (and stop the analysis child)."""
        if self._analysis is not None:
            self._analysis.close()
        self._client.close()

    # -- rebuilding beside the live index (indexer.rebuild) ---------------------------

    @property
    def rebuild_settle_seconds(self) -> float:
        """Every process has seen the marker alias this long after it was made."""
        return 2 * REBUILD_MARKER_SECONDS

    def _current_schema(self, concrete: str) -> bool:
        """Whether `concrete` is an index of the shipped settings (a rebuild's included)."""
        return concrete == self._concrete or concrete.startswith(f"{self._concrete}-g")

    def begin_rebuild(self) -> ElasticsearchIndex:
        """Create the concrete index `<alias>-<schema>-g<n>` and the marker alias on
        it; return an index writing it through the marker (see the class).

        Raises `RebuildInProgressError` when a marker exists already (another
        rebuild, or one interrupted: `abort_rebuild` drops it).
        """
        marker = self._marker
        if marker is None:
            raise RebuildInProgressError("this index is itself a rebuild target")
        held = self._aliased(marker)
        if held:
            raise RebuildInProgressError(
                f"a rebuild of the search index is under way or was interrupted ({held[0]}): "
                "if none runs, `crossdoc reindex --restart` drops it and starts again"
            )
        concrete = f"{self._concrete}-g{time.time_ns() // 1_000_000}"
        self._call("PUT", f"/{concrete}", body=index_settings(), what="create the new index")
        try:
            self._call(
                "POST",
                "/_aliases",
                body={"actions": [{"add": {"index": concrete, "alias": marker}}]},
                what="mark the index being rebuilt",
            )
        except SearchUnavailableError:
            self._delete_index(concrete)
            raise
        self._marker_checked = -REBUILD_MARKER_SECONDS  # look again at the next write
        log.info("rebuilding the search index %s in %s", self._index, concrete)
        target = copy.copy(self)
        target._index = marker
        target._marker = None
        return target

    def finish_rebuild(self) -> None:
        """Point the alias at the rebuilt index and drop the marker, in one request;
        delete the old index after `OLD_INDEX_GRACE_SECONDS`."""
        marker = self._marker
        built = self._aliased(marker) if marker else []
        if marker is None or len(built) != 1:
            raise RebuildInProgressError("no rebuild of the search index is under way")
        old = [c for c in self._aliased() if c != built[0]]
        actions: list[dict[str, Any]] = [
            {"remove": {"index": c, "alias": self._index}} for c in old
        ]
        actions.append({"add": {"index": built[0], "alias": self._index}})
        actions.append({"remove": {"index": built[0], "alias": marker}})
        self._call("POST", "/_aliases", body={"actions": actions}, what="swap the search index")
        self._marker_checked = -REBUILD_MARKER_SECONDS
        log.info("the search index %s now reads %s (was %s)", self._index, built[0], old)
        if old:
            time.sleep(self._grace_seconds)
        for concrete in old:
            self._delete_index(concrete)

    def abort_rebuild(self) -> None:
        """Delete the index being rebuilt, and with it the marker alias."""
        if self._marker is None:
            return
        for concrete in self._aliased(self._marker):
            if concrete not in self._aliased():
                self._delete_index(concrete)
        self._marker_checked = -REBUILD_MARKER_SECONDS

    def _delete_index(self, concrete: str) -> None:
        try:
            self._client.request("DELETE", f"/{concrete}")
        except _EngineError as err:
            if err.status != 404:
                log.warning("could not delete the search index %s: %s", concrete, err)

    def drop(self) -> None:
        """Delete the concrete indices behind the alias, and so the alias (tests)."""
        if self._marker is not None:
            self.abort_rebuild()
        for concrete in self._aliased() or [self._concrete]:
            try:
                self._client.request("DELETE", f"/{concrete}")
            except _EngineError as err:
                if err.status != 404:
                    raise SearchUnavailableError(f"cannot delete the search index: {err}") from err


def index_in_use(url: str, alias: str, timeout: float = 30.0) -> list[str]:
    """What already answers to `alias` on the engine at `url`: the indices behind an
    alias of that name, an index of that name, or the concrete index an opening
    of `alias` would create (empty: a restore may build its index there).

    Raises `SearchUnavailableError` when the engine cannot be reached.
    """
    client = _connect(url, timeout)
    found: set[str] = set()
    try:
        for name in (alias, f"{alias}-{schema_version()}"):
            try:
                # GET, not HEAD: the clients answer a HEAD 404 with False. An alias
                # resolves to the indices behind it.
                found.update(client.request("GET", f"/{name}"))
            except _EngineError as err:
                if err.status != 404:
                    raise SearchUnavailableError(
                        f"cannot read the search index {name}: {err}"
                    ) from err
    finally:
        client.close()
    return sorted(found)


def drop_index(url: str, alias: str, timeout: float = 30.0) -> list[str]:
    """Delete the indices behind `alias` (and so the alias): a drill's scratch index,
    never a deployment's. Returns the indices deleted. `SearchUnavailableError`."""
    client = _connect(url, timeout)
    try:
        try:
            names = sorted(client.request("GET", f"/_alias/{alias}"))
        except _EngineError as err:
            if err.status == 404:
                return []
            raise SearchUnavailableError(f"cannot read the search index {alias}: {err}") from err
        for name in names:
            try:
                client.request("DELETE", f"/{name}")
            except _EngineError as err:
                if err.status != 404:
                    raise SearchUnavailableError(f"cannot delete the index {name}: {err}") from err
        return names
    finally:
        client.close()


# -- request bodies (pure: tested without an engine) ------------------------------------


def text_query(
    query: UserQuery,
    *,
    compound_fallback: bool = False,
    runs_of: Callable[[str, bool], tuple[str, ...]] | None = None,
    plain_of: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The user's text as the scoring clause: every word and phrase must match,
    no excluded one may. The text is only ever an analysed `match` value, never
    query syntax.

    The words go to the engine together, as one `match` (every term required),
    so its synonym graph sees words that stand together (`정부 3.0` → 정부3.0,
    `personal data` → 개인정보); each word as `plain_of(word)` gives it (our
    analysis drops a particle nori would read as a noun: `국민디자인단의`). They
    also match in the title, which scores higher, and, as a phrase (a little
    slop), score higher where they stand together. With `compound_fallback`, a
    document matching each word either precisely or, Hangul as written, inside
    a compound (its bigrams, adjacent, in `grams`) matches at a near-zero
    constant score, below every precise match; an excluded word is excluded
    there too. `runs_of(word, excluded)` gives the Hangul runs to seek for a
    word (`키오스크를` → 키오스크); without it, the word as typed.
    """
    runs = runs_of or _typed_runs
    plain = plain_of or (lambda word: word)
    if not query.has_positive and not query.excluded:
        return {"match_all": {}}
    must: list[dict[str, Any]] = []
    if query.words:
        words = [plain(word) for word in query.words]
        precise = _words_query(" ".join(words))
        inside = [_inside(runs(word, False)) for word in query.words] if compound_fallback else []
        if any(q is not None for q in inside):
            each = [
                _either(_match(word), found) if found is not None else _match(word)
                for word, found in zip(words, inside, strict=True)
            ]
            fallback = {
                "constant_score": {"filter": {"bool": {"filter": each}}, "boost": _FALLBACK_SCORE}
            }
            must.append(_either(precise, fallback))
        else:
            must.append(precise)
    must += [{"match_phrase": {"text": {"query": phrase}}} for phrase in query.phrases]
    if not must:
        must = [{"match_all": {}}]
    clause: dict[str, Any] = {"must": must}
    if query.excluded:
        excluded: list[dict[str, Any]] = [
            {"match_phrase": {"text": {"query": e}}} for e in query.excluded
        ]
        if compound_fallback:
            excluded += [q for e in query.excluded if (q := _inside(runs(e, True))) is not None]
        clause["must_not"] = excluded
    return {"bool": clause}


def _match(text: str) -> dict[str, Any]:
    return {"match": {"text": {"query": text, "operator": "and"}}}


def _either(*queries: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"should": list(queries), "minimum_should_match": 1}}


def _words_query(text: str) -> dict[str, Any]:
    """Every term of `text` in the document's text; more score in the title and
    where the words stand together."""
    return {
        "bool": {
            "must": [_match(text)],
            "should": [
                {"match": {"title": {"query": text, "operator": "and", "boost": 2.0}}},
                {"match_phrase": {"text": {"query": text, "slop": _ADJACENT_SLOP}}},
            ],
        }
    }


def _inside(runs: tuple[str, ...]) -> dict[str, Any] | None:
    """Every run, as written, inside a word (a phrase of its bigrams on `grams`)."""
    if not runs:
        return None
    phrases = [{"match_phrase": {"grams": {"query": run}}} for run in runs]
    return phrases[0] if len(phrases) == 1 else {"bool": {"filter": phrases}}


def _typed_runs(word: str, excluded: bool) -> tuple[str, ...]:
    return (word,) if _hangul(word) else ()


def _hangul(text: str) -> bool:
    return any("\uac00" <= ch <= "\ud7a3" for ch in text)


def policy_match_filter(match: PolicyMatch) -> dict[str, Any] | None:
    """A pending policy match as a `bool` of `term` filters (None: an empty match,
    which lets nothing through)."""
    if match.is_empty:
        return None
    terms: list[dict[str, Any]] = [
        {"term": {key: value}}
        for key, value in (
            ("ministry", match.ministry),
            ("department", match.department),
            ("tag", match.tag),
            ("folder_path", match.folder),
        )
        if value is not None
    ]
    if match.visibility is not None:
        terms.append({"term": {"readers": f"visibility:{match.visibility}"}})
    return {"bool": {"filter": terms}}


def access_filter(access: AccessFilter) -> dict[str, Any]:
    """ACCESS of `AccessFilter`'s docstring."""
    should: list[dict[str, Any]] = [{"terms": {"readers": sorted(access.tokens)}}]
    should += [q for q in map(policy_match_filter, access.pending) if q is not None]
    readable: dict[str, Any] = {"should": should, "minimum_should_match": 1}
    if access.stale_ids:
        readable["must_not"] = [{"terms": {"id": sorted(access.stale_ids)}}]
    outer: list[dict[str, Any]] = [{"bool": readable}]
    if access.readable_stale_ids:
        outer.append({"terms": {"id": sorted(access.readable_stale_ids)}})
    return {"bool": {"should": outer, "minimum_should_match": 1}}


def search_body(
    request: SearchRequest,
    access: AccessFilter,
    *,
    engine_highlights: bool = True,
    runs_of: Callable[[str, bool], tuple[str, ...]] | None = None,
    plain_of: Callable[[str], str] | None = None,
) -> dict[str, Any]:
    """The whole `_search` body of `request` for the caller `access` describes
    (with the engine's highlighter if `engine_highlights`)."""
    filters: list[dict[str, Any]] = []
    for name in ("department", "ministry", "content_type", "tag"):
        value: str | None = getattr(request, name)
        if value:
            filters.append({"term": {name: value}})
    if request.folders is not None:
        # An empty subtree (an unknown folder) must match nothing, not everything.
        folders = sorted(request.folders)
        filters.append({"terms": {"folder": folders}} if folders else {"match_none": {}})
    if request.created_from is not None or request.created_to is not None:
        bounds: dict[str, str] = {}
        if request.created_from is not None:
            bounds["gte"] = _iso(request.created_from)
        if request.created_to is not None:
            bounds["lt"] = _iso(request.created_to)
        filters.append({"range": {"created_at": bounds}})
    filters.append(access_filter(access))
    body: dict[str, Any] = {
        "query": {
            "bool": {
                "must": [
                    text_query(
                        request.query,
                        compound_fallback=request.compound_fallback,
                        runs_of=runs_of,
                        plain_of=plain_of,
                    )
                ],
                "filter": filters,
            }
        },
        "from": request.offset,
        "size": request.limit,
        "track_total_hits": True,
        "_source": [
            "id",
            "title",
            "filename",
            "department",
            "ministry",
            "content_type",
            "created_at",
        ],
    }
    if request.sort is SortOrder.NEWEST:
        body["sort"] = [{"created_at": "desc"}, {"id": "asc"}]
    elif request.sort is SortOrder.OLDEST:
        body["sort"] = [{"created_at": "asc"}, {"id": "asc"}]
    else:
        body["sort"] = [{"_score": "desc"}, {"id": "asc"}]
        body["track_scores"] = True
    if request.with_facets:
        body["aggs"] = {
            name: {"terms": {"field": name, "size": FACET_SIZE}} for name in FACET_FIELDS
        }
    if engine_highlights and request.with_highlights and request.query.has_positive:
        # `text` is a copy_to target with no source of its own: its terms are
        # marked in the stored fields, re-analysed with each field's analyser
        # (`body` has the standard one: inflected Korean is not marked there yet).
        positive = text_query(UserQuery(words=request.query.words, phrases=request.query.phrases))
        body["highlight"] = {
            "encoder": "html",
            "pre_tags": ["<mark>"],
            "post_tags": ["</mark>"],
            "require_field_match": False,
            "highlight_query": positive,
            "fields": {
                "body": {
                    "type": "plain",
                    "fragment_size": _HIGHLIGHT_FRAGMENT_CHARS,
                    "number_of_fragments": _HIGHLIGHT_FRAGMENTS,
                },
                "title": {"type": "plain", "number_of_fragments": 0},
            },
        }
        body["_source"].append("body")
    return body


def completion_body(access: AccessFilter, key: str, limit: int) -> dict[str, Any]:
    """The `_search` body of the `limit` completion keys beginning with `key` that
    the documents `access` lets through hold, most documents first, then by key.

    ACCESS is the query's only clause besides the key's `prefix`, and the
    aggregation counts only the documents it matched: a key held only by
    documents the caller may not read is never returned, nor counted. The
    aggregation's `include` keeps only the keys with the prefix (each document
    holds many other keys); every character is escaped, so the key is a literal.
    """
    return {
        "size": 0,
        "track_total_hits": False,
        "query": {
            "bool": {"filter": [{"prefix": {"complete": {"value": key}}}, access_filter(access)]}
        },
        "aggs": {
            "keys": {
                "terms": {
                    "field": "complete",
                    "include": _literal_regexp(key) + ".*",
                    # Per document's values, not global ordinals: OpenSearch 2.19.1
                    # fails (index_out_of_bounds_exception) on an ordinals `include`
                    # that matches no term at all, i.e. on every unknown prefix.
                    # The query keeps only documents holding the prefix anyway.
                    "execution_hint": "map",
                    "size": limit,
                    "shard_size": max(limit * 2, limit + 10),
                    "order": [{"_count": "desc"}, {"_key": "asc"}],
                }
            }
        },
    }


def _literal_regexp(text: str) -> str:
    """`text` as a Lucene regular expression matching only itself."""
    return "".join(ch if ch.isalnum() else "\\" + ch for ch in text)


def _source(doc: IndexDocument, keys: list[str]) -> dict[str, Any]:
    return {
        "id": doc.id,
        "revision": doc.revision,
        "created_at": _iso(doc.created_at),
        "department": doc.department,
        "ministry": doc.ministry,
        "content_type": doc.content_type,
        "tag": list(doc.tags),
        "tags": list(doc.tags),
        "folder": doc.folder or None,  # no value at the top level
        "folder_path": list(doc.folder_path),
        "readers": sorted(doc.readers),
        "title": doc.title,
        "filename": doc.filename,
        "body": doc.body,
        "complete": keys,
    }


def _check_shards(result: Any, what: str) -> None:
    """Raise `SearchUnavailableError` unless every shard answered the search or count.

    A shard with no started copy (its node down, or restarting and still
    recovering it: a red index) is no error to the engine as long as another
    shard answers: OpenSearch 2.19 answers 200 with the shard missing from
    `_shards.successful` (neither failed nor listed) and without its documents.
    Taken as it is, that answer is a partial result given as a whole one, or
    "nothing found" while the documents are there. (When no shard answers,
    the engine itself answers 503 "all shards failed".)
    """
    shards = result.get("_shards") if isinstance(result, dict) else None
    if not isinstance(shards, dict):
        return
    total = int(shards.get("total", 0))
    successful = int(shards.get("successful", 0))
    failed = int(shards.get("failed", 0))
    if failed or successful < total:
        reasons = []
        for failure in shards.get("failures", [])[:3]:
            reason = failure.get("reason") if isinstance(failure, dict) else failure
            reasons.append(str(reason.get("type") if isinstance(reason, dict) else reason))
        raise SearchUnavailableError(
            f"cannot {what}: {total - successful} of {total} shard(s) did not answer "
            "(not assigned: a node down or starting, a red index)"
            + (f": {', '.join(reasons)}" if reasons else "")
        )


def _check_docs(result: Any, what: str) -> None:
    """Raise `SearchUnavailableError` when a `_mget` could not read some document:
    its shard unavailable (an error entry, not `found: false`: the document may
    well be there)."""
    errors = [d for d in result.get("docs", []) if isinstance(d, dict) and "error" in d]
    if errors:
        first = errors[0]["error"]
        kind = first.get("type", first) if isinstance(first, dict) else first
        raise SearchUnavailableError(
            f"cannot {what}: {len(errors)} document(s) unreadable ({kind})"
        )


def _hit(raw: dict[str, Any]) -> SearchHit:
    source = raw.get("_source", {})
    marked = raw.get("highlight", {})
    fragments = tuple(marked.get("body") or marked.get("title") or ())
    score = raw.get("_score")
    return SearchHit(
        id=str(raw["_id"]),
        score=float(score) if score is not None else 0.0,
        title=str(source.get("title", "")),
        filename=str(source.get("filename", "")),
        department=str(source.get("department", "")),
        ministry=str(source.get("ministry", "")),
        content_type=str(source.get("content_type", "")),
        created_at=_parse_iso(str(source.get("created_at"))),
        highlights=fragments,
    )


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _latest(docs: Sequence[IndexDocument]) -> dict[str, IndexDocument]:
    """The highest revision of each id (the last one given among equals)."""
    latest: dict[str, IndexDocument] = {}
    for doc in docs:
        held = latest.get(doc.id)
        if held is None or doc.revision >= held.revision:
            latest[doc.id] = doc
    return latest
