"""Service-token use cases: create, list, revoke, and sign a request in with a token."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.apitokens import repository as tokens
from rivergen.apitokens.models import ApiToken
from rivergen.apitokens.schemas import ApiTokenCreate, ApiTokenCreated, ApiTokenOut
from rivergen.apitokens.secret import new_token, token_hash, well_formed
from rivergen.audit.repository import add_event
from rivergen.core.errors import Forbidden, InvalidInput, NotFound, Unauthorized
from rivergen.core.time_bounds import clamped_utc
from rivergen.identity.caller import Caller
from rivergen.identity.models import Role, User
from rivergen.identity.signed_in import SignedIn, SignedInCache
from rivergen.store.base import utcnow

# `last_used_at` is precise to this much: a busy CI token writes once a minute, not per request.
TOUCH_INTERVAL = timedelta(seconds=60)
_CACHE_PREFIX = "rgt:"


def _weaker(a: Role, b: Role) -> Role:
    return a if a.rank <= b.rank else b


class ApiTokenService:
    """Creates, lists and revokes service tokens, and checks them on requests."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], signed_in: SignedInCache
    ) -> None:
        self._sessions = sessions
        # Shared with sign-in sessions: a membership change of the creator forgets their
        # tokens too (the entries carry the creator as their user).
        self._signed_in = signed_in

    async def create(
        self, caller: Caller, organization_id: int, body: ApiTokenCreate
    ) -> ApiTokenCreated:
        """Create a token (admin and up, a person): its role is at most the creator's."""
        caller.require(Role.ADMIN, organization_id)
        if caller.token_id is not None:
            # A token minting tokens would outlive its own revocation.
            raise Forbidden("A service token cannot create service tokens; sign in as a person")
        if not caller.roles[organization_id].at_least(body.role):
            raise Forbidden("A service token's role cannot be above your own")
        expires_at = clamped_utc(body.expires_at)
        if expires_at is not None and expires_at <= utcnow():
            raise InvalidInput(
                "expires_at must be in the future",
                details=[{"field": "expires_at", "message": "must be in the future"}],
            )
        token = new_token()
        async with self._sessions() as session, session.begin():
            row = await tokens.add_token(
                session,
                ApiToken(
                    organization_id=organization_id,
                    name=body.name,
                    role=body.role.value,
                    token_hash=token_hash(token),
                    created_by=caller.user.id,
                    expires_at=expires_at,
                ),
            )
            await add_event(
                session,
                "api_token.create",
                organization_id=organization_id,
                actor_user_id=caller.user.id,
                target_type="api_token",
                target_id=row.id,
                details={"name": row.name, "role": row.role},
            )
        return ApiTokenCreated(
            id=row.id,
            name=row.name,
            role=Role(row.role),
            token=token,
            expires_at=row.expires_at,
            created_at=row.created_at,
        )

    async def list(
        self, session: AsyncSession, caller: Caller, organization_id: int, limit: int, offset: int
    ) -> tuple[list[ApiTokenOut], int]:
        """A page of the organization's live tokens (admin and up), never the tokens."""
        caller.require(Role.ADMIN, organization_id)
        rows, total = await tokens.list_tokens(session, organization_id, limit, offset)
        return [ApiTokenOut.model_validate(row) for row in rows], total

    async def revoke(self, caller: Caller, organization_id: int, token_id: int) -> None:
        """Revoke a token (admin and up): at once here, within the auth cache elsewhere."""
        caller.require(Role.ADMIN, organization_id)
        async with self._sessions() as session, session.begin():
            row = await tokens.get_live_token(session, organization_id, token_id)
            if row is None:
                raise NotFound("Service token not found")
            row.revoked_at = utcnow()
            await add_event(
                session,
                "api_token.revoke",
                organization_id=organization_id,
                actor_user_id=caller.actor_user_id,
                actor_token_id=caller.token_id,
                target_type="api_token",
                target_id=row.id,
                details={"name": row.name},
            )
        # After the commit, so that no check that read the store before it is kept.
        self._signed_in.forget_session(_CACHE_PREFIX + row.token_hash)

    async def signed_in(self, token: str) -> SignedIn:
        """The organization and role a valid token acts with, or UNAUTHORIZED."""
        if not well_formed(token):
            raise Unauthorized("The service token is not valid")
        digest = token_hash(token)
        key = _CACHE_PREFIX + digest
        now = utcnow()
        cached = self._signed_in.get(key)
        if cached is not None:
            if cached.expires_at is None or cached.expires_at > now:
                return cached
            self._signed_in.forget_session(key)
        generation = self._signed_in.generation
        async with self._sessions() as session:
            found = await tokens.token_with_creator(session, digest)
            checked = _check(found, now)
            row = found[0] if found else None
            if row is not None and (
                row.last_used_at is None or row.last_used_at < now - TOUCH_INTERVAL
            ):
                await tokens.touch(session, row.id, now, now - TOUCH_INTERVAL)
            # Ends the transaction (the touch, if any) and returns the connection in one step.
            await session.commit()
        self._signed_in.put(key, checked, generation)
        return checked


def _check(found: tuple[ApiToken, User, str | None] | None, now: datetime) -> SignedIn:
    """The token's identity, or why it does not work."""
    if found is None:
        raise Unauthorized("The service token is not valid")
    row, user, creator_role = found
    if row.revoked_at is not None:
        raise Unauthorized("The service token has been revoked")
    if row.expires_at is not None and row.expires_at <= now:
        raise Unauthorized("The service token has expired")
    if not user.is_active or creator_role is None:
        # A token never acts above its creator: it ends with the creator's membership.
        raise Unauthorized("The service token's creator is no longer a member")
    role = _weaker(Role(row.role), Role(creator_role))
    return SignedIn(
        user=user, roles={row.organization_id: role}, token_id=row.id, expires_at=row.expires_at
    )
