"""Tables of the alerts domain: channels, rules, per-source state, events and the outbox."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rivergen.store.base import Base, UTCDateTime, utcnow


class NotificationChannel(Base):
    """Where notifications go: a webhook, a Slack incoming webhook or an email address list."""

    __tablename__ = "notification_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(16))
    # The public part of the configuration; secrets (signing secret, Slack URL, SMTP password)
    # live encrypted in `secrets_ciphertext` as one JSON object.
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    secrets_ciphertext: Mapped[str] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AlertRule(Base):
    """Which sources are watched, how many outcomes make a transition, and who is told."""

    __tablename__ = "alert_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    channel_ids: Mapped[list[int]] = mapped_column(JSON)
    # None: every source of the organization.
    data_source_ids: Mapped[list[int] | None] = mapped_column(JSON, nullable=True)
    failures_before_alert: Mapped[int] = mapped_column(Integer, default=3)
    successes_before_recovery: Mapped[int] = mapped_column(Integer, default=1)
    renotify_minutes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    muted_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SourceMute(Base):
    """A maintenance window of one source: notifications about it wait until `muted_until`."""

    __tablename__ = "alert_source_mutes"

    data_source_id: Mapped[int] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True
    )
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    muted_until: Mapped[datetime] = mapped_column(UTCDateTime)


class AlertState(Base):
    """The state of one source under one rule: up or down, and the outcomes counted so far."""

    __tablename__ = "alert_states"

    rule_id: Mapped[int] = mapped_column(
        ForeignKey("alert_rules.id", ondelete="CASCADE"), primary_key=True
    )
    data_source_id: Mapped[int] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    state: Mapped[str] = mapped_column(String(8), default="up")
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    consecutive_successes: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    # Twice the interval after the last scheduled check: no check by then means the monitor
    # itself stopped (a `data_source.stale` event). None for sources without a schedule.
    stale_after: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True, index=True)
    stale: Mapped[bool] = mapped_column(Boolean, default=False)


class AlertEvent(Base):
    """One transition (or a test notification); its id is the webhook-id of every delivery."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_org_occurred", "organization_id", "occurred_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    rule_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    data_source_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    # The body every channel is sent, fixed when the event happened.
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)


class NotificationDelivery(Base):
    """The outbox: one row per event and channel, claimed by one dispatcher at a time."""

    __tablename__ = "notification_deliveries"
    __table_args__ = (Index("ix_notification_deliveries_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    event_id: Mapped[str] = mapped_column(
        ForeignKey("alert_events.id", ondelete="CASCADE"), index=True
    )
    channel_id: Mapped[int] = mapped_column(
        ForeignKey("notification_channels.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(8), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
