"""Ingest through HTTP, indexed by the in-process worker vs by `crossdoc worker`s (Celery).

    source .cache/engines/env.sh        # infra/dev/engines up redis opensearch
    python -m bench.celery_ingest --texts 2000 --docx 300 --rounds 2
    python -m bench.celery_ingest --modes in-process,in-process-opensearch,celery-1,celery-2

Each round starts `crossdoc serve` on a fresh data dir once per mode, alternated,
and uploads the same files in each: 1 KB Korean texts, then small DOCX files,
from 4 client threads. It prints the upload rate (202s per second), the
end-to-end rate (first upload → outbox empty) and the machine's load, then the
ratio of each mode's figure to the in-process one. Modes:

- `in-process`: the embedded default (Tantivy; the server indexes in-process);
- `in-process-opensearch`: the server indexes in-process into OpenSearch;
- `celery-N`: `CROSSDOC_BROKER_URL` and N `crossdoc worker` processes beside the
  server (which indexes nothing), into OpenSearch (`celery-1-embedded`: one
  worker into the embedded index, which takes one writing process).

OpenSearch modes need `CROSSDOC_TEST_ELASTICSEARCH_URL` (a fresh alias per run,
deleted after it), Celery ones `CROSSDOC_TEST_REDIS_URL` (emptied before each run).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
import uuid

import redis

from bench import korean
from bench.ingest import Bench, make_docx
from bench.options import bench_parser
from bench.server import machine_load

MODES = ("in-process", "in-process-opensearch", "celery-1", "celery-2", "celery-1-embedded")

Files = list[tuple[str, bytes]]


def _mode_env(mode: str) -> dict[str, str]:
    env: dict[str, str] = {}
    if "opensearch" in mode or (mode.startswith("celery") and not mode.endswith("embedded")):
        env["CROSSDOC_SEARCH_URL"] = os.environ["CROSSDOC_TEST_ELASTICSEARCH_URL"]
        env["CROSSDOC_SEARCH_INDEX"] = f"crossdoc-bench-ingest-{uuid.uuid4().hex[:12]}"
    if mode.startswith("celery"):
        broker = os.environ["CROSSDOC_TEST_REDIS_URL"]
        redis.Redis.from_url(broker).flushdb()
        env["CROSSDOC_BROKER_URL"] = broker
    return env


def _drop_index(env: dict[str, str]) -> None:
    """Delete the run's OpenSearch index (the concrete indices behind its alias)."""
    if "CROSSDOC_SEARCH_INDEX" not in env:
        return
    from indexer.index.elasticsearch import _connect, _EngineError

    client = _connect(env["CROSSDOC_SEARCH_URL"], 30)
    try:
        for name in client.request("GET", f"/_alias/{env['CROSSDOC_SEARCH_INDEX']}"):
            client.request("DELETE", f"/{name}")
    except _EngineError as err:
        print(f"could not delete the run's index: {err}", file=sys.stderr)
    finally:
        client.close()


def run(mode: str, args: argparse.Namespace, sets: dict[str, Files]) -> dict[str, float]:
    """One measurement: end-to-end docs/s for texts and for DOCX, in `mode`."""
    env = _mode_env(mode)
    workers: list[subprocess.Popen[bytes]] = []
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the server (Bench) inherits them
    bench = Bench(args.port)
    try:
        if mode.startswith("celery"):
            count = int(mode.split("-")[1])
            workers = [
                subprocess.Popen(
                    [sys.executable, "-m", "crossdoc", "worker"],
                    env=dict(
                        os.environ,
                        CROSSDOC_DATA_DIR=str(bench.data_dir),
                        CROSSDOC_DEMO="false",
                    ),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
                for _ in range(count)
            ]
            time.sleep(5 * count)  # their start (mecab, the extraction child)
        figures = {}
        for label, files in sets.items():
            load = machine_load()
            uploaded, total = bench.upload_many(files)
            figures[label] = len(files) / total
            print(
                f"mode={mode} {label} n={len(files)} upload={len(files) / uploaded:.0f} docs/s "
                f"end_to_end={len(files) / total:.0f} docs/s ({total:.1f} s) "
                f"{load}..{machine_load().partition('=')[2]}",
                flush=True,
            )
        return figures
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(60)
        bench.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _drop_index(env)


def main() -> None:
    parser = bench_parser(__doc__, port=8768)
    parser.add_argument("--texts", type=int, default=2000)
    parser.add_argument("--docx", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--modes", default="in-process,celery-1-embedded")
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    if unknown := set(modes) - set(MODES):
        raise SystemExit(f"unknown modes {sorted(unknown)}: choose among {', '.join(MODES)}")
    if any(m.startswith("celery") for m in modes) and not os.environ.get("CROSSDOC_TEST_REDIS_URL"):
        raise SystemExit("set CROSSDOC_TEST_REDIS_URL (infra/dev/engines up redis)")
    if any("embedded" not in m and m != "in-process" for m in modes) and not os.environ.get(
        "CROSSDOC_TEST_ELASTICSEARCH_URL"
    ):
        raise SystemExit("set CROSSDOC_TEST_ELASTICSEARCH_URL (infra/dev/engines up opensearch)")
    rng = random.Random(12)
    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        # The same files for every mode of a round.
        sets = {
            "korean_text_1KB": [
                (f"문서{i}.txt", korean.document_text(rng, 1024).encode())
                for i in range(args.texts)
            ],
            "docx": [
                (f"보고서{i}.docx", make_docx(korean.document_text(rng, 3000)))
                for i in range(args.docx)
            ],
        }
        for mode in modes:
            for label, rate in run(mode, args, sets).items():
                results.setdefault((mode, label), []).append(rate)
    base = modes[0]
    for label in ("korean_text_1KB", "docx"):
        reference = statistics.median(results[(base, label)])
        parts = []
        for mode in modes:
            rate = statistics.median(results[(mode, label)])
            parts.append(f"{mode} {rate:.0f} docs/s (x{rate / reference:.2f})")
        print(
            f"summary {label} end-to-end, ratio to {base} (medians of {args.rounds}): "
            + ", ".join(parts)
        )


if __name__ == "__main__":
    main()
