"""Request and response bodies of service tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from rivergen.identity.models import Role


class ApiTokenCreate(BaseModel):
    """A new service token: its name, its role (at most the creator's) and an optional expiry."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str = Field(min_length=1, max_length=100, pattern=r"^[^\x00]*$", examples=["ci-deploy"])
    role: Role = Role.MEMBER
    expires_at: AwareDatetime | None = Field(
        default=None, description="When the token stops working (with a time zone); null: never"
    )


class ApiTokenOut(BaseModel):
    """A service token as listed: never the token itself."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    role: Role
    created_by: int
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None


class ApiTokenCreated(BaseModel):
    """A service token just created: `token` is shown this once and cannot be read again."""

    id: int
    name: str
    role: Role
    token: str = Field(examples=["rgt_0Zb4..."])
    expires_at: datetime | None
    created_at: datetime
