"""DuckDB files, attached read-only with external access (files, network, extensions) disabled.

Named duckdb_engine so that nothing can mistake it for the duckdb package itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import field_validator

from rivergen.connectors._alarms import Alarm, alarm_at
from rivergen.connectors._support import (
    Clock,
    FileConnection,
    KeywordGuarded,
    check_database_file,
    clean_query,
    driver_required,
    first_cell,
    query_timeout,
    refuse_unless_read,
)
from rivergen.connectors.base import ConnectionTarget, ConnectorResult, EngineSpec, OptionValue
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from rivergen.security.scrub import scrub as one_line

if TYPE_CHECKING:
    import duckdb

ALLOWED_OPTIONS: dict[str, type] = {"threads": int}

_READ_KEYWORDS = frozenset(
    {
        "SELECT",
        "WITH",
        "VALUES",
        "SHOW",
        "EXPLAIN",
        "TABLE",
        "DESCRIBE",
        "DESC",
        "SUMMARIZE",
        "FROM",
    }
)
# The query cannot switch any of these back on: the configuration is locked after opening.
_LOCKED_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    # What the operators that DuckDB's buffer manager tracks (sorts, hash tables, aggregates)
    # may hold, without spilling to disk: beyond it the query fails with OutOfMemoryException
    # instead of growing the service's process. Scalar values (repeat('x', 500000000)) are
    # not tracked by it; the first cell is still cut to 1024 characters.
    "memory_limit": "256MB",
    "max_temp_directory_size": "0KiB",
    "lock_configuration": True,
}


# DuckDB starts that many threads in the server process, whoever asked: a test of an unsaved
# configuration (any member) with threads=1000000 exhausted the process's threads.
MAX_THREADS = 16


class DuckDBConnection(FileConnection):
    """Connection settings of a DuckDB data source: the database file."""

    allowed_options = ALLOWED_OPTIONS

    @field_validator("options")
    @classmethod
    def _threads_bounded(cls, value: dict[str, OptionValue]) -> dict[str, OptionValue]:
        threads = value.get("threads")
        if isinstance(threads, int) and not 1 <= threads <= MAX_THREADS:
            raise ValueError(f"option 'threads' must be between 1 and {MAX_THREADS}")
        return value


def _open_failure(exc: Exception) -> ProbeFailure:
    message = one_line(str(exc))
    # DuckDB raises IOException without a code for both a held lock and a file that is not a
    # database; the text tells the two apart.
    if "lock" in message.lower():
        return ProbeFailure(ErrorCode.CONNECTION_ERROR, Phase.AUTH, message)
    return ProbeFailure(ErrorCode.DATABASE_NOT_FOUND, Phase.AUTH, message)


def _query_failure(duck: Any, exc: Exception, deadline: Deadline, timer: Alarm) -> ProbeFailure:
    if isinstance(exc, duck.InterruptException) or timer.fired:
        return query_timeout(deadline)
    return ProbeFailure(ErrorCode.QUERY_ERROR, Phase.QUERY, one_line(str(exc)))


class DuckDBConnector(KeywordGuarded):
    """Tests a DuckDB file: open it read-only and run one read-only query.

    `check_keywords=False` switches the statement-type guard off as well as the keyword guard.
    """

    def probe(
        self, target: ConnectionTarget, query: str | None, deadline: Deadline
    ) -> ConnectorResult:
        """Run one connection test against `target`."""
        with driver_required("duckdb"):
            import duckdb
        sql = clean_query(query, "SELECT 1")
        if self.check_keywords:
            refuse_unless_read(sql, _READ_KEYWORDS)
        clock = Clock()
        path = check_database_file(target.path)
        config = dict(_LOCKED_CONFIG)
        threads = target.options.get("threads")
        if isinstance(threads, int) and not isinstance(threads, bool) and threads > 0:
            config["threads"] = min(threads, MAX_THREADS)  # configurations stored before the bound
        try:
            conn = duckdb.connect(path, read_only=True, config=config)
        except duckdb.Error as exc:
            raise _open_failure(exc) from None
        timer = alarm_at(deadline, conn.interrupt)
        try:
            clock.lap(Phase.AUTH)
            try:
                self._check_statement(conn, sql)
                row = conn.execute(sql).fetchone()
            except duckdb.Error as exc:
                raise _query_failure(duckdb, exc, deadline, timer) from None
            clock.lap(Phase.QUERY)
        finally:
            timer.cancel()
            conn.close()
        text, truncated = first_cell(row[0] if row else None)
        return ConnectorResult(
            database_version=f"DuckDB {duckdb.__version__}",
            test_query_result=text,
            test_query_result_truncated=truncated,
            timings_ms=clock.timings,
        )

    def _check_statement(self, conn: duckdb.DuckDBPyConnection, sql: str) -> None:
        """Exactly one statement (DuckDB would run them all), of a reading type."""
        import duckdb

        statements = conn.extract_statements(sql)
        if len(statements) != 1:
            raise ProbeFailure(
                ErrorCode.QUERY_ERROR, Phase.QUERY, "The test query must be a single statement"
            )
        kind = statements[0].type
        reading = (duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN)
        if self.check_keywords and kind not in reading:
            raise ProbeFailure(
                ErrorCode.QUERY_ERROR,
                Phase.QUERY,
                f"The test query must be a read-only statement, not {kind.name}",
            )


SPEC = EngineSpec(
    key="duckdb",
    label="DuckDB",
    help="A DuckDB file inside the allowed directory, opened read-only.",
    aliases=(),
    connection_model=DuckDBConnection,
    connector=DuckDBConnector(),
    driver_module="duckdb",
    default_port=None,
    secret_fields=frozenset(),
    file_based=True,
    allowed_options=ALLOWED_OPTIONS,
    default_query="SELECT 1",
)
