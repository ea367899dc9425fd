"""Search throughput through HTTP with `crossdoc serve --workers 1` and `--workers 2`,
side by side in one run, over the same data and queries (the access filter on).

    python -m bench.search_workers --docs 100000 --reuse --seconds 20 --rounds 3

Builds (or reuses) the data dir of `bench.search_latency` (N generated documents,
2,000 users), copies it once per server (each server its own catalog and index),
starts both servers, signs in 50 users on each, and then, round after round,
loads one server and then the other for `--seconds` with `--clients` closed-loop
clients (each sends its next search when the previous one is answered). The
rounds alternate, so a neighbour's load on a shared machine falls on both.

Prints, per server: searches/s, p50/p99 latency, the CPU the server's processes
spent per search, and searches/s per core (searches per CPU-second of the
server's processes: the figure a busy machine distorts least), then the ratio of
the two throughputs (the target: 2 processes ≥ 1.8× one, which needs two idle
cores: the load generator runs on the same machine, so the figure printed beside
`uptime` says how far the machine was from that).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx

from bench import korean, loadgen
from bench.search_latency import PASSWORD, dataset_parser, percentile, prepared_dataset
from bench.server import BenchServer


def load(
    base: str, tokens: list[str], seconds: float, clients: int, seed: int, client_kind: str
) -> tuple[list[float], float]:
    """`clients` closed-loop clients for `seconds`: their latencies (ms) and the time taken.

    `client_kind` "go" sends them from bench/loadgen (cheap per request), "python" from
    threads of this process (about a millisecond of CPU a request)."""
    latencies: list[float] = []
    errors: list[str] = []
    stop_at = time.perf_counter() + seconds

    def client(i: int) -> None:
        rng = random.Random(seed + i)
        with httpx.Client(base_url=base, timeout=60) as c:
            while time.perf_counter() < stop_at:
                params: dict[str, str] = {"q": korean.query(rng)}
                if rng.random() < 0.2:
                    params["sort"] = "newest"
                start = time.perf_counter()
                r = c.get(
                    "/api/v1/search",
                    params=params,
                    headers={"Authorization": f"Bearer {rng.choice(tokens)}"},
                )
                latencies.append((time.perf_counter() - start) * 1000)
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")

    if client_kind == "go":
        rng = random.Random(seed)
        paths = []
        for _ in range(2000):
            params = {"q": korean.query(rng)}
            if rng.random() < 0.2:
                params["sort"] = "newest"
            paths.append("/api/v1/search?" + urlencode(params))
        return loadgen.load(base, paths, tokens, seconds, clients, seed)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{len(errors)} searches failed, e.g. {errors[0]}")
    return latencies, time.perf_counter() - began


def main() -> None:
    parser = dataset_parser(__doc__, queries=0, port=8770, seed=7)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--client",
        choices=("go", "python"),
        default="go" if loadgen.available() else "python",
        help="load generator: go (bench/loadgen, default when Go is installed) or python",
    )
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--before",
        type=Path,
        default=None,
        help="another checkout (e.g. `git archive` of an older commit): its "
        "`--workers 1` is measured too, in the same rounds (per-request CPU before/after)",
    )
    args = parser.parse_args()
    # A SIGTERM (e.g. `timeout`) stops the servers too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    data_dir, users = prepared_dataset(args)

    servers: dict[str, BenchServer] = {}
    copies: list[Path] = []
    runs = [(f"workers={w}", w, None) for w in args.workers]
    if args.before is not None:
        runs.append(("before,workers=1", 1, args.before))
    try:
        for i, (label, workers, tree) in enumerate(runs):
            copy = data_dir.with_name(f"{data_dir.name}-run{i}").resolve()
            if copy.exists():
                shutil.rmtree(copy)
            shutil.copytree(data_dir, copy)
            copies.append(copy)
            # Rate limits off: this measures search, not the limits (one address).
            servers[label] = BenchServer(
                copy, args.port + i, rate_limits=False, workers=workers, tree=tree
            )
        rng = random.Random(args.seed)
        sample = rng.sample(users, 50)
        tokens = {w: [s.sign_in(u, PASSWORD) for u in sample] for w, s in servers.items()}
        for w, s in servers.items():  # warm caches
            load(s.base, tokens[w], 3, args.clients, args.seed, args.client)
        results: dict[str, dict[str, list[float]]] = {
            w: {"lat": [], "searches": [], "elapsed": [], "cpu": []} for w in servers
        }
        for r in range(args.rounds):
            for w, s in servers.items():
                cpu0 = s.tree_cpu_seconds()
                lat, elapsed = load(
                    s.base, tokens[w], args.seconds, args.clients, args.seed + r, args.client
                )
                res = results[w]
                res["cpu"].append(s.tree_cpu_seconds() - cpu0)
                res["lat"].extend(lat)
                res["searches"].append(len(lat))
                res["elapsed"].append(elapsed)
                print(
                    f"  round {r + 1} {w}: {len(lat) / elapsed:.0f}/s "
                    f"p50={percentile(lat, 50):.1f}ms  (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
        print(
            f"docs={args.docs} clients={args.clients} ({args.client}) "
            f"seconds={args.seconds}x{args.rounds} "
            f"cores={os.cpu_count()} load(1,5,15 min)="
            + ",".join(f"{x:.1f}" for x in os.getloadavg())
        )
        rate = {}
        for w, res in results.items():
            searches = sum(res["searches"])
            rate[w] = searches / sum(res["elapsed"])
            cpu_ms = sum(res["cpu"]) * 1000 / searches
            print(
                f"{w} searches={searches} throughput={rate[w]:.0f}/s "
                f"p50={percentile(res['lat'], 50):.1f}ms p99={percentile(res['lat'], 99):.1f}ms "
                f"mean={statistics.mean(res['lat']):.1f}ms server_cpu={cpu_ms:.2f}ms/search "
                f"per_core={1000 / cpu_ms:.0f} searches/s per core"
            )
        if "workers=1" in rate:
            for w in rate:
                if w != "workers=1":
                    print(f"ratio {w} / workers=1: {rate[w] / rate['workers=1']:.2f}x")
    finally:
        for s in servers.values():
            s.close()
        for copy in copies:
            shutil.rmtree(copy, ignore_errors=True)


if __name__ == "__main__":
    main()
