"""Queries of the identity domain: users and sign-in sessions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.identity.models import AuthSession, User


async def get_user(session: AsyncSession, user_id: int) -> User | None:
    """The user with this id."""
    return await session.get(User, user_id)


async def get_user_by_email(session: AsyncSession, email: str) -> User | None:
    """The user with this email (emails are stored lower-case)."""
    result = await session.execute(select(User).where(User.email == email.lower()))
    return result.scalar_one_or_none()


async def count_users(session: AsyncSession) -> int:
    """How many users exist."""
    return int((await session.execute(select(func.count(User.id)))).scalar_one())


async def add_user(session: AsyncSession, email: str, password_hash: str) -> User:
    """Insert a user and return it with its id."""
    user = User(email=email.lower(), password_hash=password_hash, is_active=True)
    session.add(user)
    await session.flush()
    return user


async def add_auth_session(
    session: AsyncSession, session_id: str, user_id: int, token_hash: str, expires_at: datetime
) -> None:
    """Record a new sign-in session with its first refresh-token hash."""
    session.add(
        AuthSession(
            id=session_id, user_id=user_id, refresh_token_hash=token_hash, expires_at=expires_at
        )
    )
    await session.flush()


async def get_auth_session(session: AsyncSession, session_id: str) -> AuthSession | None:
    """A sign-in session, locked for update where the store supports it."""
    query = select(AuthSession).where(AuthSession.id == session_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def active_user_in_session(
    session: AsyncSession, user_id: int, session_id: str, now: datetime
) -> User | None:
    """The user, when active and signed in through a session that is neither revoked nor expired."""
    query = (
        select(User)
        .join(AuthSession, AuthSession.user_id == User.id)
        .where(
            User.id == user_id,
            User.is_active.is_(True),
            AuthSession.id == session_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
    )
    return (await session.execute(query)).scalar_one_or_none()


async def revoke_auth_session(
    session: AsyncSession, session_id: str, reason: str, now: datetime
) -> None:
    """Revoke a sign-in session: its refresh token and access tokens stop working."""
    await session.execute(
        update(AuthSession)
        .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )
