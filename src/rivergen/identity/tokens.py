"""Signed short-lived access tokens (JWT) and opaque rotating refresh tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import jwt

from rivergen.core.errors import Unauthorized

_ALGORITHM = "HS256"


@dataclass(frozen=True)
class AccessClaims:
    """What a valid access token says: the user and the sign-in session."""

    user_id: int
    session_id: str


class TokenCodec:
    """Issues and checks access tokens with a fixed issuer and audience."""

    def __init__(self, secret: str, issuer: str, audience: str, ttl_seconds: int) -> None:
        self._secret = secret
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds

    def issue(self, user_id: int, session_id: str, ttl_seconds: int | None = None) -> str:
        """A signed access token for `user_id` in `session_id`."""
        now = int(time.time())
        ttl = self.ttl_seconds if ttl_seconds is None else ttl_seconds
        claims = {
            "sub": str(user_id),
            "sid": session_id,
            "iat": now,
            "exp": now + ttl,
            "iss": self.issuer,
            "aud": self.audience,
            "jti": secrets.token_hex(8),
        }
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def decode(self, token: str) -> AccessClaims:
        """Check signature, expiry, issuer and audience; raise Unauthorized otherwise."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                issuer=self.issuer,
                audience=self.audience,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
            return AccessClaims(user_id=int(claims["sub"]), session_id=str(claims["sid"]))
        except jwt.ExpiredSignatureError:
            raise Unauthorized("The access token has expired") from None
        except (jwt.InvalidTokenError, KeyError, ValueError):
            raise Unauthorized("The access token is not valid") from None


def new_refresh_token(session_id: str) -> tuple[str, str]:
    """A fresh refresh token for `session_id` and the hash to store."""
    secret = secrets.token_urlsafe(32)
    return f"{session_id}.{secret}", hash_refresh_secret(secret)


def split_refresh_token(token: str) -> tuple[str, str] | None:
    """The session id and the secret's hash, or None for a malformed token."""
    session_id, dot, secret = token.partition(".")
    if not dot or not session_id or not secret or len(token) > 200:
        return None
    return session_id, hash_refresh_secret(secret)


def new_one_time_token() -> tuple[str, str]:
    """A random one-time token (an invitation's) and the hash to store instead of it."""
    secret = secrets.token_urlsafe(32)
    return secret, hash_refresh_secret(secret)


def hash_refresh_secret(secret: str) -> str:
    """SHA-256 of a refresh secret (the secret is random, so no salt is needed)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison of two hashes."""
    return hmac.compare_digest(a.encode(), b.encode())


def new_session_id() -> str:
    """A random id for a sign-in session."""
    return secrets.token_hex(16)
