"""Fault trials on the full scale-out stack (issue 10, item 8), repeated: the
object store and Tika server going away under a real API and a real
`crossdoc worker` (OpenSearch, Tika server, Celery on Redis, PostgreSQL, S3 on moto).

- the object store is unreachable during uploads (some cut mid-transfer): each
  upload answers 202 or 503, and a 503 leaves nothing half recorded (no catalog row
  without its bytes, no outbox item without its document);
- Tika server goes away during extraction: the documents wait, and are indexed
  when it is back.

After the trials every upload answered 202 is indexed (or failed with a reason),
served back byte for byte, and indexed once. Each engine is cut by a relay in front
of it (tests/api/outage.py: resets, then "connection refused", as when its process
stops). The worker SIGKILLed mid-batch and Redis restarted empty run on this stack
in test_celery_faults.py; the search node and Tika server killed for real (SIGKILL,
restart) in test_engine_stops.py, which replaced the relay trial of the search node,
and Tika server killed in tests/engines/test_tika_server_faults.py. Each test prints
its trials and losses.
About 1 to 3 minutes each on 2 cores (measured 58 to 167 s on a machine loaded
about 8 times over); runs on the full stack leg only.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests import conftest as shared
from tests.api.full_stack import ENGINE_ENV, FullStack, stack_servers
from tests.api.outage import Outage
from tests.api.test_celery_faults import DEPARTMENT, USER, Uploads, assert_nothing_lost
from tests.api.worker_process import documents, wait_settled
from tests.conftest import Server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

SEED = int(os.environ.get("CROSSDOC_CRASH_SEED", "20261130"))
TRIALS = 3
_HANGUL = re.compile(r"[\uac00-\ud7a3]")


@dataclass
class Stack:
    api: Server
    search: Outage
    store: Outage
    tika: Outage


@pytest.fixture
def trial(stack: str, tmp_path: Path) -> Iterator[Stack]:
    """The API and its worker on the full stack, each engine behind a relay it can cut."""
    if stack != "full":
        pytest.skip(
            "fault trials of the full stack's engines; the embedded stack's are "
            "test_crash_trials.py and test_faults.py"
        )
    full: FullStack = shared.FULL_STACK[-1]
    search = Outage(os.environ[ENGINE_ENV["search"]])
    store = Outage(full.s3_endpoint)
    tika = Outage(full.tika_url)
    engines = {"search_url": search.url, "s3_endpoint": store.address, "tika_url": tika.url}
    try:
        # Rate limits off: the searching thread asks ~50 times a second, and a 429 is
        # not what these trials look at.
        overrides = {"rate_limits": False}
        for api in stack_servers(full, tmp_path / "data", overrides, engines=engines):
            api.user(USER, DEPARTMENT)
            yield Stack(api, search, store, tika)
    finally:
        for relay in (search, store, tika):
            relay.close()


def assert_bilingual_503(r: httpx.Response, code: str) -> None:
    assert r.status_code == 503, r.text
    error = r.json()["error"]
    assert error["code"] == code
    assert _HANGUL.search(error["message"]) and re.search(r"[A-Za-z]{4}", error["message"])
    assert r.headers.get("Retry-After")


def test_the_object_store_unreachable_during_uploads_records_nothing_half(
    trial: Stack,
) -> None:
    rng = random.Random(SEED + 2)
    api = trial.api
    accepted: dict[str, str] = {}
    answers: list[int] = []
    bad: list[str] = []
    lock = threading.Lock()
    started = time.monotonic()

    def post(http: httpx.Client, n: int) -> None:
        # Some large enough that a cut lands mid-transfer.
        size = rng.choice([200, 50_000, 400_000])
        body = (f"행정안전부 공문 {n} " * (size // 30 + 1)).encode()[:size] + f" #{n}".encode()
        try:
            r = http.post("/documents", files={"file": (f"공문{n}.txt", body)})
        except httpx.HTTPError as err:
            with lock:
                bad.append(repr(err))
            return
        with lock:
            answers.append(r.status_code)
            if r.status_code == 202:
                accepted[r.json()["id"]] = hashlib.sha256(body).hexdigest()
            elif r.status_code == 503:
                try:
                    assert_bilingual_503(r, "storage_unavailable")
                except AssertionError as err:
                    bad.append(str(err))
            else:
                bad.append(f"{r.status_code}: {r.text[:300]}")

    def stream(first: int, count: int) -> None:
        with api.client(USER) as http:
            for n in range(first, first + count):
                post(http, n)

    for t in range(TRIALS):
        # Two clients upload while the store goes away and comes back.
        threads = [threading.Thread(target=stream, args=(1000 * t + 100 * k, 6)) for k in range(2)]
        for thread in threads:
            thread.start()
        time.sleep(rng.uniform(0.05, 0.6))
        trial.store.down()
        with api.client(USER) as http:
            r = http.post("/documents", files={"file": ("저장소장애.txt", "장애 중".encode())})
        assert_bilingual_503(r, "storage_unavailable")
        time.sleep(rng.uniform(0.5, 1.5))
        trial.store.up()
        for thread in threads:
            thread.join(120)
        # Nothing half recorded: the catalog holds exactly the uploads answered 202,
        # and every outbox item names one of them.
        catalog = api.services.catalog
        assert {d.id for d in documents(catalog)} == set(accepted), f"seed {SEED + 2}"
        assert catalog.outbox.backlog() <= len(accepted)
    assert bad == [], bad[:5]
    refused = answers.count(503)
    assert refused >= 1, answers  # the cut did land on uploads
    docs = wait_settled(api.services.catalog, set(accepted), timeout=120)
    assert {d.status for d in docs} == {"indexed"}, [(d.id, d.status_detail) for d in docs]
    assert api.services.catalog.outbox.backlog() == 0  # no orphan item
    with api.client(USER) as http:
        for doc_id, digest in accepted.items():
            r = http.get(f"/documents/{doc_id}/content")
            assert r.status_code == 200, (doc_id, r.text)
            assert hashlib.sha256(r.content).hexdigest() == digest
    api.services.index.refresh()
    assert api.services.index.count() == len(accepted)  # each indexed once
    print(
        f"object store trials: {TRIALS} outages during uploads, {len(answers)} uploads "
        f"({len(accepted)} answered 202, {refused} answered 503), 0 half recorded, 0 lost, "
        f"{time.monotonic() - started:.0f} s (seed {SEED + 2})"
    )


def test_tika_server_gone_during_extraction_loses_nothing(trial: Stack) -> None:
    rng = random.Random(SEED + 3)
    api = trial.api
    uploads = Uploads(api, rng)
    started = time.monotonic()
    for _ in range(TRIALS):
        batch = uploads.add(4)  # half of them HTML: extracted by Tika server
        time.sleep(rng.uniform(0, 0.5))
        trial.tika.down()
        during = uploads.add(2)
        time.sleep(rng.uniform(1.0, 3.0))
        trial.tika.up()
        wait_settled(api.services.catalog, batch | during, timeout=90)
    outcome = assert_nothing_lost(api, uploads)
    assert outcome["failed"] == 0
    print(
        f"tika server trials: {TRIALS} outages during extraction, "
        f"{len(uploads.accepted)} uploads, {outcome}, 0 lost, "
        f"{time.monotonic() - started:.0f} s (seed {SEED + 3})"
    )
