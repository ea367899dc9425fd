"""A small process supervisor: `crossdoc serve --workers N`.

The parent process holds the listening socket and does nothing else: it starts
its children (N API processes sharing that socket, one accept queue, so a child
that dies loses only the connections it had accepted; and, on the embedded
engines, the one indexing process), starts a child again when it dies (after a
pause that grows while a child keeps dying young), and on SIGTERM or SIGINT asks
every child to stop (SIGTERM: uvicorn finishes the requests in hand, the indexer
its batch), waits for them, kills the ones that do not stop in time, and returns.

Children are started with the `spawn` method: a fresh interpreter that shares
nothing with the parent but the socket (no forked threads, database connections
or tantivy handles). Each child asks the kernel for SIGTERM when the parent
dies, so a SIGKILLed supervisor leaves no server behind.

It imports nothing of ours (a child's target brings its own root).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import Any

log = logging.getLogger(__name__)

#: A child that lived less than this counts as dying young: the pause before its
#: next start doubles (a broken configuration must not spin the CPU).
YOUNG_SECONDS = 10.0
MAX_RESTART_PAUSE = 30.0


@dataclass
class ChildSpec:
    """One kind of child: `target(*args)` runs in a spawned process, `count` of them."""

    name: str
    target: Callable[..., Any]
    args: tuple[Any, ...] = ()
    count: int = 1


@dataclass
class _Slot:
    spec: ChildSpec
    number: int
    process: BaseProcess | None = None
    started_at: float = 0.0
    pause: float = 0.0
    start_after: float = 0.0
    restarts: int = 0

    @property
    def label(self) -> str:
        return f"{self.spec.name}-{self.number}"


@dataclass
class Supervisor:
    """Runs `specs` until stopped; see the module docstring."""

    specs: list[ChildSpec]
    stop_timeout: float = 30.0
    poll_seconds: float = 0.2
    _slots: list[_Slot] = field(init=False, default_factory=list)
    _stopping: threading.Event = field(init=False, default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._context = multiprocessing.get_context("spawn")
        self._slots = [_Slot(spec, i) for spec in self.specs for i in range(1, spec.count + 1)]

    def pids(self) -> dict[str, int]:
        """The live children's pids by label (`api-1`, `indexer-1`, …)."""
        return {
            s.label: s.process.pid
            for s in self._slots
            if s.process is not None and s.process.pid is not None and s.process.is_alive()
        }

    def request_stop(self, *_: object) -> None:
        """Ask `run` to stop the children and return (safe in a signal handler)."""
        self._stopping.set()

    def run(self) -> int:
        """Start the children and keep them running until SIGTERM/SIGINT; returns 0."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            while not self._stopping.is_set():
                self._keep_running()
                self._stopping.wait(self.poll_seconds)
        finally:
            self._stop_children()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        del frame
        log.info("supervisor: %s received, stopping the children", signal.Signals(signum).name)
        self._stopping.set()

    def _keep_running(self) -> None:
        now = time.monotonic()
        for slot in self._slots:
            process = slot.process
            if process is not None and process.is_alive():
                continue
            if process is not None:
                lived = now - slot.started_at
                log.warning(
                    "supervisor: %s (pid %s) ended with status %s after %.1f s; starting it again",
                    slot.label,
                    process.pid,
                    process.exitcode,
                    lived,
                )
                process.close()
                slot.process = None
                slot.restarts += 1
                slot.pause = (
                    min(MAX_RESTART_PAUSE, max(0.5, slot.pause * 2)) if lived < YOUNG_SECONDS else 0
                )
                slot.start_after = now + slot.pause
            if now >= slot.start_after:
                self._start(slot)

    def _start(self, slot: _Slot) -> None:
        process = self._context.Process(
            target=_child_main,
            args=(slot.spec.target, slot.spec.args),
            name=f"crossdoc-{slot.label}",
        )
        process.start()
        slot.process = process
        slot.started_at = time.monotonic()
        log.info("supervisor: started %s (pid %s)", slot.label, process.pid)

    def _stop_children(self) -> None:
        running = [s.process for s in self._slots if s.process is not None]
        for process in running:
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(OSError):
                    process.terminate()  # SIGTERM: a graceful stop
        deadline = time.monotonic() + self.stop_timeout
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in running:
            if process.is_alive():
                log.warning("supervisor: pid %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join(5)
        for slot in self._slots:
            slot.process = None


def _child_main(target: Callable[..., Any], args: tuple[Any, ...]) -> None:
    """A child's entry point: die with the parent, log as `crossdoc` does, run the target."""
    _die_with_parent()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    target(*args)


def _die_with_parent() -> None:
    """Ask Linux to send this process SIGTERM when its parent dies (prctl
    PR_SET_PDEATHSIG); elsewhere a no-op."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
