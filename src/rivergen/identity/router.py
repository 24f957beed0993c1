"""HTTP routes of sign-in, refresh, sign-out and who-am-I."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from rivergen.api.deps import Context, CurrentUser, Session
from rivergen.api.envelope import Envelope, Page, error_responses, ok
from rivergen.api.params import Offset
from rivergen.identity.schemas import LoginRequest, MeOut, RefreshRequest, SignInOut, TokenPair

router = APIRouter(prefix="/auth", tags=["auth"])


def client_address(request: Request) -> str:
    """The peer address of the request (used for throttling and audit)."""
    return request.client.host if request.client else "unknown"


@router.post(
    "/login",
    response_model=Envelope[TokenPair],
    responses=error_responses(400, 401, 422, 429),
    summary="Sign in with email and password",
)
async def login(body: LoginRequest, request: Request, context: Context) -> dict[str, Any]:
    """Exchange email and password for an access and a refresh token."""
    pair = await context.auth.login(body.email, body.password, client_address(request))
    return ok(pair.model_dump(), "Login successful")


@router.post(
    "/refresh",
    response_model=Envelope[TokenPair],
    responses=error_responses(400, 401, 422),
    summary="Rotate the refresh token",
)
async def refresh(body: RefreshRequest, context: Context) -> dict[str, Any]:
    """Exchange a refresh token for a new pair; the old refresh token stops working."""
    pair = await context.auth.refresh(body.refresh_token)
    return ok(pair.model_dump(), "Token refreshed")


@router.post(
    "/logout",
    response_model=Envelope[None],
    responses=error_responses(400, 401, 422),
    summary="Revoke the session",
)
async def logout(body: RefreshRequest, context: Context) -> dict[str, Any]:
    """Revoke the sign-in session of this refresh token and every access token of it."""
    await context.auth.logout(body.refresh_token)
    return ok(None, "Logged out")


@router.get(
    "/me",
    response_model=Envelope[MeOut],
    responses=error_responses(401, 403),
    summary="The signed-in user",
)
async def me(user: CurrentUser, session: Session, context: Context) -> dict[str, Any]:
    """The signed-in user and their organizations."""
    data = await context.auth.me(session, user)
    return ok(data.model_dump(mode="json"), "Current user")


@router.get(
    "/me/sign-ins",
    response_model=Envelope[Page[SignInOut]],
    responses=error_responses(401, 422),
    summary="The signed-in user's sign-in attempts",
)
async def my_sign_ins(
    user: CurrentUser,
    session: Session,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> dict[str, Any]:
    """The caller's own sign-in attempts (successful and failed, with addresses), newest first."""
    items, total = await context.auth.sign_ins(session, user, limit, offset)
    data = {"items": [i.model_dump(mode="json") for i in items], "total": total}
    return ok(data, "Sign-ins retrieved")
