"""Request and response bodies of channels, rules, mutes, events and deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field

from rivergen.datasources.schemas import MASK

ChannelType = Literal["webhook", "slack", "email"]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
_NAME = Field(min_length=1, max_length=200, pattern=r"^[^\x00]*$")
_URL = Field(min_length=1, max_length=2048, pattern=r"^[^\x00\s]*$")


class UrlConfig(BaseModel):
    """Webhook and Slack: the URL (Slack's is a secret, shown as "********")."""

    model_config = ConfigDict(extra="forbid")

    url: str = _URL


class EmailConfig(BaseModel):
    """Email over SMTP; `password` is write-only."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=253, pattern=r"^[^\x00\s]*$")
    port: int = Field(default=587, ge=1, le=65535)
    security: Literal["starttls", "tls", "none"] = "starttls"
    username: str | None = Field(default=None, max_length=320, pattern=r"^[^\x00]*$")
    password: str | None = Field(default=None, max_length=1024, pattern=r"^[^\x00]*$")
    from_: EmailStr = Field(alias="from")
    to: list[EmailStr] = Field(min_length=1, max_length=50)


class ChannelCreate(BaseModel):
    """A new channel."""

    model_config = ConfigDict(extra="forbid")

    name: str = _NAME
    type: ChannelType
    config: UrlConfig | EmailConfig
    enabled: bool = True


class ChannelUpdate(BaseModel):
    """Changes to a channel; secrets omitted or sent as "********" are kept."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    config: UrlConfig | EmailConfig | None = None
    enabled: bool | None = None


class ChannelOut(BaseModel):
    """A channel as shown: secrets masked; `secret` only in the answer that made it."""

    id: int
    organization_id: int
    name: str
    type: ChannelType
    config: dict[str, Any]
    enabled: bool
    created_at: datetime
    updated_at: datetime
    secret: str | None = Field(
        default=None,
        description="The webhook signing secret (whsec_...): shown once, on create and rotate",
    )


class RuleCreate(BaseModel):
    """A new alert rule."""

    model_config = ConfigDict(extra="forbid")

    name: str = _NAME
    channel_ids: list[Id] = Field(min_length=1, max_length=20)
    data_source_ids: list[Id] | None = Field(default=None, max_length=1000)
    failures_before_alert: int = Field(default=3, ge=1, le=1000)
    successes_before_recovery: int = Field(default=1, ge=1, le=1000)
    renotify_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    enabled: bool = True
    muted_until: datetime | None = None


class RuleUpdate(BaseModel):
    """Changes to a rule; `data_source_ids`, `renotify_minutes`, `muted_until` accept null."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200, pattern=r"^[^\x00]*$")
    channel_ids: list[Id] | None = Field(default=None, min_length=1, max_length=20)
    data_source_ids: list[Id] | None = Field(default=None, max_length=1000)
    failures_before_alert: int | None = Field(default=None, ge=1, le=1000)
    successes_before_recovery: int | None = Field(default=None, ge=1, le=1000)
    renotify_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    enabled: bool | None = None
    muted_until: datetime | None = None


class RuleOut(BaseModel):
    """A rule as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    organization_id: int
    name: str
    channel_ids: list[int]
    data_source_ids: list[int] | None
    failures_before_alert: int
    successes_before_recovery: int
    renotify_minutes: int | None
    enabled: bool
    muted_until: datetime | None
    created_at: datetime
    updated_at: datetime


class SourceMuteIn(BaseModel):
    """A maintenance window of one source (null ends it)."""

    model_config = ConfigDict(extra="forbid")

    muted_until: datetime | None


class SourceMuteOut(BaseModel):
    """The mute of one source."""

    data_source_id: int
    muted_until: datetime | None


class AlertEventOut(BaseModel):
    """An event and the body its channels are sent."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    type: str
    occurred_at: datetime
    data_source_id: int | None
    rule_id: int | None
    payload: dict[str, Any]


class DeliveryOut(BaseModel):
    """One event's delivery to one channel."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    event_id: str
    channel_id: int
    status: Literal["pending", "sent", "failed"]
    attempts: int
    last_status_code: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    sent_at: datetime | None
    created_at: datetime


__all__ = ["MASK"]
