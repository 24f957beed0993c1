"""Every engine the service knows, looked up by key or alias."""

from __future__ import annotations

import functools
import importlib.util

from rivergen.connectors import (
    clickhouse_engine,
    duckdb_engine,
    mongodb_engine,
    mssql_engine,
    mysql,
    oracle_engine,
    pg_family,
    postgresql,
    redis_engine,
    sqlite,
    trino_engine,
)
from rivergen.connectors.base import EngineSpec

ENGINES: dict[str, EngineSpec] = {
    spec.key: spec
    for spec in (
        postgresql.SPEC,
        *pg_family.SPECS,
        *mysql.SPECS,
        sqlite.SPEC,
        duckdb_engine.SPEC,
        redis_engine.SPEC,
        clickhouse_engine.SPEC,
        mongodb_engine.SPEC,
        mssql_engine.SPEC,
        oracle_engine.SPEC,
        trino_engine.SPEC,
    )
}

_BY_NAME: dict[str, EngineSpec] = {
    name.lower(): spec for spec in ENGINES.values() for name in (spec.key, *spec.aliases)
}


def resolve_engine(type_or_alias: str) -> EngineSpec | None:
    """The engine for a key or alias, case-insensitively; None when unknown."""
    return _BY_NAME.get(type_or_alias.strip().lower())


@functools.cache
def _module_available(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def driver_installed(spec: EngineSpec) -> bool:
    """Whether the engine's driver can be imported (checked once per process)."""
    return _module_available(spec.driver_module)
