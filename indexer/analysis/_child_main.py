"""The analysis child process: a `KoreanAnalyzer` serving `AnalysisProcess` over pipes.

Started by the parent as `python -P -c <bootstrap> <package root>`. Frames
(a 4-byte big-endian length, then a pickle) go both ways: the parent sends the
analyser's settings once, then lists of texts; the child answers "ready", then
the tokens of each list. Pickle is safe here: both ends are our own processes.

The child dies with its parent (`die_with_parent`) and exits when its stdin
reaches EOF; it never starts `multiprocessing` machinery (no resource tracker
that could outlive the server).
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from typing import IO, Any

from indexer.lifeline import die_with_parent

_LENGTH = struct.Struct(">I")


def read_frame(stream: IO[bytes]) -> Any | None:
    """The next object on `stream`, None at EOF."""
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        return None
    (size,) = _LENGTH.unpack(head)
    body = stream.read(size)
    if len(body) < size:
        return None
    return pickle.loads(body)  # noqa: S301 - our own parent process


def write_frame(stream: IO[bytes], value: object) -> None:
    body = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(body)) + body)
    stream.flush()


def main() -> None:
    """Entry point of the child process."""
    die_with_parent()
    # The protocol gets a private copy of stdout; anything a library prints goes to stderr.
    channel = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    requests = sys.stdin.buffer
    start = read_frame(requests)
    if start is None:
        return
    from indexer.analysis.korean import KoreanAnalyzer
    from indexer.analysis.process import analyze_texts

    user_words, chunk_chars = start
    analyzer = KoreanAnalyzer(user_words, chunk_chars=chunk_chars)
    write_frame(channel, "ready")
    while (texts := read_frame(requests)) is not None:
        write_frame(channel, analyze_texts(analyzer, texts))
