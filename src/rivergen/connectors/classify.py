"""Map driver exceptions to stable error codes by type, errno, SQLSTATE and vendor number.

This module imports no driver, so classification works (and is testable) whichever drivers are
installed. Text patterns appear only as a second layer, where a driver gives no code for a case
(libpq reports startup failures as bare text), and each such place says so.
"""

from __future__ import annotations

import errno
import re
import socket
import ssl
from collections.abc import Iterator

from rivergen.core.outcome import ErrorCode

# Specific SQLSTATEs first; the class (first two characters) is the fallback below.
_SQLSTATE: dict[str, ErrorCode] = {
    "28000": ErrorCode.AUTHENTICATION_FAILED,  # invalid_authorization_specification (pg_hba)
    "28P01": ErrorCode.AUTHENTICATION_FAILED,  # invalid_password
    "3D000": ErrorCode.DATABASE_NOT_FOUND,  # invalid_catalog_name
    "42501": ErrorCode.PERMISSION_DENIED,  # insufficient_privilege
    "57014": ErrorCode.TIMEOUT,  # query_canceled (statement_timeout)
    "55P03": ErrorCode.TIMEOUT,  # lock_not_available (lock_timeout)
    "25006": ErrorCode.QUERY_ERROR,  # read_only_sql_transaction: the test query tried to write
    "53300": ErrorCode.CONNECTION_ERROR,  # too_many_connections
    "57P03": ErrorCode.CONNECTION_ERROR,  # cannot_connect_now (starting up, shutting down)
    "57P01": ErrorCode.CONNECTION_ERROR,  # admin_shutdown
}
_SQLSTATE_CLASS: dict[str, ErrorCode] = {
    "08": ErrorCode.CONNECTION_ERROR,
    "28": ErrorCode.AUTHENTICATION_FAILED,
}

# MySQL / MariaDB server (ER_*) and client (CR_*) error numbers.
_MYSQL_ERRNO: dict[int, ErrorCode] = {
    1045: ErrorCode.AUTHENTICATION_FAILED,  # ER_ACCESS_DENIED_ERROR
    1698: ErrorCode.AUTHENTICATION_FAILED,  # ER_ACCESS_DENIED_NO_PASSWORD_ERROR
    1130: ErrorCode.AUTHENTICATION_FAILED,  # ER_HOST_NOT_PRIVILEGED: no account for this host
    1251: ErrorCode.AUTHENTICATION_FAILED,  # ER_NOT_SUPPORTED_AUTH_MODE
    1820: ErrorCode.AUTHENTICATION_FAILED,  # ER_MUST_CHANGE_PASSWORD
    1862: ErrorCode.AUTHENTICATION_FAILED,  # ER_MUST_CHANGE_PASSWORD_LOGIN (expired)
    1049: ErrorCode.DATABASE_NOT_FOUND,  # ER_BAD_DB_ERROR
    1044: ErrorCode.PERMISSION_DENIED,  # ER_DBACCESS_DENIED_ERROR
    1142: ErrorCode.PERMISSION_DENIED,  # ER_TABLEACCESS_DENIED_ERROR
    1143: ErrorCode.PERMISSION_DENIED,  # ER_COLUMNACCESS_DENIED_ERROR
    1227: ErrorCode.PERMISSION_DENIED,  # ER_SPECIFIC_ACCESS_DENIED_ERROR
    1370: ErrorCode.PERMISSION_DENIED,  # ER_PROCACCESS_DENIED_ERROR
    1792: ErrorCode.QUERY_ERROR,  # ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION
    1836: ErrorCode.QUERY_ERROR,  # ER_READ_ONLY_MODE
    1290: ErrorCode.QUERY_ERROR,  # ER_OPTION_PREVENTS_STATEMENT (--read-only server)
    1969: ErrorCode.TIMEOUT,  # ER_STATEMENT_TIMEOUT (MariaDB max_statement_time)
    3024: ErrorCode.TIMEOUT,  # ER_QUERY_TIMEOUT (MySQL max_execution_time)
    1205: ErrorCode.TIMEOUT,  # ER_LOCK_WAIT_TIMEOUT
    1040: ErrorCode.CONNECTION_ERROR,  # ER_CON_COUNT_ERROR (too many connections)
    1129: ErrorCode.CONNECTION_ERROR,  # ER_HOST_IS_BLOCKED
    1203: ErrorCode.CONNECTION_ERROR,  # ER_TOO_MANY_USER_CONNECTIONS
    2002: ErrorCode.CONNECTION_ERROR,  # CR_CONNECTION_ERROR
    2003: ErrorCode.CONNECTION_ERROR,  # CR_CONN_HOST_ERROR (refined by the OSError inside)
    2005: ErrorCode.HOST_NOT_FOUND,  # CR_UNKNOWN_HOST
    2006: ErrorCode.CONNECTION_ERROR,  # CR_SERVER_GONE_ERROR
    2013: ErrorCode.CONNECTION_ERROR,  # CR_SERVER_LOST (refined: TIMEOUT when it timed out)
    1115: ErrorCode.CONFIGURATION_ERROR,  # ER_UNKNOWN_CHARACTER_SET
    1273: ErrorCode.CONFIGURATION_ERROR,  # ER_UNKNOWN_COLLATION
    2026: ErrorCode.SSL_ERROR,  # CR_SSL_CONNECTION_ERROR
    3159: ErrorCode.SSL_ERROR,  # ER_SECURE_TRANSPORT_REQUIRED
}

_REFUSED_OR_UNREACHABLE = frozenset(
    {
        errno.ECONNREFUSED,
        errno.EHOSTUNREACH,
        errno.ENETUNREACH,
        errno.EHOSTDOWN,
        errno.ENETDOWN,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.EADDRNOTAVAIL,
        errno.EACCES,
        errno.EPERM,
    }
)

# libpq's words for a peer that is not a PostgreSQL server (an HTTP or MySQL port, say).
PG_PROTOCOL_MISMATCH = re.compile(
    r"(?i)invalid response to (?:SSL|GSSAPI) negotiation|expected authentication request"
    r"|unexpected message from server|received invalid response"
)

# The server's pg_hba.conf refused a connection that was not encrypted: it names the encryption
# it saw at the end ("SSL off" before PostgreSQL 12, which the SSL pattern below matches anyway).
_PG_HBA_UNENCRYPTED = re.compile(
    r"(?i)(?:no pg_hba\.conf entry|pg_hba\.conf rejects connection) for host .*,"
    r" (?:no encryption|SSL off)\s*$"
)

# Second layer for libpq, which reports startup failures as text without a SQLSTATE. These are
# the server's (English) messages and libpq's own; ordered so the most specific wins.
_PG_MESSAGE_PATTERNS: tuple[tuple[re.Pattern[str], ErrorCode], ...] = (
    (re.compile(r"(?i)invalid \S+ value|invalid connection option"), ErrorCode.CONFIGURATION_ERROR),
    (PG_PROTOCOL_MISMATCH, ErrorCode.CONNECTION_ERROR),
    (re.compile(r"(?i)\bssl\b|certificate|\btls\b"), ErrorCode.SSL_ERROR),
    (
        re.compile(
            r"(?i)password authentication failed|authentication failed|no password supplied"
            r"|pg_hba\.conf|role \S+ does not exist|password must be"
        ),
        ErrorCode.AUTHENTICATION_FAILED,
    ),
    # The second form is pgbouncer's, for a name missing from its [databases] section.
    (
        re.compile(r"(?i)database \S+ does not exist|no such database"),
        ErrorCode.DATABASE_NOT_FOUND,
    ),
    (re.compile(r"(?i)permission denied"), ErrorCode.PERMISSION_DENIED),
    (re.compile(r"(?i)timeout expired|timed out"), ErrorCode.TIMEOUT),
    (
        re.compile(r"(?i)could not translate host name|name or service not known"),
        ErrorCode.HOST_NOT_FOUND,
    ),
)


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """Yield `exc` and the exceptions it was raised from or while handling."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def find_os_error(exc: BaseException) -> OSError | None:
    """The first OSError in `exc`'s chain (drivers wrap socket errors in their own types)."""
    for item in exception_chain(exc):
        if isinstance(item, OSError):
            return item
        original = getattr(item, "original_exception", None)  # PyMySQL keeps it here
        if isinstance(original, OSError):
            return original
    return None


def code_for_os_error(exc: OSError) -> ErrorCode:
    """Classify a socket-level failure by exception type and errno."""
    if isinstance(exc, socket.gaierror):
        return ErrorCode.HOST_NOT_FOUND
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return ErrorCode.SSL_ERROR
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return ErrorCode.TIMEOUT
    return ErrorCode.CONNECTION_ERROR


def describe_os_error(exc: OSError, where: str) -> str:
    """A one-line explanation of a socket failure towards `where` (host:port)."""
    if isinstance(exc, socket.gaierror):
        return f"The host name of {where} could not be resolved ({exc.strerror or exc})"
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return f"TLS negotiation with {where} failed: {exc}"
    if isinstance(exc, TimeoutError) or exc.errno == errno.ETIMEDOUT:
        return f"Connecting to {where} timed out"
    if exc.errno == errno.ECONNREFUSED:
        return f"Connection refused by {where}: nothing is listening on that port"
    if exc.errno in (errno.EHOSTUNREACH, errno.EHOSTDOWN):
        return f"Host {where} is unreachable"
    if exc.errno in (errno.ENETUNREACH, errno.ENETDOWN):
        return f"The network of {where} is unreachable"
    if exc.errno in (errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE):
        return f"The connection to {where} was reset"
    if exc.errno in _REFUSED_OR_UNREACHABLE:
        return f"Could not connect to {where}: {exc.strerror or exc}"
    return f"Could not connect to {where}: {exc.strerror or exc}"


def code_for_sqlstate(sqlstate: str | None) -> ErrorCode | None:
    """Classify a PostgreSQL SQLSTATE, or None when it says nothing specific."""
    if not sqlstate:
        return None
    return _SQLSTATE.get(sqlstate) or _SQLSTATE_CLASS.get(sqlstate[:2])


def code_for_mysql_errno(number: int | None) -> ErrorCode | None:
    """Classify a MySQL/MariaDB server or client error number."""
    if number is None:
        return None
    return _MYSQL_ERRNO.get(number)


def code_for_pg_message(message: str) -> ErrorCode | None:
    """Second layer for libpq startup failures, which carry no SQLSTATE: match the text."""
    for pattern, code in _PG_MESSAGE_PATTERNS:
        if pattern.search(message):
            return code
    return None


def pg_refused_without_tls(message: str, ssl_mode: str) -> bool:
    """Whether pg_hba.conf refused a connection the user chose not to encrypt (`disable`)."""
    # Only then does the refusal point at TLS: with prefer or allow, libpq fell back to plain
    # text because the server offers no TLS, and the refusal is about the host or user alone.
    return ssl_mode == "disable" and _PG_HBA_UNENCRYPTED.search(message) is not None


def code_for_redis_error(exc: BaseException) -> ErrorCode:
    """Classify a redis-py exception by its type, then by the server's error prefix."""
    import redis.exceptions as rx  # the caller only has a redis exception if redis is installed

    if isinstance(exc, rx.AuthenticationError | rx.AuthenticationWrongNumberOfArgsError):
        return ErrorCode.AUTHENTICATION_FAILED
    if isinstance(exc, rx.NoPermissionError):
        return ErrorCode.PERMISSION_DENIED
    if isinstance(exc, rx.TimeoutError):
        return ErrorCode.TIMEOUT
    if isinstance(exc, rx.ConnectionError):
        inner = find_os_error(exc)
        return code_for_os_error(inner) if inner else ErrorCode.CONNECTION_ERROR
    if isinstance(exc, rx.ResponseError):
        # Redis errors are "PREFIX message"; redis-py maps only some prefixes to types.
        text = str(exc)
        if text.startswith(("WRONGPASS", "NOAUTH")) or "invalid password" in text:
            return ErrorCode.AUTHENTICATION_FAILED
        if text.startswith("NOPERM"):
            return ErrorCode.PERMISSION_DENIED
        if "DB index is out of range" in text or "invalid DB index" in text:
            return ErrorCode.DATABASE_NOT_FOUND
        return ErrorCode.QUERY_ERROR
    return ErrorCode.INTERNAL_ERROR


# SQLite primary result codes (extended codes carry the primary one in their low byte).
_SQLITE_CODES: dict[int, ErrorCode] = {
    3: ErrorCode.PERMISSION_DENIED,  # SQLITE_PERM
    5: ErrorCode.TIMEOUT,  # SQLITE_BUSY: locked by a writer for longer than the budget
    6: ErrorCode.TIMEOUT,  # SQLITE_LOCKED
    8: ErrorCode.QUERY_ERROR,  # SQLITE_READONLY: the test query tried to write
    9: ErrorCode.TIMEOUT,  # SQLITE_INTERRUPT: our progress handler stopped it at the deadline
    14: ErrorCode.DATABASE_NOT_FOUND,  # SQLITE_CANTOPEN
    23: ErrorCode.QUERY_ERROR,  # SQLITE_AUTH: our authorizer refused a write or ATTACH
    26: ErrorCode.DATABASE_NOT_FOUND,  # SQLITE_NOTADB: the file is not an SQLite database
}


def code_for_sqlite_errorcode(number: int | None) -> ErrorCode | None:
    """Classify an sqlite3 exception's `sqlite_errorcode`."""
    if number is None:
        return None
    return _SQLITE_CODES.get(number & 0xFF)
