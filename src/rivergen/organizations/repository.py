"""Queries of organizations and memberships."""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.identity.models import Membership, Organization, User


async def memberships_of(
    session: AsyncSession, user_id: int
) -> list[tuple[Membership, Organization]]:
    """The user's memberships with their organizations, oldest first."""
    query = (
        select(Membership, Organization)
        .join(Organization, Organization.id == Membership.organization_id)
        .where(Membership.user_id == user_id)
        .order_by(Membership.id)
    )
    return [(m, o) for m, o in (await session.execute(query)).all()]


async def get_membership(
    session: AsyncSession, organization_id: int, user_id: int
) -> Membership | None:
    """A user's membership in one organization."""
    query = select(Membership).where(
        Membership.organization_id == organization_id, Membership.user_id == user_id
    )
    return (await session.execute(query)).scalar_one_or_none()


async def member_with_email(session: AsyncSession, organization_id: int, email: str) -> bool:
    """Whether the account with this email is a member of the organization."""
    query = (
        select(Membership.id)
        .join(User, User.id == Membership.user_id)
        .where(Membership.organization_id == organization_id, User.email == email.lower())
    )
    return (await session.execute(query)).first() is not None


async def get_organization(session: AsyncSession, organization_id: int) -> Organization | None:
    """The organization with this id."""
    return await session.get(Organization, organization_id)


async def get_organization_by_name(session: AsyncSession, name: str) -> Organization | None:
    """The organization with this name."""
    query = select(Organization).where(Organization.name == name)
    return (await session.execute(query)).scalar_one_or_none()


async def add_organization(session: AsyncSession, name: str) -> Organization:
    """Insert an organization."""
    organization = Organization(name=name)
    session.add(organization)
    await session.flush()
    return organization


async def add_membership(
    session: AsyncSession, organization_id: int, user_id: int, role: str
) -> Membership:
    """Give a user a role in an organization."""
    membership = Membership(organization_id=organization_id, user_id=user_id, role=role)
    session.add(membership)
    await session.flush()
    return membership


async def list_members(
    session: AsyncSession, organization_id: int, limit: int, offset: int
) -> tuple[list[tuple[Membership, User]], int]:
    """A page of an organization's members with their users, and the total."""
    base = select(Membership, User).join(User, User.id == Membership.user_id)
    base = base.where(Membership.organization_id == organization_id)
    rows = (await session.execute(base.order_by(Membership.id).limit(limit).offset(offset))).all()
    total_query = select(func.count(Membership.id)).where(
        Membership.organization_id == organization_id
    )
    total = int((await session.execute(total_query)).scalar_one())
    return [(m, u) for m, u in rows], total


async def lock_organization(session: AsyncSession, organization_id: int) -> None:
    """Serialise changes of an organization's owners until the transaction ends.

    PostgreSQL: a row lock on the organization (`SELECT ... FOR UPDATE`). SQLite has no row
    locks; a write that changes nothing takes the database's write lock at once, before the
    transaction reads anything (its reads would otherwise run before the lock, in autocommit),
    so a second writer waits (busy timeout) and then reads what the first committed.
    """
    if session.get_bind().dialect.name == "postgresql":
        query = select(Organization.id).where(Organization.id == organization_id)
        await session.execute(query.with_for_update())
        return
    await session.execute(
        update(Organization)
        .where(Organization.id == organization_id)
        .values(id=Organization.id)
        .execution_options(synchronize_session=False)
    )


async def count_owners(session: AsyncSession, organization_id: int) -> int:
    """How many owners an organization has."""
    query = select(func.count(Membership.id)).where(
        Membership.organization_id == organization_id, Membership.role == "owner"
    )
    return int((await session.execute(query)).scalar_one())


async def remove_membership(session: AsyncSession, organization_id: int, user_id: int) -> None:
    """Remove a user from an organization."""
    await session.execute(
        delete(Membership).where(
            Membership.organization_id == organization_id, Membership.user_id == user_id
        )
    )
