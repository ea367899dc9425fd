"""Ingest throughput and upload-to-searchable latency through the real pipeline.

    python -m bench.ingest                    # defaults: 2000 Korean 1 KB texts, 300 DOCX
    python -m bench.ingest --texts 5000 --docx 500

Starts `crossdoc serve` (embedded default) on a fresh data dir in a child
process, uploads documents over HTTP from 4 client threads, and measures:
- upload rate (202s per second) and end-to-end rate (first upload → last
  document indexed) for 1 KB Korean text files and for small DOCX files;
- for a 1 MB DOCX (text plus an embedded image), the time from its 202 to the
  first search that finds it (5 runs, median).
"""

from __future__ import annotations

import argparse
import io
import os
import random
import statistics
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from xml.sax.saxutils import escape

import httpx

from bench import korean
from bench.server import ADMIN_PASSWORD, BenchServer
from storage.catalog.sql import SqlCatalog

PASSWORD = "bench-password-1"


def make_docx(text: str, padding_bytes: int = 0) -> bytes:
    """A minimal valid DOCX with `text` as paragraphs and optional incompressible media."""
    paragraphs = "".join(
        f'<w:p><w:r><w:t xml:space="preserve">{escape(line)}</w:t></w:r></w:p>'
        for line in text.splitlines()
    )
    document = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        f"<w:body>{paragraphs}</w:body></w:document>"
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.'
            'openxmlformats.org/package/2006/content-types"><Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/><Default '
            'Extension="png" ContentType="image/png"/><Override PartName="/word/'
            'document.xml" ContentType="application/vnd.openxmlformats-officedocument.'
            'wordprocessingml.document.main+xml"/></Types>',
        )
        z.writestr(
            "_rels/.rels",
            '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.'
            'openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" '
            'Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
            'officeDocument" Target="word/document.xml"/></Relationships>',
        )
        z.writestr("word/document.xml", document)
        if padding_bytes:
            z.writestr(
                "word/media/image1.png", os.urandom(padding_bytes), compress_type=zipfile.ZIP_STORED
            )
    return buffer.getvalue()


class Bench:
    def __init__(self, port: int) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="crossdoc-bench-"))
        # This measures ingest, not the rate limits.
        self.server = BenchServer(self.data_dir, port, rate_limits=False, start_timeout=60)
        self.base = self.server.base
        admin = self.server.sign_in("admin", ADMIN_PASSWORD)
        with httpx.Client(
            base_url=self.base + "/api/v1", headers={"Authorization": f"Bearer {admin}"}
        ) as c:
            c.post("/admin/ministries", json={"code": "MOIS", "name": "행정안전부"})
            c.post(
                "/admin/departments",
                json={"code": "MOIS-REC", "name": "기록관리과", "ministry": "MOIS"},
            )
            c.post(
                "/admin/users",
                json={
                    "username": "uploader",
                    "password": PASSWORD,
                    "display_name": "업로더",
                    "department": "MOIS-REC",
                },
            )
        self.token = self.server.sign_in("uploader", PASSWORD)
        self.catalog = SqlCatalog(f"sqlite:///{self.data_dir / 'catalog.sqlite3'}")

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base + "/api/v1",
            timeout=120,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def pending(self) -> int:
        return self.catalog.outbox.backlog()

    def upload_many(self, files: list[tuple[str, bytes]], threads: int = 4) -> tuple[float, float]:
        """Upload all files; return (upload seconds, end-to-end seconds until indexed)."""
        queue = list(files)
        lock = threading.Lock()

        def work() -> None:
            with self.client() as c:
                while True:
                    with lock:
                        if not queue:
                            return
                        name, content = queue.pop()
                    r = c.post("/documents", files={"file": (name, content)})
                    r.raise_for_status()

        start = time.perf_counter()
        workers = [threading.Thread(target=work) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        uploaded = time.perf_counter() - start
        while self.pending():
            time.sleep(0.05)
        return uploaded, time.perf_counter() - start

    def searchable_after(self, name: str, content: bytes, marker: str) -> float:
        with self.client() as c:
            r = c.post("/documents", files={"file": (name, content)})
            r.raise_for_status()
            accepted = time.perf_counter()
            doc_id = r.json()["id"]
            while True:
                hits = c.get("/search", params={"q": marker}).json()["hits"]
                if any(h["id"] == doc_id for h in hits):
                    return time.perf_counter() - accepted
                if time.perf_counter() - accepted > 120:
                    raise SystemExit("document never became searchable")
                time.sleep(0.02)

    def close(self) -> None:
        self.server.close()


def report(label: str, n: int, seconds: tuple[float, float]) -> None:
    uploaded, total = seconds
    print(
        f"{label}: n={n} upload={n / uploaded:.0f} docs/s "
        f"end_to_end={n / total:.0f} docs/s ({total:.1f}s)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--docx", type=int, default=300)
    parser.add_argument("--latency-runs", type=int, default=5)
    parser.add_argument("--port", type=int, default=8767)
    args = parser.parse_args()
    rng = random.Random(11)
    bench = Bench(args.port)
    try:
        texts = [
            (f"문서{i}.txt", korean.document_text(rng, 1024).encode()) for i in range(args.texts)
        ]
        report("korean_text_1KB", len(texts), bench.upload_many(texts))
        docx = [
            (f"보고서{i}.docx", make_docx(korean.document_text(rng, 3000)))
            for i in range(args.docx)
        ]
        report(f"docx_{len(docx[0][1]) // 1024}KB", len(docx), bench.upload_many(docx))
        latencies = []
        make: Callable[[str], bytes] = lambda marker: make_docx(  # noqa: E731
            korean.document_text(rng, 250_000) + f"\n{marker}", padding_bytes=900_000
        )
        for _ in range(args.latency_runs):
            marker = "표식" + uuid.uuid4().hex[:8]
            content = make(marker)
            latencies.append(bench.searchable_after("큰보고서.docx", content, marker))
        print(
            f"docx_{len(content) / 1e6:.1f}MB upload_to_searchable: median="
            f"{statistics.median(latencies):.2f}s min={min(latencies):.2f}s "
            f"max={max(latencies):.2f}s runs={len(latencies)}"
        )
    finally:
        bench.close()


if __name__ == "__main__":
    main()
