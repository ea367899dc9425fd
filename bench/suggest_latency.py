"""Suggestion latency (`GET /api/v1/suggest`) through HTTP with the access filter.

    python -m bench.suggest_latency --docs 100000
    python -m bench.suggest_latency --docs 100000 --reuse   # a data dir built before

Builds (or reuses) the same generated data dir as `bench.search_latency` (N
catalog rows and index entries, a generated organisation), starts `crossdoc
serve`, signs in as 50 different users and sends what a search box sends as
someone types: a word's first syllable, first two syllables, the two with the
last one still missing its final consonant (`행정아`), and the word's initial
consonants (`ㅎㅈ`). Prints p50/p90/p99 per kind and overall.
"""

from __future__ import annotations

import random
import statistics
import time

import httpx

from bench import korean
from bench.search_latency import PASSWORD, dataset_parser, percentile, prepared_dataset
from bench.server import BenchServer
from indexer.analysis.jamo import initials


def typed_prefixes(word: str) -> dict[str, str]:
    """What a user types on the way to `word`, by kind."""
    out = {"syllable": word[:1], "two": word[:2], "initials": initials(word[:3])}
    last = word[1:2]
    if last and "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28:
        # The second syllable without its final consonant: typed halfway.
        out["mid_syllable"] = word[:1] + chr(ord(last) - (ord(last) - 0xAC00) % 28)
    return {k: v for k, v in out.items() if v}


def main() -> None:
    parser = dataset_parser(__doc__, queries=1000, port=8766, seed=7)
    args = parser.parse_args()
    data_dir, users = prepared_dataset(args)

    server = BenchServer(data_dir, args.port, rate_limits=False)
    try:
        rng = random.Random(args.seed)
        tokens = [server.sign_in(user, PASSWORD) for user in rng.sample(users, 50)]
        by_kind: dict[str, list[float]] = {}
        found: list[int] = []
        cpu_start = 0.0
        with httpx.Client(base_url=server.base, timeout=60) as client:
            for n in range(args.queries + 50):
                if n == 50:
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
                    if n >= 50:  # the first words warm the caches
                        by_kind.setdefault(kind, []).append(elapsed)
                        found.append(len(r.json()["suggestions"]))
        everything = [v for values in by_kind.values() for v in values]
        cpu_ms = (server.cpu_seconds() - cpu_start) * 1000 / len(everything)
        for kind, values in [*by_kind.items(), ("all", everything)]:
            print(
                f"docs={args.docs} suggest {kind:<12} n={len(values)} "
                f"p50={percentile(values, 50):.1f}ms p90={percentile(values, 90):.1f}ms "
                f"p99={percentile(values, 99):.1f}ms max={max(values):.1f}ms "
                f"mean={statistics.mean(values):.1f}ms"
            )
        print(f"server cpu per request: {cpu_ms:.2f}ms")
        print(f"median suggestions per request: {statistics.median(found):.0f}")
    finally:
        server.close()


if __name__ == "__main__":
    main()
