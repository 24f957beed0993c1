"""Classification by exception type, errno, SQLSTATE and vendor number."""

from __future__ import annotations

import errno
import socket
import ssl

import pytest

from rivergen.connectors.classify import (
    code_for_mysql_errno,
    code_for_os_error,
    code_for_pg_message,
    code_for_sqlite_errorcode,
    code_for_sqlstate,
    find_os_error,
    pg_refused_without_tls,
)
from rivergen.core.outcome import ErrorCode


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), ErrorCode.CONNECTION_ERROR),
        (OSError(errno.EHOSTUNREACH, "no route"), ErrorCode.CONNECTION_ERROR),
        (OSError(errno.ENETUNREACH, "unreachable"), ErrorCode.CONNECTION_ERROR),
        (OSError(errno.ETIMEDOUT, "timed out"), ErrorCode.TIMEOUT),
        (TimeoutError("timed out"), ErrorCode.TIMEOUT),
        (socket.gaierror(socket.EAI_NONAME, "unknown"), ErrorCode.HOST_NOT_FOUND),
        (ssl.SSLError(1, "bad handshake"), ErrorCode.SSL_ERROR),
    ],
)
def test_socket_errors(exc: OSError, code: ErrorCode) -> None:
    assert code_for_os_error(exc) is code


@pytest.mark.parametrize(
    ("sqlstate", "code"),
    [
        ("28P01", ErrorCode.AUTHENTICATION_FAILED),
        ("28000", ErrorCode.AUTHENTICATION_FAILED),
        ("3D000", ErrorCode.DATABASE_NOT_FOUND),
        ("42501", ErrorCode.PERMISSION_DENIED),
        ("57014", ErrorCode.TIMEOUT),
        ("25006", ErrorCode.QUERY_ERROR),
        ("08006", ErrorCode.CONNECTION_ERROR),
        ("42P01", None),
        (None, None),
    ],
)
def test_sqlstates(sqlstate: str | None, code: ErrorCode | None) -> None:
    assert code_for_sqlstate(sqlstate) is code


@pytest.mark.parametrize(
    ("number", "code"),
    [
        (1045, ErrorCode.AUTHENTICATION_FAILED),
        (1049, ErrorCode.DATABASE_NOT_FOUND),
        (1044, ErrorCode.PERMISSION_DENIED),
        (1142, ErrorCode.PERMISSION_DENIED),
        (1792, ErrorCode.QUERY_ERROR),
        (1969, ErrorCode.TIMEOUT),
        (3024, ErrorCode.TIMEOUT),
        (2003, ErrorCode.CONNECTION_ERROR),
        (1064, None),
    ],
)
def test_mysql_numbers(number: int, code: ErrorCode | None) -> None:
    assert code_for_mysql_errno(number) is code


def test_sqlite_extended_codes_use_their_primary_code() -> None:
    assert code_for_sqlite_errorcode(14) is ErrorCode.DATABASE_NOT_FOUND
    assert code_for_sqlite_errorcode(8 | (1 << 8)) is ErrorCode.QUERY_ERROR  # READONLY_RECOVERY


def test_libpq_text_is_a_second_layer_only() -> None:
    text = 'password authentication failed for user "bob"'
    assert code_for_pg_message(text) is ErrorCode.AUTHENTICATION_FAILED
    assert code_for_pg_message('database "x" does not exist') is ErrorCode.DATABASE_NOT_FOUND
    assert code_for_pg_message("something else entirely") is None


REJECTED = 'pg_hba.conf rejects connection for host "10.0.0.5", user "bi", database "sales", '
NO_ENTRY = 'no pg_hba.conf entry for host "10.0.0.5", user "bi", database "sales", '


@pytest.mark.parametrize(
    ("message", "ssl_mode", "refused"),
    [
        (REJECTED + "no encryption", "disable", True),  # hostnossl ... reject
        (NO_ENTRY + "no encryption", "disable", True),  # hostssl lines only
        (NO_ENTRY + "SSL off", "disable", True),  # the wording before PostgreSQL 12
        # prefer and allow fall back to plain text only when the server offers no TLS.
        (NO_ENTRY + "no encryption", "prefer", False),
        (REJECTED + "no encryption", "allow", False),
        (NO_ENTRY + "SSL encryption", "require", False),  # refused over TLS too
        ('password authentication failed for user "bi"', "disable", False),
    ],
)
def test_pg_hba_refusing_a_plain_connection_points_at_tls(
    message: str, ssl_mode: str, refused: bool
) -> None:
    assert pg_refused_without_tls(message, ssl_mode) is refused


def _lost_connection(inner: OSError) -> None:
    try:
        raise inner
    except OSError:
        raise RuntimeError("Lost connection (timed out)")  # noqa: B904 - keeps the context


def test_socket_error_is_found_inside_driver_errors() -> None:
    inner = TimeoutError("timed out")
    with pytest.raises(RuntimeError) as info:
        _lost_connection(inner)
    assert find_os_error(info.value) is inner
