"""/admin/replication (role `admin`): the measured recovery point; and `/metrics`
(Prometheus text, outside `/api/v1`, like `/healthz`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from search_api.deps import AdminDep, ServicesDep
from services.replication import ReplicationService
from storage.fallback import fallback_counts

router = APIRouter(prefix="/admin", tags=["admin"])
metrics_router = APIRouter(tags=["health"])


class ReplicationOut(BaseModel):
    """The second site now: what it may lack and how long ago that was accepted."""

    configured: bool = Field(description="a replica is configured (CROSSDOC_REPLICA_URL)")
    mode: str = Field(description="`async`, `sync`, or `off` without a replica")
    backlog_items: int = Field(description="versions the replica may still lack")
    backlog_bytes: int = Field(description="their bytes")
    oldest_pending_at: datetime | None = Field(
        description="when the oldest unreplicated version was accepted"
    )
    oldest_pending_age_seconds: float = Field(description="its age")
    data_at_risk_seconds: float = Field(
        description=(
            "the recovery point: uploads accepted within this many seconds could be lost "
            "if the primary site vanished now (0: the replica holds everything)"
        )
    )
    failing_items: int = Field(description="queued versions whose last copy attempt failed")
    last_error: str = Field(description="the most recent copy failure, if any")
    replica_reachable: bool | None = Field(
        description="whether the replica answers now (null without a replica)"
    )
    fallback_reads: int = Field(
        0,
        description=(
            "reads (downloads, extraction) this API process served from the replica since "
            "it started: the primary's copy missing, corrupt or unreachable"
        ),
    )
    read_repairs: int = Field(
        0, description="primary copies those reads repaired from the replica (audited)"
    )
    unreadable_reads: int = Field(
        0, description="reads that found no intact copy on either site (nothing served)"
    )


def replication_service(services: ServicesDep) -> ReplicationService:
    settings = services.settings
    return ReplicationService(
        services.catalog,
        services.replica_store,
        settings.replication,
        fallback_counts(services.store),
    )


ReplicationServiceDep = Annotated[ReplicationService, Depends(replication_service)]


@router.get("/replication", response_model=ReplicationOut)
def replication_status(replication: ReplicationServiceDep, admin: AdminDep) -> ReplicationOut:
    """Backlog, oldest unreplicated item and seconds of data at risk (admin)."""
    del admin
    return ReplicationOut.model_validate(replication.status().as_dict())


# For Prometheus, not API clients: kept out of the OpenAPI schema, as the web pages are.
@metrics_router.get("/metrics", response_class=PlainTextResponse, include_in_schema=False)
def metrics(replication: ReplicationServiceDep) -> PlainTextResponse:
    """Prometheus text: the replication backlog and recovery point."""
    return PlainTextResponse(
        replication.metrics_text(), media_type="text/plain; version=0.0.4; charset=utf-8"
    )
