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

import contextlib
import logging
import pickle
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from indexer.analysis._child_main import read_frame, write_frame
from indexer.analysis.korean import AnalysisMode, KoreanAnalyzer
from indexer.lifeline import spawn

log = logging.getLogger(__name__)

#: (term, position, start, end): one token, as it crosses the process boundary.
TokenTuple = tuple[str, int, int, int]

#: Failures in a row after which the child is not started again.
MAX_FAILURES = 3
#: How long the child may take to exit once its stdin is closed.
STOP_GRACE_SECONDS = 2.0

# The package root, put on the child's sys.path: the child imports our modules
# whether or not the project is installed.
_PACKAGE_ROOT = Path(__file__).resolve().parents[2]
_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from indexer.analysis._child_main import main; main()"
)


class _ChildFailedError(Exception):
    """The child could not start, or died, or answered garbage."""


#: How a failing child shows (a closed pipe, a cut or garbled frame).
_FAULTS = (_ChildFailedError, OSError, ValueError, EOFError, pickle.PickleError)


def analyze_texts(analyzer: KoreanAnalyzer, texts: Sequence[str]) -> list[list[TokenTuple]]:
    """Index-mode tokens of each text, as tuples."""
    return [
        [(t.text, t.position, t.start, t.end) for t in analyzer.analyze(text, AnalysisMode.INDEX)]
        for text in texts
    ]


class AnalysisProcess:
    """Analyses batches of texts in a child process (started on first use).

    A plain child on pipes, not `multiprocessing`: nothing else (no resource
    tracker) is started, and the child dies with this process (`indexer.lifeline`).
    """

    def __init__(self, analyzer: KoreanAnalyzer) -> None:
        """`analyzer` is this process's analyser: the child builds the same one, and
        it analyses here whenever the child cannot."""
        self._analyzer = analyzer
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._closed = False
        self._failures = 0

    @property
    def child_pid(self) -> int | None:
        """The running child's pid, if any."""
        child = self._child
        return child.pid if child is not None and child.poll() is None else None

    def analyze_texts(self, texts: Sequence[str]) -> list[list[TokenTuple]]:
        """Index-mode tokens of each text: in the child, or here if it fails."""
        if not texts:
            return []
        # One batch at a time goes through the pipes.
        with self._lock:
            child = self._running_child()
            if child is not None:
                try:
                    tokens = self._ask(child, list(texts))
                except _FAULTS as err:
                    self._discard(err)
                else:
                    self._failures = 0
                    return tokens
        return analyze_texts(self._analyzer, texts)

    def close(self) -> None:
        """Stop the child; later batches are analysed in this process."""
        with self._lock:
            self._closed = True
            child, self._child = self._child, None
        if child is not None:
            _stop(child)

    def _running_child(self) -> subprocess.Popen[bytes] | None:
        """The child, started if needed (None once given up on or closed). Under the lock."""
        if self._closed:
            return None
        if self._child is not None and self._child.poll() is None:
            return self._child
        try:
            child = spawn(
                [sys.executable, "-P", "-c", _BOOTSTRAP, str(_PACKAGE_ROOT)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                close_fds=True,
            )
        except (OSError, RuntimeError) as err:
            log.warning("cannot start the analysis process (%s); analysing here", err)
            return None
        self._child = child
        try:
            assert child.stdin is not None and child.stdout is not None
            write_frame(child.stdin, (self._analyzer.user_words, self._analyzer.chunk_chars))
            if read_frame(child.stdout) != "ready":
                raise _ChildFailedError(f"it did not start (exit {child.poll()})")
        except _FAULTS as err:
            self._discard(err)
            return None
        return child

    @staticmethod
    def _ask(child: subprocess.Popen[bytes], texts: list[str]) -> list[list[TokenTuple]]:
        assert child.stdin is not None and child.stdout is not None
        write_frame(child.stdin, texts)
        tokens = read_frame(child.stdout)
        if not isinstance(tokens, list) or len(tokens) != len(texts):
            raise _ChildFailedError(f"it died (exit {child.poll()})")
        return tokens

    def _discard(self, err: BaseException) -> None:
        """Under the lock: drop the failed child, give up after repeated failures."""
        child, self._child = self._child, None
        self._failures += 1
        if self._failures >= MAX_FAILURES:
            # A child that cannot start (or dies at once) would cost a spawn per
            # batch: analyse here from now on.
            self._closed = True
        if child is not None:
            _stop(child, grace=0.0)
        log.warning(
            "analysis process failed (%s); this batch is analysed here, %s",
            err,
            "and so are the next ones" if self._closed else "and a new process starts",
        )


def _stop(child: subprocess.Popen[bytes], grace: float = STOP_GRACE_SECONDS) -> None:
    """Close the child's stdin (it exits), kill it if it does not, reap it."""
    for stream in (child.stdin, child.stdout):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
    try:
        child.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
