"""Suggestion latency (`GET /api/v1/suggest`) through HTTP with the access filter.

    python -m bench.suggest_latency --docs 100000
    python -m bench.suggest_latency --docs 100000 --reuse   # a data dir built before
    python -m bench.suggest_latency --docs 100000 --reuse --rounds 3 \
        --tree before=/tmp/previous-checkout --tree after=.   # side by side, alternated

Builds (or reuses) the same generated data dir as `bench.search_latency` (N
catalog rows and index entries, a generated organisation), starts `crossdoc
serve`, signs in as 50 different users and sends what a search box sends as
someone types: a word's first syllable, first two syllables, the two with the
last one still missing its final consonant (`행정아`), and the word's initial
consonants (`ㅎㅈ`). Prints p50/p90/p99 per kind and overall, the server's CPU
per request (all its threads: the work per request, which a machine shared
with other jobs inflates far less than latency) and the machine's load.

Each `--tree` is a checkout whose code the server runs; with several, they take
turns round by round (`--rounds`) on the same data dir and the same typed
prefixes, so that code before and after a change meet the same noise, and a
summary gives the median of each figure over the rounds.
"""

from __future__ import annotations

import random
import statistics
import time
from pathlib import Path

import httpx

from bench import korean
from bench.search_latency import PASSWORD, dataset_parser, percentile, prepared_dataset
from bench.server import BenchServer, machine_load
from indexer.analysis.jamo import initials

#: Words typed before measuring: the first requests warm the caches.
WARM_WORDS = 50


def typed_prefixes(word: str) -> dict[str, str]:
    """What a user types on the way to `word`, by kind."""
    out = {"syllable": word[:1], "two": word[:2], "initials": initials(word[:3])}
    last = word[1:2]
    if last and "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28:
        # The second syllable without its final consonant: typed halfway.
        out["mid_syllable"] = word[:1] + chr(ord(last) - (ord(last) - 0xAC00) % 28)
    return {k: v for k, v in out.items() if v}


def run(
    data_dir: Path, users: list[str], port: int, seed: int, queries: int, tree: Path | None
) -> tuple[dict[str, list[float]], float, list[int]]:
    """One server's turn: (latencies in ms by kind, server CPU ms per request,
    suggestions per request)."""
    # Absolute: a server of another checkout runs in that directory.
    server = BenchServer(data_dir.resolve(), port, rate_limits=False, tree=tree)
    try:
        rng = random.Random(seed)
        tokens = [server.sign_in(user, PASSWORD) for user in rng.sample(users, 50)]
        by_kind: dict[str, list[float]] = {}
        found: list[int] = []
        cpu_start = 0.0
        with httpx.Client(base_url=server.base, timeout=60) as client:
            for n in range(queries + WARM_WORDS):
                if n == WARM_WORDS:
                    cpu_start = server.cpu_seconds()
                word = korean.query(rng).split()[0]
                token = rng.choice(tokens)
                for kind, prefix in typed_prefixes(word).items():
                    start = time.perf_counter()
                    r = client.get(
                        "/api/v1/suggest",
                        params={"q": prefix},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    elapsed = (time.perf_counter() - start) * 1000
                    r.raise_for_status()
                    if n >= WARM_WORDS:
                        by_kind.setdefault(kind, []).append(elapsed)
                        found.append(len(r.json()["suggestions"]))
        requests = sum(len(v) for v in by_kind.values())
        cpu_ms = (server.cpu_seconds() - cpu_start) * 1000 / requests
        return by_kind, cpu_ms, found
    finally:
        server.close()


def main() -> None:
    parser = dataset_parser(__doc__, queries=1000, port=8766, seed=7)
    parser.add_argument(
        "--tree", action="append", help="LABEL=PATH of a checkout to run (repeatable)"
    )
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    data_dir, users = prepared_dataset(args)
    trees: list[tuple[str, Path | None]] = [("this", None)]
    if args.tree:
        trees = [
            (label, Path(p).resolve()) for label, _, p in (t.partition("=") for t in args.tree)
        ]
    summary: dict[str, list[tuple[float, float, float, float]]] = {}
    for round_no in range(1, args.rounds + 1):
        for label, tree in trees:
            load = machine_load()
            # The same prefixes for every tree in a round, other ones next round.
            by_kind, cpu_ms, found = run(
                data_dir, users, args.port, args.seed + round_no - 1, args.queries, tree
            )
            everything = [v for values in by_kind.values() for v in values]
            head = f"round={round_no} code={label} docs={args.docs}"
            for kind, values in [*by_kind.items(), ("all", everything)]:
                print(
                    f"{head} suggest {kind:<12} n={len(values)} "
                    f"p50={percentile(values, 50):.1f}ms p90={percentile(values, 90):.1f}ms "
                    f"p99={percentile(values, 99):.1f}ms max={max(values):.1f}ms "
                    f"mean={statistics.mean(values):.1f}ms"
                )
            print(
                f"{head} server cpu per request: {cpu_ms:.2f}ms; median suggestions per "
                f"request: {statistics.median(found):.0f}; "
                f"{load}..{machine_load().partition('=')[2]}",
                flush=True,
            )
            summary.setdefault(label, []).append(
                (
                    percentile(everything, 50),
                    percentile(everything, 99),
                    max(everything),
                    cpu_ms,
                )
            )
    if args.rounds > 1 or len(trees) > 1:
        for label, rows in summary.items():
            p50, p99, worst, cpu = (statistics.median(column) for column in zip(*rows, strict=True))
            print(
                f"summary code={label} rounds={len(rows)} median of: p50={p50:.1f}ms "
                f"p99={p99:.1f}ms max={worst:.1f}ms cpu={cpu:.2f}ms/request; p99 per round: "
                + " ".join(f"{r[1]:.1f}" for r in rows)
            )


if __name__ == "__main__":
    main()
