"""Index-time Korean analysis on another core: a child process with the same analyser.

mecab holds the GIL while it parses, so in one process the analysis of documents
and everything else (HTTP, the catalog, building index documents) take turns on
one core; analysis is about half of the indexing work. `AnalysisProcess` sends a
batch's texts to a child process running a `KoreanAnalyzer` built from the same
user dictionary, and waits for the tokens without holding the GIL.

The tokens are the same as in-process (the analyser is deterministic; a test
holds them equal). When the child cannot start or dies (killed, out of memory),
the batch is analysed in this process and a new child is started for the next
batch: indexing never depends on the child.
"""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from indexer.analysis.korean import AnalysisMode, KoreanAnalyzer
from indexer.analysis.user_dictionary import UserWord

log = logging.getLogger(__name__)

#: (term, position, start, end): one token, as it crosses the process boundary.
TokenTuple = tuple[str, int, int, int]

#: Failures in a row after which the child is not started again.
MAX_FAILURES = 3

_child_analyzer: KoreanAnalyzer | None = None


def _start_child(user_words: tuple[UserWord, ...], chunk_chars: int) -> None:
    global _child_analyzer
    _child_analyzer = KoreanAnalyzer(user_words, chunk_chars=chunk_chars)


def _analyze_in_child(texts: Sequence[str]) -> list[list[TokenTuple]]:
    assert _child_analyzer is not None, "the child was started without an analyser"
    return analyze_texts(_child_analyzer, texts)


def analyze_texts(analyzer: KoreanAnalyzer, texts: Sequence[str]) -> list[list[TokenTuple]]:
    """Index-mode tokens of each text, as tuples."""
    return [
        [(t.text, t.position, t.start, t.end) for t in analyzer.analyze(text, AnalysisMode.INDEX)]
        for text in texts
    ]


class AnalysisProcess:
    """Analyses batches of texts in a child process (started on first use)."""

    def __init__(self, analyzer: KoreanAnalyzer) -> None:
        """`analyzer` is this process's analyser: the child builds the same one, and
        it analyses here whenever the child cannot."""
        self._analyzer = analyzer
        self._lock = threading.Lock()
        self._pool: ProcessPoolExecutor | None = None
        self._closed = False
        self._failures = 0

    def analyze_texts(self, texts: Sequence[str]) -> list[list[TokenTuple]]:
        """Index-mode tokens of each text: in the child, or here if it fails."""
        if not texts:
            return []
        pool = self._running_pool()
        if pool is not None:
            try:
                tokens = pool.submit(_analyze_in_child, list(texts)).result()
            except (BrokenProcessPool, OSError, RuntimeError) as err:
                self._discard(pool, err)
            else:
                self._failures = 0
                return tokens
        return analyze_texts(self._analyzer, texts)

    def close(self) -> None:
        """Stop the child; later batches are analysed in this process."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)

    def _running_pool(self) -> ProcessPoolExecutor | None:
        with self._lock:
            if self._closed:
                return None
            if self._pool is None:
                try:
                    self._pool = ProcessPoolExecutor(
                        max_workers=1,
                        # spawn: forking a process that runs threads (the API,
                        # tantivy's) can copy a held lock into the child.
                        mp_context=multiprocessing.get_context("spawn"),
                        initializer=_start_child,
                        initargs=(self._analyzer.user_words, self._analyzer.chunk_chars),
                    )
                except (OSError, RuntimeError) as err:
                    log.warning("cannot start the analysis process (%s); analysing here", err)
                    return None
            return self._pool

    def _discard(self, pool: ProcessPoolExecutor, err: BaseException) -> None:
        with self._lock:
            if self._pool is pool:
                self._pool = None
            self._failures += 1
            if self._failures >= MAX_FAILURES:
                # A child that cannot start (or dies at once) would cost a spawn per
                # batch: analyse here from now on.
                self._closed = True
        pool.shutdown(wait=False, cancel_futures=True)
        log.warning(
            "analysis process failed (%s); this batch is analysed here, %s",
            err,
            "and so are the next ones" if self._closed else "and a new process starts",
        )
