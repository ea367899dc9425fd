"""Faults on a real Tika server: killed mid-extraction and down for a while, nothing is lost.

The test starts its own tika-server-standard (the jar `infra/dev/engines` caches)
on a free port, so that it can kill it: SIGKILL to its process group (the
server and its forked parser) while a document is on the wire, then more
passes of the indexing worker while it is down. Every document must stay
`pending` (the outbox retries it with backoff), never `failed`, and end
`indexed` with its text once the server is back. Skips, saying why, without
Java or the cached jar. Two server starts: about 20-40 s on 2 cores.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import httpx
import pytest

from crossdoc.settings import Settings
from crossdoc.wiring.api import Services, build_services
from indexer.errors import ExtractionUnavailableError
from indexer.extraction.tika_server import TikaServerExtractor
from indexer.worker import drain_once
from services.bootstrap import bootstrap
from storage.ingest import BulkItem, StagedFile, accept_documents
from tests.conftest import fast_passwords
from tests.unit.test_native_extractor import docx_bytes

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ENGINES_SCRIPT = ROOT / "infra" / "dev" / "engines"
START_SECONDS = 120.0


def _jar() -> Path:
    # The version the engines script pins and caches.
    pinned = re.search(r"^TIKA_VERSION=(\S+)$", ENGINES_SCRIPT.read_text(), re.MULTILINE)
    assert pinned, f"no TIKA_VERSION= line in {ENGINES_SCRIPT}"
    cache = Path(os.environ.get("CROSSDOC_ENGINES_DIR") or ROOT / ".cache" / "engines")
    jar = cache / "tika" / f"tika-server-standard-{pinned.group(1)}.jar"
    if not jar.is_file():
        pytest.skip(f"no Tika server jar at {jar}: run `infra/dev/engines up tika` once")
    return jar


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TikaServerProcess:
    """A tika-server-standard of our own, started and killed at will (always on one port)."""

    def __init__(self, jar: Path, workdir: Path) -> None:
        java = shutil.which("java")
        if java is None:
            pytest.skip("no java on PATH (the Tika server needs Java 17+)")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        tmp = workdir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        config = workdir / "tika-config.xml"
        config.write_text(
            '<?xml version="1.0" encoding="UTF-8"?><properties><server><params>'
            f"<forkedJvmArgs><arg>-Xmx512m</arg><arg>-Djava.io.tmpdir={tmp}</arg></forkedJvmArgs>"
            "</params></server></properties>",
            encoding="utf-8",
        )
        self.command = [
            java, "-Xmx256m", f"-Djava.io.tmpdir={tmp}", "-jar", str(jar),
            "-h", "127.0.0.1", "-p", str(self.port), "-c", str(config),
        ]  # fmt: skip
        self.log = workdir / "tika.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"the Tika server exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/version", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        pytest.fail(f"the Tika server did not answer in {START_SECONDS:g} s")

    def kill(self) -> None:
        """SIGKILL the server and its forked parser (one process group)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def tika(tmp_path: Path) -> Iterator[TikaServerProcess]:
    server = TikaServerProcess(_jar(), tmp_path / "tika")
    server.start()
    yield server
    server.kill()


@pytest.fixture
def services(tmp_path: Path, tika: TikaServerProcess) -> Iterator[Services]:
    settings = Settings(
        data_dir=tmp_path / "data", demo=True, tika_url=tika.url, ocr=False,
        extraction_timeout_seconds=30,
    )  # fmt: skip
    built = build_services(settings, passwords=fast_passwords())
    bootstrap(
        built.catalog, built.passwords.hash, admin_password="admin-password-for-tests", demo=True
    )
    yield built
    built.close()


def _accept(services: Services, tmp_path: Path, files: dict[str, bytes]) -> list[str]:
    items = []
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        staged = StagedFile(path, hashlib.sha256(content).hexdigest(), len(content), content[:8192])
        items.append(BulkItem(staged, name))
    docs = accept_documents(
        services.catalog, services.store, items,
        department="MOIS-REC", owner="user:admin", visibility="government",
    )  # fmt: skip
    return [d.id for d in docs]


def _statuses(services: Services, ids: list[str]) -> dict[str, str]:
    return {d.id: d.status for d in services.catalog.documents.get_many(ids)}


def test_tika_server_killed_mid_extraction_loses_nothing(
    services: Services, tika: TikaServerProcess, tmp_path: Path
) -> None:
    extractor = services.extractor
    assert isinstance(extractor, TikaServerExtractor)
    assert extractor.url == tika.url
    # A large document first (its parse is on the wire when the server dies), then small ones.
    # 100,000 paragraphs: about 2.5 s of parsing on the server.
    big = docx_bytes(
        "</w:t></w:r></w:p><w:p><w:r><w:t>출생신고 안내문 대용량 본문입니다." * 100_000
    )
    files = {"big.docx": big} | {
        f"notice-{n}.docx": docx_bytes(f"공지 {n}번 표지어{n}") for n in range(5)
    }
    ids = _accept(services, tmp_path / "in", files)

    calls: list[str] = []
    killed: list[bool] = []
    real_call = extractor._call

    def call_and_kill(
        verb: str, service: str, body: BinaryIO | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        # The large document: kill the server 0.5 s into its parse.
        if body is not None and os.fstat(body.fileno()).st_size == len(big) and not killed:
            killed.append(True)
            threading.Timer(0.5, tika.kill).start()
        calls.append(service)
        try:
            return real_call(verb, service, body, headers)
        except ExtractionUnavailableError as err:
            calls.append(f"unavailable: {err}")
            raise

    extractor._call = call_and_kill  # type: ignore[method-assign]
    assert drain_once(services.catalog, services.pipeline, 256) == len(ids)
    assert killed
    assert any(c.startswith("unavailable") for c in calls), calls  # died on the wire
    assert set(_statuses(services, ids).values()) == {"pending"}

    # Down for a while: further passes find it down too; still nothing fails.
    down_until = time.monotonic() + 3
    while time.monotonic() < down_until:
        drain_once(services.catalog, services.pipeline, 256)
        assert "failed" not in _statuses(services, ids).values()
        time.sleep(0.5)
    assert sum(c.startswith("unavailable") for c in calls) >= 2, calls

    tika.start()
    deadline = time.monotonic() + 120
    while set(_statuses(services, ids).values()) != {"indexed"} and time.monotonic() < deadline:
        assert "failed" not in _statuses(services, ids).values()
        drain_once(services.catalog, services.pipeline, 256)
        time.sleep(0.5)
    assert set(_statuses(services, ids).values()) == {"indexed"}
    print("calls to the Tika server:", calls)  # shown with -s: what each pass met
    docs = services.catalog.documents.get_many(ids)
    cached = services.catalog.extractions.get([d.sha256 for d in docs], extractor.version)
    for doc in docs:
        assert doc.status_detail == "", doc
        record = cached[doc.sha256]
        assert record.status == "ok"
        marker = "대용량" if doc.filename == "big.docx" else f"표지어{doc.filename[7]}"
        assert marker in record.text, (doc.filename, record.text[:100])
