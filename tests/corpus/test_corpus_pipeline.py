"""Every file of the shared corpus through the whole pipeline over HTTP.

Each one is accepted (202), stored byte for byte, and ends `indexed` or `failed`
with a reason, while the server stays up.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CORPUS, Server, start_server

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"the shared corpus is not at {CORPUS}")


@pytest.fixture(scope="module")
def corpus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # Every file is downloaded back at once: more than a user's download rate allows.
    yield from start_server(
        tmp_path_factory.mktemp("corpus"), max_upload_bytes=64 * 1024 * 1024, rate_limits=False
    )


def corpus_files() -> list[Path]:
    return sorted(
        p
        for p in CORPUS.rglob("*")
        if p.is_file() and not p.name.endswith(".tsv") and p.name != "NOTICE.md"
    )


def test_every_corpus_file_is_stored_and_ends_with_a_status(corpus_server: Server) -> None:
    server = corpus_server
    server.user("archivist", "MOIS-REC")
    files = corpus_files()
    assert len(files) > 150
    uploaded: dict[str, tuple[Path, str]] = {}
    with server.client("archivist") as c:
        for path in files:
            content = path.read_bytes()
            r = c.post(
                "/documents", files={"file": (path.name, content)}, data={"tags": path.parent.name}
            )
            assert r.status_code == 202, (path, r.text)
            uploaded[r.json()["id"]] = (path, hashlib.sha256(content).hexdigest())
        deadline = time.monotonic() + 600
        while server.services.catalog.outbox.backlog():
            assert time.monotonic() < deadline, "indexing did not finish in 10 minutes"
            assert c.get("/healthz").status_code == 200
            time.sleep(0.5)
        outcomes: Counter[str] = Counter()
        for doc_id, (path, sha256) in uploaded.items():
            doc = c.get(f"/documents/{doc_id}").json()
            assert doc["status"] in ("indexed", "failed"), (path, doc)
            if doc["status"] == "failed":
                assert doc["status_detail"], (path, doc)
            indexed = doc["status"] == "indexed"  # status_detail "ocr" is indexed too
            outcomes["indexed" if indexed else doc["status_detail"].split(":")[0]] += 1
            body = c.get(f"/documents/{doc_id}/content")
            assert body.status_code == 200, (path, body.text[:200])
            assert hashlib.sha256(body.content).hexdigest() == sha256, path
        # Findable by file name even without text.
        hits = c.get("/search", params={"q": "testWORD_protected_passtika"}).json()
        assert hits["total"] >= 1
        print(f"\ncorpus outcomes over {len(uploaded)} files: {dict(outcomes)}")
        assert outcomes["indexed"] > 100
        assert c.get("/readyz").status_code == 200
