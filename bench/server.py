"""`crossdoc serve` in a child process, for the benchmarks that measure through HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ADMIN_PASSWORD = "bench-admin-password"


class BenchServer:
    """A server on `data_dir` (no demo organisation; admin password `ADMIN_PASSWORD`),
    started and ready (`/readyz` answers 200) when the constructor returns.

    `tree`, if given, is the checkout whose code the server runs (default: this one).
    """

    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        rate_limits: bool = True,
        start_timeout: float = 120.0,
        tree: Path | None = None,
        workers: int = 1,
        env: dict[str, str] | None = None,
    ) -> None:
        self.base = f"http://127.0.0.1:{port}"
        environment = dict(
            os.environ,
            CROSSDOC_DATA_DIR=str(data_dir),
            CROSSDOC_DEMO="false",
            CROSSDOC_ADMIN_PASSWORD=ADMIN_PASSWORD,
            **(env or {}),  # e.g. CROSSDOC_SEARCH_URL: another engine
        )
        if not rate_limits:
            environment["CROSSDOC_RATE_LIMITS"] = "false"
        if tree is not None:
            # Another checkout's code (e.g. the previous commit, for a side-by-side
            # measurement): `python -m` imports from the working directory first.
            environment["PYTHONPATH"] = str(tree)
        # `--workers N` above 1: N API processes and one indexer under a supervisor.
        extra = ["--workers", str(workers)] if workers > 1 else []
        self.process = subprocess.Popen(
            [sys.executable, "-m", "crossdoc", "serve", "--port", str(port), *extra],
            cwd=tree,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + start_timeout
        while True:
            try:
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.close()
                raise SystemExit("server did not start")
            time.sleep(0.2)

    @property
    def pid(self) -> int:
        return self.process.pid

    def cpu_seconds(self) -> float:
        """CPU time the server process has used so far (all its threads, user + system):
        the work per request, which a machine shared with other jobs inflates far
        less than latency."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def children_cpu_seconds(self) -> float:
        """CPU time of the server's child processes (extraction, Korean analysis):
        those running now, and those already gone (waited for by the server)."""
        ticks = 0
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        ticks += int(fields[13]) + int(fields[14])  # children it has waited for
        for task in Path(f"/proc/{self.pid}/task").iterdir():
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue  # the thread ended meanwhile
            for child in children:
                try:
                    stat = Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()
                except OSError:
                    continue
                ticks += sum(int(stat[i]) for i in (11, 12, 13, 14))
        return ticks / os.sysconf("SC_CLK_TCK")

    def tree_cpu_seconds(self) -> float:
        """CPU time of the server and every process running below it now (the API
        processes and the indexer of `--workers N`), user + system."""
        total = 0
        todo = [self.pid]
        while todo:
            pid = todo.pop()
            try:
                stat = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            total += int(stat[11]) + int(stat[12])
            for task in Path(f"/proc/{pid}/task").iterdir():
                try:
                    todo.extend(int(c) for c in (task / "children").read_text().split())
                except OSError:
                    continue
        return total / os.sysconf("SC_CLK_TCK")

    def sign_in(self, username: str, password: str) -> str:
        """An access token for the user."""
        r = httpx.post(
            f"{self.base}/api/v1/auth/token",
            data={"username": username, "password": password},
            timeout=30,
        )
        r.raise_for_status()
        return str(r.json()["access_token"])

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(60)


def machine_load() -> str:
    """The 1-minute load average and the cores (`uptime`'s figure): printed beside each
    figure, since the machine may be shared; only ratios from one run compare."""
    one_minute = Path("/proc/loadavg").read_text().split()[0]
    return f"load={one_minute}/{os.cpu_count()}cores"
