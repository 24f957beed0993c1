"""HTTP routes of service tokens."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from rivergen.api.deps import Context, CurrentCaller, Session
from rivergen.api.envelope import Envelope, Page, error_responses, ok
from rivergen.api.params import ObjectId, Offset
from rivergen.apitokens.schemas import ApiTokenCreate, ApiTokenCreated, ApiTokenOut

router = APIRouter(prefix="/organizations", tags=["service tokens"])


@router.post(
    "/{organization_id}/api-tokens",
    status_code=201,
    response_model=Envelope[ApiTokenCreated],
    responses=error_responses(401, 403, 404, 422),
)
async def create_api_token(
    organization_id: ObjectId, body: ApiTokenCreate, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Create a service token (admin and up); the token is in this answer and nowhere else."""
    data = await context.api_tokens.create(caller, organization_id, body)
    return ok(data.model_dump(mode="json"), "Service token created; store it now")


@router.get(
    "/{organization_id}/api-tokens",
    response_model=Envelope[Page[ApiTokenOut]],
    responses=error_responses(401, 403, 404, 422),
)
async def list_api_tokens(
    organization_id: ObjectId,
    caller: CurrentCaller,
    session: Session,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The organization's service tokens that are not revoked (admin and up)."""
    items, total = await context.api_tokens.list(session, caller, organization_id, limit, offset)
    data = {"items": [i.model_dump(mode="json") for i in items], "total": total}
    return ok(data, "Service tokens retrieved")


@router.delete(
    "/{organization_id}/api-tokens/{token_id}",
    response_model=Envelope[None],
    responses=error_responses(401, 403, 404, 422),
)
async def revoke_api_token(
    organization_id: ObjectId, token_id: ObjectId, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Revoke a service token (admin and up); it stops working at once."""
    await context.api_tokens.revoke(caller, organization_id, token_id)
    return ok(None, "Service token revoked")
