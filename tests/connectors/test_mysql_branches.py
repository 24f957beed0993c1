"""Which session settings the MySQL connector uses is decided by the server's answers, never by
its banner, and no query runs without a server-side time limit.

What is real and what is emulated: every server here is a real MariaDB 10.11 (Debian's
mariadbd) in a private data directory. Only its version string is emulated, through MariaDB's
`version` option: one announces MySQL 8.0.36, one announces TiDB 7.5.0 ("8.0.11-TiDB-v7.5.0").
So the MySQL branch (`transaction_read_only`, `max_execution_time`) really is sent first and
really is refused by the server (error 1193, which the general log shows); what is NOT run
here is that branch succeeding on a real MySQL server, as none is available. The password
cases use the machine's MariaDB.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from functools import partial

import pymysql
import pytest

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.mysql import MYSQL_SPEC, TIDB_SPEC
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.servers import Server, unique_name
from tests.fixtures.statements import SERVER_STOP_SLACK_SECONDS, mariadb_running, running_after

CONNECTOR = MYSQL_SPEC.connector


def _root(server: Server) -> pymysql.connections.Connection[pymysql.cursors.Cursor]:
    return pymysql.connect(
        host=server.host, port=server.port, user="root", password="", autocommit=True
    )


def still_running(server: Server, marker: str) -> int:
    """How many statements holding `marker` the server is still executing."""
    return mariadb_running(marker, port=server.port)


def test_a_mariadb_announcing_mysql_is_named_by_its_answers(mysql_banner_mariadb: Server) -> None:
    conn = _root(mysql_banner_mariadb)
    assert conn.get_server_info() == "8.0.36"  # type: ignore[no-untyped-call]  # the banner
    with conn.cursor() as cur:
        cur.execute("SET GLOBAL log_output = 'TABLE'")
        cur.execute("SET GLOBAL general_log = 1")
    try:
        result = CONNECTOR.probe(mysql_banner_mariadb.target(), "SELECT 1", Deadline.after(5))
        with conn.cursor() as cur:
            cur.execute(
                "SELECT argument FROM mysql.general_log WHERE argument LIKE 'SET SESSION %' "
                "ORDER BY event_time"
            )
            sent = [str(row[0]) for row in cur.fetchall()]
    finally:
        with conn.cursor() as cur:
            cur.execute("SET GLOBAL general_log = 0")
            cur.execute("TRUNCATE TABLE mysql.general_log")
        conn.close()
    assert result.test_query_result == "1"
    assert result.database_version == "MariaDB 8.0.36"  # the banner said MySQL
    # The MySQL branch went first (the banner's), the server refused it, MariaDB's was taken.
    assert "max_execution_time" in sent[0], sent
    assert "max_statement_time" in sent[1], sent


def test_a_mariadb_announcing_mysql_stops_the_statement_at_the_deadline(
    mysql_banner_mariadb: Server,
) -> None:
    marker = unique_name("rg_sleep")
    started = time.monotonic()
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(
            mysql_banner_mariadb.target(), f"SELECT SLEEP(10) /* {marker} */", Deadline.after(1.5)
        )
    assert (info.value.code, info.value.phase) == (ErrorCode.TIMEOUT, Phase.QUERY)
    # The server itself gave up on the statement, not only the client on its wait.
    by = started + 1.5 + SERVER_STOP_SLACK_SECONDS
    assert running_after(partial(still_running, mysql_banner_mariadb), marker, by) == 0


def test_no_query_runs_without_a_time_limit(tidb_banner_mariadb: Server) -> None:
    """The TiDB branch has max_execution_time only; this MariaDB refuses it (1193): fail closed."""
    marker = unique_name("rg_unlimited")
    with pytest.raises(ProbeFailure) as info:
        TIDB_SPEC.connector.probe(
            tidb_banner_mariadb.target(), f"SELECT SLEEP(3) /* {marker} */", Deadline.after(5)
        )
    failure = info.value
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY), failure
    assert "time limit" in failure.message
    assert still_running(tidb_banner_mariadb, marker) == 0  # never sent


@pytest.fixture
def utf8_password_user(local_mariadb: Server) -> Iterator[Server]:
    """A MariaDB user whose password has characters outside Latin-1."""
    user = unique_name("rg_utf8")
    password = "pä€ss-☃-" + secrets.token_hex(4)
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (user, password))
        yield Server("127.0.0.1", 3306, username=user, password=password)
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP USER IF EXISTS %s@'%%'", (user,))
        conn.close()


def test_a_password_outside_latin1_logs_in(utf8_password_user: Server) -> None:
    result = CONNECTOR.probe(utf8_password_user.target(), "SELECT 1", Deadline.after(5))
    assert result.test_query_result == "1"


def test_a_wrong_password_outside_latin1_is_never_shown(utf8_password_user: Server) -> None:
    wrong = "wrøng-€-password"
    target: ConnectionTarget = utf8_password_user.target(password=wrong)
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, "SELECT 1", Deadline.after(5))
    failure = info.value
    assert failure.code is ErrorCode.AUTHENTICATION_FAILED, failure
    for character in set(wrong):
        if not character.isascii():
            assert character not in failure.message
    assert "position" not in failure.message
