"""`crossdoc serve` as a real process, to be SIGKILLed; and the processes it leaves behind.

Each server is started with a marker in its environment, which every child it
starts inherits (the extraction children get a copy of the environment too),
so that a scan of /proc finds whatever belongs to it, even re-parented to PID 1.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from crossdoc.settings import Settings
from crossdoc.wiring.api import build_services
from services.bootstrap import bootstrap
from tests.conftest import ADMIN_PASSWORD, PASSWORD, fast_passwords, free_port

UPLOADER = "crash.kim"
DEPARTMENT = "MOIS-CRASH"


def prepare_data_dir(data: Path) -> None:
    """An empty Crossdoc with `admin` and one uploader (`UPLOADER`, password `PASSWORD`)."""
    services = build_services(Settings(data_dir=data), passwords=fast_passwords())
    try:
        bootstrap(
            services.catalog, services.passwords.hash, admin_password=ADMIN_PASSWORD, demo=False
        )
        services.catalog.organisation.create_ministry("MOIS", "행정안전부")
        services.catalog.organisation.create_department(DEPARTMENT, "장애시험과", "MOIS")
        services.catalog.organisation.create_user(
            UPLOADER, services.passwords.hash(PASSWORD), "김충돌", DEPARTMENT, ["member"]
        )
    finally:
        services.close()


def _children_by_parent() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            status = Path(f"/proc/{entry}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("PPid:"):
                children.setdefault(int(line.split()[1]), []).append(int(entry))
                break
    return children


def descendants(pid: int) -> set[int]:
    """Every process below `pid` now."""
    tree = _children_by_parent()
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def _start_time(pid: int) -> str | None:
    """The process's start time, None unless it is running (a zombie has exited)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None
    return fields[19].decode()


def _alive(pid: int) -> bool:
    return _start_time(pid) is not None


def marked_processes(marker: str) -> set[int]:
    """Running processes with `marker` in their environment (not this one)."""
    needle = f"CROSSDOC_TEST_MARKER={marker}".encode()
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and _alive(int(entry)):
            found.add(int(entry))
    return found


def _describe(pids: set[int]) -> list[str]:
    out = []
    for pid in sorted(pids):
        with contextlib.suppress(OSError):
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
            out.append(f"{pid}: {cmd[:200].decode(errors='replace')}")
    return out


class ServeProcess:
    """`crossdoc serve` on `data_dir`, started and ready when the constructor returns."""

    def __init__(self, data_dir: Path, *, start_timeout: float = 90.0) -> None:
        self.marker = uuid.uuid4().hex
        port = free_port()
        self.base = f"http://127.0.0.1:{port}"
        env = dict(
            os.environ,
            CROSSDOC_DATA_DIR=str(data_dir),
            CROSSDOC_DEMO="false",
            CROSSDOC_ADMIN_PASSWORD=ADMIN_PASSWORD,
            CROSSDOC_RATE_LIMITS="false",
            CROSSDOC_TEST_MARKER=self.marker,
        )
        self.log = data_dir.parent / f"serve-{self.marker[:8]}.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "crossdoc", "serve", "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.started = time.monotonic()
        deadline = self.started + start_timeout
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.base}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.kill()
                raise AssertionError(f"the server did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        self.ready = time.monotonic()
        r = httpx.post(
            f"{self.base}/api/v1/auth/token",
            data={"username": UPLOADER, "password": PASSWORD},
            timeout=30,
        )
        r.raise_for_status()
        self.token = str(r.json()["access_token"])

    def client(self, timeout: float = 30) -> httpx.Client:
        return httpx.Client(
            base_url=self.base + "/api/v1",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=timeout,
        )

    def kill(self) -> dict[int, str]:
        """SIGKILL the server alone (never its children); returns the processes it had
        (pid: start time)."""
        had = {p: t for p in descendants(self.process.pid) if (t := _start_time(p))}
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        return had

    def stop(self) -> None:
        """A clean stop (SIGTERM), as an operator would."""
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(30)

    def survivors(self, had: dict[int, str], within: float = 5.0) -> list[str]:
        """The processes of this server still running `within` seconds after it died."""
        deadline = time.monotonic() + within
        while True:
            left = {p for p, t in had.items() if _start_time(p) == t}
            left |= marked_processes(self.marker)
            if not left or time.monotonic() > deadline:
                return _describe(left)
            time.sleep(0.1)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
