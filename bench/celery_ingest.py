"""Ingest through HTTP, indexed by the in-process worker vs by a `crossdoc worker` (Celery).

    source .cache/engines/env.sh        # CROSSDOC_TEST_REDIS_URL (infra/dev/engines up redis)
    python -m bench.celery_ingest --texts 2000 --docx 300 --rounds 2

Each round starts `crossdoc serve` on a fresh data dir twice, alternated: once on the
embedded default (the server indexes in-process), once with `CROSSDOC_BROKER_URL`
and one `crossdoc worker` beside it (the server indexes nothing). It uploads 1 KB
Korean texts, then small DOCX files, from 4 client threads, and prints the upload
rate (202s per second) and the end-to-end rate (first upload → outbox empty), and
the ratio of the Celery figure to the in-process one. The embedded Tantivy index
takes one writing process, so this is one worker (2 workers need the OpenSearch
index). Redis's database is emptied before each Celery run.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time

import redis

from bench import korean
from bench.ingest import Bench, make_docx
from bench.options import bench_parser


def run(mode: str, args: argparse.Namespace, rng: random.Random) -> dict[str, float]:
    """One measurement: end-to-end docs/s for texts and for DOCX, in `mode`."""
    broker = os.environ["CROSSDOC_TEST_REDIS_URL"]
    worker = None
    if mode == "celery":
        redis.Redis.from_url(broker).flushdb()
        os.environ["CROSSDOC_BROKER_URL"] = broker
    else:
        os.environ.pop("CROSSDOC_BROKER_URL", None)
    bench = Bench(args.port)
    try:
        if mode == "celery":
            worker = subprocess.Popen(
                [sys.executable, "-m", "crossdoc", "worker"],
                env=dict(os.environ, CROSSDOC_DATA_DIR=str(bench.data_dir), CROSSDOC_DEMO="false"),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(5)  # its start (mecab, the extraction child); the outbox waits anyway
        figures = {}
        for label, files in (
            (
                "korean_text_1KB",
                [
                    (f"문서{i}.txt", korean.document_text(rng, 1024).encode())
                    for i in range(args.texts)
                ],
            ),
            (
                "docx",
                [
                    (f"보고서{i}.docx", make_docx(korean.document_text(rng, 3000)))
                    for i in range(args.docx)
                ],
            ),
        ):
            uploaded, total = bench.upload_many(files)
            figures[label] = len(files) / total
            print(
                f"mode={mode} {label} n={len(files)} upload={len(files) / uploaded:.0f} docs/s "
                f"end_to_end={len(files) / total:.0f} docs/s ({total:.1f} s)",
                flush=True,
            )
        return figures
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(60)
        bench.close()
        os.environ.pop("CROSSDOC_BROKER_URL", None)


def main() -> None:
    parser = bench_parser(__doc__, port=8768)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--docx", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    if not os.environ.get("CROSSDOC_TEST_REDIS_URL"):
        raise SystemExit("set CROSSDOC_TEST_REDIS_URL (infra/dev/engines up redis)")
    rng = random.Random(12)
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for mode in ("in-process", "celery"):
            for label, rate in run(mode, args, rng).items():
                results.setdefault((mode, label), []).append(rate)
    for label in ("korean_text_1KB", "docx"):
        inproc = statistics.median(results[("in-process", label)])
        celery = statistics.median(results[("celery", label)])
        print(
            f"summary {label}: end-to-end in-process {inproc:.0f} docs/s, celery (1 worker) "
            f"{celery:.0f} docs/s, ratio {celery / inproc:.2f} (medians of {args.rounds})"
        )


if __name__ == "__main__":
    main()
