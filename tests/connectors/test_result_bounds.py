"""The first cell as the API returns it: at most 1024 characters, truncation flagged; and what
the file engines let a query build in the service's own process (peak RSS measured)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import duckdb
import pytest

from rivergen.connectors._support import MAX_CELL_BYTES, MAX_RESULT_CHARS, first_cell
from rivergen.connectors.base import ConnectionTarget, ConnectorResult
from rivergen.connectors.duckdb_engine import SPEC as DUCKDB_SPEC
from rivergen.connectors.mysql import MARIADB_SPEC
from rivergen.connectors.postgresql import SPEC as POSTGRES_SPEC
from rivergen.connectors.sqlite import SPEC as SQLITE_SPEC
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode
from tests.fixtures.peers import RecordingPeer, peak_rss_growth_mib, refused_with_peak_growth
from tests.fixtures.servers import Server


def test_short_values_are_whole_and_not_flagged() -> None:
    assert first_cell(None) == (None, False)
    assert first_cell("x" * MAX_RESULT_CHARS) == ("x" * MAX_RESULT_CHARS, False)
    assert first_cell(b"\xff") == ("\\xff", False)


def test_long_text_is_cut_at_the_limit_and_flagged() -> None:
    assert first_cell("é" * 5000) == ("é" * MAX_RESULT_CHARS, True)


def test_long_binary_is_cut_before_it_is_printed() -> None:
    text, truncated = first_cell(b"\xff" * (MAX_CELL_BYTES * 100))
    assert truncated is True
    assert text == "\\x" + "ff" * ((MAX_RESULT_CHARS - 2) // 2)


def test_a_prefix_read_by_the_engine_is_flagged_even_when_short() -> None:
    assert first_cell("abc", cut=True) == ("abc", True)
    assert first_cell(None, cut=True) == (None, True)


def _file_target(tmp_path: Path, engine: str) -> ConnectionTarget:
    path = tmp_path / f"bounds.{engine}"
    if engine == "sqlite":
        sqlite3.connect(path).executescript("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
    else:
        duckdb.connect(str(path)).execute("CREATE TABLE t AS SELECT 1 AS x").close()
    return ConnectionTarget(path=str(path))


def test_sqlite_refuses_to_build_a_huge_blob(tmp_path: Path) -> None:
    target = _file_target(tmp_path, "sqlite")
    failure, growth = refused_with_peak_growth(
        lambda: SQLITE_SPEC.connector.probe(
            target, "SELECT randomblob(900000000)", Deadline.after(5)
        )
    )
    assert failure.code is ErrorCode.QUERY_ERROR
    assert "too big" in failure.message
    assert growth < 32, growth  # not the 900 MB asked for
    text = SQLITE_SPEC.connector.probe(target, "SELECT hex(zeroblob(400000))", Deadline.after(5))
    assert text.test_query_result == "0" * 1024
    assert text.test_query_result_truncated is True


def test_duckdb_bounds_what_its_operators_hold(tmp_path: Path) -> None:
    target = _file_target(tmp_path, "duckdb")
    setting = DUCKDB_SPEC.connector.probe(
        target, "SELECT current_setting('memory_limit')", Deadline.after(5)
    )
    assert setting.test_query_result == "244.1 MiB"  # 256 MB as DuckDB prints it
    hungry = "SELECT count(DISTINCT i::VARCHAR) FROM range(60000000) t(i)"
    failure, growth = refused_with_peak_growth(
        lambda: DUCKDB_SPEC.connector.probe(target, hungry, Deadline.after(20))
    )
    assert failure.code is ErrorCode.QUERY_ERROR
    assert "Out of Memory" in failure.message
    assert growth < 600, growth


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("SELECT repeat('x', 50000000)", "x" * MAX_RESULT_CHARS),
        ("SELECT decode(repeat('ab', 20000000), 'hex') -- a trailing comment", None),
    ],
)
def test_postgres_asks_the_server_for_a_bounded_first_cell(
    local_postgres: Server, query: str, expected: str | None
) -> None:
    results: list[ConnectorResult] = []

    def probe() -> None:
        results.append(
            POSTGRES_SPEC.connector.probe(local_postgres.target(), query, Deadline.after(10))
        )

    growth = peak_rss_growth_mib(probe)
    (result,) = results
    assert result.test_query_result_truncated is True
    assert result.test_query_result is not None
    assert len(result.test_query_result) == MAX_RESULT_CHARS
    if expected is not None:
        assert result.test_query_result == expected
    else:
        assert result.test_query_result.startswith("\\xabab")  # bytea as PostgreSQL prints it
    assert growth < 20, growth  # not the 50 MB the server built


def test_postgres_small_cells_keep_their_type_through_the_bound(local_postgres: Server) -> None:
    target = local_postgres.target()
    timestamp = POSTGRES_SPEC.connector.probe(
        target, "SELECT TIMESTAMPTZ '2024-01-02 03:04:05+00'", Deadline.after(5)
    )
    assert timestamp.test_query_result == "2024-01-02T03:04:05+00:00"  # a datetime, not text
    assert timestamp.test_query_result_truncated is False
    empty = POSTGRES_SPEC.connector.probe(target, "SELECT 1 WHERE false", Deadline.after(5))
    assert (empty.test_query_result, empty.test_query_result_truncated) == (None, False)


def test_mysql_stops_reading_a_huge_first_row(local_mariadb: Server) -> None:
    failure, growth = refused_with_peak_growth(
        lambda: MARIADB_SPEC.connector.probe(
            local_mariadb.target(), "SELECT REPEAT('x', 12000000)", Deadline.after(10)
        )
    )
    assert failure.code is ErrorCode.QUERY_ERROR, failure
    assert "larger than 4 MiB" in failure.message
    assert growth < 4 + 8, growth  # not the 12 MB the server sent
    cut = MARIADB_SPEC.connector.probe(
        local_mariadb.target(), "SELECT REPEAT('y', 100000)", Deadline.after(10)
    )
    assert (cut.test_query_result, cut.test_query_result_truncated) == ("y" * 1024, True)


def test_a_hostile_postgres_servers_huge_row_is_cut(huge_row_postgres: RecordingPeer) -> None:
    target = ConnectionTarget(
        host="127.0.0.1",
        address="127.0.0.1",
        port=huge_row_postgres.port,
        username="probe",
        ssl_mode="disable",
    )
    failure, growth = refused_with_peak_growth(
        lambda: POSTGRES_SPEC.connector.probe(target, "SELECT 1", Deadline.after(10))
    )
    assert failure.code is ErrorCode.QUERY_ERROR, failure
    assert "larger than 8 MiB" in failure.message
    assert growth < 100, growth  # not the 400 MB announced
