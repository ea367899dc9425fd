"""The second site's background jobs: the replicator and the scrub, built from settings.

Run by the process that indexes: `crossdoc serve` on the embedded default (no
broker), each `crossdoc worker` process otherwise (claims under a lease keep
several replicators from copying the same blob at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from crossdoc.settings import Settings
from storage.catalog.ports import CatalogStore
from storage.objectstore.base import ObjectStore
from storage.replica import Replicator, primary_of
from storage.scrub import BackgroundScrub, Scrubber

MB = 1_000_000


@dataclass
class ReplicationJobs:
    """The background jobs of a process (none without a replica and scrub interval)."""

    replicator: Replicator | None = None
    scrub: BackgroundScrub | None = None

    def start(self) -> None:
        if self.replicator is not None:
            self.replicator.start()
        if self.scrub is not None:
            self.scrub.start()

    def stop(self) -> None:
        if self.scrub is not None:
            self.scrub.stop()
        if self.replicator is not None:
            self.replicator.stop()


def build_replicator(
    settings: Settings, catalog: CatalogStore, store: ObjectStore, replica: ObjectStore | None
) -> Replicator | None:
    """The replicator over the primary and the replica, or None without a replica."""
    if replica is None:
        return None
    return Replicator(
        catalog,
        primary_of(store),
        replica,
        settings.spool_dir,
        lease=timedelta(seconds=settings.replication_lease_seconds),
    )


def build_scrubber(
    settings: Settings, catalog: CatalogStore, store: ObjectStore, replica: ObjectStore | None
) -> Scrubber:
    return Scrubber(catalog, primary_of(store), replica, settings.spool_dir)


def build_jobs(
    settings: Settings, catalog: CatalogStore, store: ObjectStore, replica: ObjectStore | None
) -> ReplicationJobs:
    """The replicator (with a replica) and the background scrub (with an interval)."""
    scrub = None
    if settings.scrub_interval_hours > 0:
        scrub = BackgroundScrub(
            build_scrubber(settings, catalog, store, replica),
            rate_bytes=settings.scrub_rate_mb_s * MB,
            interval=settings.scrub_interval_hours * 3600,
        )
    return ReplicationJobs(build_replicator(settings, catalog, store, replica), scrub)
