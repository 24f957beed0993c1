"""data_sources: keyed fingerprints of the set secrets, for declarative clients

Revision ID: 0007_secret_fingerprints
Revises: 0006_alerts
Create Date: 2026-12-07 17:05:00

`secret_fingerprints` holds an HMAC of each set secret (src/rivergen/datasources/fingerprints.py),
never a value. Existing rows keep NULL (no fingerprints shown) until their next write or key
rotation.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_secret_fingerprints"
down_revision: str | None = "0006_alerts"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column."""
    with op.batch_alter_table("data_sources") as batch:
        batch.add_column(sa.Column("secret_fingerprints", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("data_sources") as batch:
        batch.drop_column("secret_fingerprints")
