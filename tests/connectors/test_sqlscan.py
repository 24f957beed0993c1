"""The SQL scanners agree with the real servers' lexers on where code is.

Each query names `rg_marker`, a function that does not exist: the server calls it (and fails
with "function ... does not exist") exactly when it reads the name as code, and the scanner,
in the mode matching the server's settings, must then report it, and must not otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pymysql
import pytest

from rivergen.connectors._sqlscan import Token, mysql_tokens, postgres_tokens
from tests.fixtures.servers import Server

MARKER = "rg_marker"


def names(tokens: Iterator[Token]) -> set[str]:
    return {token.text.lower() for token in tokens if token.kind in ("word", "quoted")}


# (query, standard_conforming_strings, does the server run rg_marker)
POSTGRES_CASES = [
    ("SELECT rg_marker(1)", "on", True),
    ("SELECT RG_MARKER (1)", "on", True),
    ('SELECT "rg_marker"(1)', "on", True),
    ('SELECT public . "rg_marker" /* c */ (1)', "on", True),
    ("SELECT rg_marker -- c\n (1)", "on", True),
    ('SELECT U&"rg\\005fmarker"(1)', "on", True),
    ("SELECT U&\"rg!005fmarker\" UESCAPE '!' (1)", "on", True),
    ("SELECT '\\', rg_marker(1) --'", "on", True),
    ("SELECT 'a\\'', rg_marker(1) --'", "off", True),
    ("SELECT E'\\'', rg_marker(1)", "on", True),
    # A string continued after a newline keeps the E style: \' escapes the quote.
    ("SELECT E''\n'\\'', rg_marker(1) --'", "on", True),
    ("/* /* */ ' */ SELECT rg_marker(1) --'", "on", True),
    ("SELECT 1 -- c\r, rg_marker(1)", "on", True),
    ("SELECT 1 AS a$x$, rg_marker(1) -- $x$", "on", True),
    ("SELECT 'rg_marker(1)'", "on", False),
    ("SELECT 'a\\', rg_marker(1) --'", "off", False),
    ("SELECT E'\\', rg_marker(1) --'", "on", False),
    ("SELECT $$rg_marker(1)$$", "on", False),
    ("SELECT $t$ $$ rg_marker(1) $t$", "on", False),
    ("SELECT 1 -- rg_marker(1)", "on", False),
    ("SELECT /* /* */ rg_marker(1) */ 1", "on", False),
    ("SELECT 'a'\n' rg_marker(1)'", "on", False),
    ("SELECT 'a' -- c\n' rg_marker(1)'", "on", False),
    ('SELECT U&"rg_marker_count" FROM (SELECT 1 AS rg_marker_count) AS t', "on", False),
    ("SELECT 1 AS my_rg_marker_count", "on", False),
]


def postgres_runs_marker(query: str, standard_conforming_strings: str) -> bool:
    with psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True) as conn:
        conn.execute(f"SET standard_conforming_strings = {standard_conforming_strings}")
        conn.execute("BEGIN READ ONLY")
        try:
            conn.execute(query)
        except psycopg.errors.UndefinedFunction as exc:
            return MARKER in str(exc)
        return False


@pytest.mark.parametrize(("query", "scs", "runs"), POSTGRES_CASES)
def test_postgres_scanner_sees_what_the_server_runs(
    local_postgres: Server, query: str, scs: str, runs: bool
) -> None:
    assert postgres_runs_marker(query, scs) is runs
    scanned = names(postgres_tokens(query, plain_escapes=scs == "off"))
    assert (MARKER in scanned) is runs


def test_postgres_lookalike_names_stay_whole() -> None:
    scanned = names(postgres_tokens("SELECT my_pg_sleep_count, pg_sleep2", plain_escapes=False))
    assert scanned == {"select", "my_pg_sleep_count", "pg_sleep2"}


# (query, sql_mode, does the server run rg_marker)
MYSQL_CASES = [
    ("SELECT rg_marker(1)", "", True),
    ("SELECT `rg_marker`(1)", "", True),
    ("SELECT `RG_MARKER` (1)", "", True),
    ('SELECT "rg_marker"(1)', "ANSI_QUOTES", True),
    ("SELECT 'a\\'', rg_marker(1) -- '", "", True),
    ('SELECT "a\\"", rg_marker(1) -- "', "", True),
    ("SELECT 'a\\', rg_marker(1) -- '", "NO_BACKSLASH_ESCAPES", True),
    ("SELECT 1 --rg_marker(1)", "", True),
    ("SELECT 1 /* c */, rg_marker(1)", "", True),
    ("SELECT 'rg_marker(1)'", "", False),
    ('SELECT "rg_marker(1)"', "", False),
    ("SELECT 'a\\', rg_marker(1) -- '", "", False),
    ("SELECT 'a\\'', rg_marker(1) -- '", "NO_BACKSLASH_ESCAPES", False),
    ("SELECT 1 -- rg_marker(1)", "", False),
    ("SELECT 1 --\trg_marker(1)", "", False),
    ("SELECT 1 # c\r, rg_marker(1)", "", False),
    ("SELECT 1 /* rg_marker(1) */", "", False),
    ("SELECT 1 /* /* */, 2 /* rg_marker(1) */", "", False),
    ("SELECT 1 AS my_rg_marker_count", "", False),
]


def mysql_runs_marker(query: str, sql_mode: str) -> bool:
    conn = pymysql.connect(host="127.0.0.1", user="root", password="", database="mysql")
    try:
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION sql_mode = %s", (sql_mode,))
            cursor.execute("START TRANSACTION READ ONLY")
            try:
                cursor.execute(query)
            except pymysql.Error as exc:
                return exc.args[0] == 1305 and MARKER in str(exc.args[1]).lower()
            return False
    finally:
        conn.close()


@pytest.mark.parametrize(("query", "sql_mode", "runs"), MYSQL_CASES)
def test_mysql_scanner_sees_what_the_server_runs(
    local_mariadb: Server, query: str, sql_mode: str, runs: bool
) -> None:
    assert mysql_runs_marker(query, sql_mode) is runs
    scanned = names(
        mysql_tokens(
            query,
            backslash_escapes="NO_BACKSLASH_ESCAPES" not in sql_mode,
            ansi_quotes="ANSI_QUOTES" in sql_mode,
        )
    )
    assert (MARKER in scanned) is runs


@pytest.mark.parametrize(
    "query", ["SELECT /*!50000 1 */", "SELECT /*M!100000 1 */", "SELECT /*+ BKA(t) */ 1"]
)
def test_mysql_special_comments_are_one_token(query: str) -> None:
    tokens = list(mysql_tokens(query, backslash_escapes=True, ansi_quotes=False))
    assert [token.kind for token in tokens][:2] == ["word", "special"]
    assert tokens[1].text.startswith("/*")
    assert tokens[1].text.endswith("*/")
