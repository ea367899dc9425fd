"""Document analysis in a child process: the same tokens, and indexing never depends on it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest

from indexer.analysis.korean import KoreanAnalyzer
from indexer.analysis.process import MAX_FAILURES, AnalysisProcess, analyze_texts
from indexer.analysis.user_dictionary import UserWord

TEXTS = [
    "행정안전부는 출생신고 제도를 개선했다.",
    "국민디자인단이 정부3.0 과제를 맡았다",
    "Running reports were filed; the committees are meeting.",
    "",
    "제어\x00문자와\x1b[31m 색깔",
    "보고서 " * 2000,  # longer than a chunk: cut and analysed in pieces
    "ｆｕｌｌｗｉｄｔｈ 한글 조합형 한글",
]


@pytest.fixture
def analyzer() -> KoreanAnalyzer:
    return KoreanAnalyzer(
        [UserWord("국민디자인단", ("국민", "디자인", "단")), UserWord("정부3.0")], chunk_chars=500
    )


@pytest.fixture
def process(analyzer: KoreanAnalyzer) -> Iterator[AnalysisProcess]:
    running = AnalysisProcess(analyzer)
    yield running
    running.close()


def child_pid(process: AnalysisProcess) -> int:
    pid = process.child_pid
    assert pid is not None
    return pid


def test_the_child_gives_the_same_tokens_as_this_process(
    analyzer: KoreanAnalyzer, process: AnalysisProcess
) -> None:
    assert process.analyze_texts(TEXTS) == analyze_texts(analyzer, TEXTS)
    assert child_pid(process) != os.getpid()  # it really ran elsewhere
    assert process.analyze_texts([]) == []


def test_a_killed_child_costs_nothing_but_a_restart(
    analyzer: KoreanAnalyzer, process: AnalysisProcess
) -> None:
    expected = analyze_texts(analyzer, TEXTS)
    assert process.analyze_texts(TEXTS) == expected
    first = child_pid(process)
    os.kill(first, signal.SIGKILL)
    assert process.analyze_texts(TEXTS) == expected  # analysed here, this once
    assert process.analyze_texts(TEXTS) == expected
    assert child_pid(process) != first  # a new child took over


def test_a_child_that_cannot_start_is_given_up_on() -> None:
    # chunk_chars below the minimum makes the child's analyser refuse to start.
    analyzer = KoreanAnalyzer()
    analyzer._chunk_chars = 10
    process = AnalysisProcess(analyzer)
    try:
        for _ in range(MAX_FAILURES + 1):
            assert process.analyze_texts(["출생신고를 했다"]) == analyze_texts(
                analyzer, ["출생신고를 했다"]
            )
        assert process._running_child() is None  # no more spawns
    finally:
        process.close()


def test_after_close_batches_are_analysed_here(
    analyzer: KoreanAnalyzer, process: AnalysisProcess
) -> None:
    process.close()
    assert process.analyze_texts(TEXTS[:2]) == analyze_texts(analyzer, TEXTS[:2])
    assert process._running_child() is None
