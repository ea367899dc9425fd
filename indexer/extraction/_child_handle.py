"""One extraction child process, seen from the parent: start, ask, watch, kill.

A `ChildProcess` is used by one thread at a time (the extractor's pool hands it
out). While it waits for an answer it enforces the limits itself: a wall-clock
deadline and the child's resident memory, read from /proc every poll. Either
one exceeded, or the child dying, ends in a `Reply` saying so, never in a hang.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Literal

from indexer.errors import ExtractionUnavailableError
from indexer.lifeline import spawn

#: How often the parent checks the child's memory while it waits.
POLL_SECONDS = 0.05
#: Bytes of the child's stderr kept per request (to recognise OutOfMemoryError…).
STDERR_TAIL_BYTES = 32 * 1024
#: How long a child may take to exit after its stdin is closed.
STOP_GRACE_SECONDS = 2.0

ReplyKind = Literal["ok", "timeout", "memory", "died", "garbled", "unsent"]


@dataclass(frozen=True)
class Reply:
    """How one request to the child ended."""

    kind: ReplyKind  # ok: `payload` holds the answer; otherwise the child is dead or killed
    payload: dict[str, Any] = field(default_factory=dict)
    returncode: int | None = None  # when the child died
    messages: str = ""  # what the child wrote to stderr meanwhile (tail)


def rss_bytes(pid: int) -> int:
    """Resident set size of process `pid` (VmRSS), 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return 0
    return 0


def _extension(line: bytes) -> float | None:
    """The seconds asked for by an `{"extend_seconds": …}` line, None for any other line."""
    if not line.startswith(b'{"extend_seconds":'):
        return None
    try:
        value = json.loads(line)["extend_seconds"]
    except (ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) and value > 0 else None


def _set_nonblocking(fd: int) -> None:
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)


class ChildProcess:
    """A long-lived child speaking JSON lines (see `indexer.extraction._child_main`)."""

    def __init__(
        self,
        command: list[str],
        *,
        memory_limit_bytes: int,
        max_reply_bytes: int,
        max_extension_seconds: float = 0.0,
        env: dict[str, str] | None = None,
    ) -> None:
        """`max_extension_seconds`: how much more time the child may ask for, once
        per request, with a `{"extend_seconds": …}` line (OCR's own budget)."""
        self._command = command
        self._env = env
        self._max_extension = max_extension_seconds
        self._memory_limit = memory_limit_bytes
        self._max_reply = max_reply_bytes
        self._proc: subprocess.Popen[bytes] | None = None
        self._selector: selectors.BaseSelector | None = None
        self._stdout_fd = -1
        self._stderr_fd = -1
        self._stderr_tail = bytearray()
        #: Files handled by the current process (for recycling).
        self.jobs = 0
        #: Seconds the last start took, until the child was ready.
        self.startup_seconds = 0.0

    @property
    def alive(self) -> bool:
        """True while the process runs (it may still be busy)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The current process id, if started."""
        return self._proc.pid if self._proc is not None else None

    def start(self, timeout: float) -> None:
        """Start the process and wait until it says it is ready.

        Raises `ExtractionUnavailableError` if it cannot start (missing
        `iscc_tika`, broken install, no memory…): a fault of the service, not
        of any document.
        """
        self.kill()
        started = time.monotonic()
        try:
            # A session of its own: the child and anything it spawns can be
            # killed as one group, and a terminal's Ctrl-C does not hit it.
            # The command is our own interpreter and bootstrap, never user input.
            # Started from the lasting thread: the child dies with this process.
            proc = spawn(
                self._command,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
                close_fds=True,
                bufsize=0,
                env=self._env,
            )
        except OSError as err:
            raise ExtractionUnavailableError(f"cannot start the extraction child: {err}") from err
        assert proc.stdout is not None and proc.stderr is not None
        self._proc = proc
        self._stdout_fd = proc.stdout.fileno()
        self._stderr_fd = proc.stderr.fileno()
        _set_nonblocking(self._stdout_fd)
        _set_nonblocking(self._stderr_fd)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._stdout_fd, selectors.EVENT_READ)
        self._selector.register(self._stderr_fd, selectors.EVENT_READ)
        self.jobs = 0
        reply = self._wait_reply(time.monotonic() + timeout)
        if reply.kind != "ok" or not reply.payload.get("ready"):
            self.kill()
            tail = reply.messages.strip()[-500:]
            raise ExtractionUnavailableError(
                f"the extraction child did not start ({reply.kind}, exit {reply.returncode}): "
                f"{tail!r}"
            )
        self.startup_seconds = time.monotonic() - started

    def request(self, message: dict[str, Any], timeout: float) -> Reply:
        """Send one request and wait at most `timeout` seconds for its answer.

        Anything but an "ok" reply leaves the process dead (killed or exited);
        "unsent" means it was already gone before the request reached it.
        """
        proc = self._proc
        if proc is None or proc.poll() is not None or proc.stdin is None:
            return Reply("unsent", returncode=proc.returncode if proc else None)
        self._stderr_tail.clear()
        # ASCII-escaped: a path with undecodable bytes (surrogate escapes) survives.
        line = json.dumps(message).encode("ascii") + b"\n"
        try:
            proc.stdin.write(line)
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self.kill()
            return Reply("unsent", returncode=proc.returncode)
        return self._wait_reply(time.monotonic() + timeout)

    def _wait_reply(self, deadline: float) -> Reply:
        proc = self._proc
        selector = self._selector
        assert proc is not None and selector is not None
        buffer = bytearray()
        extended = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                return Reply("timeout", messages=self._messages())
            for key, _events in selector.select(min(remaining, POLL_SECONDS)):
                if key.fd == self._stderr_fd:
                    self._read_stderr()
                    continue
                chunk = self._read(self._stdout_fd)
                if chunk is None:
                    continue
                if not chunk:  # EOF: the child is gone
                    self._read_stderr()
                    returncode = self._reap()
                    return Reply("died", returncode=returncode, messages=self._messages())
                buffer += chunk
                newline = buffer.find(b"\n")
                while newline >= 0:
                    line = bytes(buffer[:newline])
                    del buffer[: newline + 1]
                    extension = _extension(line)
                    if extension is None:
                        self._read_stderr()
                        return self._decode(line)
                    if not extended:
                        extended = True
                        grant = min(extension, self._max_extension)
                        deadline = max(deadline, time.monotonic() + grant)
                    newline = buffer.find(b"\n")
                if len(buffer) > self._max_reply:
                    self.kill()
                    return Reply("garbled", messages=self._messages())
            if self._memory_limit and rss_bytes(proc.pid) > self._memory_limit:
                self.kill()
                return Reply("memory", messages=self._messages())
            if proc.poll() is not None and not selector.select(0):
                return Reply("died", returncode=proc.returncode, messages=self._messages())

    def _decode(self, line: bytes) -> Reply:
        try:
            payload = json.loads(line)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            self.kill()
            return Reply("garbled", messages=self._messages())
        return Reply("ok", payload=payload, messages=self._messages())

    @staticmethod
    def _read(fd: int) -> bytes | None:
        try:
            return os.read(fd, 1 << 20)
        except BlockingIOError:
            return None
        except OSError:
            return b""

    def _read_stderr(self) -> None:
        while True:
            chunk = self._read(self._stderr_fd)
            if not chunk:
                if chunk == b"" and self._selector is not None:
                    # EOF: stop polling it (the child is exiting).
                    with contextlib.suppress(KeyError, ValueError):
                        self._selector.unregister(self._stderr_fd)
                return
            self._stderr_tail += chunk
            if len(self._stderr_tail) > STDERR_TAIL_BYTES:
                del self._stderr_tail[: len(self._stderr_tail) - STDERR_TAIL_BYTES]

    def _messages(self) -> str:
        return self._stderr_tail.decode("utf-8", "replace")

    def _reap(self) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        try:
            return proc.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            self.kill()
            return proc.returncode

    def stop(self) -> None:
        """Ask the child to exit (close its stdin), kill it if it does not."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None and proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_GRACE_SECONDS)
        self.kill()

    def kill(self) -> None:
        """Kill the child and its process group at once, reap it, release its pipes."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            # Only while it is unreaped: its pid (= group id) cannot have been reused.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=STOP_GRACE_SECONDS)
        if self._selector is not None:
            self._selector.close()
            self._selector = None
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._proc = None
