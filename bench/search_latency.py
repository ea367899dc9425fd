"""Search latency through HTTP with the access filter, at N generated documents.

    python -m bench.search_latency --docs 100000
    python -m bench.search_latency --docs 1000000 --queries 2000
    source .cache/engines/env.sh          # infra/dev/engines up opensearch
    python -m bench.search_latency --docs 100000 --engines embedded,opensearch --rounds 2

With `--engines embedded,opensearch` the same documents (one catalog, one
generation) are written to the Tantivy index and to an OpenSearch index (alias
`--search-index`, at `CROSSDOC_TEST_ELASTICSEARCH_URL` or `--search-url`), and
the servers on each engine take the same queries from the same users, round
after round alternated; each line names its engine and the machine's load, and
a summary gives the OpenSearch/Tantivy ratio of the medians of p50 and p99.

Builds (or reuses, with --reuse) a data dir with a generated organisation and N
catalog rows + index entries (generated directly, without blobs: this measures
search, not ingest), starts `crossdoc serve` in a child process, signs in as
many different users and sends queries one at a time (then with two clients),
and prints p50/p90/p99 latency, hits, and the server's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import tantivy
from sqlalchemy import func, insert, select, update

from auth.access import index_readers
from auth.passwords import Passwords
from bench import korean
from bench.options import bench_parser
from bench.server import BenchServer, machine_load
from indexer.access_facts import document_access
from indexer.analysis.korean import KoreanAnalyzer
from indexer.index.base import IndexDocument, SearchIndex
from indexer.index.elasticsearch import ElasticsearchIndex
from indexer.index.tantivy_index import TantivyIndex
from storage.catalog import models as m
from storage.catalog.records import DocumentRecord, GrantRecord
from storage.catalog.sql import SqlCatalog

PASSWORD = "bench-password-1"
VISIBILITIES = ("private", "department", "department", "ministry", "government")


def build(
    data_dir: Path,
    n_docs: int,
    seed: int,
    tags: tuple[str, ...] = (),
    search: tuple[str, str] | None = None,
) -> list[str]:
    """Generate the organisation and `n_docs` documents (each with `tags`); return the users.

    With `search` (an Elasticsearch/OpenSearch URL and alias) the same documents
    are written to that index too, beside the Tantivy index."""
    rng = random.Random(seed)
    data_dir.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(f"sqlite:///{(data_dir / 'catalog.sqlite3').resolve()}")
    catalog.migrate()
    now = datetime.now(UTC)
    ministries = [f"M{i:02d}" for i in range(18)]
    departments = [(f"{mi}-D{j}", mi) for mi in ministries for j in range(6)]
    hashed = Passwords().hash(PASSWORD)
    users = [(f"user{i:04d}", rng.choice(departments)[0]) for i in range(2000)]
    with catalog.engine.begin() as conn:
        conn.execute(
            insert(m.Ministry), [{"code": c, "name": c, "created_at": now} for c in ministries]
        )
        conn.execute(
            insert(m.Department),
            [
                {"code": d, "name": d, "ministry_code": mi, "created_at": now}
                for d, mi in departments
            ],
        )
        conn.execute(
            insert(m.User),
            [
                {
                    "username": u,
                    "password_hash": hashed,
                    "display_name": u,
                    "department_code": d,
                    "roles": ["member"],
                    "disabled": False,
                    "created_at": now,
                    "updated_at": now,
                }
                for u, d in users
            ],
        )
    ministry_of = dict(departments)
    analyzer = KoreanAnalyzer()
    indexes: list[SearchIndex] = [TantivyIndex(data_dir / "index", analyzer)]
    if search is not None:
        # The data dir is new, so whatever the alias holds is an abandoned build's: it
        # would be searched beside these documents (more hits, more work than Tantivy's).
        drop_search_alias(*search)
        indexes.append(ElasticsearchIndex(search[0], search[1], analyzer, timeout=300))
    batch = 5000
    started = time.monotonic()
    for first in range(0, n_docs, batch):
        rows, grants, index_docs = [], [], []
        for _ in range(min(batch, n_docs - first)):
            doc_id = uuid.uuid4().hex
            owner, dept = rng.choice(users)
            created = now - timedelta(days=rng.randint(0, 3650), seconds=rng.randint(0, 86400))
            sha = uuid.uuid4().hex * 2
            visibility = rng.choice(VISIBILITIES)
            doc_grants: tuple[GrantRecord, ...] = ()
            if rng.random() < 0.05:
                doc_grants = (GrantRecord(f"user:{rng.choice(users)[0]}", "read"),)
            title = korean.title(rng)
            row = {
                "id": doc_id,
                "title": title,
                "filename": f"{doc_id[:8]}.txt",
                "declared_type": "text/plain",
                "content_type": "text/plain",
                "size": 300,
                "sha256": sha,
                "blob_key": f"blobs/sha256/{sha[:2]}/{sha[2:4]}/{sha}",
                "department": dept,
                "ministry": ministry_of[dept],
                "owner": owner,
                "visibility": visibility,
                "tags": list(tags),
                "status": "indexed",
                "status_detail": "",
                "version": 1,
                "revision": 1,
                "acl_revision": 1,
                "indexed_revision": 1,
                "created_at": created,
                "updated_at": created,
                "deleted_at": None,
            }
            rows.append(row)
            grants.extend(
                {
                    "document_id": doc_id,
                    "principal": g.principal,
                    "permission": g.permission,
                    "expires_at": None,
                    "created_at": now,
                    "created_by": owner,
                }
                for g in doc_grants
            )
            record = DocumentRecord(
                id=doc_id,
                title=title,
                filename=row["filename"],
                declared_type="text/plain",
                content_type="text/plain",
                size=300,
                sha256=sha,
                blob_key=row["blob_key"],
                department=dept,
                ministry=ministry_of[dept],
                owner=owner,
                visibility=visibility,
                tags=tags,
                status="indexed",
                status_detail="",
                version=1,
                revision=1,
                acl_revision=1,
                indexed_revision=1,
                created_at=created,
                updated_at=created,
                deleted_at=None,
                grants=doc_grants,
            )
            index_docs.append(
                IndexDocument(
                    id=doc_id,
                    revision=1,
                    title=title,
                    filename=row["filename"],
                    body=korean.document_text(rng, 300),
                    department=dept,
                    ministry=ministry_of[dept],
                    content_type="text/plain",
                    tags=tags,
                    owner=owner,
                    readers=index_readers(document_access(record), now),
                    created_at=created,
                    updated_at=created,
                )
            )
        with catalog.engine.begin() as conn:
            conn.execute(insert(m.Document), rows)
            if grants:
                conn.execute(insert(m.DocumentGrant), grants)
        for index in indexes:
            index.upsert(index_docs)
        done = first + len(rows)
        rate = done / (time.monotonic() - started)
        print(f"  generated {done}/{n_docs} ({rate:.0f} docs/s)", file=sys.stderr, flush=True)
    with catalog.engine.begin() as conn:
        conn.execute(update(m.Document).values(indexed_revision=m.Document.revision))
    for index in indexes:
        index.close()
    catalog.close()
    if search is not None:
        check_search_copy(search, n_docs)
    (data_dir / "bench-users.json").write_text(json.dumps([u for u, _ in users]))
    if search is not None:
        (data_dir / "bench-search-index.json").write_text(json.dumps(list(search)))
    return [u for u, _ in users]


def rss_kib(pid: int) -> tuple[int, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def run_queries(
    base: str, tokens: list[str], n: int, seed: int, latencies: list[float], totals: list[int]
) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=base, timeout=60) as client:
        for _ in range(n):
            params: dict[str, object] = {"q": korean.query(rng)}
            if rng.random() < 0.2:
                params["sort"] = "newest"
            if rng.random() < 0.1:
                params["from"] = "2020-01-01"
            token = rng.choice(tokens)
            start = time.perf_counter()
            r = client.get(
                "/api/v1/search", params=params, headers={"Authorization": f"Bearer {token}"}
            )
            latencies.append((time.perf_counter() - start) * 1000)
            r.raise_for_status()
            totals.append(r.json()["total"])


def dataset_parser(
    doc: str | None, *, queries: int, port: int, seed: int
) -> argparse.ArgumentParser:
    """The command line shared by the benches over a generated data dir (`build`)."""
    parser = bench_parser(doc, port=port)
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=queries)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="reuse a data dir built before")
    parser.add_argument("--seed", type=int, default=seed)
    return parser


def search_index_count(url: str, alias: str) -> int | None:
    """How many documents the Elasticsearch/OpenSearch `alias` holds (None: no such alias)."""
    r = httpx.get(f"{url}/{alias}/_count", timeout=60)
    if r.status_code == 404:
        return None
    r.raise_for_status()
    return int(r.json()["count"])


def drop_search_alias(url: str, alias: str) -> None:
    """Delete every index behind `alias` (and an index of that name)."""
    r = httpx.get(f"{url}/_alias/{alias}", timeout=60)
    names = list(r.json()) if r.status_code == 200 else []
    if httpx.head(f"{url}/{alias}", timeout=60).status_code == 200 and not names:
        names = [alias]
    for name in names:
        print(f"  dropping {name} (behind {alias}, from an earlier build)", file=sys.stderr)
        httpx.delete(f"{url}/{name}", timeout=300).raise_for_status()


def catalog_documents(data_dir: Path) -> int:
    """How many documents the data dir's catalog holds."""
    catalog = SqlCatalog(f"sqlite:///{(data_dir / 'catalog.sqlite3').resolve()}")
    try:
        with catalog.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(m.Document)).scalar_one())
    finally:
        catalog.close()


def check_search_copy(search: tuple[str, str], n_docs: int) -> None:
    """Refuse a data dir whose Elasticsearch/OpenSearch copy holds other than its
    `n_docs` documents: the engines would not search the same data."""
    count = search_index_count(*search)
    if count != n_docs:
        raise SystemExit(
            f"the search index {search[1]} holds {count} documents, not this data dir's "
            f"{n_docs}: remove the data dir and build it again"
        )


def index_schema_current(index_dir: Path) -> bool:
    """Whether the Tantivy index in `index_dir` (or its live generation) has this
    release's schema. Opening it with another schema fails and changes nothing."""
    from indexer.index.tantivy_index import CURRENT_FILE, _schema

    pointer = index_dir / CURRENT_FILE
    live = index_dir / pointer.read_text().strip() if pointer.exists() else index_dir
    try:
        tantivy.Index(_schema(), str(live), reuse=True)
    except ValueError as err:
        if "schema does not match" in str(err):
            return False
        raise
    return True


def prepared_dataset(
    args: argparse.Namespace,
    name: str = "search",
    tags: tuple[str, ...] = (),
    search: tuple[str, str] | None = None,
) -> tuple[Path, list[str]]:
    """The data dir named by `args` (built now, or reused with `--reuse`) and its users;
    with `search`, its documents are in that Elasticsearch/OpenSearch index too."""
    data_dir: Path = args.data_dir or Path(f"bench/results/{name}-{args.docs}")
    if args.reuse and (data_dir / "bench-users.json").exists():
        users: list[str] = json.loads((data_dir / "bench-users.json").read_text())
        marker = data_dir / "bench-search-index.json"
        if search is not None and (
            not marker.exists() or json.loads(marker.read_text()) != list(search)
        ):
            raise SystemExit(f"{data_dir} was not built with the search index {search[1]}")
        if search is not None:
            check_search_copy(search, catalog_documents(data_dir))
        if not index_schema_current(data_dir / "index"):
            # The server would empty the index and try to re-index documents that
            # have no blobs (generated without them): it would measure nothing.
            raise SystemExit(
                f"{data_dir} was built by an older release (its index schema differs): "
                "remove it and build it again"
            )
        return data_dir, users
    if data_dir.exists():
        raise SystemExit(f"{data_dir} exists: pass --reuse or remove it")
    t0 = time.monotonic()
    users = build(data_dir, args.docs, args.seed, tags=tags, search=search)
    print(f"built {args.docs} documents in {time.monotonic() - t0:.0f}s", flush=True)
    return data_dir, users


def measure(
    server: BenchServer, tokens: list[str], args: argparse.Namespace, engine: str, round_no: int
) -> dict[int, tuple[float, float]]:
    """One server's queries, with 1 then 2 clients; returns {clients: (p50, p99)}."""
    base = server.base
    warm: list[float] = []
    run_queries(base, tokens, 100, args.seed + 1, warm, [])
    figures: dict[int, tuple[float, float]] = {}
    for clients in (1, 2):
        latencies: list[float] = []
        totals: list[int] = []
        threads = [
            threading.Thread(
                target=run_queries,
                args=(base, tokens, args.queries // clients, args.seed + 10 + i, latencies, totals),
            )
            for i in range(clients)
        ]
        start = time.perf_counter()
        cpu_start = server.cpu_seconds()
        load = machine_load()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        cpu_ms = (server.cpu_seconds() - cpu_start) * 1000 / len(latencies)
        rss, hwm = rss_kib(server.pid)
        p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
        figures[clients] = (p50, p99)
        print(
            f"round={round_no} engine={engine} docs={args.docs} clients={clients} "
            f"queries={len(latencies)} "
            f"p50={p50:.1f}ms p90={percentile(latencies, 90):.1f}ms "
            f"p99={p99:.1f}ms max={max(latencies):.1f}ms "
            f"mean={statistics.mean(latencies):.1f}ms server_cpu={cpu_ms:.1f}ms/query "
            f"throughput={len(latencies) / elapsed:.0f}/s "
            f"median_total={statistics.median(totals):.0f} "
            f"server_rss={rss / 1024:.0f}MiB peak_rss={hwm / 1024:.0f}MiB "
            f"{load}..{machine_load().partition('=')[2]}",
            flush=True,
        )
    return figures


def main() -> None:
    parser = dataset_parser(__doc__, queries=1000, port=8765, seed=7)
    parser.add_argument(
        "--engines", default="embedded", help="embedded, opensearch, or both: embedded,opensearch"
    )
    parser.add_argument("--search-url", default=os.environ.get("CROSSDOC_TEST_ELASTICSEARCH_URL"))
    parser.add_argument(
        "--search-index", default=None, help="alias (default: crossdoc-bench-search-<docs>)"
    )
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    if set(engines) - {"embedded", "opensearch"}:
        raise SystemExit("--engines: embedded and/or opensearch")
    search = None
    if "opensearch" in engines:
        if not args.search_url:
            raise SystemExit("set CROSSDOC_TEST_ELASTICSEARCH_URL or --search-url")
        search = (args.search_url, args.search_index or f"crossdoc-bench-search-{args.docs}")
    data_dir, users = prepared_dataset(args, search=search)
    rng = random.Random(args.seed)
    chosen = rng.sample(users, 50)
    results: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for round_no in range(1, args.rounds + 1):
        for engine in engines:
            env = {}
            if engine == "opensearch" and search is not None:
                env = {"CROSSDOC_SEARCH_URL": search[0], "CROSSDOC_SEARCH_INDEX": search[1]}
            # This measures search, not the rate limits (2,000 queries from one address).
            server = BenchServer(data_dir, args.port, rate_limits=False, env=env)
            try:
                tokens = [server.sign_in(user, PASSWORD) for user in chosen]
                for clients, figures in measure(server, tokens, args, engine, round_no).items():
                    results.setdefault((engine, clients), []).append(figures)
            finally:
                server.close()
    if len(engines) == 2:
        for clients in (1, 2):
            tantivy = [results[("embedded", clients)], results[("opensearch", clients)]]
            p50 = [statistics.median(f[0] for f in runs) for runs in tantivy]
            p99 = [statistics.median(f[1] for f in runs) for runs in tantivy]
            print(
                f"summary docs={args.docs} clients={clients}: tantivy p50={p50[0]:.1f}ms "
                f"p99={p99[0]:.1f}ms, opensearch p50={p50[1]:.1f}ms p99={p99[1]:.1f}ms, "
                f"opensearch/tantivy p50 x{p50[1] / p50[0]:.2f} p99 x{p99[1] / p99[0]:.2f} "
                f"(medians of {args.rounds} rounds)"
            )


if __name__ == "__main__":
    main()
