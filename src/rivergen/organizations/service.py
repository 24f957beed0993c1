"""Organization and membership use cases, including the bootstrap of the first admin."""

from __future__ import annotations

import asyncio

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.audit.repository import add_event
from rivergen.core.errors import Conflict, Forbidden, InvalidInput, NotFound
from rivergen.identity import repository as users
from rivergen.identity.models import Role, User
from rivergen.identity.passwords import hash_password
from rivergen.identity.signed_in import SignedInCache
from rivergen.organizations import repository as orgs
from rivergen.organizations.schemas import MemberCreated, MemberOut, OrganizationOut
from rivergen.security.counters import CreationLimits

MUST_INVITE = "required: accounts that may already exist are invited, not added"


class OrganizationService:
    """Creates organizations and manages who belongs to them with which role."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        signed_in: SignedInCache,
        creation: CreationLimits | None = None,
    ) -> None:
        self._sessions = sessions
        # None only for the command line (create-user, bootstrap), which has no per-user budget.
        self._creation = creation
        # Every membership change makes this process forget the member's verified sessions.
        self._signed_in = signed_in

    async def create(self, user: User, name: str) -> OrganizationOut:
        """Create an organization owned by `user` (within the user's daily budget)."""
        if self._creation is not None:
            await self._creation.organization(user.id)
        try:
            async with self._sessions() as session, session.begin():
                organization = await orgs.add_organization(session, name.strip())
                await orgs.add_membership(session, organization.id, user.id, Role.OWNER.value)
                await add_event(
                    session,
                    "organization.create",
                    organization_id=organization.id,
                    actor_user_id=user.id,
                    target_type="organization",
                    target_id=organization.id,
                )
        except IntegrityError:
            raise Conflict("An organization with this name already exists") from None
        self._signed_in.forget_user(user.id)
        return OrganizationOut(
            id=organization.id,
            name=organization.name,
            role=Role.OWNER,
            created_at=organization.created_at,
        )

    async def list_for(
        self, session: AsyncSession, user: User, roles: dict[int, Role]
    ) -> list[OrganizationOut]:
        """The user's organizations among `roles` (the verified caller's), with those roles."""
        return [
            OrganizationOut(id=o.id, name=o.name, role=roles[o.id], created_at=o.created_at)
            for _, o in await orgs.memberships_of(session, user.id)
            if o.id in roles
        ]

    async def members(
        self, session: AsyncSession, organization_id: int, limit: int, offset: int
    ) -> tuple[list[MemberOut], int]:
        """A page of members."""
        rows, total = await orgs.list_members(session, organization_id, limit, offset)
        return [_member_out(m.role, u, m.created_at) for m, u in rows], total

    async def add_member(
        self,
        actor: User,
        actor_role: Role,
        organization_id: int,
        email: str,
        role: Role,
        password: str | None,
    ) -> MemberCreated:
        """Create a new account with `password` and add it; change nothing for an existing one.

        The answer is the same either way, so that it does not tell whether an email has an
        account; an existing account joins only through an invitation it accepts.
        """
        _check_may_grant(actor_role, role)
        if password is None:
            raise InvalidInput(
                "Existing accounts join by invitation: POST "
                f"/api/v1/organizations/{organization_id}/invitations; send a password to "
                "create a new account",
                [{"field": "body.password", "message": MUST_INVITE, "type": "missing"}],
            )
        if self._creation is not None:
            # Counted whether or not the email has an account: a 429 must not tell either.
            await self._creation.account(actor.id)
        email = email.strip().lower()
        # Hashed whether or not the account exists: the answer takes the same time.
        password_hash = await _hashed(password)
        created: User | None = None
        try:
            async with self._sessions() as session, session.begin():
                if await users.get_user_by_email(session, email) is None:
                    created = await users.add_user(session, email, password_hash)
                    await orgs.add_membership(session, organization_id, created.id, role.value)
                    await add_event(
                        session,
                        "member.add",
                        organization_id=organization_id,
                        actor_user_id=actor.id,
                        target_type="user",
                        target_id=created.id,
                        details={"role": role.value},
                    )
        except IntegrityError:
            created = None  # created at the same moment by someone else: it exists
        if created is not None:
            self._signed_in.forget_user(created.id)
        return MemberCreated(email=email, role=role)

    async def change_role(
        self, actor: User, actor_role: Role, organization_id: int, user_id: int, role: Role
    ) -> MemberOut:
        """Change a member's role; the last owner keeps theirs."""
        async with self._sessions() as session, session.begin():
            # Before reading: two owners demoting each other at once must not both see two.
            await orgs.lock_organization(session, organization_id)
            actor_role = await _current_role(session, organization_id, actor, actor_role)
            membership = await orgs.get_membership(session, organization_id, user_id)
            user = await users.get_user(session, user_id)
            if membership is None or user is None:
                raise NotFound("Member not found")
            _check_may_grant(actor_role, Role(membership.role))
            _check_may_grant(actor_role, role)
            demoting_owner = membership.role == Role.OWNER.value and role != Role.OWNER
            if demoting_owner and await orgs.count_owners(session, organization_id) <= 1:
                raise Conflict("The last owner cannot be demoted")
            membership.role = role.value
            await add_event(
                session,
                "member.update",
                organization_id=organization_id,
                actor_user_id=actor.id,
                target_type="user",
                target_id=user_id,
                details={"role": role.value},
            )
        self._signed_in.forget_user(user_id)
        return _member_out(role.value, user, membership.created_at)

    async def remove_member(
        self, actor: User, actor_role: Role, organization_id: int, user_id: int
    ) -> None:
        """Remove a member; the last owner cannot be removed."""
        async with self._sessions() as session, session.begin():
            await orgs.lock_organization(session, organization_id)
            actor_role = await _current_role(session, organization_id, actor, actor_role)
            membership = await orgs.get_membership(session, organization_id, user_id)
            if membership is None:
                raise NotFound("Member not found")
            _check_may_grant(actor_role, Role(membership.role))
            removing_owner = membership.role == Role.OWNER.value
            if removing_owner and await orgs.count_owners(session, organization_id) <= 1:
                raise Conflict("The last owner cannot be removed")
            await orgs.remove_membership(session, organization_id, user_id)
            await add_event(
                session,
                "member.remove",
                organization_id=organization_id,
                actor_user_id=actor.id,
                target_type="user",
                target_id=user_id,
            )
        self._signed_in.forget_user(user_id)

    async def bootstrap(self, email: str, password: str, organization_name: str) -> bool:
        """On an empty store, create the first organization and its owner; never overwrites."""
        async with self._sessions() as session, session.begin():
            if await users.count_users(session) > 0:
                return False
            user = await users.add_user(session, email, await _hashed(password))
            organization = await orgs.get_organization_by_name(session, organization_name)
            if organization is None:
                organization = await orgs.add_organization(session, organization_name)
            await orgs.add_membership(session, organization.id, user.id, Role.OWNER.value)
            await add_event(
                session,
                "bootstrap",
                organization_id=organization.id,
                actor_user_id=user.id,
                target_type="user",
                target_id=user.id,
            )
        return True

    async def create_user(
        self, email: str, password: str, organization_name: str | None, role: Role
    ) -> User:
        """Create a user (CLI), optionally in an organization created on demand."""
        async with self._sessions() as session, session.begin():
            if await users.get_user_by_email(session, email) is not None:
                raise Conflict(f"A user with the email {email} already exists")
            user = await users.add_user(session, email, await _hashed(password))
            if organization_name:
                organization = await orgs.get_organization_by_name(session, organization_name)
                if organization is None:
                    organization = await orgs.add_organization(session, organization_name)
                await orgs.add_membership(session, organization.id, user.id, role.value)
        return user


async def _hashed(password: str) -> str:
    # Argon2 costs up to a second of CPU by design: off the event loop, in a worker thread.
    return await asyncio.to_thread(hash_password, password)


async def _current_role(
    session: AsyncSession, organization_id: int, actor: User, signed_in_role: Role
) -> Role:
    # The caller's role as the store has it under the lock, not as this process cached it a
    # few seconds ago: an owner just demoted by another must not act as an owner any more.
    # Never above the role the request signed in with (a service token's may be lower).
    membership = await orgs.get_membership(session, organization_id, actor.id)
    if membership is None:
        raise NotFound("Organization not found")
    role = min(Role(membership.role), signed_in_role, key=lambda r: r.rank)
    if not role.at_least(Role.ADMIN):
        raise Forbidden(f"This action requires the {Role.ADMIN.value} role or higher")
    return role


def _check_may_grant(actor_role: Role, role: Role) -> None:
    # Only owners may hand out, change or take away the owner role.
    if role == Role.OWNER and actor_role != Role.OWNER:
        raise Forbidden("Only an owner can grant, change or remove the owner role")


def _member_out(role: str, user: User, joined_at: object) -> MemberOut:
    return MemberOut.model_validate(
        {"user_id": user.id, "email": user.email, "role": role, "joined_at": joined_at}
    )
