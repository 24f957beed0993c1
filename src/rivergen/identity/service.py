"""Sign-in, token refresh with rotation and reuse detection, sign-out, and who-am-I."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.audit.repository import SIGN_IN, add_event, list_sign_ins
from rivergen.core.errors import RateLimited, Unauthorized
from rivergen.identity import repository as users
from rivergen.identity.models import Role, User
from rivergen.identity.passwords import verify_password
from rivergen.identity.schemas import MembershipOut, MeOut, SignInOut, TokenPair
from rivergen.identity.signed_in import SignedIn, SignedInCache
from rivergen.identity.tokens import (
    TokenCodec,
    new_refresh_token,
    new_session_id,
    same_hash,
    split_refresh_token,
)
from rivergen.organizations import repository as orgs
from rivergen.security.counters import Limit, StoreCounters
from rivergen.store.base import utcnow

# Password checks running at once: each holds a CPU and Argon2's memory while it runs, and a
# thread of the event loop's default executor, which host-name resolution needs too.
_CONCURRENT_VERIFICATIONS = 2


@dataclass
class LoginThrottle:
    """Sign-in attempts per account and per client address, counted in the store."""

    counters: StoreCounters
    per_account: int
    per_client: int
    window_seconds: float

    def account(self, email: str) -> Limit:
        """The account's limit."""
        return Limit("login-account", email, self.per_account, self.window_seconds)

    def client(self, client: str) -> Limit:
        """The client address's limit."""
        return Limit("login-client", client, self.per_client, self.window_seconds)

    async def reserve(self, email: str, client: str) -> None:
        """Count the attempt before it is checked; RATE_LIMITED when either limit is full.

        Reserving first (not recording after the Argon2 check) means N concurrent guesses
        cannot all pass a check none of them has been counted in yet.
        """
        wait = await self.counters.reserve(self.account(email), self.client(client))
        if wait is not None:
            raise RateLimited("Too many failed sign-in attempts; try again later", retry_after=wait)

    async def succeeded(self, email: str, client: str) -> None:
        """A right password: the account starts again and the address gets its attempt back."""
        await self.counters.reset(self.account(email))
        await self.counters.refund(self.client(client))


class AuthService:
    """The auth use cases; knows nothing of HTTP."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        codec: TokenCodec,
        throttle: LoginThrottle,
        refresh_ttl_seconds: int,
        signed_in: SignedInCache,
    ) -> None:
        self._sessions = sessions
        self._signed_in = signed_in
        self._codec = codec
        self._throttle = throttle
        self._refresh_ttl = timedelta(seconds=refresh_ttl_seconds)
        self._verifying = asyncio.Semaphore(_CONCURRENT_VERIFICATIONS)

    async def login(self, email: str, password: str, client: str) -> TokenPair:
        """Check the password and open a sign-in session."""
        email = email.strip().lower()
        await self._throttle.reserve(email, client)
        async with self._sessions() as session:
            user = await users.get_user_by_email(session, email)
        # Argon2 costs up to a second of CPU by design: in a worker thread, a few at a time and
        # holding no store connection, so a burst of sign-ins never stalls the event loop (every
        # other request, /healthz included) nor drains the store's connection pool.
        async with self._verifying:
            valid = await asyncio.to_thread(
                verify_password, password, user.password_hash if user else None
            )
        failure: Unauthorized | None = None
        async with self._sessions() as session, session.begin():
            if user is None or not valid or not user.is_active:
                await add_event(
                    session,
                    SIGN_IN,
                    actor_user_id=user.id if user else None,
                    outcome="failure",
                    details={"email": email},
                    client_address=client,
                )
                failure = Unauthorized("Invalid email or password")
            else:
                await add_event(session, SIGN_IN, actor_user_id=user.id, client_address=client)
                pair = await self._open_session(session, user)
        if failure is not None:
            raise failure
        await self._throttle.succeeded(email, client)
        return pair

    async def _open_session(self, session: AsyncSession, user: User) -> TokenPair:
        session_id = new_session_id()
        refresh_token, token_hash = new_refresh_token(session_id)
        expires_at = utcnow() + self._refresh_ttl
        await users.add_auth_session(session, session_id, user.id, token_hash, expires_at)
        return self._pair(user.id, session_id, refresh_token)

    def _pair(self, user_id: int, session_id: str, refresh_token: str) -> TokenPair:
        return TokenPair(
            access_token=self._codec.issue(user_id, session_id),
            refresh_token=refresh_token,
            expires_in=self._codec.ttl_seconds,
        )

    async def refresh(self, refresh_token: str) -> TokenPair:
        """Exchange a refresh token for a new pair; a reused old token revokes the session."""
        parts = split_refresh_token(refresh_token)
        if parts is None:
            raise Unauthorized("The refresh token is not valid")
        session_id, token_hash = parts
        now = utcnow()
        async with self._sessions() as session, session.begin():
            auth_session = await users.get_auth_session(session, session_id)
            if auth_session is None or auth_session.revoked_at is not None:
                raise Unauthorized("The refresh token is not valid")
            if auth_session.expires_at <= now:
                raise Unauthorized("The refresh token has expired")
            user = await users.get_user(session, auth_session.user_id)
            if user is None or not user.is_active:
                # A deactivated account cannot keep its sessions alive by rotating tokens.
                raise Unauthorized("The refresh token is not valid")
            if not same_hash(auth_session.refresh_token_hash, token_hash):
                # A rotated token came back: someone holds a copy. End the whole session.
                await users.revoke_auth_session(session, session_id, "reuse_detected", now)
                reused = Unauthorized("The refresh token was already used; the session is revoked")
            else:
                new_token, new_hash = new_refresh_token(session_id)
                auth_session.refresh_token_hash = new_hash
                return self._pair(auth_session.user_id, session_id, new_token)
        # After the commit, so that no check that read the store before it is kept.
        self._signed_in.forget_session(session_id)
        raise reused

    async def logout(self, refresh_token: str) -> None:
        """Revoke the session the refresh token belongs to."""
        parts = split_refresh_token(refresh_token)
        if parts is None:
            raise Unauthorized("The refresh token is not valid")
        session_id, token_hash = parts
        async with self._sessions() as session, session.begin():
            auth_session = await users.get_auth_session(session, session_id)
            if auth_session is None:
                raise Unauthorized("The refresh token is not valid")
            # A rotated token means a copy is around: end the session, as refresh would.
            reused = not same_hash(auth_session.refresh_token_hash, token_hash)
            reason = "reuse_detected" if reused else "logout"
            await users.revoke_auth_session(session, session_id, reason, utcnow())
        self._signed_in.forget_session(session_id)
        if reused:
            raise Unauthorized("The refresh token was already used; the session is revoked")

    async def signed_in(self, access_token: str) -> SignedIn:
        """The user and roles behind a valid access token whose session is still open."""
        claims = self._codec.decode(access_token)
        cached = self._signed_in.get(claims.session_id, claims.user_id)
        if cached is not None:
            return cached
        generation = self._signed_in.generation
        async with self._sessions() as session:
            user = await users.active_user_in_session(
                session, claims.user_id, claims.session_id, utcnow()
            )
            if user is None:
                raise Unauthorized("The access token is no longer valid")
            memberships = await orgs.memberships_of(session, user.id)
            # Ends the read transaction and returns the connection in one step.
            await session.commit()
        checked = SignedIn(
            user=user, roles={m.organization_id: Role(m.role) for m, _ in memberships}
        )
        self._signed_in.put(claims.session_id, checked, generation)
        return checked

    async def me(self, session: AsyncSession, user: User) -> MeOut:
        """The user with their organizations and roles."""
        memberships = await orgs.memberships_of(session, user.id)
        return MeOut(
            id=user.id,
            email=user.email,
            created_at=user.created_at,
            organizations=[
                MembershipOut(organization_id=o.id, organization_name=o.name, role=m.role)
                for m, o in memberships
            ],
        )

    async def sign_ins(
        self, session: AsyncSession, user: User, limit: int, offset: int
    ) -> tuple[list[SignInOut], int]:
        """A page of the user's own sign-in attempts, newest first."""
        rows, total = await list_sign_ins(session, user.id, limit, offset)
        items = [
            SignInOut(
                id=row.id,
                outcome=row.outcome,
                client_address=row.client_address,
                created_at=row.created_at,
            )
            for row in rows
        ]
        return items, total
