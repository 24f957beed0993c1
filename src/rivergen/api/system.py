"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from rivergen.api.deps import Context
from rivergen.api.envelope import Envelope, error_responses, ok
from rivergen.api.store_outage import unavailable
from rivergen.store.session import ping

router = APIRouter(tags=["system"])
log = structlog.get_logger(__name__)


@router.get("/healthz", response_model=Envelope[dict[str, str]])
async def healthz() -> dict[str, Any]:
    """Liveness: the process answers."""
    return ok({"status": "ok"}, "alive")


@router.get("/readyz", response_model=Envelope[dict[str, str]], responses=error_responses(503))
async def readyz(context: Context) -> dict[str, Any]:
    """Readiness: the metadata store answers."""
    try:
        await ping(context.engine)
    except Exception as exc:
        log.warning("store_not_ready", error=type(exc).__name__)
        raise unavailable() from None
    return ok({"status": "ready", "store": context.engine.dialect.name}, "ready")


@router.get("/metrics", response_class=Response, include_in_schema=True)
async def metrics() -> Response:
    """Prometheus metrics in the text exposition format."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
