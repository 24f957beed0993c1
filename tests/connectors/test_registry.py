"""The engine registry and the protocol every engine implements."""

from __future__ import annotations

import dataclasses
import sys

import pytest

from rivergen.connectors.base import ConnectionTarget, Connector, EngineSpec
from rivergen.connectors.registry import ENGINES, driver_installed, resolve_engine
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure


def test_engines_and_aliases() -> None:
    assert set(ENGINES) == {
        *("postgresql", "mysql", "mariadb", "sqlite", "duckdb", "redis"),
        *("redshift", "cockroachdb", "timescaledb", "yugabytedb", "tidb", "clickhouse"),
        "mongodb",
        "mssql",
        "oracle",
        "trino",
    }
    for name, key in [("postgres", "postgresql"), ("PG", "postgresql"), (" sqlite3 ", "sqlite")]:
        spec = resolve_engine(name)
        assert spec is not None
        assert spec.key == key
    assert resolve_engine("oracle9") is None


@pytest.mark.parametrize("spec", list(ENGINES.values()), ids=list(ENGINES))
def test_every_spec_is_complete(spec: EngineSpec) -> None:
    connector: Connector = spec.connector
    assert callable(connector.probe)
    assert driver_installed(spec)
    own_default = {"redis": "PING", "mongodb": '{"ping": 1}', "oracle": "SELECT 1 FROM DUAL"}
    assert spec.default_query == own_default.get(spec.key, "SELECT 1")
    fields = spec.connection_model.model_fields
    assert spec.secret_fields <= set(fields)
    assert "options" in fields
    assert ("path" in fields) is spec.file_based
    if not spec.file_based:
        assert fields["port"].default == spec.default_port
    for name, kind in spec.allowed_options.items():
        assert kind in (str, int, float, bool)
        assert "file" not in name
        assert "path" not in name
        assert name not in ("local_infile", "init_command", "sslrootcert", "passfile")


def test_missing_driver_is_reported() -> None:
    spec = dataclasses.replace(ENGINES["redis"], driver_module="rivergen_no_such_driver")
    assert not driver_installed(spec)


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("postgresql", "psycopg is not installed"),
        ("mysql", "PyMySQL is not installed"),
        ("mariadb", "PyMySQL is not installed"),
        ("tidb", "PyMySQL is not installed"),
        ("redshift", "psycopg is not installed"),
        ("clickhouse", "clickhouse-driver is not installed"),
        ("mongodb", "pymongo is not installed"),
        ("mssql", "pymssql is not installed"),
        ("oracle", "oracledb is not installed"),
        ("trino", "trino is not installed"),
        ("duckdb", "duckdb is not installed"),
        ("redis", "redis-py is not installed"),
    ],
)
def test_a_driver_that_fails_to_import_is_classified(
    key: str, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = ENGINES[key]
    monkeypatch.setitem(sys.modules, spec.driver_module, None)  # makes the import fail
    # The import comes first: no socket or file is touched, so any target will do.
    target = ConnectionTarget(host="127.0.0.1", port=1, path="/nonexistent.db")
    with pytest.raises(ProbeFailure) as info:
        spec.connector.probe(target, None, Deadline.after(5))
    assert (info.value.code, info.value.phase) == (ErrorCode.DRIVER_NOT_INSTALLED, Phase.POLICY)
    assert info.value.message == message
