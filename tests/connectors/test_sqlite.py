"""SQLite connector on files the tests create."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path

import pytest

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.sqlite import SPEC, SQLiteConnection, SQLiteConnector
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure

CONNECTOR = SPEC.connector
ENGINE_ONLY = SQLiteConnector(check_keywords=False)  # read-only open and authorizer alone


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A database file holding table t with three rows."""
    path = tmp_path / "data.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE t (id INTEGER)")
        conn.executemany("INSERT INTO t VALUES (?)", [(1,), (2,), (3,)])
    conn.close()
    return path


def fail(
    path: Path | str, query: str | None = None, connector: SQLiteConnector | None = None
) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        (connector or CONNECTOR).probe(ConnectionTarget(path=str(path)), query, Deadline.after(5))
    return info.value


def _state(path: Path) -> tuple[int, list[str]]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT count(*) FROM t").fetchone()[0]
        tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master ORDER BY name")]
    finally:
        conn.close()
    return int(rows), tables


def test_select_one_and_version(database: Path) -> None:
    result = CONNECTOR.probe(ConnectionTarget(path=str(database)), None, Deadline.after(5))
    assert result.test_query_result == "1"
    assert result.database_version == f"SQLite {sqlite3.sqlite_version}"


def test_custom_query(database: Path) -> None:
    query = "SELECT id, 'x' FROM t ORDER BY id DESC"
    result = CONNECTOR.probe(ConnectionTarget(path=str(database)), query, Deadline.after(5))
    assert result.test_query_result == "3"


def test_read_pragma_is_allowed(database: Path) -> None:
    result = CONNECTOR.probe(
        ConnectionTarget(path=str(database)), "PRAGMA table_info(t)", Deadline.after(5)
    )
    assert result.test_query_result == "0"


def test_missing_file(tmp_path: Path) -> None:
    failure = fail(tmp_path / "absent.db")
    assert (failure.code, failure.phase) == (ErrorCode.DATABASE_NOT_FOUND, Phase.AUTH)
    assert not (tmp_path / "absent.db").exists()  # read-only open never creates it


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a database file at all" * 50)
    failure = fail(path)
    assert failure.code is ErrorCode.DATABASE_NOT_FOUND


def test_unreadable_file(database: Path) -> None:
    database.chmod(0)
    if os.geteuid() != 0:
        assert fail(database).code is ErrorCode.PERMISSION_DENIED
        return
    # Root reads any file: probe from a forked child that dropped to an unprivileged user,
    # after letting that user traverse (not list) the test's temporary directories.
    for parent in database.parents:
        if parent == Path("/tmp") or parent == parent.parent:
            break
        parent.chmod(parent.stat().st_mode | 0o001)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = "ERROR"
        try:
            os.setgid(65534)
            os.setuid(65534)
            code = fail(database).code.value
        finally:
            os.write(write_end, code.encode())
            os._exit(0)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    answer = os.read(read_end, 100).decode()
    os.close(read_end)
    assert status == 0
    assert answer == ErrorCode.PERMISSION_DENIED.value


def test_long_query_is_interrupted_at_the_deadline(database: Path) -> None:
    query = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    started = time.monotonic()
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(ConnectionTarget(path=str(database)), query, Deadline.after(1))
    assert (info.value.code, info.value.phase) == (ErrorCode.TIMEOUT, Phase.QUERY)
    assert time.monotonic() - started < 1.6


WRITES = [
    "DROP TABLE t",
    "INSERT INTO t VALUES (99)",
    "UPDATE t SET id = id + 10",
    "CREATE TABLE t2 (a int)",
    "SELECT 1; DELETE FROM t",
    "WITH x AS (SELECT 1) DELETE FROM t",
    "PRAGMA user_version = 7",
    "ATTACH DATABASE 'other.db' AS other",
    "VACUUM",
]


@pytest.mark.parametrize("query", WRITES)
def test_read_only_open_alone_refuses_writes(database: Path, query: str) -> None:
    failure = fail(database, query, connector=ENGINE_ONLY)
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)
    assert _state(database) == (3, ["t"])
    assert not (database.parent / "other.db").exists()


@pytest.mark.parametrize("query", WRITES)
def test_default_connector_refuses_writes(database: Path, query: str) -> None:
    failure = fail(database, query)
    assert failure.code is ErrorCode.QUERY_ERROR
    assert _state(database) == (3, ["t"])


def test_model_is_path_only() -> None:
    model = SQLiteConnection.model_validate({"path": "/data/app.db"})
    assert model.path == "/data/app.db"
    with pytest.raises(ValueError, match="Extra inputs"):
        SQLiteConnection.model_validate({"path": "/data/app.db", "host": "x"})
    with pytest.raises(ValueError, match="not allowed"):
        SQLiteConnection.model_validate({"path": "/data/app.db", "options": {"timeout": 5}})
