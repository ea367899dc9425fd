"""The second site as the operator sees it: the measured recovery point (for
`GET /admin/replication`, `crossdoc replication status` and `/metrics`)."""

from __future__ import annotations

from storage.catalog.ports import CatalogStore
from storage.fallback import FallbackCounts
from storage.objectstore.base import ObjectStore
from storage.replica import ReplicationStatus, replication_status


class ReplicationService:
    """Reads the replication queue and asks the replica whether it answers."""

    def __init__(
        self,
        catalog: CatalogStore,
        replica: ObjectStore | None,
        mode: str,
        reads: FallbackCounts | None = None,
    ) -> None:
        """`reads`: this process's read fallback counts (`storage.fallback`), if any."""
        self.catalog = catalog
        self.replica = replica
        self.mode = mode
        self.reads = reads

    def status(self) -> ReplicationStatus:
        """Backlog, oldest unreplicated version, seconds of data at risk; reads served
        from the replica."""
        return replication_status(self.catalog, self.replica, self.mode, reads=self.reads)

    def metrics_text(self) -> str:
        """The status as Prometheus text exposition (format 0.0.4)."""
        s = self.status()
        lines: list[str] = []

        def gauge(name: str, help_text: str, value: float) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {value:g}")

        def counter(name: str, help_text: str, value: int) -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} counter")
            lines.append(f"{name} {value}")

        gauge("crossdoc_replica_configured", "1 when a second site is configured", s.configured)
        gauge("crossdoc_replication_sync", "1 in sync replication mode", s.mode == "sync")
        gauge(
            "crossdoc_replica_up",
            "1 when the replica answers (0 unreachable or none)",
            bool(s.replica_reachable),
        )
        gauge(
            "crossdoc_replication_backlog_items",
            "versions the replica may still lack",
            s.backlog_items,
        )
        gauge(
            "crossdoc_replication_backlog_bytes",
            "bytes of the versions the replica may still lack",
            s.backlog_bytes,
        )
        gauge(
            "crossdoc_replication_oldest_pending_age_seconds",
            "age of the oldest unreplicated version",
            s.oldest_pending_age_seconds,
        )
        gauge(
            "crossdoc_replication_data_at_risk_seconds",
            "recovery point: seconds of accepted uploads lost if the primary site vanished now",
            s.data_at_risk_seconds,
        )
        gauge(
            "crossdoc_replication_failing_items",
            "queued versions whose last copy attempt failed",
            s.failing_items,
        )
        counter(
            "crossdoc_replica_fallback_reads_total",
            "reads served from the replica: the primary's copy missing, corrupt or "
            "unreachable (this process, since it started)",
            s.fallback_reads,
        )
        counter(
            "crossdoc_read_repairs_total",
            "primary copies repaired from the replica by a read (this process)",
            s.read_repairs,
        )
        counter(
            "crossdoc_unreadable_reads_total",
            "reads that found no intact copy on any site (this process)",
            s.unreadable_reads,
        )
        return "\n".join(lines) + "\n"
