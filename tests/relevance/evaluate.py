"""Run the judged queries through the real analyser and an index; recall@10 and nDCG@10.

The index is Tantivy, or Elasticsearch/OpenSearch when `elasticsearch_url` is
given (a fresh, uniquely named index, dropped afterwards).

recall@10 of a query = relevant documents in its top 10 / min(relevant, 10);
nDCG@10 uses binary gains (1 for a relevant document). Both are averaged over
queries. Shared by tests/relevance/test_relevance.py and bench/relevance.py.
"""

from __future__ import annotations

import math
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from crossdoc.settings import shipped_analysis_file
from indexer.analysis.korean import KoreanAnalyzer
from indexer.analysis.synonyms import SynonymsFile
from indexer.analysis.user_dictionary import load_user_dictionary
from indexer.index.base import AccessFilter, IndexDocument, SearchIndex, SearchRequest
from indexer.index.tantivy_index import TantivyIndex
from indexer.query import parse_user_query
from tests.relevance.corpus import GeneratedDocument, JudgedQuery, generate, load_queries
from tests.relevance.independent import Document as IndependentDocument
from tests.relevance.independent import IndependentQuery, corpus_documents
from tests.relevance.independent import generate as generate_independent
from tests.relevance.independent import is_relevant as is_relevant_text
from tests.relevance.independent import load_queries as load_independent_queries

K = 10
READERS = frozenset({"gov"})


@dataclass(frozen=True)
class QueryResult:
    query: JudgedQuery
    ranked: tuple[str, ...]  # the top K ids

    @property
    def recall(self) -> float:
        relevant = set(self.query.relevant)
        if not relevant:
            return 1.0
        return len(relevant & set(self.ranked)) / min(len(relevant), K)

    @property
    def ndcg(self) -> float:
        relevant = set(self.query.relevant)
        if not relevant:
            return 1.0
        dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(self.ranked) if d in relevant)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), K)))
        return dcg / ideal


@dataclass(frozen=True)
class Evaluation:
    results: list[QueryResult]
    documents: int

    @property
    def recall(self) -> float:
        return sum(r.recall for r in self.results) / len(self.results)

    @property
    def ndcg(self) -> float:
        return sum(r.ndcg for r in self.results) / len(self.results)

    @property
    def judgements(self) -> int:
        return sum(len(r.query.relevant) for r in self.results)

    def by_kind(self) -> dict[str, tuple[int, float, float]]:
        """kind -> (queries, mean recall@10, mean nDCG@10)."""
        out: dict[str, tuple[int, float, float]] = {}
        for kind in dict.fromkeys(r.query.kind for r in self.results):
            rs = [r for r in self.results if r.query.kind == kind]
            out[kind] = (
                len(rs),
                sum(r.recall for r in rs) / len(rs),
                sum(r.ndcg for r in rs) / len(rs),
            )
        return out

    def report(self) -> str:
        lines = [
            f"relevance: {len(self.results)} queries, {self.judgements} judgements, "
            f"{self.documents} documents",
            f"recall@{K} {self.recall:.3f}  nDCG@{K} {self.ndcg:.3f}",
        ]
        for kind, (n, recall, ndcg) in self.by_kind().items():
            lines.append(
                f"  {kind:<10} {n:>3} queries  recall@{K} {recall:.3f}  nDCG@{K} {ndcg:.3f}"
            )
        for r in self.results:
            if r.recall < 1.0:
                missed = sorted(set(r.query.relevant) - set(r.ranked))
                lines.append(f"  missed {r.query.id} {r.query.query!r}: {', '.join(missed)}")
        return "\n".join(lines)


def index_document(doc: GeneratedDocument) -> IndexDocument:
    return IndexDocument(
        id=doc.id,
        revision=1,
        title=doc.title,
        filename=f"{doc.id}.hwpx",
        body=doc.body,
        department=f"{doc.ministry}-01",
        ministry=doc.ministry,
        content_type="application/hwp+zip",
        tags=(),
        owner="user:writer",
        readers=READERS,
        created_at=doc.created_at,
        updated_at=doc.created_at,
    )


def shipped_analyzer() -> KoreanAnalyzer:
    return KoreanAnalyzer(user_words=load_user_dictionary(shipped_analysis_file("userdict_ko.txt")))


@contextmanager
def open_index(
    analyzer: KoreanAnalyzer,
    synonyms: SynonymsFile | None,
    *,
    compound_fallback: bool = True,
    directory: Path | None = None,
    elasticsearch_url: str | None = None,
) -> Iterator[SearchIndex]:
    """An empty index: Tantivy in a temporary directory, or, with `elasticsearch_url`,
    Elasticsearch/OpenSearch on a fresh uniquely named index (whose synonyms are
    the node's file, the shipped one: `synonyms` does not apply there), dropped after."""
    if elasticsearch_url is not None:
        from indexer.index.elasticsearch import ElasticsearchIndex

        remote = ElasticsearchIndex(
            elasticsearch_url, f"crossdoc-test-{uuid.uuid4().hex}", analyzer
        )
        try:
            yield remote
        finally:
            remote.drop()
            remote.close()
        return
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        index = TantivyIndex(
            Path(tmp) / "index", analyzer, synonyms=synonyms, compound_fallback=compound_fallback
        )
        try:
            yield index
        finally:
            index.close()


def evaluate(
    analyzer: KoreanAnalyzer | None = None,
    *,
    synonyms_path: Path | None = None,
    use_synonyms: bool = True,
    directory: Path | None = None,
    elasticsearch_url: str | None = None,
) -> Evaluation:
    """Index the generated corpus and run every judged query (default: the shipped
    files, on Tantivy; on Elasticsearch/OpenSearch with `elasticsearch_url`)."""
    analyzer = analyzer or shipped_analyzer()
    synonyms = (
        SynonymsFile(synonyms_path or shipped_analysis_file("synonyms_ko.txt"), analyzer)
        if use_synonyms
        else None
    )
    docs = generate()
    queries = load_queries()
    with open_index(
        analyzer, synonyms, directory=directory, elasticsearch_url=elasticsearch_url
    ) as index:
        index.upsert([index_document(d) for d in docs])
        index.refresh()
        results = [QueryResult(q, top_ids(index, q.query)) for q in queries]
    return Evaluation(results, len(docs))


def top_ids(index: SearchIndex, query: str) -> tuple[str, ...]:
    """The ids of the first K hits of `query`, ranked (no facets, no highlights)."""
    request = SearchRequest(
        query=parse_user_query(query),
        limit=K,
        with_facets=False,
        with_highlights=False,
    )
    return tuple(h.id for h in index.search(request, AccessFilter(READERS)).hits)


# -- the set judged without the analyser (tests/relevance/independent.py) -------------------


@dataclass(frozen=True)
class IndependentResult:
    query: IndependentQuery
    relevant: frozenset[str]
    ranked: tuple[str, ...]

    @property
    def recall(self) -> float:
        if not self.relevant:
            return 1.0
        return len(self.relevant & set(self.ranked)) / min(len(self.relevant), K)

    @property
    def ndcg(self) -> float:
        if not self.relevant:
            return 1.0
        dcg = sum(1 / math.log2(i + 2) for i, d in enumerate(self.ranked) if d in self.relevant)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(self.relevant), K)))
        return dcg / ideal


@dataclass(frozen=True)
class IndependentEvaluation:
    results: list[IndependentResult]
    documents: int
    corpus_documents: int

    @property
    def recall(self) -> float:
        return sum(r.recall for r in self.results) / len(self.results)

    @property
    def ndcg(self) -> float:
        return sum(r.ndcg for r in self.results) / len(self.results)

    def report(self, *, misses: bool = True) -> str:
        judged = sum(len(r.relevant) for r in self.results)
        lines = [
            f"independent relevance: {len(self.results)} queries, {judged} judgements, "
            f"{self.documents} documents ({self.corpus_documents} real)",
            f"recall@{K} {self.recall:.3f}  nDCG@{K} {self.ndcg:.3f}",
        ]
        for kind in dict.fromkeys(r.query.kind for r in self.results):
            rs = [r for r in self.results if r.query.kind == kind]
            lines.append(
                f"  {kind:<10} {len(rs):>3} queries  "
                f"recall@{K} {sum(r.recall for r in rs) / len(rs):.3f}  "
                f"nDCG@{K} {sum(r.ndcg for r in rs) / len(rs):.3f}"
            )
        if misses:
            for r in self.results:
                if r.recall < 1.0:
                    lines.append(
                        f"  missed {r.query.id} {r.query.query!r}: "
                        f"{len(r.relevant & set(r.ranked))} of {min(len(r.relevant), K)}"
                    )
        return "\n".join(lines)


def evaluate_independent(
    analyzer: KoreanAnalyzer | None = None,
    *,
    use_synonyms: bool = True,
    compound_fallback: bool = True,
    with_corpus: bool = True,
    directory: Path | None = None,
    elasticsearch_url: str | None = None,
) -> IndependentEvaluation:
    """Index the generated notices (and the real Hangul corpus, when present and asked
    for) and run every query of the independent set; relevance by its text rules."""
    analyzer = analyzer or shipped_analyzer()
    synonyms = (
        SynonymsFile(shipped_analysis_file("synonyms_ko.txt"), analyzer) if use_synonyms else None
    )
    real = corpus_documents() if with_corpus else []
    docs = generate_independent() + real
    queries = load_independent_queries(with_corpus=bool(real))
    with open_index(
        analyzer,
        synonyms,
        compound_fallback=compound_fallback,
        directory=directory,
        elasticsearch_url=elasticsearch_url,
    ) as index:
        index.upsert([_independent_document(d) for d in docs])
        index.refresh()
        results = []
        for q in queries:
            relevant = frozenset(d.id for d in docs if is_relevant_text(d.text, q))
            results.append(IndependentResult(q, relevant, top_ids(index, q.query)))
    return IndependentEvaluation(results, len(docs), len(real))


def _independent_document(doc: IndependentDocument) -> IndexDocument:
    return IndexDocument(
        id=doc.id,
        revision=1,
        title=doc.title,
        filename="",
        body=doc.body,
        department="",
        ministry=doc.ministry,
        content_type="application/hwp+zip",
        tags=(),
        owner="user:writer",
        readers=READERS,
        created_at=doc.created_at,
        updated_at=doc.created_at,
    )
