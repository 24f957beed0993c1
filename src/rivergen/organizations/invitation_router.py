"""HTTP routes of invitations: offered by an organization's admins, accepted by the invitee."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from rivergen.api.deps import Context, CurrentCaller, CurrentUser, Session
from rivergen.api.envelope import Envelope, Page, error_responses, ok
from rivergen.api.params import ObjectId, Offset
from rivergen.identity.models import Role
from rivergen.organizations.schemas import (
    InvitationAccept,
    InvitationAccepted,
    InvitationCreate,
    InvitationCreated,
    InvitationOut,
)

router = APIRouter(tags=["invitations"])
Limit = Annotated[int, Query(ge=1, le=500)]


@router.post(
    "/organizations/{organization_id}/invitations",
    status_code=201,
    response_model=Envelope[InvitationCreated],
    responses=error_responses(401, 403, 404, 409, 422, 429),
)
async def create_invitation(
    organization_id: ObjectId, body: InvitationCreate, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Invite an email to a role (admin and up, never above one's own role).

    The answer carries the one-time `token` this once (there is no mail): hand it to the
    invitee, who accepts it signed in with that email. The same answer whether or not the
    email has an account.
    """
    caller.require(Role.ADMIN, organization_id)
    data = await context.invitations.invite(caller, organization_id, str(body.email), body.role)
    return ok(data.model_dump(mode="json"), "Invitation created")


@router.get(
    "/organizations/{organization_id}/invitations",
    response_model=Envelope[Page[InvitationOut]],
    responses=error_responses(401, 403, 404, 422),
)
async def list_invitations(
    organization_id: ObjectId,
    caller: CurrentCaller,
    session: Session,
    context: Context,
    limit: Limit = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """Pending invitations, newest first, expired ones flagged (admin and up)."""
    caller.require(Role.ADMIN, organization_id)
    items, total = await context.invitations.pending(session, organization_id, limit, offset)
    data = {"items": [i.model_dump(mode="json") for i in items], "total": total}
    return ok(data, "Invitations retrieved")


@router.delete(
    "/organizations/{organization_id}/invitations/{invitation_id}",
    response_model=Envelope[None],
    responses=error_responses(401, 403, 404, 422),
)
async def revoke_invitation(
    organization_id: ObjectId, invitation_id: ObjectId, caller: CurrentCaller, context: Context
) -> dict[str, Any]:
    """Revoke a pending invitation (admin and up; owners for an offer of the owner role)."""
    caller.require(Role.ADMIN, organization_id)
    await context.invitations.revoke(caller, organization_id, invitation_id)
    return ok(None, "Invitation revoked")


@router.post(
    "/invitations/accept",
    response_model=Envelope[InvitationAccepted],
    responses=error_responses(401, 403, 404, 409, 422),
)
async def accept_invitation(
    body: InvitationAccept, user: CurrentUser, context: Context
) -> dict[str, Any]:
    """Accept an invitation: signed in with the email it was sent to, once, before it expires."""
    data = await context.invitations.accept(user, body.token)
    return ok(data.model_dump(mode="json"), "Invitation accepted")
