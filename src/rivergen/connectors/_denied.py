"""Functions a read-only transaction does not stop, refused by name before a test query is sent.

Each group was run on a real server (PostgreSQL 15, MariaDB 10.11) inside BEGIN READ ONLY (on
MariaDB a read-only session and transaction, as the connector opens them): the functions ran,
and what they changed outlived the rollback, or what they read came back. Recovery control ran
on a standby, logical decoding and pg_stat_statements_reset on a server configured for them.
Older names of the same functions, and siblings from the same extension, are listed with them.
Not listed: what the server already refuses in a read-only transaction (nextval, setval,
SELECT ... FOR UPDATE, sequences on MariaDB) and what the rollback or the end of the session,
which we close after one statement, undoes (pg_notify, set_config, which also cannot turn the
transaction read-write or lift its statement_timeout mid-statement, large-object writes,
replication origins created or dropped); pg_sleep and SLEEP end at the test's deadline, and
txid_current only uses up a transaction number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rivergen.connectors._sqlscan import Token, mysql_tokens, postgres_tokens
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure

OUTSIDE = "has effects outside the read-only transaction"
READS_FILES = "reads server files"


def _group(reason: str, *names: str) -> dict[str, str]:
    return dict.fromkeys(names, reason)


POSTGRES_DENIED: Mapping[str, str] = {
    # Signal or control other server processes and the server itself.
    **_group(
        f"{OUTSIDE} (signals or controls the server)",
        "pg_terminate_backend",
        "pg_cancel_backend",
        "pg_reload_conf",
        "pg_rotate_logfile",
        "pg_log_backend_memory_contexts",
        "pg_switch_wal",
        "pg_switch_xlog",
        "pg_create_restore_point",
        "pg_backup_start",
        "pg_backup_stop",
        "pg_start_backup",
        "pg_stop_backup",
        "pg_promote",
        "pg_wal_replay_pause",
        "pg_wal_replay_resume",
        "pg_xlog_replay_pause",
        "pg_xlog_replay_resume",
    ),
    # Replication state is not transactional: slots and origins keep what these do.
    **_group(
        f"{OUTSIDE} (changes replication state)",
        "pg_create_physical_replication_slot",
        "pg_create_logical_replication_slot",
        "pg_copy_physical_replication_slot",
        "pg_copy_logical_replication_slot",
        "pg_drop_replication_slot",
        "pg_replication_slot_advance",
        "pg_logical_slot_get_changes",
        "pg_logical_slot_get_binary_changes",
        "pg_logical_emit_message",
        "pg_replication_origin_advance",
        "pg_replication_origin_session_setup",
    ),
    # Statistics resets are not transactional.
    **_group(
        f"{OUTSIDE} (resets server statistics)",
        "pg_stat_reset",
        "pg_stat_reset_shared",
        "pg_stat_reset_single_table_counters",
        "pg_stat_reset_single_function_counters",
        "pg_stat_reset_slru",
        "pg_stat_reset_replication_slot",
        "pg_stat_reset_subscription_stats",
        "pg_stat_statements_reset",
    ),
    # Advisory locks make other sessions wait, for as long as the test lasts.
    **_group(
        f"{OUTSIDE} (takes an advisory lock other sessions wait on)",
        "pg_advisory_lock",
        "pg_advisory_lock_shared",
        "pg_advisory_xact_lock",
        "pg_advisory_xact_lock_shared",
        "pg_try_advisory_lock",
        "pg_try_advisory_lock_shared",
        "pg_try_advisory_xact_lock",
        "pg_try_advisory_xact_lock_shared",
    ),
    # Server files written, renamed or removed (core large objects, adminpack).
    **_group(
        f"{OUTSIDE} (writes server files)",
        "lo_export",
        "pg_file_write",
        "pg_file_rename",
        "pg_file_unlink",
    ),
    # Pages changed in place, outside any transaction (pg_surgery, pg_visibility).
    **_group(
        f"{OUTSIDE} (changes table pages in place)",
        "heap_force_kill",
        "heap_force_freeze",
        "pg_truncate_visibility_map",
    ),
    # dblink runs SQL on its own connections, which our read-only transaction does not cover.
    **_group(
        f"{OUTSIDE} (runs SQL on another connection)",
        "dblink",
        "dblink_connect",
        "dblink_connect_u",
        "dblink_exec",
        "dblink_open",
        "dblink_fetch",
        "dblink_close",
        "dblink_send_query",
        "dblink_get_result",
        "dblink_cancel_query",
    ),
    # SQL passed as text runs unseen by this check, so it could call any function above.
    **_group(
        "runs SQL passed as text, which this check cannot see",
        "query_to_xml",
        "query_to_xmlschema",
        "query_to_xml_and_xmlschema",
        "ts_stat",
        "ts_rewrite",
        "crosstab",
        "crosstab2",
        "crosstab3",
        "crosstab4",
        "connectby",
        "xpath_table",
    ),
    # Files and directories of the server machine, and the server's own configuration files.
    **_group(
        READS_FILES,
        "pg_read_file",
        "pg_read_binary_file",
        "pg_stat_file",
        "pg_ls_dir",
        "pg_ls_logdir",
        "pg_ls_waldir",
        "pg_ls_tmpdir",
        "pg_ls_archive_statusdir",
        "pg_ls_logicalsnapdir",
        "pg_ls_logicalmapdir",
        "pg_ls_replslotdir",
        "pg_logdir_ls",
        "lo_import",
        "pg_file_settings",
        "pg_show_all_file_settings",
        "pg_hba_file_rules",
        "pg_ident_file_mappings",
    ),
}

MYSQL_DENIED: Mapping[str, str] = {
    "load_file": READS_FILES,
    # A named lock lives as long as the session and makes other sessions wait for it.
    "get_lock": f"{OUTSIDE} (takes a named lock other sessions wait on)",
}
# SELECT ... INTO OUTFILE / DUMPFILE: keywords rather than functions.
MYSQL_FILE_WRITES = frozenset({"outfile", "dumpfile"})


def _refused(name: str, reason: str) -> ProbeFailure:
    return ProbeFailure(
        ErrorCode.QUERY_ERROR, Phase.QUERY, f"{name} cannot be used in a test query: it {reason}"
    )


def _check(tokens: Iterable[Token], denied: Mapping[str, str]) -> None:
    for token in tokens:
        if token.kind in ("word", "quoted"):
            # Case-insensitive even for quoted names: refusing "PG_SLEEP" too costs nothing.
            name = token.text.lower()
            reason = denied.get(name)
            if reason is not None:
                raise _refused(name, reason)


def refuse_denied_postgres(sql: str) -> None:
    """Refuse a query naming a POSTGRES_DENIED function as code, however quoted or qualified."""
    # Once for each value of standard_conforming_strings, which the server may have either way.
    for plain_escapes in (False, True):
        _check(postgres_tokens(sql, plain_escapes=plain_escapes), POSTGRES_DENIED)


def refuse_denied_mysql(sql: str) -> None:
    """Refuse a query naming a MYSQL_DENIED function, using INTO OUTFILE/DUMPFILE or /*! */."""
    # Once for each sql_mode that changes where strings end: NO_BACKSLASH_ESCAPES, ANSI_QUOTES.
    for backslash_escapes in (True, False):
        for ansi_quotes in (False, True):
            tokens = list(
                mysql_tokens(sql, backslash_escapes=backslash_escapes, ansi_quotes=ansi_quotes)
            )
            for token in tokens:
                if token.kind == "special":
                    raise ProbeFailure(
                        ErrorCode.QUERY_ERROR,
                        Phase.QUERY,
                        "Versioned and hint comments (/*! */, /*M! */, /*+ */) cannot be used "
                        "in a test query: the server may run their text",
                    )
                if token.kind == "word" and token.text.lower() in MYSQL_FILE_WRITES:
                    raise ProbeFailure(
                        ErrorCode.QUERY_ERROR,
                        Phase.QUERY,
                        "INTO OUTFILE/DUMPFILE cannot be used in a test query: "
                        f"it {OUTSIDE} (writes server files)",
                    )
            _check(tokens, MYSQL_DENIED)


# Table functions that make a ClickHouse server connect to other hosts (a request forger inside
# the user's network) or read and run things on its own machine; readonly=1 does not stop them.
CLICKHOUSE_DENIED: Mapping[str, str] = {
    **_group(
        "makes the server connect to other hosts",
        *("url", "urlcluster", "remote", "remotesecure", "cluster", "clusterallreplicas"),
        *("s3", "s3cluster", "gcs", "oss", "cosn", "hdfs", "hdfscluster", "azureblobstorage"),
        *("azureblobstoragecluster", "mysql", "postgresql", "mongodb", "redis", "jdbc", "odbc"),
        *("iceberg", "deltalake", "hudi", "sqlite"),
    ),
    **_group("reads server files or runs programs", "file", "filecluster", "executable"),
}


def refuse_denied_clickhouse(sql: str) -> None:
    """Refuse a query naming a CLICKHOUSE_DENIED table function, however quoted."""
    # ClickHouse reads backslash escapes in strings and both "..." and `...` as identifiers;
    # scanning both quote readings as well costs nothing and misses nothing.
    for ansi_quotes in (True, False):
        _check(
            mysql_tokens(sql, backslash_escapes=True, ansi_quotes=ansi_quotes), CLICKHOUSE_DENIED
        )


# SQL Server's ad hoc distributed queries: they make the server open other data sources
# (other servers, files through OLE DB providers). A rolled-back transaction does not undo that.
MSSQL_DENIED: Mapping[str, str] = _group(
    "makes the server connect to other servers or read files",
    *("openrowset", "opendatasource", "openquery", "xp_cmdshell", "xp_dirtree", "xp_fileexist"),
)


def refuse_denied_mssql(sql: str) -> None:
    """Refuse a query naming a MSSQL_DENIED function, in either quoting of identifiers."""
    for ansi_quotes in (True, False):
        _check(mysql_tokens(sql, backslash_escapes=False, ansi_quotes=ansi_quotes), MSSQL_DENIED)
