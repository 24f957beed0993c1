"""One row per connection test of a saved data source."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from rivergen.store.base import Base, BoundedString, UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BigIntKey = BigInteger().with_variant(Integer, "sqlite")


class HealthRecord(Base):
    """The outcome of one test: who or what triggered it, result, latency, version."""

    __tablename__ = "health_records"
    __table_args__ = (
        # Serves the history page (keyset on tested_at, id) and, covering the two columns the
        # summary aggregates, lets the summary read only the index on both stores.
        Index(
            "ix_health_records_source_window",
            "data_source_id",
            "tested_at",
            "id",
            "connection_successful",
            "response_time_ms",
        ),
        # Last success / failure and the failures since the last success, by index seeks.
        Index(
            "ix_health_records_source_outcome",
            "data_source_id",
            "connection_successful",
            "tested_at",
        ),
        # Retention purge.
        Index("ix_health_records_tested_at", "tested_at"),
    )

    id: Mapped[int] = mapped_column(BigIntKey, primary_key=True, autoincrement=True)
    data_source_id: Mapped[int] = mapped_column(ForeignKey("data_sources.id", ondelete="CASCADE"))
    organization_id: Mapped[int] = mapped_column(Integer)
    tested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    connection_successful: Mapped[bool] = mapped_column(Boolean)
    response_time_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    error_code: Mapped[str | None] = mapped_column(String(40), nullable=True)
    error_message: Mapped[str | None] = mapped_column(Text, nullable=True)
    error_phase: Mapped[str | None] = mapped_column(String(16), nullable=True)
    ssh_tunnel_established: Mapped[bool] = mapped_column(Boolean, default=False)
    database_version: Mapped[str | None] = mapped_column(BoundedString(200), nullable=True)
    triggered_by: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class HealthRollup(Base):
    """Counts of one data source's records in one UTC hour, kept by triggers on health_records.

    The store's own triggers (migration 0003) add every inserted record and subtract every deleted
    one, whoever writes them, so summaries over long windows add up hours instead of records.
    Health records are append-only; an UPDATE of one would not be reflected here.
    """

    __tablename__ = "health_rollups"

    data_source_id: Mapped[int] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True
    )
    bucket: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    checks: Mapped[int] = mapped_column(Integer)
    successful: Mapped[int] = mapped_column(Integer)
    # Successful checks with a response time, and the sum of those times.
    timed: Mapped[int] = mapped_column(Integer)
    response_ms_sum: Mapped[float] = mapped_column(Float)


class HealthLatency(Base):
    """How many successful checks of a data source took each response time, kept by triggers.

    Probes report whole milliseconds, so a source has a few hundred distinct values at most, and
    the exact p95 of all its history is read from the top of this table, not from the records.
    """

    __tablename__ = "health_latencies"

    data_source_id: Mapped[int] = mapped_column(
        ForeignKey("data_sources.id", ondelete="CASCADE"), primary_key=True
    )
    response_time_ms: Mapped[float] = mapped_column(Float, primary_key=True)
    checks: Mapped[int] = mapped_column(Integer)
