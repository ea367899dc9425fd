"""Who holds outbox claims, and when a holder is gone so its claims can be taken back.

A worker process registers itself as an outbox owner (a random id, its host,
pid and process start time) before it claims rows, and its claims name it.
Any worker can then tell that an owner is gone and free its rows at once,
instead of waiting for the claim lease to lapse:

- on the same host (same host name, boot id and pid namespace): the owner's
  pid no longer runs, or runs another process (a different start time: the
  pid was reused);
- anywhere else (another machine, another container, or this host before a
  reboot): its heartbeat is older than `STALE_AFTER` (a few heartbeats). Host
  names alone prove nothing: two machines or containers may share one.

The lease stays the last resort for claims that name no owner.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from storage.catalog.ports import CatalogStore
from storage.catalog.records import OutboxOwnerRecord

log = logging.getLogger(__name__)

#: How often a live owner refreshes its heartbeat.
HEARTBEAT_SECONDS = 5.0
#: After how long without a heartbeat an owner on another host is taken for dead.
STALE_AFTER = timedelta(seconds=30)


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def host_key() -> str:
    """This host's name, boot and pid namespace: where pids mean the same processes."""
    return f"{socket.gethostname()}/{_boot_id()}/{_pid_namespace()}"


def process_started(pid: int) -> str | None:
    """The start time of process `pid` (clock ticks since boot), None if it is not running.

    "" where the platform does not tell (then only liveness by pid is known).
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return None
    except OSError:
        return _pid_alive_without_proc(pid)
    # Field 22, counted after the command name (which may hold spaces and parentheses).
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) < 20 or fields[0] in (b"Z", b"X"):
        return None  # a zombie has exited: only its exit status is left
    return fields[19].decode()


def _pid_alive_without_proc(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""


@dataclass(frozen=True)
class ClaimOwner:
    """This process, as an outbox owner."""

    id: str
    host: str
    pid: int
    started: str

    @classmethod
    def this_process(cls) -> ClaimOwner:
        pid = os.getpid()
        return cls(uuid.uuid4().hex, host_key(), pid, process_started(pid) or "")


def owner_is_gone(
    owner: OutboxOwnerRecord,
    me: ClaimOwner,
    now: datetime | None = None,
    stale_after: timedelta = STALE_AFTER,
) -> bool:
    """Whether `owner` is provably gone, seen from `me` (never true of `me`)."""
    if owner.id == me.id:
        return False
    if not owner.host:
        return True  # named by claims but unregistered: removed as dead already
    if owner.host == me.host:
        started = process_started(owner.pid)
        return started is None or (
            bool(started) and bool(owner.started) and started != owner.started
        )
    now = now or datetime.now(UTC)
    return now - owner.heartbeat_at > stale_after


class ClaimKeeper:
    """Registers this process as an outbox owner, keeps its heartbeat, takes back
    the claims of owners that are gone."""

    def __init__(self, catalog: CatalogStore, owner: ClaimOwner | None = None) -> None:
        self.catalog = catalog
        self.owner = owner or ClaimOwner.this_process()
        self._registered = False

    def register(self) -> None:
        o = self.owner
        self.catalog.outbox.register_owner(o.id, o.host, o.pid, o.started)
        self._registered = True

    def ensure_registered(self) -> str:
        """Register if not yet done; returns the owner id to claim with."""
        if not self._registered:
            self.register()
        return self.owner.id

    def heartbeat(self) -> None:
        """Refresh the heartbeat; register again if the row was taken for dead."""
        if not self._registered:
            self.register()
        elif not self.catalog.outbox.heartbeat_owner(self.owner.id):
            log.warning("this worker was taken for dead; registering again")
            self.register()

    def reclaim(self) -> int:
        """Free the claims of every owner that is gone; returns how many rows."""
        gone = [o.id for o in self.catalog.outbox.owners() if owner_is_gone(o, self.owner)]
        if not gone:
            return 0
        freed = self.catalog.outbox.reclaim(gone)
        if freed:
            log.warning("took back %d outbox claims of %d stopped workers", freed, len(gone))
        return freed

    def release(self) -> None:
        """On a clean stop: free this process's claims and remove its row."""
        if self._registered:
            self.catalog.outbox.reclaim([self.owner.id])
            self._registered = False
