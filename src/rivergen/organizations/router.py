"""HTTP routes of organizations and their members."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from rivergen.api.deps import Context, CurrentCaller, CurrentUser, Session, SignedInCaller
from rivergen.api.envelope import Envelope, Page, error_responses, ok
from rivergen.api.params import ObjectId, Offset
from rivergen.identity.models import Role
from rivergen.organizations.schemas import (
    MemberAdd,
    MemberCreated,
    MemberOut,
    MemberUpdate,
    OrganizationCreate,
    OrganizationOut,
)

router = APIRouter(prefix="/organizations", tags=["organizations"])
ACCEPTED = (
    "Accepted: a new account was created and added, unless the email already had one; then "
    "nothing changed (invite existing accounts)"
)
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post(
    "",
    status_code=201,
    response_model=Envelope[OrganizationOut],
    responses=error_responses(401, 403, 409, 422, 429),
)
async def create_organization(
    body: OrganizationCreate, user: CurrentUser, context: Context
) -> dict[str, Any]:
    """Create an organization; the caller becomes its owner."""
    data = await context.organizations.create(user, body.name)
    return ok(data.model_dump(mode="json"), "Organization created")


@router.get("", response_model=Envelope[Page[OrganizationOut]], responses=error_responses(401))
async def list_organizations(
    checked: SignedInCaller, session: Session, context: Context
) -> dict[str, Any]:
    """The caller's organizations (a service token's: its own, with the token's role)."""
    items = await context.organizations.list_for(session, checked.user, checked.roles)
    data = {"items": [i.model_dump(mode="json") for i in items], "total": len(items)}
    return ok(data, "Organizations retrieved")


@router.get(
    "/{organization_id}/members",
    response_model=Envelope[Page[MemberOut]],
    responses=error_responses(401, 403, 404, 422),
)
async def list_members(
    organization_id: ObjectId,
    caller: CurrentCaller,
    session: Session,
    context: Context,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Members of an organization (viewer and up)."""
    caller.require(Role.VIEWER, organization_id)
    items, total = await context.organizations.members(session, organization_id, limit, offset)
    return ok(
        {"items": [i.model_dump(mode="json") for i in items], "total": total}, "Members retrieved"
    )


@router.post(
    "/{organization_id}/members",
    status_code=202,
    response_model=Envelope[MemberCreated],
    responses=error_responses(401, 403, 404, 422, 429),
)
async def add_member(
    organization_id: ObjectId, body: MemberAdd, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Create an account with `password` and add it (admin and up).

    The answer is the same whether or not the email already has an account; an existing
    account is not touched and joins only by accepting an invitation.
    """
    caller.require(Role.ADMIN, organization_id)
    data = await context.organizations.add_member(
        caller.user,
        caller.roles[organization_id],
        organization_id,
        str(body.email),
        body.role,
        body.password,
    )
    return ok(data.model_dump(mode="json"), ACCEPTED)


@router.patch(
    "/{organization_id}/members/{user_id}",
    response_model=Envelope[MemberOut],
    responses=error_responses(401, 403, 404, 409, 422),
)
async def update_member(
    organization_id: ObjectId,
    user_id: ObjectId,
    body: MemberUpdate,
    caller: CurrentCaller,
    context: Context,
) -> dict[str, Any]:
    """Change a member's role (admin and up; only owners touch the owner role)."""
    caller.require(Role.ADMIN, organization_id)
    data = await context.organizations.change_role(
        caller.user, caller.roles[organization_id], organization_id, user_id, body.role
    )
    return ok(data.model_dump(mode="json"), "Member updated")


@router.delete(
    "/{organization_id}/members/{user_id}",
    response_model=Envelope[None],
    responses=error_responses(401, 403, 404, 409, 422),
)
async def remove_member(
    organization_id: ObjectId, user_id: ObjectId, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Remove a member (admin and up); the last owner stays."""
    caller.require(Role.ADMIN, organization_id)
    await context.organizations.remove_member(
        caller.user, caller.roles[organization_id], organization_id, user_id
    )
    return ok(None, "Member removed")
