"""Request and response bodies of organizations and members."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from rivergen.core.email import Email
from rivergen.identity.models import Role


class OrganizationCreate(BaseModel):
    """A new organization; the creator becomes its owner."""

    # Stripped before the length check: a name of blanks is no name.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=200)


class OrganizationOut(BaseModel):
    """An organization and the caller's role in it."""

    id: int
    name: str
    role: Role
    created_at: datetime


class MemberAdd(BaseModel):
    """Create an account with `password` and add it; existing accounts are invited instead."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    role: Role = Role.MEMBER
    password: str | None = Field(default=None, min_length=8, max_length=1024)


class MemberUpdate(BaseModel):
    """A new role for a member."""

    model_config = ConfigDict(extra="forbid")

    role: Role


class MemberOut(BaseModel):
    """A member of an organization."""

    user_id: int
    email: str
    role: Role
    joined_at: datetime


class MemberCreated(BaseModel):
    """What the member endpoint says, the same whether or not the email had an account."""

    email: str
    role: Role


class InvitationCreate(BaseModel):
    """Invite an email to a role (never above the inviter's own)."""

    model_config = ConfigDict(extra="forbid")

    email: Email
    role: Role = Role.MEMBER


class InvitationOut(BaseModel):
    """A pending invitation (its token is never shown again after creation)."""

    id: int
    organization_id: int
    email: str
    role: Role
    invited_by_user_id: int | None
    created_at: datetime
    expires_at: datetime
    expired: bool


class InvitationCreated(InvitationOut):
    """A new invitation with its one-time token, shown this once to hand to the invitee."""

    token: str


class InvitationAccept(BaseModel):
    """The token of an invitation, presented by the signed-in invitee."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=200)


class InvitationAccepted(BaseModel):
    """The organization joined and the role in it."""

    organization_id: int
    organization_name: str
    role: Role
