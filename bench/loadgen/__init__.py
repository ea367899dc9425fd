"""Closed-loop HTTP load from a small Go program (bench/loadgen/main.go).

A Python client spends about a millisecond of CPU per request; on a two-core
machine that is a visible share of what the measured server could have had. The
Go client spends a small fraction of that, so throughput figures (`--workers 2`
against 1) say more about the server. Built once with the Go toolchain (standard
library only, nothing downloaded) into `.cache/bench/` (ignored by git).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE = Path(__file__).with_name("main.go")
BINARY = ROOT / ".cache" / "bench" / "loadgen"


def available() -> bool:
    """Whether the Go client can be used (built already, or Go is installed)."""
    return BINARY.exists() or shutil.which("go") is not None


def _binary() -> Path:
    if not BINARY.exists() or BINARY.stat().st_mtime < SOURCE.stat().st_mtime:
        go = shutil.which("go")
        if go is None:
            raise SystemExit("bench/loadgen: the Go toolchain is not installed")
        BINARY.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [go, "build", "-o", str(BINARY), str(SOURCE)],
            check=True,
            cwd=SOURCE.parent,
            # A single file with the standard library only: no module, no network.
            env={**os.environ, "GO111MODULE": "off", "GOFLAGS": "", "GOTOOLCHAIN": "local"},
        )
    return BINARY


def load(
    base: str, paths: list[str], tokens: list[str], seconds: float, clients: int, seed: int
) -> tuple[list[float], float]:
    """`clients` closed-loop Go clients for `seconds`: their latencies (ms) and the time
    taken. Each request is a random path of `paths` with a random bearer token."""
    plan = json.dumps({"paths": paths, "tokens": tokens})
    run = subprocess.run(
        [
            str(_binary()),
            "-base",
            base,
            "-seconds",
            str(seconds),
            "-clients",
            str(clients),
            "-seed",
            str(seed),
        ],
        input=plan,
        capture_output=True,
        text=True,
        check=False,
    )
    if run.returncode != 0:
        raise SystemExit(f"bench/loadgen failed: {run.stderr.strip()}")
    result = json.loads(run.stdout)
    if result["errors"]:
        raise SystemExit(f"{result['errors']} requests failed, e.g. {result['first_error']}")
    return list(result["latencies_ms"]), float(result["elapsed"])
