"""Functions a read-only transaction does not stop are refused before the query is sent, on the
machine's real PostgreSQL and MariaDB, however they are spelled; look-alikes still run."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from rivergen.connectors._denied import MYSQL_DENIED, POSTGRES_DENIED
from rivergen.connectors.base import ConnectionTarget, Connector
from rivergen.connectors.mysql import MARIADB_SPEC, MySQLConnector
from rivergen.connectors.postgresql import SPEC as POSTGRES_SPEC
from rivergen.connectors.postgresql import PostgresConnector
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.servers import Server

PG_CONNECTORS = [POSTGRES_SPEC.connector, PostgresConnector(check_keywords=False)]
MY_CONNECTORS = [MARIADB_SPEC.connector, MySQLConnector(check_keywords=False)]
CONNECTOR_IDS = ["guarded", "engine-only"]
PG_ADMIN = "host=127.0.0.1 user=postgres dbname=postgres"

# One real call of every denied name; {pid} is another live session, {path} a file that must
# not appear.
PG_CALLS = {
    "pg_terminate_backend": "SELECT pg_terminate_backend({pid})",
    "pg_cancel_backend": "SELECT pg_cancel_backend({pid})",
    "pg_reload_conf": "SELECT pg_reload_conf()",
    "pg_rotate_logfile": "SELECT pg_rotate_logfile()",
    "pg_log_backend_memory_contexts": "SELECT pg_log_backend_memory_contexts({pid})",
    "pg_switch_wal": "SELECT pg_switch_wal()",
    "pg_switch_xlog": "SELECT pg_switch_xlog()",
    "pg_create_restore_point": "SELECT pg_create_restore_point('rg')",
    "pg_backup_start": "SELECT pg_backup_start('rg', true)",
    "pg_backup_stop": "SELECT * FROM pg_backup_stop()",
    "pg_start_backup": "SELECT pg_start_backup('rg', true)",
    "pg_stop_backup": "SELECT pg_stop_backup()",
    "pg_promote": "SELECT pg_promote()",
    "pg_wal_replay_pause": "SELECT pg_wal_replay_pause()",
    "pg_wal_replay_resume": "SELECT pg_wal_replay_resume()",
    "pg_xlog_replay_pause": "SELECT pg_xlog_replay_pause()",
    "pg_xlog_replay_resume": "SELECT pg_xlog_replay_resume()",
    "pg_create_physical_replication_slot": "SELECT pg_create_physical_replication_slot('rg_s')",
    "pg_create_logical_replication_slot": (
        "SELECT pg_create_logical_replication_slot('rg_s', 'test_decoding')"
    ),
    "pg_copy_physical_replication_slot": "SELECT pg_copy_physical_replication_slot('a', 'rg_s')",
    "pg_copy_logical_replication_slot": "SELECT pg_copy_logical_replication_slot('a', 'rg_s')",
    "pg_drop_replication_slot": "SELECT pg_drop_replication_slot('a')",
    "pg_replication_slot_advance": "SELECT pg_replication_slot_advance('a', '0/0')",
    "pg_logical_slot_get_changes": "SELECT * FROM pg_logical_slot_get_changes('a', NULL, NULL)",
    "pg_logical_slot_get_binary_changes": (
        "SELECT * FROM pg_logical_slot_get_binary_changes('a', NULL, NULL)"
    ),
    "pg_logical_emit_message": "SELECT pg_logical_emit_message(false, 'rg', 'x')",
    "pg_replication_origin_advance": "SELECT pg_replication_origin_advance('a', '0/1')",
    "pg_replication_origin_session_setup": "SELECT pg_replication_origin_session_setup('a')",
    "pg_stat_reset": "SELECT pg_stat_reset()",
    "pg_stat_reset_shared": "SELECT pg_stat_reset_shared('bgwriter')",
    "pg_stat_reset_single_table_counters": (
        "SELECT pg_stat_reset_single_table_counters('pg_class'::regclass)"
    ),
    "pg_stat_reset_single_function_counters": (
        "SELECT pg_stat_reset_single_function_counters('pg_sleep'::regproc)"
    ),
    "pg_stat_reset_slru": "SELECT pg_stat_reset_slru(NULL)",
    "pg_stat_reset_replication_slot": "SELECT pg_stat_reset_replication_slot(NULL)",
    "pg_stat_reset_subscription_stats": "SELECT pg_stat_reset_subscription_stats(NULL)",
    "pg_stat_statements_reset": "SELECT pg_stat_statements_reset()",
    "pg_advisory_lock": "SELECT pg_advisory_lock(4242)",
    "pg_advisory_lock_shared": "SELECT pg_advisory_lock_shared(4242)",
    "pg_advisory_xact_lock": "SELECT pg_advisory_xact_lock(4242)",
    "pg_advisory_xact_lock_shared": "SELECT pg_advisory_xact_lock_shared(4242)",
    "pg_try_advisory_lock": "SELECT pg_try_advisory_lock(4242)",
    "pg_try_advisory_lock_shared": "SELECT pg_try_advisory_lock_shared(4242)",
    "pg_try_advisory_xact_lock": "SELECT pg_try_advisory_xact_lock(4242)",
    "pg_try_advisory_xact_lock_shared": "SELECT pg_try_advisory_xact_lock_shared(4242)",
    "lo_export": "SELECT lo_export(oid, '{path}') FROM pg_largeobject_metadata",
    "pg_file_write": "SELECT pg_file_write('{path}', 'x', false)",
    "pg_file_rename": "SELECT pg_file_rename('{path}', '{path}.2')",
    "pg_file_unlink": "SELECT pg_file_unlink('{path}')",
    "heap_force_kill": "SELECT heap_force_kill('t'::regclass, ARRAY['(0,1)']::tid[])",
    "heap_force_freeze": "SELECT heap_force_freeze('t'::regclass, ARRAY['(0,1)']::tid[])",
    "pg_truncate_visibility_map": "SELECT pg_truncate_visibility_map('t'::regclass)",
    "dblink": "SELECT * FROM dblink('dbname=postgres', 'SELECT 1') AS r(x int)",
    "dblink_connect": "SELECT dblink_connect('c', 'dbname=postgres')",
    "dblink_connect_u": "SELECT dblink_connect_u('c', 'dbname=postgres')",
    "dblink_exec": "SELECT dblink_exec('dbname=postgres', 'DROP TABLE t')",
    "dblink_open": "SELECT dblink_open('cur', 'SELECT 1')",
    "dblink_fetch": "SELECT * FROM dblink_fetch('cur', 1) AS r(x int)",
    "dblink_close": "SELECT dblink_close('cur')",
    "dblink_send_query": "SELECT dblink_send_query('c', 'DROP TABLE t')",
    "dblink_get_result": "SELECT * FROM dblink_get_result('c') AS r(x text)",
    "dblink_cancel_query": "SELECT dblink_cancel_query('c')",
    "query_to_xml": "SELECT query_to_xml('SELECT pg_reload_conf()', true, true, '')",
    "query_to_xmlschema": "SELECT query_to_xmlschema('SELECT 1', true, true, '')",
    "query_to_xml_and_xmlschema": "SELECT query_to_xml_and_xmlschema('SELECT 1', true, true, '')",
    "ts_stat": "SELECT * FROM ts_stat('SELECT to_tsvector(''a'')')",
    "ts_rewrite": "SELECT ts_rewrite('a'::tsquery, 'SELECT ''a''::tsquery, ''b''::tsquery')",
    "crosstab": "SELECT * FROM crosstab('SELECT 1') AS c(a int)",
    "crosstab2": "SELECT * FROM crosstab2('SELECT 1')",
    "crosstab3": "SELECT * FROM crosstab3('SELECT 1')",
    "crosstab4": "SELECT * FROM crosstab4('SELECT 1')",
    "connectby": "SELECT * FROM connectby('t', 'a', 'b', '1', 0) AS c(a int, b int, l int)",
    "xpath_table": "SELECT * FROM xpath_table('a', 'b', 't', '/x', 'true') AS x(a int, v text)",
    "pg_read_file": "SELECT pg_read_file('/etc/passwd')",
    "pg_read_binary_file": "SELECT pg_read_binary_file('/etc/passwd')",
    "pg_stat_file": "SELECT size FROM pg_stat_file('/etc/passwd')",
    "pg_ls_dir": "SELECT * FROM pg_ls_dir('/etc')",
    "pg_ls_logdir": "SELECT * FROM pg_ls_logdir()",
    "pg_ls_waldir": "SELECT * FROM pg_ls_waldir()",
    "pg_ls_tmpdir": "SELECT * FROM pg_ls_tmpdir()",
    "pg_ls_archive_statusdir": "SELECT * FROM pg_ls_archive_statusdir()",
    "pg_ls_logicalsnapdir": "SELECT * FROM pg_ls_logicalsnapdir()",
    "pg_ls_logicalmapdir": "SELECT * FROM pg_ls_logicalmapdir()",
    "pg_ls_replslotdir": "SELECT * FROM pg_ls_replslotdir('a')",
    "pg_logdir_ls": "SELECT * FROM pg_logdir_ls() AS l(t timestamp, f text)",
    "lo_import": "SELECT lo_import('/etc/passwd')",
    "pg_file_settings": "SELECT sourcefile FROM pg_file_settings",
    "pg_show_all_file_settings": "SELECT * FROM pg_show_all_file_settings()",
    "pg_hba_file_rules": "SELECT * FROM pg_hba_file_rules",
    "pg_ident_file_mappings": "SELECT * FROM pg_ident_file_mappings",
}


def refusal(connector: Connector, target: ConnectionTarget, query: str) -> ProbeFailure:
    with pytest.raises(ProbeFailure) as info:
        connector.probe(target, query, Deadline.after(10))
    failure = info.value
    assert (failure.code, failure.phase) == (ErrorCode.QUERY_ERROR, Phase.QUERY), failure
    return failure


@pytest.fixture
def victim() -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """Another session on the local PostgreSQL, for queries that would signal it."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        yield conn


def assert_alive(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_every_denied_postgres_name_has_a_call_here() -> None:
    assert set(PG_CALLS) == set(POSTGRES_DENIED)


@pytest.mark.parametrize("connector", PG_CONNECTORS, ids=CONNECTOR_IDS)
@pytest.mark.parametrize("name", sorted(PG_CALLS))
def test_postgres_denied_calls_are_refused(
    name: str,
    connector: Connector,
    local_postgres: Server,
    victim: psycopg.Connection[tuple[object, ...]],
    tmp_path: Path,
) -> None:
    written = tmp_path / "written"
    query = PG_CALLS[name].format(pid=victim.info.backend_pid, path=written)
    failure = refusal(connector, local_postgres.target(), query)
    assert failure.message == f"{name} cannot be used in a test query: it {POSTGRES_DENIED[name]}"
    assert_alive(victim)
    assert not written.exists()


@pytest.mark.parametrize("name", sorted(PG_CALLS))
def test_refused_before_connecting(name: str, local_postgres: Server, closed_port: int) -> None:
    # Nothing listens on that port: the refusal comes first, so no denied query reaches a server.
    query = PG_CALLS[name].format(pid=1, path="/nonexistent")
    refusal(POSTGRES_SPEC.connector, local_postgres.target(port=closed_port), query)


def test_terminate_and_cancel_leave_the_other_session_alone(
    local_postgres: Server, victim: psycopg.Connection[tuple[object, ...]]
) -> None:
    pid = victim.info.backend_pid
    outcome: list[object] = []

    def sleep() -> None:
        outcome.append(victim.execute("SELECT pg_sleep(0.5), 'slept'").fetchone())

    sleeper = threading.Thread(target=sleep)
    sleeper.start()
    target = local_postgres.target()
    try:
        refusal(POSTGRES_SPEC.connector, target, f"SELECT pg_cancel_backend({pid})")
        refusal(POSTGRES_SPEC.connector, target, f"SELECT pg_terminate_backend({pid})")
    finally:
        sleeper.join(5)
    assert outcome == [("", "slept")]
    assert_alive(victim)


def test_reload_and_replication_slot_leave_no_trace(local_postgres: Server) -> None:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        loaded = admin.execute("SELECT pg_conf_load_time()").fetchone()
        for query in (
            "SELECT pg_reload_conf()",
            "SELECT pg_create_physical_replication_slot('rg_denied_slot')",
        ):
            refusal(PostgresConnector(check_keywords=False), local_postgres.target(), query)
        assert admin.execute("SELECT pg_conf_load_time()").fetchone() == loaded
        slots = admin.execute(
            "SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'rg_denied_slot'"
        ).fetchone()
        assert slots == (0,)


def test_read_only_alone_would_not_stop_them(
    victim: psycopg.Connection[tuple[object, ...]],
) -> None:
    # Why the list exists: inside BEGIN READ ONLY the server runs these.
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute("BEGIN READ ONLY")
        assert conn.execute("SELECT length(pg_read_file('/etc/passwd')) > 0").fetchone() == (True,)
        pid = victim.info.backend_pid
        assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
    with pytest.raises(psycopg.OperationalError):
        victim.execute("SELECT 1")


@pytest.mark.parametrize(
    "template",
    [
        'SELECT "pg_terminate_backend"({pid})',
        "SELECT pg_catalog.pg_terminate_backend({pid})",
        'SELECT "pg_catalog" . "PG_TERMINATE_BACKEND" /* c */ ({pid})',
        "SELECT PG_Terminate_Backend -- c\n ({pid})",
        "SELECT pg_terminate_backend /* a /* nested */ comment */ ({pid})",
        'SELECT U&"pg\\005fterminate_backend"({pid})',
        "SELECT U&\"pg!005fterminate_backend\" UESCAPE '!' ({pid})",
        "SELECT '\\', pg_terminate_backend({pid}) --'",
        "SELECT E'\\'', pg_terminate_backend({pid})",
        "SELECT E''\n'\\'', pg_terminate_backend({pid}) --'",
        "SELECT 1 -- c\r, pg_terminate_backend({pid})",
        "SELECT 1 AS a$x$, pg_terminate_backend({pid}) -- $x$",
        "WITH x AS (SELECT pg_terminate_backend({pid})) SELECT * FROM x",
        "EXPLAIN ANALYZE SELECT pg_terminate_backend({pid})",
        "SELECT (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = {pid})",
    ],
)
@pytest.mark.parametrize("connector", PG_CONNECTORS, ids=CONNECTOR_IDS)
def test_postgres_spellings_are_refused(
    template: str,
    connector: Connector,
    local_postgres: Server,
    victim: psycopg.Connection[tuple[object, ...]],
) -> None:
    failure = refusal(
        connector, local_postgres.target(), template.format(pid=victim.info.backend_pid)
    )
    assert failure.message.startswith("pg_terminate_backend cannot be used in a test query")
    assert "effects outside the read-only transaction" in failure.message
    assert_alive(victim)


@pytest.mark.parametrize(
    ("query", "result"),
    [
        ("SELECT 'pg_terminate_backend'", "pg_terminate_backend"),
        ("SELECT $$pg_read_file('/etc/passwd')$$", "pg_read_file('/etc/passwd')"),
        ("SELECT E'\\'pg_reload_conf()'", "'pg_reload_conf()"),
        ("SELECT 1 -- pg_terminate_backend(1)", "1"),
        ("SELECT /* pg_reload_conf() */ 2", "2"),
        ("SELECT 3 AS my_pg_sleep_count", "3"),
        ('SELECT 4 AS "pg_read_file_size"', "4"),
        (
            "SELECT proname FROM pg_proc WHERE proname = 'pg_terminate_backend'",
            "pg_terminate_backend",
        ),
        # Allowed on purpose: bounded by the deadline, or undone by the rollback and the end
        # of the session.
        ("SELECT pg_sleep(0)::text || 'slept'", "slept"),
        ("SELECT set_config('work_mem', '8MB', false)", "8MB"),
        ("SELECT pg_notify('rg_channel', 'x')::text || 'sent'", "sent"),
        ("SELECT txid_current() > 0", "true"),
    ],
)
def test_postgres_lookalikes_run(local_postgres: Server, query: str, result: str) -> None:
    outcome = POSTGRES_SPEC.connector.probe(local_postgres.target(), query, Deadline.after(10))
    assert outcome.test_query_result == result


# ----- MySQL and MariaDB -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "refused_name"),
    [
        ("SELECT LOAD_FILE('/etc/passwd')", "load_file"),
        ("SELECT `load_file`('/etc/passwd')", "load_file"),
        ("SELECT Load_File ('/etc/passwd')", "load_file"),
        ("SELECT 'a\\'', LOAD_FILE('/etc/passwd') -- '", "load_file"),
        ("SELECT 1 --LOAD_FILE('/etc/passwd')", "load_file"),
        ("SELECT GET_LOCK('rg_lock', 0)", "get_lock"),
        ("SELECT 1 INTO OUTFILE '{path}'", "INTO OUTFILE"),
        ("SELECT 1 INTO DUMPFILE '{path}'", "INTO OUTFILE"),
        ("SELECT 1 INTO/**/OUTFILE '{path}'", "INTO OUTFILE"),
        ("SELECT 1 INTO -- c\nOUTFILE '{path}'", "INTO OUTFILE"),
        ("SELECT 1 INTO # c\nDUMPFILE '{path}'", "INTO OUTFILE"),
        ("SELECT 1 /*!INTO*/ OUTFILE '{path}'", "Versioned and hint comments"),
        ("SELECT 1 /*M!100000 INTO OUTFILE '{path}' */", "Versioned and hint comments"),
    ],
)
@pytest.mark.parametrize("connector", MY_CONNECTORS, ids=CONNECTOR_IDS)
def test_mysql_denied_calls_are_refused(
    template: str, refused_name: str, connector: Connector, local_mariadb: Server, tmp_path: Path
) -> None:
    written = tmp_path / "written"
    failure = refusal(connector, local_mariadb.target(), template.format(path=written))
    assert failure.message.startswith(refused_name)
    if refused_name in MYSQL_DENIED:
        assert failure.message.endswith(MYSQL_DENIED[refused_name])
    assert not written.exists()


@pytest.mark.parametrize(
    ("query", "result"),
    [
        ("SELECT 'LOAD_FILE(x) INTO OUTFILE'", "LOAD_FILE(x) INTO OUTFILE"),
        ("SELECT 'get_lock(1)'", "get_lock(1)"),
        ("SELECT 5 AS my_load_file_count", "5"),
        ("SELECT 6 -- LOAD_FILE('/etc/passwd')", "6"),
        ("SELECT 7 /* INTO OUTFILE '/tmp/x' */", "7"),
    ],
)
def test_mysql_lookalikes_run(local_mariadb: Server, query: str, result: str) -> None:
    outcome = MARIADB_SPEC.connector.probe(local_mariadb.target(), query, Deadline.after(10))
    assert outcome.test_query_result == result
