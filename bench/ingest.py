"""Ingest throughput and upload-to-searchable latency through the real pipeline.

    python -m bench.ingest                    # defaults: 2000 Korean 1 KB texts, 300 DOCX
    python -m bench.ingest --texts 5000 --docx 500
    python -m bench.ingest --texts-only --clients 1,4,8 --rounds 3 \
        --tree before=/tmp/previous-checkout --tree after=.   # side by side, alternated

Starts `crossdoc serve` (embedded default) on a fresh data dir in a child
process, uploads documents over HTTP from 4 client threads, and measures:
- upload rate (202s per second) and end-to-end rate (first upload → last
  document indexed) for 1 KB Korean text files and for small DOCX files;
- for a 1 MB DOCX (text plus an embedded image), the time from its 202 to the
  first search that finds it (5 runs, median).

With `--texts-only` it measures only the 1 KB texts, for each number of clients in
`--clients`, with the p50 and p99 latency of an upload (request to 202); each
`--tree` is a checkout whose code the server runs, alternated round by round on
a fresh data dir, so that code before and after a change meet the same noise.
`uploads_per_transaction` is how many uploads, on average, one catalog
transaction recorded (the group commit's batch size; 1.00 without it).
`index_lag` is the time from the last 202 until every upload is indexed;
`cpu_ms_per_upload` the CPU the server process (API and in-process indexer
threads) and its children (extraction, Korean analysis) used per upload, from
the first upload until all are indexed: the work per upload, which a machine
shared with other jobs inflates far less than the rates.
`--direct` measures the durable-write path alone (spool → blob → catalog, in
threads, no HTTP, no indexing), each upload its own transaction against the
group commit.
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
from bench.options import bench_parser
from bench.server import ADMIN_PASSWORD, BenchServer
from storage.catalog.ports import CatalogStore
from storage.catalog.sql import SqlCatalog
from storage.group_commit import UploadCommits
from storage.ingest import SpoolWriter, accept_document
from storage.objectstore.base import ObjectStore
from storage.objectstore.local import LocalObjectStore

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
    def __init__(self, port: int, tree: Path | None = None) -> None:
        self.data_dir = Path(tempfile.mkdtemp(prefix="crossdoc-bench-"))
        # This measures ingest, not the rate limits.
        self.server = BenchServer(
            self.data_dir, port, rate_limits=False, start_timeout=180, tree=tree
        )
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

    def commit_times(self) -> set[object]:
        """The distinct creation times of the documents: one per catalog transaction
        that recorded uploads (a transaction gives all its documents its time)."""
        ids = [i for batch in self.catalog.documents.all_ids() for i in batch]
        return {d.created_at for d in self.catalog.documents.get_many(ids)}

    def upload_many(
        self,
        files: list[tuple[str, bytes]],
        threads: int = 4,
        latencies: list[float] | None = None,
    ) -> tuple[float, float]:
        """Upload all files; return (upload seconds, end-to-end seconds until indexed).

        Each upload's seconds from request to 202 are appended to `latencies`.
        """
        queue = list(files)
        lock = threading.Lock()

        def work() -> None:
            with self.client() as c:
                while True:
                    with lock:
                        if not queue:
                            return
                        name, content = queue.pop()
                    sent = time.perf_counter()
                    r = c.post("/documents", files={"file": (name, content)})
                    r.raise_for_status()
                    if latencies is not None:
                        latencies.append(time.perf_counter() - sent)

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


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def texts_only(args: argparse.Namespace, rng: random.Random) -> None:
    """1 KB texts per number of clients, for each tree, rounds alternated."""
    clients = [int(c) for c in args.clients.split(",")]
    trees: list[tuple[str, Path | None]] = [("this", None)]
    if args.tree:
        trees = [
            (label, Path(path).resolve())
            for label, _, path in (t.partition("=") for t in args.tree)
        ]
    rates: dict[tuple[str, int], list[float]] = {}
    for round_no in range(1, args.rounds + 1):
        for label, tree in trees:
            bench = Bench(args.port, tree)
            try:
                for n_clients in clients:
                    texts = [
                        (f"문서{i}.txt", korean.document_text(rng, 1024).encode())
                        for i in range(args.texts)
                    ]
                    latencies: list[float] = []
                    before = len(bench.commit_times())
                    cpu = bench.server.cpu_seconds(), bench.server.children_cpu_seconds()
                    uploaded, total = bench.upload_many(texts, n_clients, latencies)
                    server_ms = (bench.server.cpu_seconds() - cpu[0]) * 1000 / len(texts)
                    children_ms = (bench.server.children_cpu_seconds() - cpu[1]) * 1000 / len(texts)
                    transactions = len(bench.commit_times()) - before
                    rate = len(texts) / uploaded
                    rates.setdefault((label, n_clients), []).append(rate)
                    print(
                        f"round={round_no} code={label} clients={n_clients} n={len(texts)} "
                        f"upload={rate:.0f} docs/s end_to_end={len(texts) / total:.0f} docs/s "
                        f"index_lag={total - uploaded:.1f}s "
                        f"p50={percentile(latencies, 0.5) * 1000:.1f}ms "
                        f"p99={percentile(latencies, 0.99) * 1000:.1f}ms "
                        f"uploads_per_transaction={len(texts) / transactions:.2f} "
                        f"cpu_ms_per_upload: server={server_ms:.2f} children={children_ms:.2f}",
                        flush=True,
                    )
            finally:
                bench.close()
    for (label, n_clients), values in rates.items():
        print(
            f"summary code={label} clients={n_clients} upload docs/s: "
            f"median={statistics.median(values):.0f} min={min(values):.0f} "
            f"max={max(values):.0f} rounds={len(values)}"
        )


def _direct_uploads(
    catalog: CatalogStore,
    store: ObjectStore,
    spool_dir: Path,
    commits: UploadCommits | None,
    contents: list[bytes],
    n_clients: int,
) -> tuple[float, list[float]]:
    """Accept every content through `accept_document` from `n_clients` threads;
    return (seconds, each upload's seconds)."""
    queue = list(contents)
    lock = threading.Lock()
    latencies: list[float] = []

    def work() -> None:
        while True:
            with lock:
                if not queue:
                    return
                content = queue.pop()
            sent = time.perf_counter()
            with SpoolWriter(spool_dir, 1 << 20) as spool:
                spool.write(content)
                accept_document(
                    catalog,
                    store,
                    spool.finish(),
                    filename="문서.txt",
                    declared_type="text/plain",
                    title=None,
                    department="MOIS-REC",
                    owner="uploader",
                    visibility="department",
                    commits=commits,
                )
            latencies.append(time.perf_counter() - sent)

    start = time.perf_counter()
    workers = [threading.Thread(target=work) for _ in range(n_clients)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return time.perf_counter() - start, latencies


def direct(args: argparse.Namespace, rng: random.Random) -> None:
    """The durable-write path alone (spool file → blob → catalog), no HTTP, no
    indexing: each upload its own transaction (`one`) against the group commit
    (`grouped`), alternated round by round on fresh data dirs."""
    clients = [int(c) for c in args.clients.split(",")]
    rates: dict[tuple[str, int], list[float]] = {}
    for round_no in range(1, args.rounds + 1):
        for label in ("one", "grouped"):
            data = Path(tempfile.mkdtemp(prefix="crossdoc-bench-direct-"))
            catalog = SqlCatalog(f"sqlite:///{data / 'catalog.sqlite3'}")
            catalog.migrate()
            catalog.organisation.create_ministry("MOIS", "행정안전부")
            catalog.organisation.create_department("MOIS-REC", "기록관리과", "MOIS")
            store = LocalObjectStore(data / "objects")
            commits = UploadCommits(catalog) if label == "grouped" else None
            for n_clients in clients:
                contents = [korean.document_text(rng, 1024).encode() for _ in range(args.texts)]
                seconds, latencies = _direct_uploads(
                    catalog, store, data / "spool", commits, contents, n_clients
                )
                rate = args.texts / seconds
                rates.setdefault((label, n_clients), []).append(rate)
                print(
                    f"round={round_no} commit={label} clients={n_clients} n={args.texts} "
                    f"direct={rate:.0f} docs/s p50={percentile(latencies, 0.5) * 1000:.1f}ms "
                    f"p99={percentile(latencies, 0.99) * 1000:.1f}ms",
                    flush=True,
                )
            catalog.close()
    for (label, n_clients), values in rates.items():
        print(
            f"summary commit={label} clients={n_clients} direct docs/s: "
            f"median={statistics.median(values):.0f} min={min(values):.0f} "
            f"max={max(values):.0f} rounds={len(values)}"
        )


def main() -> None:
    parser = bench_parser(__doc__, port=8767)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--docx", type=int, default=300)
    parser.add_argument("--latency-runs", type=int, default=5)
    parser.add_argument("--texts-only", action="store_true")
    parser.add_argument(
        "--direct", action="store_true", help="the durable-write path alone, no HTTP"
    )
    parser.add_argument("--clients", default="4", help="comma-separated, with --texts-only")
    parser.add_argument("--rounds", type=int, default=1, help="with --texts-only")
    parser.add_argument(
        "--tree", action="append", help="LABEL=PATH of a checkout to run, with --texts-only"
    )
    args = parser.parse_args()
    rng = random.Random(11)
    if args.direct:
        direct(args, rng)
        return
    if args.texts_only:
        texts_only(args, rng)
        return
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
