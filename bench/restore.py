"""Recovery time (RTO) of `crossdoc restore` from the second site, for N documents.

    python -m bench.restore --documents 10000
    python -m bench.restore --documents 100000 --keep

Builds a deployment of N generated 1 KB Korean texts with `crossdoc import`
(imported and indexed, so the catalog holds their extractions as a running
deployment's does), fills a directory replica as the replicator does (every blob
under its own key), takes a catalog snapshot with `crossdoc backup catalog`,
then times `crossdoc restore --from REPLICA --to DIR` as a process: the
snapshot fetched and checked, every original copied and re-hashed, the audit
chain verified, the index rebuilt. Prints the restore's own report (its RTO
line) and the wall time, with the machine's load (`uptime`) before and after.
`--cold` imports without indexing: the restore then extracts every document
(no cached extractions), the worst case.

`--scale-out` restores onto the scale-out engines of `infra/dev/engines up`
(their `CROSSDOC_TEST_*` settings): the deployment's catalog is on PostgreSQL
(snapshot: pg_dump), and the restore loads it into a new database, copies the
originals into a new S3 bucket (moto) and rebuilds the index on OpenSearch under
a new alias; all of them are dropped afterwards.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

from bench import korean
from bench.options import bench_parser
from crossdoc.settings import Settings
from crossdoc.wiring.api import build_services
from services.bootstrap import bootstrap

print = functools.partial(print, flush=True)  # figures as they come


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


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--documents", type=int, default=10_000)
    parser.add_argument("--cold", action="store_true", help="source not indexed (no cache)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--scale-out", action="store_true", help="PostgreSQL, S3 and OpenSearch targets"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossdoc-restore-bench-"))
    try:
        if args.scale_out:
            with _scale_out() as (source_env, restore_args, target_env):
                _run(
                    work,
                    args.documents,
                    cold=args.cold,
                    source_env=source_env,
                    restore_args=restore_args,
                    target_env=target_env,
                )
        else:
            _run(work, args.documents, cold=args.cold)
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


def _run(
    work: Path,
    documents: int,
    *,
    cold: bool,
    source_env: dict[str, str] | None = None,
    restore_args: list[str] | None = None,
    target_env: dict[str, str] | None = None,
) -> None:
    data, replica, restored, tree = (work / n for n in ("data", "replica", "restored", "tree"))
    tree.mkdir()
    replica.mkdir()
    rng = random.Random(13)
    for i in range(documents):
        folder = tree / f"{i // 1000:03d}"
        folder.mkdir(exist_ok=True)
        (folder / f"문서{i:06d}.txt").write_text(korean.document_text(rng, 1024), encoding="utf-8")
    source_env = source_env or {}
    services = build_services(
        Settings(data_dir=data, database_url=source_env.get("CROSSDOC_DATABASE_URL"))
    )
    bootstrap(services.catalog, services.passwords.hash, admin_password="bench-admin-pw", demo=True)
    services.close()
    env = {"CROSSDOC_DATA_DIR": str(data), "CROSSDOC_REPLICA_URL": str(replica), **source_env}
    index_flag = "--no-index" if cold else "--index"
    took, _ = _crossdoc(env, "import", str(tree), "--department", "MOIS-REC", index_flag)
    how = "imported" if cold else "imported and indexed"
    print(f"deployment: {documents} documents {how} in {took:.1f} s")

    start = time.monotonic()
    for path in (data / "objects" / "blobs").rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            dest = replica / path.relative_to(data / "objects")
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
    print(f"replica filled (blob copy, as the replicator does) in {time.monotonic() - start:.1f} s")
    took, out = _crossdoc(env, "backup", "catalog")
    print(f"catalog snapshot in {took:.1f} s: {out.strip()}")

    print(f"load before: {_uptime()}")
    took, out = _crossdoc(
        target_env or {},
        "restore",
        "--from",
        str(replica),
        "--to",
        str(restored),
        *(restore_args or []),
    )
    print(out.rstrip())
    print(f"restore wall time (process start to exit): {took:.1f} s for {documents} documents")
    print(f"load after: {_uptime()}")


if __name__ == "__main__":
    main()
