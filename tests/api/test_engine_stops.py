"""Fault trials that stop the engines' processes for real (issue 10, item 8): the
OpenSearch node SIGKILLed during indexing and searches, the Tika server SIGKILLed
mid-extraction, each started again by `infra/dev/engines restart` on the same port
and data; repeated, with a fixed seed (`CROSSDOC_CRASH_SEED`), under a real API
and a real `crossdoc worker`.

test_full_stack_faults.py cuts each engine with a relay: its clients see resets and
refused connections, but the engine never stops. A real stop goes further: the node
comes back blocked until it has recovered its cluster state, then with its shards
not yet assigned (a red index: the engine answers a search 503 when it reaches none
of the shards, but 200 from the others when it reaches some, and a `_mget` 200 with
an error per document), and the Tika server comes back cold. The trials check that

- every search answers 200 or a bilingual 503 `search_unavailable`, never a 500 or
  a dropped connection, and no 200 finds fewer documents than one before it (no
  document is ever deleted here: fewer would be a silently partial answer);
- uploads are accepted while an engine is down, and every upload answered 202 ends
  `indexed`, byte for byte, once (or `failed` for a reason of its own);
- search comes back once the node does; the node is left up (yellow or green)
  with every other index it held, document for document;
- a document whose extraction was under way when the Tika server died is indexed
  with its text once the server is back.

`test_a_search_missing_a_shard_answers_503_not_a_partial_answer` makes a shard missing on
purpose (bound to a node that does not exist), so the 503 is checked whatever the
timing of a restart: OpenSearch answers a search that reaches none of its shards
503 itself, but one that reaches some of them 200, from those.

Full stack leg only, and only when the engines were started by `infra/dev/engines
up` from this checkout's cache (`CROSSDOC_ENGINES_DIR`): the trials stop and start
them. Each test prints its trials, statuses and losses. About 4 to 6 minutes in all
on 2 busy cores (an OpenSearch restart takes 20-40 s, Tika server's 5-15 s, and the
worker's backoff after each outage up to 30 s more).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import conftest as shared
from tests.api.full_stack import ENGINE_ENV, FullStack, stack_servers
from tests.api.test_celery_faults import DEPARTMENT, USER, Uploads, assert_nothing_lost
from tests.api.test_full_stack_faults import assert_bilingual_503
from tests.api.worker_process import documents
from tests.conftest import Server
from tests.unit.test_native_extractor import docx_bytes

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
ENGINES = ROOT / "infra" / "dev" / "engines"
SEED = int(os.environ.get("CROSSDOC_CRASH_SEED", "20261130"))
TRIALS = 3
#: An OpenSearch restart takes 40-100 s on two cores: fewer kills of the node.
NODE_TRIALS = 2
#: The word every search of the trials asks for: in every upload of `Uploads`.
WORD = "일련번호"
#: A word only the large document of each Tika trial holds.
MARKERS = ("파랑새표지", "노랑나비표지", "초록거북표지")


def _engines_dir() -> Path:
    return Path(os.environ.get("CROSSDOC_ENGINES_DIR") or ROOT / ".cache" / "engines")


class Engine:
    """An engine of `infra/dev/engines`, SIGKILLed and started again through the script."""

    def __init__(self, name: str, url: str) -> None:
        run = _engines_dir() / "run"
        recorded = run / f"{name}.url"
        ours = recorded.is_file() and recorded.read_text().strip().rstrip("/") == url.rstrip("/")
        if not ours or not (run / f"{name}.settings").is_file():
            pytest.skip(
                f"{name} at {url} was not started by `infra/dev/engines up` from "
                f"{_engines_dir()}: these trials stop and restart it"
            )
        self.name = name
        self.url = url.rstrip("/")
        self.run = run
        #: Killed and not started again yet: a failed trial still restarts it, since
        #: the rest of the suite runs on this engine.
        self.killed = False

    def pid(self) -> int:
        return int((self.run / f"{self.name}.pid").read_text())

    def _script(self, command: str, timeout: float) -> float:
        started = time.monotonic()
        done = subprocess.run(
            [str(ENGINES), command, self.name],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, f"engines {command} {self.name}: {done.stderr[-3000:]}"
        return time.monotonic() - started

    def kill(self) -> None:
        """SIGKILL the engine (its whole process group), as a crash would."""
        self.killed = True
        self._script("kill", 60)

    def restart(self) -> float:
        """Start it again on its port and data; seconds until it answered."""
        took = self._script("restart", 400)
        self.killed = False
        return took

    def left_up(self) -> None:
        """After a trial, passed or failed: the engine runs."""
        if self.killed:
            self.restart()


def _node(url: str, method: str, path: str, body: Any = None) -> Any:
    r = httpx.request(method, f"{url}{path}", json=body, timeout=60)
    assert r.status_code < 300, f"{method} {path}: {r.status_code} {r.text[:500]}"
    return r.json()


def _other_indexes(url: str, ours: str) -> dict[str, int]:
    """The node's other indexes and their document counts (system indexes aside)."""
    rows = _node(url, "GET", "/_cat/indices?format=json&h=index,docs.count&expand_wildcards=all")
    return {
        r["index"]: int(r["docs.count"] or 0)
        for r in rows
        if not r["index"].startswith(".") and not r["index"].startswith(ours)
    }


@dataclass
class Trial:
    api: Server
    full: FullStack


@pytest.fixture
def trial(stack: str, tmp_path: Path) -> Iterator[Trial]:
    """The API and its worker on the full stack, straight to the engines (no relay)."""
    if stack != "full":
        pytest.skip(
            "stops the full stack's engine processes; the embedded stack's faults are "
            "test_crash_trials.py and test_faults.py"
        )
    full: FullStack = shared.FULL_STACK[-1]
    # Rate limits off: the searching thread asks ~50 times a second.
    for api in stack_servers(full, tmp_path / "data", {"rate_limits": False}):
        api.user(USER, DEPARTMENT)
        yield Trial(api, full)


@dataclass
class Searches:
    """Searches in a thread, over and over, while the node goes and comes back."""

    api: Server
    answers: list[tuple[float, int, int]] = field(default_factory=list)  # time, status, total
    bad: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        most = 0
        with self.api.client(USER) as http:
            while not self._stop.is_set():
                try:
                    r = http.get("/search", params={"q": WORD})
                except httpx.HTTPError as err:  # a dropped connection is a defect too
                    self.bad.append(repr(err))
                    continue
                total = -1
                if r.status_code == 200:
                    total = int(r.json()["total"])
                    # Documents are only ever added here: fewer than before is a partial
                    # answer (a shard missing) given as a whole one.
                    if total < most:
                        self.bad.append(f"200 with {total} hits after {most}: {r.text[:200]}")
                    most = max(most, total)
                elif r.status_code == 503:
                    try:
                        assert_bilingual_503(r, "search_unavailable")
                    except AssertionError as err:
                        self.bad.append(str(err))
                else:
                    self.bad.append(f"{r.status_code}: {r.text[:300]}")
                self.answers.append((time.monotonic(), r.status_code, total))
                time.sleep(0.02)

    def since(self, moment: float) -> list[int]:
        return [status for at, status, _ in self.answers if at >= moment]

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(90)


class NodeWatch:
    """When the node answered, and how healthy it was (for the print and the windows)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.seen: list[tuple[float, str]] = []  # time, "down" | "blocked" | red/yellow/green
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with httpx.Client(timeout=5) as http:
            while not self._stop.is_set():
                try:
                    r = http.get(f"{self.url}/_cluster/health")
                    state = str(r.json().get("status")) if r.status_code == 200 else "blocked"
                except (httpx.HTTPError, ValueError):
                    state = "down"
                self.seen.append((time.monotonic(), state))
                time.sleep(0.05)

    def windows(self, state: str) -> list[tuple[float, float]]:
        """The spans of time the node was seen in `state`."""
        spans: list[tuple[float, float]] = []
        start: float | None = None
        for at, seen in self.seen:
            if seen == state and start is None:
                start = at
            elif seen != state and start is not None:
                spans.append((start, at))
                start = None
        if start is not None:
            spans.append((start, self.seen[-1][0]))
        return spans

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def wait_indexed(api: Server, ids: set[str], timeout: float) -> None:
    """Until every document of `ids` is indexed, or failed for a reason of its own: a
    `failed` "unavailable: …" (an engine down too long) is retried by the outbox."""
    deadline = time.monotonic() + timeout
    while True:
        docs = [d for d in documents(api.services.catalog) if d.id in ids]
        waiting = [
            f"{d.id}:{d.status}:{d.status_detail[:40]}"
            for d in docs
            if d.status == "pending"
            or (d.status == "failed" and d.status_detail.startswith("unavailable"))
        ]
        if len(docs) == len(ids) and not waiting:
            return
        assert time.monotonic() < deadline, (
            f"seed {SEED}: not indexed in {timeout:.0f} s: {waiting}"
        )
        time.sleep(0.5)


def wait_search_back(api: Server, timeout: float) -> float:
    """Seconds until a search started now answers 200."""
    started = time.monotonic()
    with api.client(USER) as http:
        while http.get("/search", params={"q": WORD}).status_code != 200:
            assert time.monotonic() - started < timeout, "search did not come back with the node"
            time.sleep(0.2)
    return time.monotonic() - started


def test_a_search_missing_a_shard_answers_503_not_a_partial_answer(trial: Trial) -> None:
    """While a node holding one of the shards is down or restarting, the engine answers
    a search 200 from the shards it has: the API must answer 503, not a partial answer."""
    api = trial.api
    url = os.environ[ENGINE_ENV["search"]].rstrip("/")
    ids = {api.upload(USER, f"샤드 시험 {WORD} {n}".encode(), f"s{n}.txt")["id"] for n in range(3)}
    assert api.search(USER, q=WORD)["total"] == 3
    alias = api.services.settings.search_index
    # The alias also covers an index whose one shard is bound to a node that does
    # not exist: never assigned, as a shard of a node that is not back yet.
    missing = f"{alias}-unassigned"
    _node(
        url,
        "PUT",
        f"/{missing}?wait_for_active_shards=0",
        {"settings": {"index.routing.allocation.require._name": "no-such-node"}},
    )
    try:
        _node(url, "POST", "/_aliases", {"actions": [{"add": {"index": missing, "alias": alias}}]})
        with api.client(USER) as http:
            assert_bilingual_503(http.get("/search", params={"q": WORD}), "search_unavailable")
            assert_bilingual_503(http.get("/suggest", params={"q": "샤드"}), "search_unavailable")
        ready = httpx.get(f"{api.base_url}/readyz", timeout=30)
        assert ready.status_code == 503, ready.text
        assert "search_index" in ready.json()["error"]["message"]
    finally:
        _node(url, "DELETE", f"/{missing}")
    found = api.search(USER, q=WORD)
    assert {h["id"] for h in found["hits"]} == ids


def test_the_search_node_killed_during_indexing_and_search_loses_nothing(trial: Trial) -> None:
    api = trial.api
    url = os.environ[ENGINE_ENV["search"]].rstrip("/")
    node = Engine("opensearch", url)
    ours = api.services.settings.search_index
    # An index of someone else's on the same node (as the rest of the suite's): it
    # must come back with the node, document for document.
    sentinel = f"crossdoc-stop-sentinel-{uuid.uuid4().hex[:8]}"
    for n in range(5):
        _node(url, "PUT", f"/{sentinel}/_doc/{n}?refresh=true", {"n": n})
    others = _other_indexes(url, ours)
    assert others[sentinel] == 5
    rng = random.Random(SEED + 10)
    uploads = Uploads(api, rng)
    started = time.monotonic()
    watch = NodeWatch(url)
    searches = Searches(api)
    restarts: list[float] = []
    back_after: list[float] = []
    try:
        for _ in range(NODE_TRIALS):
            batch = uploads.add(4)
            time.sleep(rng.uniform(0, 0.5))  # the worker is indexing them
            node.kill()
            with api.client(USER) as http:
                assert_bilingual_503(http.get("/search", params={"q": WORD}), "search_unavailable")
            during = uploads.add(2)  # accepted while the node is down
            time.sleep(rng.uniform(0.5, 2.0))
            restarts.append(node.restart())  # returns once the node is yellow
            back_after.append(wait_search_back(api, 120))
            wait_indexed(api, batch | during, timeout=240)
    finally:
        searches.stop()
        watch.stop()
        node.left_up()
    health = _node(url, "GET", "/_cluster/health")
    assert health["status"] in ("green", "yellow"), health
    try:
        assert _other_indexes(url, ours) == others  # every other index, as it was
    finally:
        _node(url, "DELETE", f"/{sentinel}")
    assert searches.bad == [], searches.bad[:5]
    statuses = [status for _, status, _ in searches.answers]
    assert 503 in statuses and statuses[-1] == 200
    # What the API answered while the node was up but not yet serving its shards.
    unready = [
        status
        for state in ("blocked", "red")
        for start, end in watch.windows(state)
        for at, status, _ in searches.answers
        if start <= at <= end
    ]
    outcome = assert_nothing_lost(api, uploads)
    assert outcome["failed"] == 0  # text and HTML: nothing fails for a reason of its own
    print(
        f"search node trials (SIGKILL, restart): {NODE_TRIALS} kills during indexing and searches; "
        f"restarts took {', '.join(f'{s:.0f}' for s in restarts)} s, search back "
        f"{', '.join(f'{s:.1f}' for s in back_after)} s later; {len(statuses)} searches "
        f"({statuses.count(200)} answered 200, {statuses.count(503)} 503, 0 other, 0 dropped); "
        f"while the node was up but blocked or red ({len(watch.windows('blocked'))} + "
        f"{len(watch.windows('red'))} windows): {len(unready)} searches, "
        f"{unready.count(503)} answered 503, {unready.count(200)} 200; "
        f"{len(uploads.accepted)} uploads, {outcome}, 0 lost; {len(others)} other indexes "
        f"intact; {time.monotonic() - started:.0f} s (seed {SEED + 10})"
    )


def _group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) of every process in the process group `pgid`."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_bytes()
            fields = stat[stat.rfind(b")") + 2 :].split()
            if int(fields[2]) == pgid:  # field 5: the process group
                total += int(fields[11]) + int(fields[12])  # fields 14, 15: utime, stime
    return total / ticks


def _wait_parsing(tika: Engine, timeout: float) -> bool:
    """Wait until the Tika server (its forked parser included) burns CPU: a parse is
    under way. False if none was seen within `timeout`."""
    pgid = tika.pid()
    deadline = time.monotonic() + timeout
    last = _group_cpu_seconds(pgid)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = _group_cpu_seconds(pgid)
        if now - last >= 0.1:  # a third of a core or more: an idle server uses ~nothing
            return True
        last = now
    return False


def test_tika_server_killed_mid_extraction_loses_nothing(trial: Trial) -> None:
    api = trial.api
    tika = Engine("tika", os.environ[ENGINE_ENV["tika"]])
    rng = random.Random(SEED + 11)
    uploads = Uploads(api, rng)
    started = time.monotonic()
    big: dict[str, str] = {}  # document id -> the marker only its text holds
    mid_parse = 0
    restarts: list[float] = []
    try:
        for n in range(TRIALS):
            mid_parse += _tika_trial(api, tika, uploads, rng, n, big, restarts)
    finally:
        tika.left_up()
    assert mid_parse >= 1, "no kill landed during a parse"
    outcome = assert_nothing_lost(api, uploads)
    assert outcome["failed"] == 0
    for doc_id, marker in big.items():  # the text of each large document, once it was back
        found = api.search(USER, q=marker)
        assert [h["id"] for h in found["hits"]] == [doc_id], (marker, found)
    print(
        f"tika server trials (SIGKILL, restart): {TRIALS} kills ({mid_parse} during the parse "
        f"of a large document); restarts took {', '.join(f'{s:.0f}' for s in restarts)} s; "
        f"{len(uploads.accepted)} uploads, {outcome}, 0 lost; "
        f"{time.monotonic() - started:.0f} s (seed {SEED + 11})"
    )


def _tika_trial(
    api: Server,
    tika: Engine,
    uploads: Uploads,
    rng: random.Random,
    n: int,
    big: dict[str, str],
    restarts: list[float],
) -> int:
    """One kill of the Tika server; 1 if it landed during a parse."""
    # A large Word document (seconds of parsing on the server), then a small one.
    marker = MARKERS[n % len(MARKERS)]
    # Many short paragraphs: the parse takes time, the text stays small to index.
    paragraph = f"</w:t></w:r></w:p><w:p><w:r><w:t>{marker} 본문"
    # About 2 s of parsing on an idle machine: the kill (at most 0.6 s after the
    # parser is seen busy) lands inside it.
    content = docx_bytes(paragraph * rng.randint(120_000, 150_000))
    doc = api.upload(USER, content, f"big-{n}.docx", visibility="ministry", wait=False)
    uploads.accepted[doc["id"]] = hashlib.sha256(content).hexdigest()
    big[doc["id"]] = marker
    small = docx_bytes(f"{WORD} 공지 {n}번 작은표지{n}")
    doc = api.upload(USER, small, f"small-{n}.docx", visibility="ministry", wait=False)
    uploads.accepted[doc["id"]] = hashlib.sha256(small).hexdigest()
    mid_parse = _wait_parsing(tika, 60)
    if mid_parse:
        time.sleep(rng.uniform(0, 0.3))  # somewhere early in the parse
    tika.kill()
    uploads.add(2)  # accepted while it is down (half of them HTML: for the server too)
    time.sleep(rng.uniform(0.5, 2.0))
    restarts.append(tika.restart())
    wait_indexed(api, set(uploads.accepted), timeout=240)
    return int(mid_parse)
