"""The data-source table: plain configuration in JSON, secrets in one encrypted blob."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from rivergen.store.base import Base, BoundedString, UTCDateTime, utcnow


class DataSource(Base):
    """A registered database of one organization."""

    __tablename__ = "data_sources"
    __table_args__ = (
        UniqueConstraint("organization_id", "name"),
        Index("ix_data_sources_due", "next_check_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(32))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Non-secret connection fields; secret ones live only in `secrets_ciphertext`.
    connection: Mapped[dict[str, Any]] = mapped_column(JSON)
    ssh_tunnel: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    secrets_ciphertext: Mapped[str | None] = mapped_column(Text, nullable=True)
    # Names of the set secrets ({"connection": [...], "ssh_tunnel": [...]}), never their values:
    # reads show what is set without decrypting. None on rows written before it existed.
    secret_names: Mapped[dict[str, list[str]] | None] = mapped_column(JSON, nullable=True)
    # "connection.password" -> HMAC of the value (datasources/fingerprints.py), never a value.
    secret_fingerprints: Mapped[dict[str, str] | None] = mapped_column(JSON, nullable=True)
    health_check_interval_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    check_claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    status: Mapped[str] = mapped_column(String(16), default="pending")
    last_tested_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_connected_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_response_time_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    last_error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    last_error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_error_phase: Mapped[str | None] = mapped_column(String(16), nullable=True)
    database_version: Mapped[str | None] = mapped_column(BoundedString(200), nullable=True)
    ssh_host_key_fingerprint: Mapped[str | None] = mapped_column(String(100), nullable=True)

    created_by: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
