"""The command line's composition root: what each `crossdoc` command builds.

No command but `serve` (the API process, built by `crossdoc.wiring.api`) builds web
objects or loads the web package: importing, re-indexing and the audit commands
work on the shared adapters (`crossdoc.wiring.core`) and the indexing worker.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from auth.passwords import Passwords
from crossdoc.settings import Settings
from crossdoc.wiring.core import (
    Core,
    build_catalog,
    build_core,
    build_object_store,
    build_replica_store,
    check_settings,
)
from crossdoc.wiring.worker import WorkerServices, build_worker, trash_retention
from storage.catalog.ports import CatalogStore
from storage.objectstore.base import ObjectStore

#: `crossdoc import` indexes while it imports: its worker looks for new rows often.
IMPORT_IDLE_SECONDS = 0.5


def for_import(settings: Settings) -> WorkerServices:
    """`crossdoc import`: the shared adapters and a worker (not started) to index as it goes."""
    return build_worker(settings, idle_seconds=IMPORT_IDLE_SECONDS)


def for_reindex(settings: Settings) -> Core:
    """`crossdoc reindex`: the shared adapters (the index is emptied and rebuilt from them)."""
    return build_core(settings)


def for_audit(settings: Settings) -> CatalogStore:
    """`crossdoc audit verify|export`: the catalog alone, migrated."""
    return build_catalog(settings)


def for_status(settings: Settings) -> CatalogStore:
    """`crossdoc status`: the catalog alone, migrated (documents, outbox, indexers)."""
    return build_catalog(settings)


def for_users(settings: Settings) -> tuple[CatalogStore, Passwords, timedelta]:
    """`crossdoc users …`: the catalog (migrated), password hashing, and the longest a
    token lives (how long a user's token revocation is kept)."""
    lifetime = max(
        timedelta(minutes=settings.access_token_minutes),
        timedelta(hours=settings.refresh_token_hours),
    )
    return build_catalog(settings), Passwords(), lifetime


def for_trash(settings: Settings) -> tuple[CatalogStore, timedelta]:
    """`crossdoc trash purge`: the catalog (migrated) and the trash's retention period."""
    return build_catalog(settings), trash_retention(settings)


@dataclass
class SecondSite:
    """`crossdoc replication …` and `crossdoc scrub`: the catalog and both sites' stores."""

    settings: Settings
    catalog: CatalogStore
    primary: ObjectStore
    replica: ObjectStore | None

    def close(self) -> None:
        self.catalog.close()


def for_second_site(settings: Settings) -> SecondSite:
    """The catalog (migrated) and the object stores of both sites; nothing else (no
    index: these commands run beside a serving process)."""
    check_settings(settings)
    return SecondSite(
        settings,
        build_catalog(settings),
        build_object_store(settings),
        build_replica_store(settings),
    )
