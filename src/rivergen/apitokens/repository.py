"""Queries of service tokens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.apitokens.models import ApiToken
from rivergen.identity.models import Membership, User


async def add_token(session: AsyncSession, token: ApiToken) -> ApiToken:
    """Insert a token and return it with its id."""
    session.add(token)
    await session.flush()
    return token


async def list_tokens(
    session: AsyncSession, organization_id: int, limit: int, offset: int
) -> tuple[list[ApiToken], int]:
    """A page of an organization's tokens that are not revoked, oldest first, and the total."""
    where = (ApiToken.organization_id == organization_id, ApiToken.revoked_at.is_(None))
    rows = await session.execute(
        select(ApiToken).where(*where).order_by(ApiToken.id).limit(limit).offset(offset)
    )
    total = await session.execute(select(func.count(ApiToken.id)).where(*where))
    return list(rows.scalars()), int(total.scalar_one())


async def get_live_token(
    session: AsyncSession, organization_id: int, token_id: int
) -> ApiToken | None:
    """A token of the organization that is not revoked, locked for update where supported."""
    query = select(ApiToken).where(
        ApiToken.id == token_id,
        ApiToken.organization_id == organization_id,
        ApiToken.revoked_at.is_(None),
    )
    return (await session.execute(query.with_for_update())).scalar_one_or_none()


async def token_with_creator(
    session: AsyncSession, token_hash: str
) -> tuple[ApiToken, User, str | None] | None:
    """The token with this hash, its creator and the creator's role in its organization now."""
    query = (
        select(ApiToken, User, Membership.role)
        .join(User, User.id == ApiToken.created_by)
        .outerjoin(
            Membership,
            (Membership.user_id == ApiToken.created_by)
            & (Membership.organization_id == ApiToken.organization_id),
        )
        .where(ApiToken.token_hash == token_hash)
    )
    row = (await session.execute(query)).first()
    if row is None:
        return None
    token, user, role = row
    return token, user, role


async def touch(session: AsyncSession, token_id: int, now: datetime, older_than: datetime) -> None:
    """Set `last_used_at` unless it was set after `older_than` (one write a minute at most)."""
    await session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < older_than),
        )
        .values(last_used_at=now)
    )
