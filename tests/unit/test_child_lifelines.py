"""Children die with their parent, and only then (issue 9, defect 5)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from indexer.lifeline import spawn

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")

ROOT = Path(__file__).resolve().parents[2]
# A child that asks to die with its parent, then waits for stdin to close.
CHILD = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from indexer.lifeline import die_with_parent; die_with_parent(); "
    "print('ready', flush=True); sys.stdin.read()"
)


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return False
    return stat[stat.rfind(b")") + 2 :][:1] not in (b"Z", b"X")


def wait_gone(pid: int, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_child_outlives_the_thread_that_needed_it() -> None:
    # The kernel's "parent" for PR_SET_PDEATHSIG is the forking thread: a child
    # started from a short-lived thread must not die when that thread ends.
    started: list[subprocess.Popen[bytes]] = []

    def start() -> None:
        child = spawn(
            [sys.executable, "-c", CHILD, str(ROOT)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        started.append(child)

    thread = threading.Thread(target=start)
    thread.start()
    thread.join()
    (child,) = started
    time.sleep(0.5)
    try:
        assert child.poll() is None, "the child died with the thread that started it"
    finally:
        assert child.stdin is not None
        child.stdin.close()
        assert child.wait(10) == 0
        assert child.stdout is not None
        child.stdout.close()


# The extraction child's OCR runner starting a tool (here `sleep`), then waiting.
OCR_TOOL = """
import sys, time
sys.path.insert(0, sys.argv[1])
from indexer.extraction.ocr import OcrConfig, OcrRunner, _Run
from indexer.lifeline import die_with_parent
runner = OcrRunner(OcrConfig(memory_limit_bytes=0).resolved(), max_text_chars=100)
print("ready", flush=True)
runner._run_tool(["sleep", "60"], _Run(deadline=time.monotonic() + 60, max_chars=10), "sleep")
"""


def test_an_ocr_tool_dies_with_the_extraction_child() -> None:
    child = subprocess.Popen([sys.executable, "-c", OCR_TOOL, str(ROOT)], stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ready\n"
        deadline = time.monotonic() + 10
        tools: list[int] = []
        while not tools and time.monotonic() < deadline:
            tools = [
                int(p)
                for p in os.listdir("/proc")
                if p.isdigit()
                and Path(f"/proc/{p}/cmdline").exists()
                and _ppid(int(p)) == child.pid
            ]
            time.sleep(0.05)
        assert tools, "the tool did not start"
        (tool,) = tools
        # `setpriv` has exec'd the tool (or it is still about to): wait for `sleep`.
        while b"sleep" not in Path(f"/proc/{tool}/cmdline").read_bytes().split(b"\0")[0]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        assert child.stdout is not None
        child.stdout.close()
    assert wait_gone(tool), "the OCR tool outlived the extraction child"


def _ppid(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("PPid:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0
