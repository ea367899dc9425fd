"""`crossdoc reindex` asking the server holding the embedded index: the request and
status files (`indexer.rebuild`): an answer, a failure, nobody taking it, silence."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from indexer.rebuild import (
    REQUEST_FILE,
    STATUS_FILE,
    RebuildReport,
    RebuildRequestError,
    RebuildRequests,
    request_rebuild,
)


def serve_once(home: Path, run: Callable[[Callable[[int, int], None]], RebuildReport]) -> None:
    """The server's side: take the request as soon as it is there."""
    taker = RebuildRequests(home, run)

    def loop() -> None:
        deadline = time.monotonic() + 10
        while not taker.take_one() and time.monotonic() < deadline:
            time.sleep(0.01)

    threading.Thread(target=loop, daemon=True).start()


def test_the_server_rebuilds_and_the_command_gets_its_report(tmp_path: Path) -> None:
    def run(progress: Callable[[int, int], None]) -> RebuildReport:
        progress(5, 10)
        return RebuildReport(indexed=10, caught_up=2, count=10)

    serve_once(tmp_path, run)
    seen: list[tuple[int, int]] = []
    status = request_rebuild(tmp_path, poll=0.01, progress=lambda d, t: seen.append((d, t)))
    assert status["state"] == "done" and status["count"] == 10 and status["caught_up"] == 2
    assert not (tmp_path / REQUEST_FILE).exists()


def test_a_failed_rebuild_is_reported_to_the_command(tmp_path: Path) -> None:
    def run(progress: Callable[[int, int], None]) -> RebuildReport:
        raise ValueError("사용자 사전을 읽을 수 없습니다")

    serve_once(tmp_path, run)
    with pytest.raises(RebuildRequestError, match="사용자 사전"):
        request_rebuild(tmp_path, poll=0.01)


def test_a_request_nobody_takes_is_withdrawn(tmp_path: Path) -> None:
    with pytest.raises(RebuildRequestError, match="did not take"):
        request_rebuild(tmp_path, poll=0.01, take_timeout=0.1)
    assert not (tmp_path / REQUEST_FILE).exists()  # a later server does not run it


def test_a_rebuilding_process_gone_silent_is_reported(tmp_path: Path) -> None:
    """The server stopped mid-way: its status says running, but is not rewritten."""

    def run(progress: Callable[[int, int], None]) -> RebuildReport:
        status = tmp_path / STATUS_FILE
        old = time.time() - 120
        os.utime(status, (old, old))
        time.sleep(0.5)  # the command looks now; no heartbeat within 5 s
        return RebuildReport(indexed=0, caught_up=0, count=0)

    serve_once(tmp_path, run)
    with pytest.raises(RebuildRequestError, match="said nothing"):
        request_rebuild(tmp_path, poll=0.01, silence=60)
    assert json.loads((tmp_path / STATUS_FILE).read_text())["state"] in {"running", "done"}
