"""Policy fan-out: how long until the index reflects a policy touching N documents,
and search latency with 50 policies in force.

    python -m bench.policy_fanout --docs 100000

Builds (or reuses, with --reuse) a data dir of generated documents as
`bench.search_latency` does (catalog rows and index entries, no blobs: the
access-only re-index never reads them), every document tagged `fanout`, and
starts `crossdoc serve` in a child process. Then, over HTTP:

1. measures search latency (p50/p99) with no policy, then creates 50 small
   policies, waits for the index, and measures it again;
2. creates one policy matching every document (granting a department) and
   measures the POST, the time until the index has caught up (no document
   behind its policy revision; every entry carries the policy's token), and
   search latency during catch-up for the grantee's members (who match by the
   policy's match meanwhile) and for everyone else;
3. deletes that policy: nothing to re-index, the next search no longer counts it.
"""

from __future__ import annotations

import random
import statistics
import threading
import time

import httpx
from sqlalchemy import delete, func, select

from bench import korean
from bench.search_latency import PASSWORD, dataset_parser, percentile, prepared_dataset, rss_kib
from bench.server import ADMIN_PASSWORD, BenchServer
from storage.catalog import models as m
from storage.catalog.sql import SqlCatalog

FANOUT_TAG = "fanout"


def behind(catalog: SqlCatalog) -> int:
    """Documents whose index entry is older than their last policy change."""
    with catalog.engine.connect() as conn:
        return int(
            conn.scalar(
                select(func.count())
                .select_from(m.Document)
                .where(m.Document.indexed_revision < m.Document.policy_revision)
            )
            or 0
        )


def wait_caught_up(catalog: SqlCatalog, timeout: float) -> float:
    """Seconds until no document is behind (polled every 0.2 s)."""
    start = time.perf_counter()
    while behind(catalog):
        if time.perf_counter() - start > timeout:
            raise SystemExit(f"the index did not catch up within {timeout:.0f}s")
        time.sleep(0.2)
    return time.perf_counter() - start


def timed_search(client: httpx.Client, token: str, rng: random.Random) -> tuple[float, int]:
    start = time.perf_counter()
    r = client.get(
        "/api/v1/search",
        params={"q": korean.query(rng)},
        headers={"Authorization": f"Bearer {token}"},
    )
    elapsed = (time.perf_counter() - start) * 1000
    r.raise_for_status()
    return elapsed, int(r.json()["total"])


def latency_line(label: str, values: list[float]) -> str:
    if not values:
        return f"{label}: no queries"
    return (
        f"{label}: n={len(values)} p50={percentile(values, 50):.1f}ms "
        f"p90={percentile(values, 90):.1f}ms p99={percentile(values, 99):.1f}ms "
        f"mean={statistics.mean(values):.1f}ms"
    )


def main() -> None:
    args = dataset_parser(__doc__, queries=500, port=8766, seed=11).parse_args()
    data_dir, users = prepared_dataset(args, "fanout", tags=(FANOUT_TAG,))
    catalog = SqlCatalog(f"sqlite:///{(data_dir / 'catalog.sqlite3').resolve()}")
    catalog.migrate()
    with catalog.engine.begin() as conn:  # a reused data dir starts without policies
        conn.execute(delete(m.Policy))
        conn.execute(delete(m.PolicyFanout))

    server = BenchServer(data_dir, args.port)
    base = server.base
    rng = random.Random(args.seed)
    try:
        admin = {"Authorization": f"Bearer {server.sign_in('admin', ADMIN_PASSWORD)}"}
        with catalog.engine.connect() as conn:
            departments = {
                u: str(d)
                for u, d in conn.execute(select(m.User.username, m.User.department_code))
                if u in set(users)
            }
        grantee_dept = departments[users[0]]
        grantees = [u for u in users if departments[u] == grantee_dept][:10]
        others = [u for u in rng.sample(users, 60) if departments[u] != grantee_dept][:40]
        tokens = {u: server.sign_in(u, PASSWORD) for u in grantees + others}
        client = httpx.Client(base_url=base, timeout=120)

        # 0. No policy in force (the baseline on this data, this machine, now).
        for _ in range(50):  # warm up
            timed_search(client, tokens[rng.choice(others)], rng)
        baseline = [
            timed_search(client, tokens[rng.choice(grantees + others)], rng)[0]
            for _ in range(args.queries)
        ]
        print(latency_line(f"search docs={args.docs} policies=0 clients=1", baseline), flush=True)

        # 1. 50 policies in force: departments' documents shared with users and ministries.
        all_depts = sorted(set(departments.values()))
        for i in range(50):
            principal = (
                f"user:{rng.choice(users)}" if i % 2 else f"ministry:{rng.choice(all_depts)[:3]}"
            )
            r = client.post(
                "/api/v1/admin/policies",
                headers=admin,
                json={
                    "name": f"bench policy {i}",
                    "match": {"department": rng.choice(all_depts)},
                    "grant": {"principal": principal, "permission": "read"},
                },
            )
            r.raise_for_status()
        settle = wait_caught_up(catalog, 3600)
        while catalog.policies.pending_ids():  # the worker notes the fan-outs done
            time.sleep(0.2)
        print(f"50 policies created; index caught up in {settle:.1f}s", flush=True)
        for _ in range(50):  # warm up
            timed_search(client, tokens[rng.choice(others)], rng)
        steady = [
            timed_search(client, tokens[rng.choice(grantees + others)], rng)[0]
            for _ in range(args.queries)
        ]
        rss, _ = rss_kib(server.pid)
        print(
            latency_line(f"search docs={args.docs} policies=50 clients=1", steady)
            + f" server_rss={rss / 1024:.0f}MiB",
            flush=True,
        )

        # 2. One policy over every document, granting the grantees' department.
        before_total = timed_search(client, tokens[grantees[0]], random.Random(1))[1]
        start = time.perf_counter()
        r = client.post(
            "/api/v1/admin/policies",
            headers=admin,
            json={
                "name": "bench fan-out",
                "match": {"tag": FANOUT_TAG},
                "grant": {"principal": f"dept:{grantee_dept}", "permission": "read"},
            },
        )
        r.raise_for_status()
        post_ms = (time.perf_counter() - start) * 1000
        affected = r.json()["affected_documents"]
        policy_id = r.json()["id"]
        during_grantee: list[float] = []
        during_other: list[float] = []
        first_total = timed_search(client, tokens[grantees[0]], random.Random(1))[1]
        stop = threading.Event()

        def probe() -> None:
            local = random.Random(5)
            with httpx.Client(base_url=base, timeout=120) as probe_client:
                while not stop.is_set():
                    user = local.choice(grantees + others)
                    ms, _ = timed_search(probe_client, tokens[user], local)
                    (during_grantee if user in grantees else during_other).append(ms)

        prober = threading.Thread(target=probe)
        prober.start()
        catch_up = wait_caught_up(catalog, 3600)
        stop.set()
        prober.join()
        after_total = timed_search(client, tokens[grantees[0]], random.Random(1))[1]
        print(
            f"fan-out create: affected={affected} post={post_ms:.0f}ms "
            f"caught_up={catch_up:.1f}s ({affected / catch_up:.0f} docs/s) "
            f"grantee_total before={before_total} next_search={first_total} after={after_total}",
            flush=True,
        )
        print(latency_line("  search during catch-up, grantee members", during_grantee))
        print(latency_line("  search during catch-up, everyone else", during_other), flush=True)

        # 3. Delete it again: its token stops counting, nothing is re-indexed.
        start = time.perf_counter()
        client.delete(f"/api/v1/admin/policies/{policy_id}", headers=admin).raise_for_status()
        delete_ms = (time.perf_counter() - start) * 1000
        next_total = timed_search(client, tokens[grantees[0]], random.Random(1))[1]
        print(
            f"fan-out delete: delete={delete_ms:.0f}ms re-indexed={behind(catalog)} "
            f"grantee_total next_search={next_total} (before the policy: {before_total})",
            flush=True,
        )
        client.close()
    finally:
        server.close()
        catalog.close()


if __name__ == "__main__":
    main()
