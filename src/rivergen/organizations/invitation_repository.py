"""Queries of invitations."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.organizations.models import Invitation


async def add_invitation(
    session: AsyncSession,
    organization_id: int,
    email: str,
    role: str,
    token_hash: str,
    invited_by_user_id: int,
    expires_at: datetime,
) -> Invitation:
    """Insert a pending invitation."""
    invitation = Invitation(
        organization_id=organization_id,
        email=email,
        role=role,
        token_hash=token_hash,
        invited_by_user_id=invited_by_user_id,
        expires_at=expires_at,
    )
    session.add(invitation)
    await session.flush()
    return invitation


def _pending(organization_id: int) -> list[ColumnElement[bool]]:
    return [
        Invitation.organization_id == organization_id,
        Invitation.accepted_at.is_(None),
        Invitation.revoked_at.is_(None),
    ]


async def revoke_pending_for_email(
    session: AsyncSession, organization_id: int, email: str, now: datetime
) -> None:
    """Revoke an organization's pending invitations of one email (a new one replaces them)."""
    await session.execute(
        update(Invitation)
        .where(*_pending(organization_id), Invitation.email == email)
        .values(revoked_at=now)
    )


async def get_pending(
    session: AsyncSession, organization_id: int, invitation_id: int
) -> Invitation | None:
    """An organization's invitation that is neither accepted nor revoked."""
    query = select(Invitation).where(
        *_pending(organization_id),
        Invitation.id == invitation_id,
    )
    return (await session.execute(query)).scalar_one_or_none()


async def get_by_token_hash(session: AsyncSession, token_hash: str) -> Invitation | None:
    """The invitation whose token has this hash, in any state."""
    query = select(Invitation).where(Invitation.token_hash == token_hash)
    return (await session.execute(query)).scalar_one_or_none()


async def list_pending(
    session: AsyncSession, organization_id: int, limit: int, offset: int
) -> tuple[list[Invitation], int]:
    """A page of an organization's pending invitations (expired ones too), newest first."""
    base = select(Invitation).where(*_pending(organization_id))
    total_query = select(func.count()).select_from(base.subquery())
    total = int((await session.execute(total_query)).scalar_one())
    page = base.order_by(Invitation.id.desc()).limit(limit).offset(offset)
    return list((await session.execute(page)).scalars()), total


async def claim(session: AsyncSession, invitation_id: int, user_id: int, now: datetime) -> bool:
    """Mark a pending, unexpired invitation accepted; False when someone else got there first.

    One conditional UPDATE, so two requests presenting the same token at once cannot both
    succeed, on either store.
    """
    result = await session.execute(
        update(Invitation)
        .where(
            Invitation.id == invitation_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now,
        )
        .values(accepted_at=now, accepted_by_user_id=user_id)
    )
    return bool(getattr(result, "rowcount", 0) == 1)


async def revoke(session: AsyncSession, invitation_id: int, now: datetime) -> None:
    """Revoke one invitation."""
    await session.execute(
        update(Invitation).where(Invitation.id == invitation_id).values(revoked_at=now)
    )
