"""/healthz (the process runs) and /readyz (every configured dependency answers)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from search_api.deps import ServicesDep
from search_api.errors import error_body
from search_api.openapi import errors

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    # On the event loop, not the thread pool: a liveness answer needs no I/O and
    # must not queue behind uploads for a pool thread (or for the GIL, twice).
    return {"status": "ok"}


@router.get("/readyz", responses=errors(503))
def readyz(services: ServicesDep) -> JSONResponse:
    checks = {
        "catalog": services.catalog.ping,
        "object_store": services.store.ping,
        "search_index": services.index.ping,
        "extractor": services.extractor.ping,
        "worker": services.dispatcher.ping,
    }
    if not services.extracts:
        # Its indexing runs in another process: pinging would start an extraction
        # child here (~100 MB) that this process never uses.
        del checks["extractor"]
    for name, check in checks.items():
        try:
            check()
        except Exception as err:  # noqa: BLE001 - any failure means "not ready"
            return JSONResponse(
                error_body("not_ready", f"{name} is not available: {err}"),
                status_code=503,
            )
    return JSONResponse({"status": "ready", "checks": sorted(checks)})
