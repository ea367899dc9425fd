"""The relevance set judged without the analyser (tests/relevance/independent.py).

Generated notices about coined programme names run anywhere; the real Hangul
documents of `../shared/corpus/hangul` join when the corpus is present. Gates:
recall@10 at least 0.95, and nDCG@10 no lower than search scored before the
compound fallback (measured on commit 3fdf233, morphology alone). Takes about
10 s (two index builds of ~300 documents); the Elasticsearch/OpenSearch leg (when
`CROSSDOC_TEST_ELASTICSEARCH_URL` is set) about 7 s more.
"""

from __future__ import annotations

import pytest

from tests.relevance.evaluate import IndependentEvaluation, evaluate_independent
from tests.relevance.independent import (
    CORPUS_DIR,
    corpus_documents,
    generate,
    is_relevant,
    load_queries,
)

MIN_RECALL_AT_10 = 0.95
#: nDCG@10 of this set before the compound fallback (commit 3fdf233): generated
#: notices alone, and with the real corpus.
NDCG_BEFORE = 0.883
NDCG_BEFORE_WITH_CORPUS = 0.891


@pytest.fixture(scope="module")
def evaluation(elasticsearch_url: str | None) -> IndependentEvaluation:
    result = evaluate_independent(elasticsearch_url=elasticsearch_url)
    print("\n" + result.report())
    return result


def test_the_set_is_large_and_every_query_has_a_relevant_document() -> None:
    queries = load_queries(with_corpus=False)
    assert len(queries) >= 200
    docs = generate()
    for q in queries:
        assert any(is_relevant(d.text, q) for d in docs), q.id


@pytest.mark.skipif(
    not CORPUS_DIR.is_dir(),
    reason=f"shared corpus not found at {CORPUS_DIR} (CI checks out shared/ beside the repo)",
)
def test_the_real_corpus_queries_are_judged() -> None:
    queries = load_queries(with_corpus=True)
    docs = corpus_documents()
    assert len(docs) >= 15
    for q in queries:
        if q.corpus:
            assert any(is_relevant(d.text, q) for d in docs), q.id


def test_recall_at_10(evaluation: IndependentEvaluation) -> None:
    assert evaluation.recall >= MIN_RECALL_AT_10, evaluation.report()


def test_ndcg_at_10_is_no_worse_than_before(evaluation: IndependentEvaluation) -> None:
    before = NDCG_BEFORE_WITH_CORPUS if evaluation.corpus_documents else NDCG_BEFORE
    assert evaluation.ndcg >= before, evaluation.report()


def test_nouns_inside_compounds_are_found(evaluation: IndependentEvaluation) -> None:
    inside = [r for r in evaluation.results if r.query.kind == "inside"]
    assert sum(r.recall for r in inside) / len(inside) >= 0.99, evaluation.report()


def test_the_gate_fails_with_morphology_alone() -> None:
    # What the fallback earns, and proof that the recall gate can be missed.
    plain = evaluate_independent(compound_fallback=False)
    print("\nmorphology alone: " + plain.report(misses=False).splitlines()[1])
    assert plain.recall < MIN_RECALL_AT_10


def test_judging_never_calls_the_analyser(monkeypatch: pytest.MonkeyPatch) -> None:
    from indexer.analysis.korean import KoreanAnalyzer

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the judgements must not depend on the analyser")

    monkeypatch.setattr(KoreanAnalyzer, "analyze", refuse)
    docs = generate()
    for q in load_queries(with_corpus=False):
        [is_relevant(d.text, q) for d in docs[:20]]
