"""Request dependencies: the application context, a store session, the caller and their roles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.ext.asyncio import AsyncSession

from rivergen.apitokens.secret import looks_like_token
from rivergen.context import AppContext
from rivergen.core.errors import Forbidden, NotFound, Unauthorized
from rivergen.identity.caller import Caller
from rivergen.identity.models import User
from rivergen.identity.signed_in import SignedIn

NO_ORGANIZATION = "User is not a member of any organization"


async def get_context(request: Request) -> AppContext:
    """The application context created by the lifespan.

    `async` although it awaits nothing: FastAPI runs a plain `def` dependency in its thread
    pool, a thread hop on every request (about 0.3 ms idle, several ms on a busy machine).
    """
    context: AppContext = request.app.state.context
    return context


Context = Annotated[AppContext, Depends(get_context)]


async def db_session(context: Context) -> AsyncIterator[AsyncSession]:
    """One store session per request; services open their own transactions on it."""
    # Test outcomes are written just after their answer: a read issued after an answer
    # waits for that write (a few ms at most), so a client always reads its own test.
    await context.tests.settled()
    async with context.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(db_session)]


def bearer_token(request: Request) -> str:
    """The token of an `Authorization: Bearer ...` header, or UNAUTHORIZED."""
    header = request.headers.get("authorization")
    if not header:
        raise Unauthorized("Missing bearer token")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Malformed authorization header; expected 'Bearer <token>'")
    return token.strip()


async def signed_in(request: Request, context: Context) -> SignedIn:
    """The signed-in user (or service token) and their roles, or UNAUTHORIZED."""
    token = bearer_token(request)
    if looks_like_token(token):
        return await context.api_tokens.signed_in(token)
    return await context.auth.signed_in(token)


SignedInCaller = Annotated[SignedIn, Depends(signed_in)]


async def current_user(checked: SignedInCaller) -> User:
    """The signed-in person, or UNAUTHORIZED; FORBIDDEN for a service token."""
    if checked.token_id is not None:
        # Routes about a person (their profile, their organizations) are not a token's business.
        raise Forbidden("This route needs a signed-in person, not a service token")
    return checked.user


CurrentUser = Annotated[User, Depends(current_user)]


async def current_caller(
    checked: SignedInCaller,
    x_organization_id: Annotated[str | None, Header()] = None,
) -> Caller:
    """The caller with their memberships; FORBIDDEN when they belong to no organization."""
    if not checked.roles:
        raise Forbidden(NO_ORGANIZATION)
    active = next(iter(checked.roles))
    if x_organization_id is not None:
        try:
            active = int(x_organization_id)
        except ValueError:
            raise NotFound("Organization not found") from None
        if active not in checked.roles:
            raise NotFound("Organization not found")
    return Caller(
        user=checked.user,
        roles=checked.roles,
        active_organization_id=active,
        token_id=checked.token_id,
    )


CurrentCaller = Annotated[Caller, Depends(current_caller)]
