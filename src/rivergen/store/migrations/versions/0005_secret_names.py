"""data_sources: names of the set secrets, so that reads need not decrypt

Revision ID: 0005_secret_names
Revises: 0004_api_tokens
Create Date: 2026-12-07 17:00:00

`secret_names` holds the names (never the values) of the secrets in `secrets_ciphertext`.
Existing rows keep NULL: the service reads them the old way until their next write, and
`rivergen rotate-keys` fills it in for every row it can decrypt.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_secret_names"
down_revision: str | None = "0004_api_tokens"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add the nullable column."""
    with op.batch_alter_table("data_sources") as batch:
        batch.add_column(sa.Column("secret_names", sa.JSON(), nullable=True))


def downgrade() -> None:
    """Drop it again."""
    with op.batch_alter_table("data_sources") as batch:
        batch.drop_column("secret_names")
