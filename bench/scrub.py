"""Scrub throughput: re-reading every blob on both sites against the catalog.

    python -m bench.scrub                      # 200 blobs of 1 MB on each site
    python -m bench.scrub --blobs 1000 --size 262144 --rate 50

Fills a fresh catalog (SQLite) and two local object stores (primary and replica,
in a temporary directory: `--dir` for another disk) with `--blobs` random blobs
of `--size` bytes, replicated, then runs one scrub pass (`storage.scrub.Scrubber`,
as `crossdoc scrub` does) unthrottled, and one at `--rate` MB/s, and prints the
MB/s read (both sites counted) and the blobs a second. The files were just
written, so the first pass reads mostly from the page cache unless `--drop-caches`
(root) empties it first: that pass then shows the disk.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
import time
from pathlib import Path

from bench.options import bench_parser
from storage.catalog.records import NewBlob, NewDocument
from storage.catalog.sql import SqlCatalog
from storage.objectstore.local import LocalObjectStore
from storage.replica import Replicator
from storage.scrub import Scrubber


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--blobs", type=int, default=200)
    parser.add_argument("--size", type=int, default=1 << 20)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--drop-caches", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crossdoc-bench-scrub-", dir=args.dir) as tmp:
        root = Path(tmp)
        catalog = SqlCatalog(f"sqlite:///{root / 'c.db'}", replicate=True)
        catalog.migrate()
        catalog.organisation.create_ministry("M", "행정안전부")
        catalog.organisation.create_department("D", "기록관리과", "M")
        primary = LocalObjectStore(root / "primary")
        (root / "replica").mkdir()
        replica = LocalObjectStore(root / "replica", create_root=False)
        src = root / "src"
        news = []
        for _ in range(args.blobs):
            content = os.urandom(args.size)
            sha = hashlib.sha256(content).hexdigest()
            src.write_bytes(content)
            blob = primary.put_file(src, sha256=sha, size=args.size)
            news.append(
                NewDocument(
                    blob=NewBlob(blob.key, sha, args.size, "f.bin", "", ""),
                    title="t",
                    department="D",
                    owner="bench",
                    visibility="department",
                )
            )
        catalog.documents.create_many(news)
        started = time.monotonic()
        Replicator(catalog, primary, replica, root / "spool").drain()
        copy_s = time.monotonic() - started
        total_mb = args.blobs * args.size / 1e6
        print(
            f"replicated {args.blobs} blobs ({total_mb:.0f} MB) in {copy_s:.1f} s: "
            f"{total_mb / copy_s:.1f} MB/s copied and read back"
        )
        scrubber = Scrubber(catalog, primary, replica, root / "spool")
        for rate in (None, args.rate):
            if args.drop_caches:
                subprocess.run(["sync"], check=False)
                Path("/proc/sys/vm/drop_caches").write_text("3\n")
            report = scrubber.run(rate_bytes=rate * 1e6 if rate else None)
            print(
                f"scrub ({'unthrottled' if rate is None else f'--rate {rate:g}'}): "
                f"{report.blobs} blobs, {report.bytes_read / 1e6:.0f} MB read on both sites in "
                f"{report.seconds:.1f} s: {report.mb_per_s:.1f} MB/s, "
                f"{report.blobs / report.seconds:.0f} blobs/s; problems {len(report.problems)}"
            )
        print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}")
        catalog.close()


if __name__ == "__main__":
    main()
