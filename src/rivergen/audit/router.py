"""HTTP route of the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from rivergen.api.deps import CurrentCaller, Session
from rivergen.api.envelope import Envelope, Page, error_responses, ok
from rivergen.api.params import MAX_ID, NO_NUL, Offset
from rivergen.audit.repository import AuditFilters
from rivergen.audit.schemas import AuditEventOut
from rivergen.audit.service import audit_page

router = APIRouter(tags=["audit"])


@router.get(
    "/audit-events",
    response_model=Envelope[Page[AuditEventOut]],
    responses=error_responses(401, 403, 404, 422),
)
async def list_audit_events(
    caller: CurrentCaller,
    session: Session,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
    action: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    actor_user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    actor_token_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    target_type: Annotated[str | None, Query(max_length=32, pattern=NO_NUL)] = None,
    target_id: Annotated[str | None, Query(max_length=64, pattern=NO_NUL)] = None,
    since: Annotated[datetime | None, Query()] = None,
    until: Annotated[datetime | None, Query()] = None,
) -> dict[str, Any]:
    """The active organization's audit events, newest first (admin and up)."""
    filters = AuditFilters(
        action, actor_user_id, target_type, target_id, since, until, actor_token_id
    )
    items, total = await audit_page(session, caller, filters, limit, offset)
    data = {"items": [i.model_dump(mode="json") for i in items], "total": total}
    return ok(data, "Audit events retrieved")
