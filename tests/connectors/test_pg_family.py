"""The PostgreSQL-protocol engines (Redshift, CockroachDB, TimescaleDB, YugabyteDB) and TiDB:
their defaults and version detection, against the local PostgreSQL, through a private pgbouncer
and (TiDB) against the local MariaDB. No Redshift, CockroachDB, YugabyteDB or TiDB server runs
here: their own version strings are checked against the vendors' documented formats."""

from __future__ import annotations

import pytest

from rivergen.connectors import pg_family
from rivergen.connectors.base import ConnectionTarget, EngineSpec
from rivergen.connectors.mysql import TIDB_SPEC, _session_limits, describe_version
from rivergen.connectors.pg_family import (
    describe_cockroach,
    describe_redshift,
    describe_timescale,
    describe_yugabyte,
)
from rivergen.connectors.registry import resolve_engine
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.servers import Server

PG_SPECS = {spec.key: spec for spec in pg_family.SPECS}
BASE = "PostgreSQL 15.20"


def probe(spec: EngineSpec, target: ConnectionTarget, query: str | None = None) -> str | None:
    result = spec.connector.probe(target, query, Deadline.after(5))
    assert result.test_query_result == ("1" if query is None else result.test_query_result)
    return result.database_version


def fail(spec: EngineSpec, target: ConnectionTarget, query: str | None = None) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        spec.connector.probe(target, query, Deadline.after(5))
    return info.value


@pytest.mark.parametrize(
    ("key", "alias", "port", "database"),
    [
        ("redshift", "aws-redshift", 5439, "dev"),
        ("cockroachdb", "cockroach", 26257, "defaultdb"),
        ("timescaledb", "timescale", 5432, None),
        ("yugabytedb", "yugabyte", 5433, "yugabyte"),
    ],
)
def test_defaults_and_aliases(key: str, alias: str, port: int, database: str | None) -> None:
    spec = PG_SPECS[key]
    assert resolve_engine(alias) is spec
    assert spec.default_port == port
    model = spec.connection_model.model_validate({"host": "db.example", "username": "u"})
    assert model.model_dump()["port"] == port
    assert model.model_dump()["database"] == database


@pytest.mark.parametrize(
    ("describe", "reported", "expected"),
    [
        (
            describe_redshift,
            "PostgreSQL 8.0.2 on i686-pc-linux-gnu, compiled by GCC gcc (GCC) 3.4.2 20041017 "
            "(Red Hat 3.4.2-6.fc3), Redshift 1.0.77467",
            "Redshift 1.0.77467",
        ),
        (
            describe_cockroach,
            "CockroachDB CCL v23.1.11 (x86_64-pc-linux-gnu, built 2023/09/27 01:53:43, go1.19.10)",
            "CockroachDB 23.1.11",
        ),
        (
            describe_yugabyte,
            "PostgreSQL 11.2-YB-2.18.1.0-b0 on x86_64-pc-linux-gnu, compiled by clang 15",
            "YugabyteDB 2.18.1.0 (PostgreSQL 15.20)",
        ),
        (describe_timescale, "2.11.1", "TimescaleDB 2.11.1 on PostgreSQL 15.20"),
    ],
)
def test_vendor_version_strings(describe: object, reported: str, expected: str) -> None:
    assert callable(describe)
    assert describe(BASE, reported) == expected


def test_plain_postgres_is_reported_as_itself(local_postgres: Server) -> None:
    """Each flavor's version query runs for real; without the marker the note says so."""
    for key, engine in (
        ("redshift", "Redshift"),
        ("cockroachdb", "CockroachDB"),
        ("yugabytedb", "YugabyteDB"),
    ):
        version = probe(PG_SPECS[key], local_postgres.target())
        assert version is not None
        assert version.startswith("PostgreSQL 15")
        assert version.endswith(f"(the server did not identify itself as {engine})")
    timescale = probe(PG_SPECS["timescaledb"], local_postgres.target())
    assert timescale is not None
    assert timescale.endswith("(the timescaledb extension is not installed in this database)")


@pytest.mark.parametrize("key", sorted(PG_SPECS))
def test_flavors_stay_read_only_and_guarded(key: str, local_postgres: Server) -> None:
    failure = fail(PG_SPECS[key], local_postgres.target(), "CREATE TABLE rg_flavor_x (i int)")
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)
    # The denied-function scan applies to every flavor as to PostgreSQL itself.
    denied = fail(PG_SPECS[key], local_postgres.target(), "SELECT pg_read_file('/etc/passwd')")
    assert denied.code is ErrorCode.QUERY_ERROR


@pytest.mark.parametrize("key", ["postgresql", "redshift", "timescaledb"])
def test_through_pgbouncer(key: str, pgbouncer: Server) -> None:
    """pgbouncer checks the password itself (md5) and relays the server's version."""
    spec = resolve_engine(key)
    assert spec is not None
    version = probe(spec, pgbouncer.target(ssl_mode="disable"))
    assert version is not None
    assert version.startswith("PostgreSQL 15")
    wrong = fail(spec, pgbouncer.target(ssl_mode="disable", password="wrong-" + "x" * 8))
    assert (wrong.code, wrong.phase) == (ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH)
    assert "wrong-" not in wrong.message
    unknown = fail(spec, pgbouncer.target(ssl_mode="disable", database="nodb"))
    assert unknown.code is ErrorCode.DATABASE_NOT_FOUND, unknown


def test_pgbouncer_slow_query_is_cut(pgbouncer: Server) -> None:
    spec = resolve_engine("postgresql")
    assert spec is not None
    with pytest.raises(ProbeFailure) as info:
        spec.connector.probe(
            pgbouncer.target(ssl_mode="disable"), "SELECT pg_sleep(5)", Deadline.after(1)
        )
    assert (info.value.code, info.value.phase) == (ErrorCode.TIMEOUT, Phase.QUERY)


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ("8.0.11-TiDB-v7.5.0", "TiDB 7.5.0"),
        ("5.7.25-TiDB-v6.5.3", "TiDB 6.5.3"),
        ("5.7.25-TiDB-v7.1.0-serverless", "TiDB 7.1.0-serverless"),
    ],
)
def test_tidb_version_strings(reported: str, expected: str) -> None:
    assert describe_version(reported) == (expected, "tidb")


def test_tidb_session_limits_avoid_noop_functions() -> None:
    assert _session_limits("tidb", 1.5) == "SET SESSION max_execution_time = 1500"


def test_tidb_defaults() -> None:
    assert resolve_engine("tidb") is TIDB_SPEC
    assert TIDB_SPEC.default_port == 4000
    model = TIDB_SPEC.connection_model.model_validate({"host": "db.example", "username": "u"})
    assert model.model_dump()["port"] == 4000


def test_tidb_against_mariadb(local_mariadb: Server) -> None:
    """The TiDB engine names the server the handshake announces, and keeps its guard on."""
    version = TIDB_SPEC.connector.probe(local_mariadb.target(), None, Deadline.after(5))
    assert version.database_version is not None
    assert version.database_version.startswith("MariaDB ")
    assert version.test_query_result == "1"
    failure = fail(TIDB_SPEC, local_mariadb.target(), "CREATE DATABASE rg_tidb_x")
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY)
    assert "CREATE is not allowed" in failure.message
