"""Memory and API responsiveness while a server indexes large Korean texts.

    python -m bench.indexing_load                  # 400 texts of ~200 KB, 4 upload clients
    python -m bench.indexing_load --texts 100 --kb 50

Starts `crossdoc serve` (embedded default) on a fresh data dir, uploads the
texts over HTTP from 4 client threads while a fifth client calls `/healthz`
and a search in turn, and samples the resident memory of the server and of its
child processes (the analysis child, the extraction children). Prints:
- idle RSS (after start, before any upload) and peak RSS, of the server alone
  and of the server with its children (summed at each sample);
- p50/p99/max latency of `/healthz` and of search while indexing (from the first
  upload until the outbox is empty);
- the time until every document is indexed, and documents/s.

The texts are deterministic (seeded) and varied: government-style sentences with
dates, figures and names of ministries, in paragraphs of different lengths.
"""

from __future__ import annotations

import os
import random
import statistics
import threading
import time
from pathlib import Path

import httpx

from bench import korean
from bench.ingest import Bench
from bench.options import bench_parser

PAGE = os.sysconf("SC_PAGE_SIZE")
MINISTRIES = ("행정안전부", "보건복지부", "국토교통부", "교육부", "기획재정부", "환경부", "법무부")


def long_text(rng: random.Random, target_bytes: int) -> str:
    """A Korean report of about `target_bytes` UTF-8 bytes."""
    out: list[str] = []
    size = 0
    while size < target_bytes:
        sentences = [korean.sentence(rng, rng.randint(4, 14)) for _ in range(rng.randint(2, 9))]
        if rng.random() < 0.4:
            sentences.append(
                f"{rng.choice(MINISTRIES)}는 {rng.randint(2015, 2026)}년 {rng.randint(1, 12)}월 "
                f"{rng.randint(1, 28)}일 기준 {rng.randint(1, 99_999):,}건 중 "
                f"{rng.randint(1, 99)}.{rng.randint(0, 9)}%를 처리하였다."
            )
        paragraph = " ".join(sentences)
        out.append(paragraph)
        size += len(paragraph.encode()) + 2
    return "\n\n".join(out)


def _children(pid: int) -> list[int]:
    """Every descendant of `pid` (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry))
    found: list[int] = []
    todo = [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return 0


class MemorySampler(threading.Thread):
    """Samples the RSS of a process and of the process with its descendants."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.interval = interval
        self.peak_server = 0
        self.peak_total = 0
        self._done = threading.Event()

    def sample(self) -> tuple[int, int]:
        server = _rss(self.pid)
        total = server + sum(_rss(child) for child in _children(self.pid))
        return server, total

    def run(self) -> None:
        while not self._done.is_set():
            server, total = self.sample()
            self.peak_server = max(self.peak_server, server)
            self.peak_total = max(self.peak_total, total)
            time.sleep(self.interval)

    def stop(self) -> None:
        self._done.set()
        self.join()


class Prober(threading.Thread):
    """The fifth client: `/healthz` then a search, again and again, timing each."""

    def __init__(self, bench: Bench, seed: int) -> None:
        super().__init__(daemon=True)
        self.bench = bench
        self.rng = random.Random(seed)
        self.health: list[float] = []
        self.search: list[float] = []
        self._done = threading.Event()

    def run(self) -> None:
        with self.bench.client() as c:
            while not self._done.is_set():
                start = time.perf_counter()
                c.get(self.bench.base + "/healthz").raise_for_status()
                self.health.append(time.perf_counter() - start)
                start = time.perf_counter()
                c.get("/search", params={"q": korean.query(self.rng)}).raise_for_status()
                self.search.append(time.perf_counter() - start)
                time.sleep(0.05)

    def stop(self) -> None:
        self._done.set()
        self.join()


def percentiles(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: no samples"
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (
        f"{label}: n={len(values)} p50={statistics.median(ordered) * 1000:.0f}ms "
        f"p99={p99 * 1000:.0f}ms max={ordered[-1] * 1000:.0f}ms"
    )


def mib(value: int) -> str:
    return f"{value / 2**20:.0f} MiB"


def main() -> None:
    parser = bench_parser(__doc__, port=8771)
    parser.add_argument("--texts", type=int, default=400)
    parser.add_argument("--kb", type=int, default=200, help="size of each text, in KB")
    parser.add_argument("--clients", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(7)
    texts = [
        (f"보고서{i:04d}.txt", long_text(rng, args.kb * 1000).encode()) for i in range(args.texts)
    ]
    # A run on a loaded machine can outlast the default 15-minute access token.
    os.environ.setdefault("CROSSDOC_ACCESS_TOKEN_MINUTES", "240")
    bench = Bench(args.port)
    try:
        sampler = MemorySampler(bench.server.pid)
        time.sleep(2)  # let the server settle (the worker's first pass)
        with httpx.Client(base_url=bench.base) as c:
            for _ in range(5):
                c.get("/healthz")
        idle_server, idle_total = sampler.sample()
        sampler.start()
        prober = Prober(bench, seed=3)
        prober.start()
        uploaded, total = bench.upload_many(texts, threads=args.clients)
        prober.stop()
        sampler.stop()
    finally:
        bench.close()
    print(
        f"indexing_load korean_text_{args.kb}KB: n={args.texts} clients={args.clients} "
        f"upload={uploaded:.1f}s indexed_after={total:.1f}s "
        f"end_to_end={args.texts / total:.1f} docs/s"
    )
    print(f"rss idle: server={mib(idle_server)} with_children={mib(idle_total)}")
    print(f"rss peak: server={mib(sampler.peak_server)} with_children={mib(sampler.peak_total)}")
    print(percentiles("healthz during indexing", prober.health))
    print(percentiles("search during indexing", prober.search))


if __name__ == "__main__":
    main()
