"""The console's sign-in cookies, CSRF check and security headers."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs

from fastapi import Request, Response

from rivergen.context import AppContext
from rivergen.core.errors import Forbidden, ServiceError, Unauthorized
from rivergen.identity.caller import Caller
from rivergen.identity.schemas import TokenPair

ACCESS = "rg_access"
REFRESH = "rg_refresh"
CSRF = "rg_csrf"
ORG = "rg_org"
# No inline script or style, nothing from another origin, never framed.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Console:
    """The signed-in console user of one request, and tokens to re-set if they were refreshed."""

    caller: Caller
    csrf: str
    renewed: TokenPair | None = None


def secure(request: Request) -> bool:
    """Whether cookies must carry Secure (the request came over HTTPS)."""
    return request.url.scheme == "https"


def set_tokens(response: Response, request: Request, pair: TokenPair) -> None:
    """Keep the token pair in HttpOnly, SameSite=Strict cookies, never readable by script."""
    for name, value in ((ACCESS, pair.access_token), (REFRESH, pair.refresh_token)):
        response.set_cookie(
            name, value, httponly=True, samesite="strict", secure=secure(request), path="/"
        )


def clear_tokens(response: Response) -> None:
    """Forget the sign-in and the chosen organization."""
    for name in (ACCESS, REFRESH, ORG):
        response.delete_cookie(name, path="/")


def csrf_token(request: Request) -> str:
    """The request's CSRF token: the cookie's when present, else a new one."""
    return request.cookies.get(CSRF) or secrets.token_urlsafe(32)


def set_csrf(response: Response, request: Request, token: str) -> None:
    """Double-submit cookie: a forged form cannot know it (SameSite=Strict keeps it home too)."""
    response.set_cookie(
        CSRF, token, httponly=True, samesite="strict", secure=secure(request), path="/"
    )


async def read_form(request: Request) -> dict[str, str]:
    """The urlencoded form, one value per field, after the CSRF check; FORBIDDEN on mismatch."""
    raw = (await request.body()).decode("utf-8", errors="replace")
    form = {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    cookie = request.cookies.get(CSRF, "")
    if not cookie or not hmac.compare_digest(cookie, form.get("csrf", "")):
        raise Forbidden("The form's CSRF token is missing or wrong; reload the page")
    return form


async def console_user(request: Request, context: AppContext) -> Console:
    """The console's signed-in caller from the cookies, refreshing an expired access token."""
    access, refresh = request.cookies.get(ACCESS), request.cookies.get(REFRESH)
    renewed: TokenPair | None = None
    if not access:
        raise Unauthorized("Not signed in")
    try:
        checked = await context.auth.signed_in(access)
    except ServiceError:
        if not refresh:
            raise Unauthorized("Not signed in") from None
        renewed = await context.auth.refresh(refresh)
        checked = await context.auth.signed_in(renewed.access_token)
    if not checked.roles:
        raise Forbidden("You are not a member of any organization")
    active = next(iter(checked.roles))
    wanted = request.cookies.get(ORG, "")
    if wanted.isdigit() and int(wanted) in checked.roles:
        active = int(wanted)
    caller = Caller(user=checked.user, roles=checked.roles, active_organization_id=active)
    return Console(caller=caller, csrf=csrf_token(request), renewed=renewed)
