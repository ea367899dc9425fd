"""Resident memory of `crossdoc serve --workers N`, process by process, once its API
processes have answered `/readyz` (what a load balancer asks every few seconds).

    python -m bench.serve_memory --workers 2 --readyz 20

Starts the server on a fresh data dir (embedded engines, no demo organisation),
waits until it is ready, asks `/readyz` `--readyz` more times (each on a new
connection: they spread over the API processes, which share one accept queue),
waits `--settle` seconds, then prints each process of the tree with its resident
memory (VmRSS): the supervisor, each child (`api-N`, `indexer-1`) and whatever
each child started below it (extraction or analysis children), and the total.
Only the indexing process extracts text: an API process with a child below it
holds memory it never uses.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.options import bench_parser

STARTED = re.compile(r"started (\w+-\d+) \(pid (\d+)\)")


def rss_mib(pid: int) -> float:
    """The process's resident memory in MiB (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def children_of() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_bytes()
            parent = int(stat[stat.rfind(b")") + 2 :].split()[1])
            tree.setdefault(parent, []).append(int(entry.name))
    return tree


def below(pid: int, tree: dict[int, list[int]]) -> list[int]:
    found: list[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(tree.get(child, []))
    return found


def command_name(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    words = [w.decode(errors="replace") for w in raw if w]
    return " ".join(words)[:70]


def main() -> None:
    parser = bench_parser(__doc__, port=8771)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--readyz", type=int, default=20)
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crossdoc-serve-memory-") as tmp:
        data = Path(tmp) / "data"
        log_path = Path(tmp) / "serve.log"
        env = dict(
            os.environ,
            CROSSDOC_DATA_DIR=str(data),
            CROSSDOC_DEMO="false",
            CROSSDOC_ADMIN_PASSWORD="bench-admin-password-0123",
        )
        env.pop("CROSSDOC_BROKER_URL", None)
        base = f"http://127.0.0.1:{args.port}"
        with log_path.open("wb") as log:
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "crossdoc",
                    "serve",
                    "--workers",
                    str(args.workers),
                    "--port",
                    str(args.port),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + 180
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/readyz", timeout=30).status_code == 200:
                        break
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit(f"not ready: {log_path.read_text()[-2000:]}")
                time.sleep(0.3)
            answers = [
                httpx.get(f"{base}/readyz", timeout=60).status_code for _ in range(args.readyz)
            ]
            time.sleep(args.settle)
            labels = {int(pid): label for label, pid in STARTED.findall(log_path.read_text())}
            tree = children_of()
            total = rss_mib(server.pid)
            print(
                f"crossdoc serve --workers {args.workers}; /readyz {len(answers) + 1} times "
                f"({answers.count(200) + 1} answered 200)"
            )
            print(f"  supervisor   pid {server.pid:<8} {rss_mib(server.pid):7.1f} MiB")
            for pid in sorted(tree.get(server.pid, []), key=lambda p: labels.get(p, "~")):
                label = labels.get(pid) or command_name(pid)[:40]
                own = rss_mib(pid)
                total += own
                print(f"  {label:<12} pid {pid:<8} {own:7.1f} MiB")
                for child in below(pid, tree):
                    mib = rss_mib(child)
                    total += mib
                    print(f"    └ pid {child:<8} {mib:7.1f} MiB  {command_name(child)}")
            print(f"  total {total:.1f} MiB")
        finally:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(90)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    main()
