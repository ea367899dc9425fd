"""Recovery time (RTO) of `crossdoc restore` from the second site, for N documents.

    python -m bench.restore --documents 10000
    python -m bench.restore --documents 100000 --keep
    python -m bench.restore --documents 2000 --via-import     # the slow, end-to-end build

Builds an embedded deployment of N documents (generated ~1 KB Korean texts) with
its directory replica, takes a catalog snapshot with `crossdoc backup catalog`,
then times `crossdoc restore --from REPLICA --to DIR` as a process: the snapshot
fetched and checked, every original copied and re-hashed, the audit chain
verified, the index rebuilt. Prints the restore's own report (its RTO line with
its steps) and the wall time, with the machine's load before and after.

The deployment is written directly by default (`generate`, like
`bench.search_latency`'s `build`; about a thousand documents a second): for each
document its original on the primary (`data/objects`) and on the replica under
its key, its catalog rows (document, version, upload audit record, through
`Documents.create_many` as imports and uploads write them), its extraction in
the catalog's cache (by the extractor version a deployment with these settings
runs: the first document is extracted for real, the rest take its form), and
its indexing recorded (status `indexed`, outbox done). That is what the restore
reads: `reindex_all` (`services/restore.py`) empties the index, marks every
document for re-indexing and drains the outbox, so it re-does the Korean
analysis and the index writes, reusing the cached extractions as a restored
deployment does. No source index is written (the restore never reads one).
`--via-import` builds it with `crossdoc import --index` instead (the real path,
~20 documents a second on the shared machine); `--cold` (with `--via-import`)
imports without indexing, so the restore extracts every document (no cache).

`--scale-out` restores onto the scale-out engines of `infra/dev/engines up`
(their `CROSSDOC_TEST_*` settings): the deployment (built with `crossdoc import`)
has its catalog on PostgreSQL (snapshot: pg_dump), and the restore loads it into
a new database, copies the originals into a new S3 bucket (moto) and rebuilds the
index on OpenSearch under a new alias; all of them are dropped afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench import korean
from bench.options import bench_parser
from bench.server import machine_load
from crossdoc.settings import Settings
from crossdoc.wiring.core import build_extractor
from storage.catalog.records import (
    ExtractionRecord,
    IndexOutcome,
    NewAuditEvent,
    NewBlob,
    NewDocument,
)
from storage.catalog.sql import SqlCatalog
from storage.objectstore.base import blob_key_for

print = functools.partial(print, flush=True)  # figures as they come

DEPARTMENT = "MOIS-REC"
BATCH = 1000
#: The mode of a blob file (as `LocalObjectStore` writes them).
_BLOB_MODE = 0o440


def _uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def _crossdoc(env: dict[str, str], *args: str) -> tuple[float, str]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "crossdoc", *args],
        env=dict(os.environ, **env),
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"crossdoc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def _write_blob(root: Path, key: str, data: bytes) -> None:
    path = root / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(_BLOB_MODE)


def generate(data: Path, replica: Path, documents: int, *, seed: int = 13) -> None:
    """Write an embedded deployment of `documents` documents and its replica directly
    (see the module doc): originals on both sites, catalog rows with their audit
    records, cached extractions, indexing recorded."""
    from auth.passwords import Passwords
    from services.bootstrap import bootstrap

    rng = random.Random(seed)
    settings = Settings(data_dir=data, demo=True)
    data.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(f"sqlite:///{(data / 'catalog.sqlite3').resolve()}")
    catalog.migrate()
    bootstrap(catalog, Passwords().hash, admin_password="bench-admin-pw", demo=True)
    objects = data / "objects"

    # The form of an extraction of these files by this deployment's extractor:
    # the first document extracted for real (in the sandboxed child, as a worker does).
    extractor = build_extractor(settings)
    try:
        sample = data / "sample.txt"
        sample.write_text(korean.document_text(random.Random(seed), 1024), encoding="utf-8")
        form = extractor.extract(sample, filename="sample.txt", declared_type="text/plain")
        version = extractor.version
    finally:
        extractor.close()
        sample.unlink(missing_ok=True)
    print(f"extractor {version}: {form.status.value}, {form.content_type}")

    upload = NewAuditEvent(actor="@import", action="upload", detail={"via": "bench.restore"})
    started = time.monotonic()
    for first in range(0, documents, BATCH):
        news: list[NewDocument] = []
        extractions: list[ExtractionRecord] = []
        for i in range(first, min(first + BATCH, documents)):
            content = f"{korean.document_text(rng, 1024)}\n[{i}]".encode()  # one blob each
            sha = hashlib.sha256(content).hexdigest()
            key = blob_key_for(sha)
            for root in (objects, replica):
                _write_blob(root, key, content)
            name = f"문서{i:06d}.txt"
            news.append(
                NewDocument(
                    blob=NewBlob(key, sha, len(content), name, "text/plain", "text/plain"),
                    title=name,
                    department=DEPARTMENT,
                    owner="@import",
                    visibility="department",
                )
            )
            extractions.append(
                ExtractionRecord(
                    sha256=sha,
                    extractor_version=version,
                    status=form.status.value,
                    detail=form.detail,
                    content_type=form.content_type,
                    metadata=dict(form.metadata),
                    text=content.decode(),
                    truncated=False,
                )
            )
        docs = catalog.documents.create_many(news, audit=upload)
        catalog.extractions.put(extractions)
        catalog.documents.mark_indexed_many(
            [IndexOutcome(d.id, d.revision, d.version, "indexed", "", "text/plain") for d in docs]
        )
        done = first + len(news)
        if done % 10_000 == 0 or done == documents:
            took = time.monotonic() - started
            print(f"  {done} documents written ({done / took:.0f}/s)")
    catalog.close()


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument(
        "--via-import", action="store_true", help="build with `crossdoc import` (slow)"
    )
    parser.add_argument(
        "--cold", action="store_true", help="with --via-import: not indexed (no cache)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--stop-after",
        type=float,
        default=None,
        help="stop the restore after this many seconds and print the figures so far",
    )
    parser.add_argument(
        "--scale-out", action="store_true", help="PostgreSQL, S3 and OpenSearch (built by import)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossdoc-restore-bench-"))
    try:
        if args.scale_out:
            with _scale_out() as (source_env, restore_args, target_env):
                _run(
                    work,
                    args.documents,
                    via_import=True,  # the direct generator writes a SQLite catalog
                    cold=args.cold,
                    stop_after=args.stop_after,
                    source_env=source_env,
                    restore_args=restore_args,
                    target_env=target_env,
                )
        else:
            _run(
                work,
                args.documents,
                via_import=args.via_import,
                cold=args.cold,
                stop_after=args.stop_after,
            )
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


@contextlib.contextmanager
def _scale_out() -> Iterator[tuple[dict[str, str], list[str], dict[str, str]]]:
    """A PostgreSQL catalog for the deployment; an empty database, bucket name and
    alias for the restore, on the engines of `infra/dev/engines up`; all dropped after."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    from indexer.index.elasticsearch import drop_index
    from storage.objectstore.s3_bucket import S3Bucket

    env = os.environ
    need = [
        "CROSSDOC_TEST_DATABASE_URL",
        "CROSSDOC_TEST_ELASTICSEARCH_URL",
        "CROSSDOC_TEST_MOTO_S3_ENDPOINT",
        "CROSSDOC_TEST_MOTO_S3_ACCESS_KEY",
        "CROSSDOC_TEST_MOTO_S3_SECRET_KEY",
    ]
    missing = [n for n in need if not env.get(n)]
    if missing:
        raise SystemExit(f"--scale-out: set {', '.join(missing)} (`infra/dev/engines up`)")
    base = make_url(env["CROSSDOC_TEST_DATABASE_URL"])
    tag = uuid.uuid4().hex[:10]
    names = {"source": f"crossdoc_bench_src_{tag}", "restored": f"crossdoc_bench_dst_{tag}"}
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    for name in names.values():
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = {k: base.set(database=v).render_as_string(hide_password=False) for k, v in names.items()}
    bucket = alias = f"crossdoc-bench-{tag}"
    engines = {
        "CROSSDOC_S3_ENDPOINT": env["CROSSDOC_TEST_MOTO_S3_ENDPOINT"],
        "CROSSDOC_S3_ACCESS_KEY": env["CROSSDOC_TEST_MOTO_S3_ACCESS_KEY"],
        "CROSSDOC_S3_SECRET_KEY": env["CROSSDOC_TEST_MOTO_S3_SECRET_KEY"],
        "CROSSDOC_S3_SECURE": "false",
        "CROSSDOC_S3_REGION": env.get("CROSSDOC_TEST_MOTO_S3_REGION") or "us-east-1",
        "CROSSDOC_SEARCH_URL": env["CROSSDOC_TEST_ELASTICSEARCH_URL"],
    }
    try:
        yield (
            {"CROSSDOC_DATABASE_URL": url["source"]},
            [
                *("--database-url", url["restored"]),
                *("--storage-url", f"s3://{bucket}"),
                *("--search-index", alias),
            ],
            engines,
        )
    finally:
        drop_index(engines["CROSSDOC_SEARCH_URL"], alias)
        S3Bucket(
            engines["CROSSDOC_S3_ENDPOINT"],
            engines["CROSSDOC_S3_ACCESS_KEY"],
            engines["CROSSDOC_S3_SECRET_KEY"],
            bucket,
            secure=False,
            region=engines["CROSSDOC_S3_REGION"],
        ).remove_all(remove_bucket=True)
        for name in names.values():
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _import(
    data: Path,
    replica: Path,
    tree: Path,
    documents: int,
    *,
    cold: bool,
    source_env: dict[str, str],
) -> None:
    """The deployment through `crossdoc import`, and the replica filled as the replicator does."""
    from crossdoc.wiring.api import build_services
    from services.bootstrap import bootstrap

    tree.mkdir()
    rng = random.Random(13)
    for i in range(documents):
        folder = tree / f"{i // 1000:03d}"
        folder.mkdir(exist_ok=True)
        (folder / f"문서{i:06d}.txt").write_text(korean.document_text(rng, 1024), encoding="utf-8")
    services = build_services(
        Settings(data_dir=data, database_url=source_env.get("CROSSDOC_DATABASE_URL"))
    )
    bootstrap(services.catalog, services.passwords.hash, admin_password="bench-admin-pw", demo=True)
    services.close()
    env = {"CROSSDOC_DATA_DIR": str(data), "CROSSDOC_REPLICA_URL": str(replica), **source_env}
    index_flag = "--no-index" if cold else "--index"
    took, _ = _crossdoc(env, "import", str(tree), "--department", DEPARTMENT, index_flag)
    how = "imported" if cold else "imported and indexed"
    print(f"deployment: {documents} documents {how} in {took:.1f} s")
    start = time.monotonic()
    for path in (data / "objects" / "blobs").rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            dest = replica / path.relative_to(data / "objects")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
    print(f"replica filled (blob copy, as the replicator does) in {time.monotonic() - start:.1f} s")


def _run(
    work: Path,
    documents: int,
    *,
    via_import: bool,
    cold: bool,
    stop_after: float | None,
    source_env: dict[str, str] | None = None,
    restore_args: list[str] | None = None,
    target_env: dict[str, str] | None = None,
) -> None:
    source_env = source_env or {}
    data, replica, restored = (work / n for n in ("data", "replica", "restored"))
    replica.mkdir()
    print(f"machine: {machine_load()} at the start")
    if via_import:
        _import(data, replica, work / "tree", documents, cold=cold, source_env=source_env)
    else:
        start = time.monotonic()
        generate(data, replica, documents)
        print(
            f"deployment: {documents} documents written directly (originals on both "
            f"sites, catalog, cached extractions) in {time.monotonic() - start:.1f} s"
        )
    env = {"CROSSDOC_DATA_DIR": str(data), "CROSSDOC_REPLICA_URL": str(replica), **source_env}
    took, out = _crossdoc(env, "backup", "catalog")
    print(f"catalog snapshot in {took:.1f} s: {out.strip()}")

    print(f"load before: {machine_load()} ({_uptime()})")
    _restore(replica, restored, documents, stop_after, restore_args or [], target_env or {})
    print(f"load after: {machine_load()} ({_uptime()})")


def _indexed(catalog: Path) -> int | None:
    """Documents the restore's index rebuild has indexed so far (None: not readable yet)."""
    try:
        db = sqlite3.connect(f"file:{catalog}?mode=ro", uri=True, timeout=5)
        try:
            row = db.execute("SELECT count(*) FROM documents WHERE indexed_revision > 0").fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    return int(row[0])


def _restore(
    replica: Path,
    restored: Path,
    documents: int,
    stop_after: float | None,
    restore_args: list[str],
    target_env: dict[str, str],
) -> None:
    """Time `crossdoc restore` as a process, its lines as they come (with the seconds
    since its start), the index rebuild's progress every 30 s and the load; stopped
    after `stop_after` seconds if given (the figures so far are printed)."""
    start = time.monotonic()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crossdoc",
            "restore",
            "--from",
            str(replica),
            "--to",
            str(restored),
            *restore_args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **target_env, "PYTHONUNBUFFERED": "1"},  # lines as printed
    )
    assert process.stdout is not None
    stream = process.stdout

    indexing = threading.Event()  # the restore's last step has begun

    def echo() -> None:
        for line in stream:
            print(f"  [{time.monotonic() - start:7.1f} s] {line.rstrip()}")
            if "색인 · index" in line:
                indexing.set()

    reader = threading.Thread(target=echo, daemon=True)
    reader.start()
    while process.poll() is None:
        try:
            process.wait(30)
            break
        except subprocess.TimeoutExpired:
            pass
        took = time.monotonic() - start
        catalog = restored / "catalog.sqlite3"  # (scale-out: on PostgreSQL, not followed)
        indexed = _indexed(catalog) if indexing.is_set() and catalog.exists() else None
        if indexed is not None:
            print(
                f"  [{took:7.1f} s] index rebuild: {indexed}/{documents} documents "
                f"({machine_load()})"
            )
        if stop_after is not None and took > stop_after:
            process.terminate()
            process.wait(60)
            reader.join(10)
            print(
                f"STOPPED after {took:.0f} s (--stop-after): {indexed or 0}/{documents} "
                "documents indexed; the steps above are the figures measured"
            )
            return
    reader.join(30)
    took = time.monotonic() - start
    if process.returncode != 0:
        raise SystemExit(f"crossdoc restore failed (exit {process.returncode})")
    print(f"restore wall time (process start to exit): {took:.1f} s for {documents} documents")


if __name__ == "__main__":
    main()
