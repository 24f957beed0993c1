"""SQLite through the standard library, opened read-only with an authorizer as a second lock."""

from __future__ import annotations

import pathlib
import sqlite3
from typing import Any

from rivergen.connectors._alarms import Alarm, alarm_at
from rivergen.connectors._support import (
    Clock,
    FileConnection,
    KeywordGuarded,
    check_database_file,
    clean_query,
    first_cell,
    query_timeout,
    refuse_unless_read,
)
from rivergen.connectors.base import ConnectionTarget, ConnectorResult, EngineSpec
from rivergen.connectors.classify import code_for_sqlite_errorcode
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from rivergen.security.scrub import scrub as one_line

ALLOWED_OPTIONS: dict[str, type] = {}

# Pragmas that only read. Some take a table or index name as their argument; the others must
# have none, because `PRAGMA name = value` reaches the authorizer with the value as argument.
_READ_PRAGMAS_WITH_NAME = frozenset(
    {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)
_READ_PRAGMAS = frozenset(
    {
        "application_id",
        "collation_list",
        "compile_options",
        "data_version",
        "database_list",
        "encoding",
        "freelist_count",
        "function_list",
        "integrity_check",
        "module_list",
        "page_count",
        "page_size",
        "pragma_list",
        "quick_check",
        "schema_version",
        "table_list",
        "user_version",
    }
)
_REFUSED_FUNCTIONS = frozenset({"load_extension", "fts3_tokenizer", "readfile", "writefile"})
_PROGRESS_STEPS = 1000  # VM instructions between deadline checks: microseconds apart
# The longest string or blob a test query may build, in bytes: SELECT randomblob(900000000)
# would otherwise allocate 900 MB in the service's own process. SQLite refuses a longer value
# with SQLITE_TOOBIG before allocating it (QUERY_ERROR "string or blob too big").
MAX_VALUE_BYTES = 1 << 20


class SQLiteConnection(FileConnection):
    """Connection settings of an SQLite data source: the database file."""

    allowed_options = ALLOWED_OPTIONS


def _authorize(action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
    """Allow reading and nothing else: no write, schema change, ATTACH or transaction control."""
    if action in (sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_RECURSIVE):
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_FUNCTION:
        return (
            sqlite3.SQLITE_DENY if (arg2 or "").lower() in _REFUSED_FUNCTIONS else sqlite3.SQLITE_OK
        )
    if action == sqlite3.SQLITE_PRAGMA:
        name = (arg1 or "").lower()
        if name in _READ_PRAGMAS_WITH_NAME or (name in _READ_PRAGMAS and arg2 is None):
            return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _failure(
    exc: sqlite3.Error, phase: Phase, deadline: Deadline, timer: Alarm | None
) -> ProbeFailure:
    code = code_for_sqlite_errorcode(getattr(exc, "sqlite_errorcode", None))
    if code is ErrorCode.TIMEOUT or (timer is not None and timer.fired):
        return query_timeout(deadline)
    if code is ErrorCode.DATABASE_NOT_FOUND:
        phase = Phase.AUTH
    default = ErrorCode.QUERY_ERROR if phase is Phase.QUERY else ErrorCode.DATABASE_NOT_FOUND
    return ProbeFailure(code or default, phase, one_line(str(exc)))


class SQLiteConnector(KeywordGuarded):
    """Tests an SQLite file: open it read-only and run one read-only query.

    With `check_keywords=False` the read-only open and the authorizer alone refuse writes.
    """

    def probe(
        self, target: ConnectionTarget, query: str | None, deadline: Deadline
    ) -> ConnectorResult:
        """Run one connection test against `target`."""
        sql = clean_query(query, "SELECT 1")
        if self.check_keywords:
            refuse_unless_read(sql)
        clock = Clock()
        path = check_database_file(target.path)
        # mode=ro: SQLite itself refuses to write; the URI form also stops "?" and "#" in a
        # file name being read as URI syntax, since as_uri() percent-encodes them.
        uri = pathlib.Path(path).as_uri() + "?mode=ro"
        try:
            conn = sqlite3.connect(
                uri, uri=True, timeout=max(0.0, deadline.remaining()), isolation_level=None
            )
        except sqlite3.Error as exc:
            raise _failure(exc, Phase.AUTH, deadline, None) from None
        conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
        timer = alarm_at(deadline, conn.interrupt)
        try:
            try:
                conn.execute("PRAGMA query_only = ON")
                conn.execute("BEGIN")
                # SQLite reads the file lazily: without this, SELECT 1 "works" on any file.
                conn.execute("PRAGMA schema_version").fetchone()
            except sqlite3.Error as exc:
                raise _failure(exc, Phase.AUTH, deadline, timer) from None
            clock.lap(Phase.AUTH)
            conn.set_authorizer(_authorize)
            conn.set_progress_handler(lambda: int(deadline.expired()), _PROGRESS_STEPS)
            try:
                row = conn.execute(sql).fetchone()
            except sqlite3.Error as exc:
                raise _failure(exc, Phase.QUERY, deadline, timer) from None
            clock.lap(Phase.QUERY)
            conn.set_authorizer(None)  # our own ROLLBACK is transaction control
            conn.execute("ROLLBACK")
        finally:
            timer.cancel()
            conn.close()
        text, truncated = first_cell(row[0] if row else None)
        return ConnectorResult(
            database_version=f"SQLite {sqlite3.sqlite_version}",
            test_query_result=text,
            test_query_result_truncated=truncated,
            timings_ms=clock.timings,
        )


SPEC = EngineSpec(
    key="sqlite",
    label="SQLite",
    help="An SQLite file inside the allowed directory, opened read-only.",
    aliases=("sqlite3",),
    connection_model=SQLiteConnection,
    connector=SQLiteConnector(),
    driver_module="sqlite3",
    default_port=None,
    secret_fields=frozenset(),
    file_based=True,
    allowed_options=ALLOWED_OPTIONS,
    default_query="SELECT 1",
)
