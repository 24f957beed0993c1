"""HTTP route of a data source's health history (the spec's "Get Health")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from rivergen.api.deps import CurrentCaller, Session
from rivergen.api.envelope import Envelope, error_responses, ok
from rivergen.api.params import ObjectId
from rivergen.health.schemas import HealthOut
from rivergen.health.service import HealthQuery, health_report

router = APIRouter(tags=["health"])


@router.get(
    "/data-sources/{data_source_id}/health",
    response_model=Envelope[HealthOut],
    responses=error_responses(401, 403, 404, 422),
    summary="Get Health",
)
async def get_health(
    data_source_id: ObjectId,
    caller: CurrentCaller,
    session: Session,
    limit: Annotated[int, Query(ge=1, le=1000, description="History records per page")] = 50,
    since: Annotated[
        datetime | None,
        Query(description="Window start, inclusive (ISO 8601; UTC when no offset is given)"),
    ] = None,
    until: Annotated[datetime | None, Query(description="Window end, exclusive")] = None,
    cursor: Annotated[
        str | None, Query(max_length=200, description="`next_cursor` of the previous page")
    ] = None,
) -> dict[str, Any]:
    """Connection health history, newest first, and a summary over the window (viewer and up).

    The summary covers every record in the window (all retained history when since/until are
    omitted), not only the page: uptime, mean and p95 response time of successful checks, the
    last success and failure, and the failures since the last success.
    """
    query = HealthQuery(limit=limit, since=since, until=until, cursor=cursor)
    data = await health_report(session, caller, data_source_id, query)
    return ok(data.model_dump(mode="json"), "Health history retrieved")
