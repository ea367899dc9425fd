"""Bulk ingest through `crossdoc import`: N generated 1 KB Korean texts, imported and indexed.

    python -m bench.bulk_import --texts 2000
    python -m bench.bulk_import --texts 2000 --fallback both   # without, then with

Creates a fresh data dir with the demo organisation, writes the files, then
times the `crossdoc import` process as a whole (import and indexing overlap;
the command returns when everything is indexed) and prints documents/s and the
index size. `--fallback off` turns off the compound fallback's Hangul bigrams
(`CROSSDOC_COMPOUND_FALLBACK=false`); `both` runs without then with, on the
same files, and prints what the fallback costs.
"""

from __future__ import annotations

import os
import random
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


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--fallback", choices=("on", "off", "both"), default="on")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossdoc-import-"))
    tree = work / "tree"
    tree.mkdir()
    rng = random.Random(5)
    for i in range(args.texts):
        (tree / f"문서{i:06d}.txt").write_text(korean.document_text(rng, 1024), encoding="utf-8")
    runs = {"on": [True], "off": [False], "both": [False, True]}[args.fallback]
    figures = [_run(work / f"data-{fallback}", tree, args.texts, fallback) for fallback in runs]
    if len(figures) == 2:
        (rate_off, size_off), (rate_on, size_on) = figures
        print(
            f"compound fallback costs {100 * (1 - rate_on / rate_off):.1f}% of ingest "
            f"throughput and {100 * (size_on / size_off - 1):.1f}% of index size"
        )


def _run(data: Path, tree: Path, texts: int, fallback: bool) -> tuple[float, int]:
    """Import `tree` into a fresh data dir; (documents/s, index bytes)."""
    env = dict(
        os.environ,
        CROSSDOC_DATA_DIR=str(data),
        CROSSDOC_COMPOUND_FALLBACK="true" if fallback else "false",
    )
    services = build_services(Settings(data_dir=data, compound_fallback=fallback))
    bootstrap(
        services.catalog, services.passwords.hash, admin_password="bench-admin-password", demo=True
    )
    services.close()
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "crossdoc", "import", str(tree), "--department", "MOIS-REC"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - start
    indexed = build_services(Settings(data_dir=data, compound_fallback=fallback))
    count = indexed.index.count()
    indexed.close()
    size = sum(f.stat().st_size for f in (data / "index").rglob("*") if f.is_file())
    summary = [line for line in result.stderr.splitlines() if line.startswith("imported")]
    print(
        f"bulk_import korean_text_1KB fallback={'on' if fallback else 'off'}: n={texts} "
        f"indexed={count} wall={elapsed:.1f}s end_to_end={texts / elapsed:.0f} docs/s "
        f"index={size / 1e6:.1f} MB ({summary[-1] if summary else ''})"
    )
    return texts / elapsed, size


if __name__ == "__main__":
    main()
