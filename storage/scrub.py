"""Scrubbing: re-read every stored blob on both sites, find the ones whose bytes no
longer match the catalog's SHA-256, repair them from the good copy, and clean the
temporary files crashes left behind.

Bit rot and a stray write are silent until someone reads the document, perhaps
years later and after the good copy is gone: a scrub reads everything, at a rate
that leaves the disks to the users (`rate_bytes`), and tells. A repair writes the
verified good copy over the bad one (`replace_corrupt`, the one write that ever
replaces a blob) or stores a missing one, each with an audit record (actor
`@scrub`). A blob bad on both sites is reported, never "repaired" from a bad copy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

from storage.catalog.ports import CatalogStore
from storage.catalog.records import NewAuditEvent
from storage.catalog.replication import StoredBlobRef
from storage.errors import BlobNotFoundError, IntegrityError, StorageError
from storage.objectstore.base import CHUNK_SIZE, ObjectStore
from storage.replica import blob_file

log = logging.getLogger(__name__)

SCRUB_ACTOR = "@scrub"  # not a valid username: the scrubber
#: Temporary files younger than this may belong to a write in progress.
TEMP_AGE_SECONDS = 6 * 3600.0
_PAGE = 500


@runtime_checkable
class RepairableStore(Protocol):
    """An object store that can replace a corrupt blob with a verified good copy."""

    def replace_corrupt(self, path: Path, *, sha256: str, size: int) -> bool: ...


@dataclass
class ScrubReport:
    """What a scrub pass found and did."""

    blobs: int = 0
    bytes_read: int = 0
    seconds: float = 0.0
    #: (site, blob key, what): "corrupt" or "missing".
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    repaired: list[tuple[str, str]] = field(default_factory=list)
    #: Blobs bad or missing on every site: nothing to repair from.
    unrepairable: list[str] = field(default_factory=list)
    temp_files_removed: int = 0

    @property
    def mb_per_s(self) -> float:
        return self.bytes_read / 1e6 / self.seconds if self.seconds > 0 else 0.0

    @property
    def unrepaired(self) -> int:
        """Problems still there after this pass."""
        return len(self.problems) - len(self.repaired)

    def as_dict(self) -> dict[str, object]:
        return {
            "blobs": self.blobs,
            "bytes_read": self.bytes_read,
            "seconds": round(self.seconds, 3),
            "mb_per_s": round(self.mb_per_s, 2),
            "problems": [{"site": s, "key": k, "what": w} for s, k, w in self.problems],
            "repaired": [{"site": s, "key": k} for s, k in self.repaired],
            "unrepairable": self.unrepairable,
            "temp_files_removed": self.temp_files_removed,
        }


class _Throttle:
    """Keeps the average read rate at or under `rate` bytes a second."""

    def __init__(self, rate: float | None, stop: threading.Event) -> None:
        self.rate = rate
        self.stop = stop
        self.start = time.monotonic()
        self.read = 0

    def add(self, n: int) -> None:
        self.read += n
        if not self.rate:
            return
        ahead = self.read / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            self.stop.wait(ahead)


def _check(store: ObjectStore, ref: StoredBlobRef, throttle: _Throttle) -> str | None:
    """None if the blob is sound, else "missing" or "corrupt". Unreachable: raises."""
    try:
        read = 0
        for chunk in store.iter_chunks(ref.blob_key, CHUNK_SIZE):
            read += len(chunk)
            throttle.add(len(chunk))
        return None if read == ref.size else "corrupt"
    except BlobNotFoundError:
        return "missing"
    except IntegrityError:
        return "corrupt"


class Scrubber:
    """Scrubs the primary (and the replica, if any) against the catalog."""

    def __init__(
        self,
        catalog: CatalogStore,
        primary: ObjectStore,
        replica: ObjectStore | None,
        spool_dir: Path,
    ) -> None:
        self.catalog = catalog
        self.sites: dict[str, ObjectStore] = {"primary": primary}
        if replica is not None:
            self.sites["replica"] = replica
        self.spool_dir = spool_dir

    def run(
        self,
        *,
        rate_bytes: float | None = None,
        repair: bool = False,
        stop: threading.Event | None = None,
        progress: Callable[[ScrubReport], None] | None = None,
        temp_age_seconds: float = TEMP_AGE_SECONDS,
    ) -> ScrubReport:
        """One pass over every blob the catalog knows (deleted documents' too)."""
        stop = stop or threading.Event()
        report = ScrubReport()
        throttle = _Throttle(rate_bytes, stop)
        started = time.monotonic()
        after = ""
        while not stop.is_set():
            page = self.catalog.replication.stored_blobs(after, _PAGE)
            if not page:
                break
            for ref in page:
                if stop.is_set():
                    break
                self._scrub_blob(ref, throttle, report, repair)
                report.blobs += 1
                if progress is not None:
                    progress(report)
            after = page[-1].blob_key
        report.bytes_read = throttle.read
        report.temp_files_removed = self._clean_temporary(temp_age_seconds)
        report.seconds = time.monotonic() - started
        return report

    def _scrub_blob(
        self, ref: StoredBlobRef, throttle: _Throttle, report: ScrubReport, repair: bool
    ) -> None:
        found: dict[str, str | None] = {}
        for site, store in self.sites.items():
            try:
                found[site] = _check(store, ref, throttle)
            except StorageError as err:  # unreachable: not a verdict on the blob
                log.warning("scrub: cannot read %s on the %s: %s", ref.blob_key, site, err)
                continue
        bad = {site: what for site, what in found.items() if what is not None}
        if not bad:
            return
        for site, what in bad.items():
            assert what is not None
            report.problems.append((site, ref.blob_key, what))
            log.error("scrub: %s blob %s on the %s", what, ref.blob_key, site)
        good = [site for site, what in found.items() if what is None]
        if not good:
            report.unrepairable.append(ref.blob_key)
            self._audit("blob_unrepairable", ref, "failed", {"sites": sorted(bad)})
            return
        if not repair:
            return
        source = self.sites[good[0]]
        for site, what in bad.items():
            try:
                self._repair(source, self.sites[site], ref, what)
            except (StorageError, OSError) as err:
                log.error("scrub: cannot repair %s on the %s: %s", ref.blob_key, site, err)
                continue
            report.repaired.append((site, ref.blob_key))
            self._audit("blob_repair", ref, "ok", {"site": site, "was": what, "from": good[0]})

    def _repair(
        self, source: ObjectStore, target: ObjectStore, ref: StoredBlobRef, what: str | None
    ) -> None:
        with blob_file(source, ref.blob_key, ref.sha256, ref.size, self.spool_dir) as path:
            if what == "missing":
                target.put_file(path, sha256=ref.sha256, size=ref.size)
            elif isinstance(target, RepairableStore):
                target.replace_corrupt(path, sha256=ref.sha256, size=ref.size)
            else:
                raise StorageError(f"this object store cannot replace {ref.blob_key}")
        if _check(target, ref, _Throttle(None, threading.Event())) is not None:
            raise IntegrityError(f"{ref.blob_key} still does not verify after the repair")

    def _audit(
        self, action: str, ref: StoredBlobRef, outcome: str, detail: dict[str, object]
    ) -> None:
        try:
            self.catalog.audit.append(
                [
                    NewAuditEvent(
                        actor=SCRUB_ACTOR,
                        action=action,
                        target=ref.blob_key,
                        outcome=outcome,
                        detail={"sha256": ref.sha256, "size": ref.size, **detail},
                    )
                ]
            )
        except StorageError as err:
            log.error("scrub: cannot audit %s of %s: %s", action, ref.blob_key, err)

    def _clean_temporary(self, older_than: float) -> int:
        """Remove temporary files of crashed writes: blob temp files on local sites,
        upload spool files and replication copies in the spool directory."""
        removed = 0
        for store in self.sites.values():
            clean = getattr(store, "clean_temporary", None)
            if callable(clean):
                removed += int(clean(older_than))
        cutoff = time.time() - older_than
        if self.spool_dir.is_dir():
            for path in self.spool_dir.iterdir():
                if not path.name.startswith(("upload-", "replica-")):
                    continue
                try:
                    if path.is_file() and path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
                except FileNotFoundError:
                    pass
        return removed


class BackgroundScrub:
    """A scrub pass with repair every `interval` seconds, at `rate_bytes` a second,
    on a thread of its own; the first pass starts `first_delay` seconds after
    `start` (a short-lived process scrubs nothing)."""

    def __init__(
        self,
        scrubber: Scrubber,
        *,
        rate_bytes: float,
        interval: float,
        first_delay: float = 600.0,
    ) -> None:
        self.scrubber = scrubber
        self.rate_bytes = rate_bytes
        self.interval = interval
        self.first_delay = first_delay
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last: ScrubReport | None = None

    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._loop, name="crossdoc-scrub", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        if self._stop.wait(self.first_delay):
            return
        while not self._stop.is_set():
            try:
                report = self.scrubber.run(rate_bytes=self.rate_bytes, repair=True, stop=self._stop)
                self.last = report
                log.info(
                    "scrub pass: %d blobs, %.1f MB at %.1f MB/s, %d problems, %d repaired",
                    report.blobs,
                    report.bytes_read / 1e6,
                    report.mb_per_s,
                    len(report.problems),
                    len(report.repaired),
                )
            except Exception:
                log.exception("scrub pass failed")
            if self._stop.wait(self.interval):
                return

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(30)
            self._thread = None
