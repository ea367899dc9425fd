"""Bulk ingest through `crossdoc import`: N generated 1 KB Korean texts, imported and indexed.

    python -m bench.bulk_import --texts 2000

Creates a fresh data dir with the demo organisation, writes the files, then
times the `crossdoc import` process as a whole (import and indexing overlap;
the command returns when everything is indexed) and prints documents/s.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench import korean
from crossdoc.settings import Settings
from crossdoc.wiring import build_services
from search_api.bootstrap import bootstrap


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--texts", type=int, default=2000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="crossdoc-import-"))
    tree = work / "tree"
    tree.mkdir()
    rng = random.Random(5)
    for i in range(args.texts):
        (tree / f"문서{i:06d}.txt").write_text(korean.document_text(rng, 1024), encoding="utf-8")
    services = build_services(Settings(data_dir=work / "data"))
    bootstrap(services, admin_password="bench-admin-password", demo=True)
    services.close()
    env = dict(os.environ, CROSSDOC_DATA_DIR=str(work / "data"))
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "crossdoc", "import", str(tree), "--department", "MOIS-REC"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - start
    indexed = build_services(Settings(data_dir=work / "data"))
    count = indexed.index.count()
    indexed.close()
    summary = [line for line in result.stderr.splitlines() if line.startswith("imported")]
    print(
        f"bulk_import korean_text_1KB: n={args.texts} indexed={count} wall={elapsed:.1f}s "
        f"end_to_end={args.texts / elapsed:.0f} docs/s ({summary[-1] if summary else ''})"
    )


if __name__ == "__main__":
    main()
