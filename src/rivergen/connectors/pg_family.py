"""Engines that speak the PostgreSQL wire protocol: Redshift, CockroachDB, TimescaleDB, YugabyteDB.

Each runs through `PostgresConnector` (same deadline, TLS modes, host policy, read-only
transaction, error map by SQLSTATE) with its own default port and database, and its own way of
naming its version. A server that does not show the engine's marker (a plain PostgreSQL behind
a `redshift` data source, say) is reported as what it is, with a note, rather than failing:
the connection test still proves reachability and credentials.

First bytes: libpq sends the StartupMessage (user name and database, no password) and waits
for the server's authentication request; the password is only sent in answer to it.
"""

from __future__ import annotations

import re

from rivergen.connectors._support import Port, ShortText
from rivergen.connectors.base import EngineSpec
from rivergen.connectors.postgresql import (
    ALLOWED_OPTIONS,
    Flavor,
    PostgresConnection,
    PostgresConnector,
)

_REDSHIFT = re.compile(r"\bRedshift (\d+(?:\.\d+)+)")
_COCKROACH = re.compile(r"\bCockroachDB (?:[A-Z]+ )?v?(\d+(?:\.\d+)+\S*)")
_YUGABYTE = re.compile(r"-YB-(\d+(?:\.\d+)+)")


def _not_it(base: str, engine: str) -> str:
    return f"{base} (the server did not identify itself as {engine})"


def describe_redshift(base: str, version_text: str | None) -> str:
    """`Redshift 1.0.12103` from version(); the PostgreSQL version when the marker is absent."""
    match = _REDSHIFT.search(version_text or "")
    return f"Redshift {match.group(1)}" if match else _not_it(base, "Redshift")


def describe_cockroach(base: str, version_text: str | None) -> str:
    """`CockroachDB 23.1.11` from version() (`CockroachDB CCL v23.1.11 (...)`)."""
    match = _COCKROACH.search(version_text or "")
    return f"CockroachDB {match.group(1)}" if match else _not_it(base, "CockroachDB")


def describe_yugabyte(base: str, version_text: str | None) -> str:
    """`YugabyteDB 2.18.1.0 (PostgreSQL 11.2)` from version() (`PostgreSQL 11.2-YB-2.18.1.0-b0`)."""
    match = _YUGABYTE.search(version_text or "")
    if not match:
        return _not_it(base, "YugabyteDB")
    pg = base.split("-YB-")[0]
    return f"YugabyteDB {match.group(1)} ({pg})"


def describe_timescale(base: str, extension_version: str | None) -> str:
    """`TimescaleDB 2.11.1 on PostgreSQL 15.20` from pg_extension; a note when not installed."""
    if not extension_version:
        return f"{base} (the timescaledb extension is not installed in this database)"
    return f"TimescaleDB {extension_version} on {base}"


class RedshiftConnection(PostgresConnection):
    """Connection settings of an Amazon Redshift cluster or workgroup."""

    port: Port = 5439
    database: ShortText | None = "dev"


class CockroachConnection(PostgresConnection):
    """Connection settings of a CockroachDB cluster."""

    port: Port = 26257
    database: ShortText | None = "defaultdb"


class TimescaleConnection(PostgresConnection):
    """Connection settings of a TimescaleDB (PostgreSQL with the timescaledb extension)."""


class YugabyteConnection(PostgresConnection):
    """Connection settings of a YugabyteDB cluster (YSQL API)."""

    port: Port = 5433
    database: ShortText | None = "yugabyte"


def _spec(
    key: str,
    label: str,
    alias: str,
    model: type[PostgresConnection],
    port: int,
    flavor: Flavor,
) -> EngineSpec:
    return EngineSpec(
        tunnel_clients=2,  # libpq retries without TLS when a `prefer` handshake fails
        key=key,
        label=label,
        help=f"{label} over the PostgreSQL protocol; as PostgreSQL, with its own version.",
        aliases=(alias,),
        connection_model=model,
        connector=PostgresConnector(flavor=flavor),
        driver_module="psycopg",
        default_port=port,
        secret_fields=frozenset({"password"}),
        allowed_options=ALLOWED_OPTIONS,
        default_query="SELECT 1",
    )


# Redshift knows statement_timeout but not lock_timeout (SET of an unknown name is an error).
REDSHIFT_FLAVOR = Flavor("SELECT version()", describe_redshift, lock_timeout=False)
COCKROACH_FLAVOR = Flavor("SELECT version()", describe_cockroach)
TIMESCALE_FLAVOR = Flavor(
    "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'", describe_timescale
)
YUGABYTE_FLAVOR = Flavor("SELECT version()", describe_yugabyte)

SPECS = (
    _spec("redshift", "Amazon Redshift", "aws-redshift", RedshiftConnection, 5439, REDSHIFT_FLAVOR),
    _spec("cockroachdb", "CockroachDB", "cockroach", CockroachConnection, 26257, COCKROACH_FLAVOR),
    _spec("timescaledb", "TimescaleDB", "timescale", TimescaleConnection, 5432, TIMESCALE_FLAVOR),
    _spec("yugabytedb", "YugabyteDB", "yugabyte", YugabyteConnection, 5433, YUGABYTE_FLAVOR),
)
