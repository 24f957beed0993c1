"""Rate counters kept in the metadata store, so every server process shares them."""

from __future__ import annotations

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from rivergen.store.base import Base


class RateCounter(Base):
    """Hits of one key (a scope and the SHA-256 of what it counts) in its current window."""

    __tablename__ = "rate_counters"

    key: Mapped[str] = mapped_column(String(96), primary_key=True)
    hits: Mapped[int] = mapped_column(Integer)
    # Unix time at which the window ends and the count starts again from zero.
    window_ends: Mapped[float] = mapped_column(Float, index=True)
