"""health: hourly rollups and latency counts kept by triggers; index for the last outcomes

Revision ID: 0003_health_rollups
Revises: 0002_health_window_index
Create Date: 2026-11-26 12:30:00

A summary over all retained history of a source checked every 2 s reads about a million
records. `health_rollups` holds, per source and UTC hour, the count of checks, of successes, of
timed successes and the sum of their response times, so such a summary adds up a few hundred
rows instead. The store maintains it itself, with triggers on `health_records`, so records
written by any path (the service, a bulk load, COPY) are counted and purged ones subtracted:

* SQLite: row triggers (AFTER INSERT / AFTER DELETE) with an UPSERT.
* PostgreSQL: statement triggers with transition tables, one grouped UPSERT per statement (a
  COPY of a million rows, or a purge batch, touches each hour once).

`health_latencies` counts the successful checks of each source per response time (whole
milliseconds from the probes: a few hundred distinct values), so the exact p95 of all history is
read from the top of that table. The index (data_source_id, connection_successful, tested_at)
serves the last success and failure and the failures since.

SQLite drops a table's triggers with the table: a later batch migration that recreates
`health_records` must create these triggers again.
"""

# The SQL below is assembled from constants of this file only.
# ruff: noqa: S608

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from rivergen.store.base import UTCDateTime

revision: str = "0003_health_rollups"
down_revision: str | None = "0002_health_window_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The hour of a record, in each store's storage form of a UTC timestamp (colons escaped for
# SQLAlchemy's text(), which would read ":00" as a parameter).
SQLITE_HOUR = "substr({row}.tested_at, 1, 13) || '\\:00\\:00.000000'"
PG_HOUR = "date_trunc('hour', {row}.tested_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"

SQLITE_TRIGGERS = [
    f"""
    CREATE TRIGGER health_records_rollup_insert AFTER INSERT ON health_records
    BEGIN
        INSERT INTO health_rollups
            (data_source_id, bucket, checks, successful, timed, response_ms_sum)
        VALUES (
            NEW.data_source_id,
            {SQLITE_HOUR.format(row="NEW")},
            1,
            CASE WHEN NEW.connection_successful THEN 1 ELSE 0 END,
            CASE WHEN NEW.connection_successful AND NEW.response_time_ms IS NOT NULL
                 THEN 1 ELSE 0 END,
            CASE WHEN NEW.connection_successful THEN coalesce(NEW.response_time_ms, 0)
                 ELSE 0 END
        )
        ON CONFLICT (data_source_id, bucket) DO UPDATE SET
            checks = checks + excluded.checks,
            successful = successful + excluded.successful,
            timed = timed + excluded.timed,
            response_ms_sum = response_ms_sum + excluded.response_ms_sum;
    END
    """,
    f"""
    CREATE TRIGGER health_records_rollup_delete AFTER DELETE ON health_records
    BEGIN
        UPDATE health_rollups SET
            checks = checks - 1,
            successful = successful - CASE WHEN OLD.connection_successful THEN 1 ELSE 0 END,
            timed = timed - CASE WHEN OLD.connection_successful
                                  AND OLD.response_time_ms IS NOT NULL THEN 1 ELSE 0 END,
            response_ms_sum = response_ms_sum - CASE WHEN OLD.connection_successful
                                  THEN coalesce(OLD.response_time_ms, 0) ELSE 0 END
        WHERE data_source_id = OLD.data_source_id AND bucket = {SQLITE_HOUR.format(row="OLD")};
        DELETE FROM health_rollups
        WHERE data_source_id = OLD.data_source_id
          AND bucket = {SQLITE_HOUR.format(row="OLD")}
          AND checks <= 0;
    END
    """,
    """
    CREATE TRIGGER health_records_latency_insert AFTER INSERT ON health_records
    WHEN NEW.connection_successful AND NEW.response_time_ms IS NOT NULL
    BEGIN
        INSERT INTO health_latencies (data_source_id, response_time_ms, checks)
        VALUES (NEW.data_source_id, NEW.response_time_ms, 1)
        ON CONFLICT (data_source_id, response_time_ms) DO UPDATE SET checks = checks + 1;
    END
    """,
    """
    CREATE TRIGGER health_records_latency_delete AFTER DELETE ON health_records
    WHEN OLD.connection_successful AND OLD.response_time_ms IS NOT NULL
    BEGIN
        UPDATE health_latencies SET checks = checks - 1
        WHERE data_source_id = OLD.data_source_id AND response_time_ms = OLD.response_time_ms;
        DELETE FROM health_latencies
        WHERE data_source_id = OLD.data_source_id
          AND response_time_ms = OLD.response_time_ms
          AND checks <= 0;
    END
    """,
]

PG_GROUPED = f"""
    SELECT data_source_id,
           {PG_HOUR.format(row="changed")} AS bucket,
           count(*) AS checks,
           count(*) FILTER (WHERE connection_successful) AS successful,
           count(response_time_ms) FILTER (WHERE connection_successful) AS timed,
           coalesce(sum(response_time_ms) FILTER (WHERE connection_successful), 0)
               AS response_ms_sum
    FROM changed_rows AS changed
    GROUP BY 1, 2
"""

PG_LATENCIES = """
    SELECT data_source_id, response_time_ms, count(*) AS checks
    FROM changed_rows
    WHERE connection_successful AND response_time_ms IS NOT NULL
    GROUP BY 1, 2
"""

PG_TRIGGERS = [
    f"""
    CREATE FUNCTION health_rollups_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO health_rollups
            (data_source_id, bucket, checks, successful, timed, response_ms_sum)
        {PG_GROUPED}
        ON CONFLICT (data_source_id, bucket) DO UPDATE SET
            checks = health_rollups.checks + excluded.checks,
            successful = health_rollups.successful + excluded.successful,
            timed = health_rollups.timed + excluded.timed,
            response_ms_sum = health_rollups.response_ms_sum + excluded.response_ms_sum;
        INSERT INTO health_latencies (data_source_id, response_time_ms, checks)
        {PG_LATENCIES}
        ON CONFLICT (data_source_id, response_time_ms) DO UPDATE SET
            checks = health_latencies.checks + excluded.checks;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE FUNCTION health_rollups_subtract() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        UPDATE health_rollups AS r SET
            checks = r.checks - g.checks,
            successful = r.successful - g.successful,
            timed = r.timed - g.timed,
            response_ms_sum = r.response_ms_sum - g.response_ms_sum
        FROM ({PG_GROUPED}) AS g
        WHERE r.data_source_id = g.data_source_id AND r.bucket = g.bucket;
        DELETE FROM health_rollups WHERE checks <= 0;
        UPDATE health_latencies AS l SET checks = l.checks - g.checks
        FROM ({PG_LATENCIES}) AS g
        WHERE l.data_source_id = g.data_source_id AND l.response_time_ms = g.response_time_ms;
        DELETE FROM health_latencies WHERE checks <= 0;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER health_records_rollup_insert AFTER INSERT ON health_records
    REFERENCING NEW TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION health_rollups_add()
    """,
    """
    CREATE TRIGGER health_records_rollup_delete AFTER DELETE ON health_records
    REFERENCING OLD TABLE AS changed_rows
    FOR EACH STATEMENT EXECUTE FUNCTION health_rollups_subtract()
    """,
]


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "health_rollups",
        sa.Column("data_source_id", sa.Integer(), nullable=False),
        sa.Column("bucket", UTCDateTime(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("successful", sa.Integer(), nullable=False),
        sa.Column("timed", sa.Integer(), nullable=False),
        sa.Column("response_ms_sum", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_source_id"],
            ["data_sources.id"],
            name=op.f("fk_health_rollups_data_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("data_source_id", "bucket", name=op.f("pk_health_rollups")),
    )
    op.create_table(
        "health_latencies",
        sa.Column("data_source_id", sa.Integer(), nullable=False),
        sa.Column("response_time_ms", sa.Float(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["data_source_id"],
            ["data_sources.id"],
            name=op.f("fk_health_latencies_data_source_id_data_sources"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "data_source_id", "response_time_ms", name=op.f("pk_health_latencies")
        ),
    )
    with op.batch_alter_table("health_records", schema=None) as batch_op:
        batch_op.create_index(
            "ix_health_records_source_outcome",
            ["data_source_id", "connection_successful", "tested_at"],
            unique=False,
        )
    sqlite = op.get_bind().dialect.name == "sqlite"
    hour = SQLITE_HOUR if sqlite else PG_HOUR
    op.execute(
        f"""
        INSERT INTO health_rollups
            (data_source_id, bucket, checks, successful, timed, response_ms_sum)
        SELECT data_source_id,
               {hour.format(row="r")},
               count(*),
               sum(CASE WHEN connection_successful THEN 1 ELSE 0 END),
               sum(CASE WHEN connection_successful AND response_time_ms IS NOT NULL
                        THEN 1 ELSE 0 END),
               coalesce(sum(CASE WHEN connection_successful THEN response_time_ms END), 0)
        FROM health_records AS r
        GROUP BY 1, 2
        """
    )
    op.execute(
        """
        INSERT INTO health_latencies (data_source_id, response_time_ms, checks)
        SELECT data_source_id, response_time_ms, count(*)
        FROM health_records
        WHERE connection_successful AND response_time_ms IS NOT NULL
        GROUP BY 1, 2
        """
    )
    for statement in SQLITE_TRIGGERS if sqlite else PG_TRIGGERS:
        op.execute(statement)


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "sqlite":
        for name in (
            "health_records_rollup_insert",
            "health_records_rollup_delete",
            "health_records_latency_insert",
            "health_records_latency_delete",
        ):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        op.execute("DROP TRIGGER IF EXISTS health_records_rollup_insert ON health_records")
        op.execute("DROP TRIGGER IF EXISTS health_records_rollup_delete ON health_records")
        op.execute("DROP FUNCTION IF EXISTS health_rollups_add()")
        op.execute("DROP FUNCTION IF EXISTS health_rollups_subtract()")
    with op.batch_alter_table("health_records", schema=None) as batch_op:
        batch_op.drop_index("ix_health_records_source_outcome")
    op.drop_table("health_latencies")
    op.drop_table("health_rollups")
