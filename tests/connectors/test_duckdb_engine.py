"""DuckDB connector on files the tests create."""

from __future__ import annotations

import time
from pathlib import Path

import duckdb
import pytest

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.duckdb_engine import SPEC, DuckDBConnection, DuckDBConnector
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure

CONNECTOR = SPEC.connector
ENGINE_ONLY = DuckDBConnector(check_keywords=False)  # the read-only attach alone


@pytest.fixture
def database(tmp_path: Path) -> Path:
    """A DuckDB file holding table t with three rows."""
    path = tmp_path / "data.duckdb"
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE t (id INTEGER)")
    conn.execute("INSERT INTO t VALUES (1), (2), (3)")
    conn.close()
    return path


def fail(
    path: Path | str,
    query: str | None = None,
    connector: DuckDBConnector | None = None,
    seconds: float = 10,
) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        (connector or CONNECTOR).probe(
            ConnectionTarget(path=str(path)), query, Deadline.after(seconds)
        )
    return info.value


def _state(path: Path) -> tuple[int, list[str]]:
    conn = duckdb.connect(str(path), read_only=True)
    try:
        row = conn.execute("SELECT count(*) FROM t").fetchone()
        tables = [r[0] for r in conn.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
    finally:
        conn.close()
    assert row is not None
    return int(row[0]), sorted(tables)


def test_select_one_and_version(database: Path) -> None:
    result = CONNECTOR.probe(ConnectionTarget(path=str(database)), None, Deadline.after(10))
    assert result.test_query_result == "1"
    assert result.database_version == f"DuckDB {duckdb.__version__}"


def test_custom_query(database: Path) -> None:
    query = "FROM t SELECT id ORDER BY id DESC"
    result = CONNECTOR.probe(ConnectionTarget(path=str(database)), query, Deadline.after(10))
    assert result.test_query_result == "3"


def test_missing_file(tmp_path: Path) -> None:
    failure = fail(tmp_path / "absent.duckdb")
    assert (failure.code, failure.phase) == (ErrorCode.DATABASE_NOT_FOUND, Phase.AUTH)
    assert not (tmp_path / "absent.duckdb").exists()


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("not a database " * 500)
    failure = fail(path)
    assert (failure.code, failure.phase) == (ErrorCode.DATABASE_NOT_FOUND, Phase.AUTH)


def test_external_access_is_disabled(database: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    failure = fail(database, f"SELECT * FROM read_csv('{secret}')")
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)


def test_long_query_is_interrupted_at_the_deadline(database: Path) -> None:
    query = "SELECT sum(a.range * b.range) FROM range(1000000) a, range(1000000) b"
    started = time.monotonic()
    failure = fail(database, query, seconds=1)
    assert (failure.code, failure.phase) == (ErrorCode.TIMEOUT, Phase.QUERY)
    assert time.monotonic() - started < 1.6


WRITES = [
    "DROP TABLE t",
    "INSERT INTO t VALUES (99)",
    "UPDATE t SET id = id + 10",
    "CREATE TABLE t2 (a int)",
    "SELECT 1; DELETE FROM t",
    "WITH x AS (SELECT 1) DELETE FROM t",
    "COPY t TO '{dir}/out.csv'",
    "ATTACH '{dir}/other.duckdb' AS other",
]


@pytest.mark.parametrize("query", WRITES)
def test_read_only_open_alone_refuses_writes(database: Path, query: str) -> None:
    failure = fail(database, query.format(dir=database.parent), connector=ENGINE_ONLY)
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)
    assert _state(database) == (3, ["t"])
    assert sorted(p.name for p in database.parent.iterdir()) == ["data.duckdb"]


@pytest.mark.parametrize("query", WRITES)
def test_default_connector_refuses_writes(database: Path, query: str) -> None:
    failure = fail(database, query.format(dir=database.parent))
    assert failure.code is ErrorCode.QUERY_ERROR
    assert _state(database) == (3, ["t"])
    assert sorted(p.name for p in database.parent.iterdir()) == ["data.duckdb"]


def test_model_options() -> None:
    assert DuckDBConnection.model_validate({"path": "/d.duckdb", "options": {"threads": 2}})
    with pytest.raises(ValueError, match="not allowed"):
        DuckDBConnection.model_validate(
            {"path": "/d.duckdb", "options": {"enable_external_access": True}}
        )
