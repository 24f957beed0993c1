"""Request and response bodies of the auth endpoints."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class LoginRequest(BaseModel):
    """Email and password."""

    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(BaseModel):
    """A refresh token to exchange (refresh) or revoke (logout)."""

    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=400)


class TokenPair(BaseModel):
    """A new access token and the refresh token that replaces the previous one."""

    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class MembershipOut(BaseModel):
    """One of the caller's organizations and their role there."""

    organization_id: int
    organization_name: str
    role: str


class MeOut(BaseModel):
    """The signed-in user."""

    id: int
    email: str
    created_at: datetime
    organizations: list[MembershipOut]


class SignInOut(BaseModel):
    """One sign-in attempt on the caller's account."""

    id: int
    outcome: str
    client_address: str | None
    created_at: datetime
