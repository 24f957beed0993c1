"""Telling a metadata store that cannot be reached apart from the store's other errors.

An unreachable store (stopped, restarting, refusing or dropping connections, no pooled
connection free in time) is a condition to wait out: requests answer 503 (`api/store_outage.py`)
and the writes of test outcomes are retried (`probing/recorder.py`). Every other store error
(a constraint, bad SQL, a login the store refuses) is ours to fix.
"""

from __future__ import annotations

import psycopg
from sqlalchemy import exc as sa_exc

from rivergen.connectors.classify import code_for_pg_message, code_for_sqlstate
from rivergen.core.outcome import ErrorCode

# SQLSTATEs of a store that is going away or will not take a connection now.
_CRASH_SHUTDOWN = "57P02"  # classify maps 57P01 and 57P03 but not this one
# libpq's own failures that mean "could not reach or lost the server"; None: text it does not
# classify, such as "Connection refused" or "server closed the connection unexpectedly".
_UNREACHABLE_TEXT = frozenset({None, ErrorCode.CONNECTION_ERROR, ErrorCode.TIMEOUT})


def store_unreachable(exc: BaseException) -> bool:
    """Whether `exc`, raised by the store's engine, means the store cannot be reached now."""
    if isinstance(exc, sa_exc.TimeoutError):
        # The pool gave no connection within its timeout: every one is busy or stalled.
        return True
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    if exc.connection_invalidated:
        # SQLAlchemy's dialect recognised a lost connection (a server shutdown, a reset).
        return True
    orig = exc.orig
    if not isinstance(orig, psycopg.OperationalError):
        # SQLite is a local file: its errors (locked, unreadable) are not an outage to wait out.
        return False
    if orig.sqlstate:
        return (
            code_for_sqlstate(orig.sqlstate) is ErrorCode.CONNECTION_ERROR
            or orig.sqlstate == _CRASH_SHUTDOWN
        )
    # libpq reports connect failures without a SQLSTATE; its text tells a refused or timed-out
    # connection from a login the store refused (a wrong role or database stays a 500).
    return code_for_pg_message(str(orig)) in _UNREACHABLE_TEXT


# SQLSTATEs of a transaction the store aborted to let a concurrent one go on: the same
# transaction run again succeeds (deadlock detected, serialization failure).
_RETRY_TRANSACTION = frozenset({"40P01", "40001"})


def store_conflict(exc: BaseException) -> bool:
    """Whether the store aborted the transaction for a concurrent one: run it again."""
    if not isinstance(exc, sa_exc.DBAPIError):
        return False
    return getattr(exc.orig, "sqlstate", None) in _RETRY_TRANSACTION


def describe(exc: BaseException) -> str:
    """The driver's first line about the failure, for the log (never for the client)."""
    cause = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"
