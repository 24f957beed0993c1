"""health: covering index for history and summary; first due time of scheduled checks

Revision ID: 0002_health_window_index
Revises: 0001
Create Date: 2026-11-26 12:00:00

The history page and the summary both read one data source's records in a time window. The
index (data_source_id, tested_at, id, connection_successful, response_time_ms) replaces
(data_source_id, tested_at, id): same order for the keyset pagination, and it also covers the
columns the summary aggregates, so counting millions of records reads only the index.

Sources that had an interval but no due time (created before checks were scheduled) become due now.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from rivergen.store.base import UTCDateTime

revision: str = "0002_health_window_index"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("health_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_health_records_source_window",
            ["data_source_id", "tested_at", "id", "connection_successful", "response_time_ms"],
            unique=False,
        )
        batch_op.drop_index("ix_health_records_source_time")
    sources = sa.table(
        "data_sources",
        sa.column("health_check_interval_seconds", sa.Integer()),
        sa.column("next_check_at", UTCDateTime()),
    )
    op.execute(
        sources.update()
        .where(
            sources.c.health_check_interval_seconds.is_not(None),
            sources.c.next_check_at.is_(None),
        )
        .values(next_check_at=datetime.now(UTC))
    )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("health_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_health_records_source_time", ["data_source_id", "tested_at", "id"], unique=False
        )
        batch_op.drop_index("ix_health_records_source_window")
