"""Relevance of Korean search: judged queries over generated notices, through the real
analyser (mecab-ko with the shipped user dictionary), synonyms and Tantivy index, and
again on Elasticsearch/OpenSearch when `CROSSDOC_TEST_ELASTICSEARCH_URL` is set.

Fails below recall@10 = 0.95. `python -m bench.relevance` prints the same figures.
"""

from __future__ import annotations

import pytest

from indexer.analysis.korean import KoreanAnalyzer
from tests.relevance.corpus import generate, is_relevant, load_queries
from tests.relevance.evaluate import Evaluation, QueryResult, evaluate, shipped_analyzer

MIN_RECALL_AT_10 = 0.95


@pytest.fixture(scope="module")
def evaluation(elasticsearch_url: str | None) -> Evaluation:
    result = evaluate(elasticsearch_url=elasticsearch_url)
    print("\n" + result.report())
    return result


@pytest.fixture(scope="module")
def bodies() -> dict[str, str]:
    return {d.id: d.title + " " + d.body for d in generate()}


def result_of(evaluation: Evaluation, query: str) -> QueryResult:
    return next(r for r in evaluation.results if r.query.query == query)


def test_judgments_match_the_generated_corpus() -> None:
    docs = generate()
    assert len(docs) >= 300
    queries = load_queries()
    assert len(queries) >= 40
    for q in queries:
        expected = tuple(d.id for d in docs if is_relevant(d, q.about))
        # If this fails, the generator changed: rerun `python -m tests.relevance.corpus`
        # and review the new judgments.
        assert q.relevant == expected, q.id
        assert q.relevant, q.id


def test_recall_at_10(evaluation: Evaluation) -> None:
    assert evaluation.recall >= MIN_RECALL_AT_10, evaluation.report()


def test_the_set_can_fail_without_the_dictionary_and_synonyms() -> None:
    # The same queries with mecab alone and no synonyms: the figure the user
    # dictionary and synonyms earn, and proof that the threshold can be missed.
    plain = evaluate(KoreanAnalyzer(), use_synonyms=False)
    print("\nwithout user dictionary and synonyms: " + plain.report().splitlines()[1])
    assert plain.recall < MIN_RECALL_AT_10


def test_a_noun_finds_it_with_particles(evaluation: Evaluation, bodies: dict[str, str]) -> None:
    found = result_of(evaluation, "저장소").ranked
    assert any("저장소에서" in bodies[d] for d in found)


def test_a_compound_finds_spaced_and_longer_forms(
    evaluation: Evaluation, bodies: dict[str, str]
) -> None:
    found = result_of(evaluation, "출생신고").ranked
    assert any("출생 신고를" in bodies[d] for d in found)
    assert any("출생신고체계" in bodies[d] for d in found)


@pytest.mark.parametrize(("typed", "other"), [("행안부", "행정안전부"), ("행정안전부", "행안부")])
def test_a_ministry_finds_notices_that_use_another_name(
    evaluation: Evaluation, bodies: dict[str, str], typed: str, other: str
) -> None:
    found = result_of(evaluation, f"{typed} 출생신고").ranked
    assert any(other in bodies[d] and typed not in bodies[d] for d in found)


def test_a_user_word_stays_whole(evaluation: Evaluation, bodies: dict[str, str]) -> None:
    assert shipped_analyzer().terms("국민디자인단") == ["국민디자인단"]
    result = result_of(evaluation, "국민디자인단")
    # `국민 참여 디자인 공모단` (in many filler notices) is not a match.
    assert set(result.ranked) <= set(result.query.relevant)
    assert any("공모단" in body for body in bodies.values())
