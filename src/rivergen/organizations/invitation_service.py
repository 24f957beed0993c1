"""Invitations: the only way an existing account joins an organization, by accepting."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.audit.repository import add_event
from rivergen.core.errors import Conflict, Forbidden, NotFound
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role, User
from rivergen.identity.signed_in import SignedInCache
from rivergen.identity.tokens import hash_refresh_secret, new_one_time_token
from rivergen.organizations import invitation_repository as invitations
from rivergen.organizations import repository as orgs
from rivergen.organizations.models import Invitation
from rivergen.organizations.schemas import InvitationAccepted, InvitationCreated, InvitationOut
from rivergen.security.counters import CreationLimits
from rivergen.store.base import utcnow

# One answer for every token that cannot be used, so a guesser learns nothing from it.
INVALID = "This invitation is not valid: unknown, already used, revoked or expired"


class InvitationService:
    """Creates, lists, revokes and accepts invitations; knows nothing of HTTP."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        signed_in: SignedInCache,
        ttl_seconds: int,
        creation: CreationLimits,
    ) -> None:
        self._sessions = sessions
        self._creation = creation
        self._signed_in = signed_in
        self._ttl = timedelta(seconds=ttl_seconds)

    async def invite(
        self, caller: Caller, organization_id: int, email: str, role: Role
    ) -> InvitationCreated:
        """A new invitation with its token; the same whether or not the email has an account."""
        _check_may_offer(caller.roles[organization_id], role)
        await self._creation.account(caller.user.id)
        email = email.strip().lower()
        token, token_hash = new_one_time_token()
        now = utcnow()
        async with self._sessions() as session, session.begin():
            # Whether this email is already one of the caller's own members is no secret.
            if await orgs.member_with_email(session, organization_id, email):
                raise Conflict("This email is already a member of the organization")
            await invitations.revoke_pending_for_email(session, organization_id, email, now)
            invitation = await invitations.add_invitation(
                session,
                organization_id,
                email,
                role.value,
                token_hash,
                caller.user.id,
                now + self._ttl,
            )
            await add_event(
                session,
                "invitation.create",
                organization_id=organization_id,
                actor_user_id=caller.actor_user_id,
                actor_token_id=caller.token_id,
                target_type="invitation",
                target_id=invitation.id,
                details={"email": email, "role": role.value},
            )
        return InvitationCreated(**_out(invitation).model_dump(), token=token)

    async def pending(
        self, session: AsyncSession, organization_id: int, limit: int, offset: int
    ) -> tuple[list[InvitationOut], int]:
        """A page of the organization's pending invitations, newest first."""
        rows, total = await invitations.list_pending(session, organization_id, limit, offset)
        return [_out(row) for row in rows], total

    async def revoke(self, caller: Caller, organization_id: int, invitation_id: int) -> None:
        """Revoke a pending invitation (only owners revoke an offer of the owner role)."""
        async with self._sessions() as session, session.begin():
            invitation = await invitations.get_pending(session, organization_id, invitation_id)
            if invitation is None:
                raise NotFound("Invitation not found")
            _check_may_offer(caller.roles[organization_id], Role(invitation.role))
            await invitations.revoke(session, invitation.id, utcnow())
            await add_event(
                session,
                "invitation.revoke",
                organization_id=organization_id,
                actor_user_id=caller.actor_user_id,
                actor_token_id=caller.token_id,
                target_type="invitation",
                target_id=invitation.id,
                details={"email": invitation.email, "role": invitation.role},
            )

    async def accept(self, user: User, token: str) -> InvitationAccepted:
        """Join the organization of the invitation; only for the email it was sent to, once."""
        now = utcnow()
        async with self._sessions() as session, session.begin():
            invitation = await invitations.get_by_token_hash(session, hash_refresh_secret(token))
            if (
                invitation is None
                or invitation.accepted_at is not None
                or invitation.revoked_at is not None
                or invitation.expires_at <= now
            ):
                raise NotFound(INVALID)
            if invitation.email != user.email.lower():
                # Refused without using it up: the right person may still accept it.
                raise Forbidden("This invitation is for another email address")
            organization = await orgs.get_organization(session, invitation.organization_id)
            if organization is None:
                raise NotFound(INVALID)
            if await orgs.get_membership(session, organization.id, user.id) is not None:
                raise Conflict("You are already a member of this organization")
            if not await invitations.claim(session, invitation.id, user.id, now):
                raise NotFound(INVALID)
            await orgs.add_membership(session, organization.id, user.id, invitation.role)
            await add_event(
                session,
                "invitation.accept",
                organization_id=organization.id,
                actor_user_id=user.id,
                target_type="invitation",
                target_id=invitation.id,
                details={"role": invitation.role},
            )
        self._signed_in.forget_user(user.id)
        return InvitationAccepted(
            organization_id=organization.id,
            organization_name=organization.name,
            role=Role(invitation.role),
        )


def _check_may_offer(actor_role: Role, role: Role) -> None:
    # Never a role above the inviter's own: an admin cannot make owners.
    if not actor_role.at_least(role):
        raise Forbidden(f"Offering the {role.value} role requires the {role.value} role or higher")


def _out(invitation: Invitation) -> InvitationOut:
    return InvitationOut(
        id=invitation.id,
        organization_id=invitation.organization_id,
        email=invitation.email,
        role=Role(invitation.role),
        invited_by_user_id=invitation.invited_by_user_id,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
        expired=invitation.expires_at <= utcnow(),
    )
