"""security: rate counters shared by every server process (sign-ins, creation budgets)

Revision ID: 0009_rate_counters
Revises: 0008_invitations
Create Date: 2026-12-07 17:40:00

One row per counted key (a scope and a SHA-256, never an email or address in clear), bumped by
an atomic upsert, so replicas share one budget and concurrent attempts each see their own count.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_rate_counters"
down_revision: str | None = "0008_invitations"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create the rate_counters table."""
    op.create_table(
        "rate_counters",
        sa.Column("key", sa.String(length=96), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("window_ends", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_rate_counters")),
    )
    with op.batch_alter_table("rate_counters", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_rate_counters_window_ends"), ["window_ends"], unique=False
        )


def downgrade() -> None:
    """Drop the rate_counters table."""
    with op.batch_alter_table("rate_counters", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rate_counters_window_ends"))
    op.drop_table("rate_counters")
