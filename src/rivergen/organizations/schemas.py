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
    """Add an existing user by email, or create the account when `password` is given."""

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
