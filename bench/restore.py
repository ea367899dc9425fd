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
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
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
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossdoc-restore-bench-"))
    try:
        _run(work, args.documents, cold=args.cold)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, documents: int, *, cold: bool) -> None:
    data, replica, restored, tree = (work / n for n in ("data", "replica", "restored", "tree"))
    tree.mkdir()
    replica.mkdir()
    rng = random.Random(13)
    for i in range(documents):
        folder = tree / f"{i // 1000:03d}"
        folder.mkdir(exist_ok=True)
        (folder / f"문서{i:06d}.txt").write_text(korean.document_text(rng, 1024), encoding="utf-8")
    services = build_services(Settings(data_dir=data))
    bootstrap(services.catalog, services.passwords.hash, admin_password="bench-admin-pw", demo=True)
    services.close()
    env = {"CROSSDOC_DATA_DIR": str(data), "CROSSDOC_REPLICA_URL": str(replica)}
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
    size = (data / "catalog.sqlite3").stat().st_size
    print(f"catalog snapshot ({size / 1e6:.1f} MB catalog) in {took:.1f} s: {out.strip()}")

    print(f"load before: {_uptime()}")
    took, out = _crossdoc({}, "restore", "--from", str(replica), "--to", str(restored))
    print(out.rstrip())
    print(f"restore wall time (process start to exit): {took:.1f} s for {documents} documents")
    print(f"load after: {_uptime()}")


if __name__ == "__main__":
    main()
