"""SQL Server and FreeTDS (DB-Library) error numbers mapped to stable error codes.

Server numbers from Microsoft's "Database engine events and errors"; DB-Library numbers from
FreeTDS's include/sybdb.h (SYBE*), as pymssql reports them in `args[0]`.
"""

from __future__ import annotations

import re

from rivergen.connectors._support import query_timeout, silent_server
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security
from rivergen.security.scrub import scrub as one_line

MSSQL_CODES: dict[int, ErrorCode] = {
    18456: ErrorCode.AUTHENTICATION_FAILED,  # Login failed for user
    18452: ErrorCode.AUTHENTICATION_FAILED,  # login from an untrusted domain
    18486: ErrorCode.AUTHENTICATION_FAILED,  # account locked out
    18487: ErrorCode.AUTHENTICATION_FAILED,  # password expired
    18488: ErrorCode.AUTHENTICATION_FAILED,  # password must be changed
    4060: ErrorCode.DATABASE_NOT_FOUND,  # Cannot open database requested by the login
    911: ErrorCode.DATABASE_NOT_FOUND,  # Database does not exist
    229: ErrorCode.PERMISSION_DENIED,  # permission denied on object
    230: ErrorCode.PERMISSION_DENIED,  # permission denied on column
    262: ErrorCode.PERMISSION_DENIED,  # permission denied in database
    297: ErrorCode.PERMISSION_DENIED,  # user does not have permission
    300: ErrorCode.PERMISSION_DENIED,  # VIEW SERVER STATE permission denied
    1222: ErrorCode.TIMEOUT,  # Lock request time out period exceeded
    208: ErrorCode.QUERY_ERROR,  # Invalid object name
    102: ErrorCode.QUERY_ERROR,  # Incorrect syntax
    207: ErrorCode.QUERY_ERROR,  # Invalid column name
    3906: ErrorCode.QUERY_ERROR,  # database is read-only
    20009: ErrorCode.CONNECTION_ERROR,  # SYBECONN: unable to connect
    20002: ErrorCode.TIMEOUT,  # SYBEFCON: connection failed (with 20003 below: timed out)
    20003: ErrorCode.TIMEOUT,  # SYBETIME: server connection timed out
    20004: ErrorCode.CONNECTION_ERROR,  # SYBEREAD: read from the server failed
    20006: ErrorCode.CONNECTION_ERROR,  # SYBEWRIT: write to the server failed
    20017: ErrorCode.CONNECTION_ERROR,  # SYBESEOF: unexpected EOF from the server
    20047: ErrorCode.CONNECTION_ERROR,  # SYBEDDNE: DBPROCESS is dead
}
_SERVER_MESSAGE = re.compile(r"(?:DB-Lib error message|SQL Server message|Msg) (\d+)")
_LINE_NOISE = re.compile(r"DB-Lib error message \d+, severity \d+:\s*|General SQL Server error:")


def code_for_mssql(number: int | None) -> ErrorCode | None:
    """The stable code of a SQL Server or DB-Library error number."""
    return MSSQL_CODES.get(number) if number is not None else None


def _args(exc: BaseException) -> tuple[object, ...]:
    """(number, message): pymssql wraps them in a tuple as the exception's one argument."""
    args = exc.args
    if len(args) == 1 and isinstance(args[0], tuple):
        return tuple(args[0])
    return tuple(args)


def _numbers(exc: BaseException) -> list[int]:
    """Every error number the exception names: its own first, then those in its text."""
    args = _args(exc)
    first = [args[0]] if args and isinstance(args[0], int) else []
    text = args[1].decode(errors="replace") if len(args) > 1 and isinstance(args[1], bytes) else ""
    return first + [int(n) for n in _SERVER_MESSAGE.findall(text)]


def _text(exc: BaseException) -> str:
    args = _args(exc)
    raw = args[1] if len(args) > 1 else (args[0] if args else "")
    text = raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
    lines = [_LINE_NOISE.sub("", line).strip() for line in text.splitlines()]
    return next((line for line in lines if line), type(exc).__name__)


def failure_of(
    exc: BaseException,
    phase: Phase,
    deadline: Deadline,
    secrets: list[str | None],
    security: Security,
) -> ProbeFailure:
    """Classify a pymssql error by the most specific number it carries."""
    codes = [code for code in map(code_for_mssql, _numbers(exc)) if code is not None]
    # A server's own number (login failed, no database) beats DB-Library's wrapper.
    specific = [c for c in codes if c not in (ErrorCode.CONNECTION_ERROR, ErrorCode.TIMEOUT)]
    code = specific[0] if specific else (codes[0] if codes else None)
    if code is ErrorCode.TIMEOUT:
        failure = silent_server(deadline) if phase is Phase.AUTH else query_timeout(deadline)
        failure.security = security
        return failure
    if code is ErrorCode.AUTHENTICATION_FAILED or code is ErrorCode.DATABASE_NOT_FOUND:
        phase = Phase.AUTH
    default = ErrorCode.QUERY_ERROR if phase is Phase.QUERY else ErrorCode.CONNECTION_ERROR
    return ProbeFailure(code or default, phase, one_line(_text(exc), secrets), security=security)
