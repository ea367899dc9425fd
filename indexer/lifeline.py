"""Child processes that never outlive their parent.

A server killed with SIGKILL gets no chance to stop its children; they would
live on, re-parented to PID 1. Two rules end them:

- the child asks the kernel for SIGKILL when its parent dies
  (`die_with_parent`: `prctl(PR_SET_PDEATHSIG)`, Linux), which ends it even
  while a native parser holds the GIL;
- the child exits when its stdin (a pipe from the parent) reaches EOF, which
  also covers the moment before `prctl` ran and other platforms.

The kernel's "parent" for `PR_SET_PDEATHSIG` is the *thread* that forked the
child, not the process: a child started from a short-lived thread would be
killed when that thread ends. `spawn` therefore starts every child from one
thread that lives as long as the process.
"""

from __future__ import annotations

import ctypes
import os
import queue
import signal
import subprocess
import sys
import threading
from concurrent.futures import Future
from typing import Any

#: prctl(2) option: the signal to receive when the parent (thread) dies.
_PR_SET_PDEATHSIG = 1


def die_with_parent() -> bool:
    """In a child: be SIGKILLed when the parent dies. False where the platform cannot."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


class _Spawner:
    """One long-lived daemon thread that starts child processes for every caller."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: queue.SimpleQueue[
            tuple[Future[subprocess.Popen[bytes]], list[str], dict[str, Any]]
        ] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = 0

    def popen(self, command: list[str], **options: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._thread is None or self._pid != os.getpid() or not self._thread.is_alive():
                # (Again after a fork: the thread does not exist in the forked process.)
                self._requests = queue.SimpleQueue()
                self._pid = os.getpid()
                self._thread = threading.Thread(
                    target=self._run, args=(self._requests,), name="crossdoc-spawner", daemon=True
                )
                self._thread.start()
            requests = self._requests
        started: Future[subprocess.Popen[bytes]] = Future()
        requests.put((started, command, options))
        return started.result()

    @staticmethod
    def _run(
        requests: queue.SimpleQueue[
            tuple[Future[subprocess.Popen[bytes]], list[str], dict[str, Any]]
        ],
    ) -> None:
        while True:
            started, command, options = requests.get()
            try:
                # Our own interpreter and bootstrap (callers never pass user input).
                started.set_result(subprocess.Popen(command, **options))  # noqa: S603
            except BaseException as err:  # noqa: BLE001 - handed to the caller
                started.set_exception(err)


_SPAWNER = _Spawner()


def spawn(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """`subprocess.Popen(command, **options)`, started from the process's lasting thread.

    For children that call `die_with_parent`: they then die with this process,
    not with the thread that happened to need them.
    """
    return _SPAWNER.popen(command, **options)
