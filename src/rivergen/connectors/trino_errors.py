"""Trino's error names and HTTP failures mapped to stable error codes.

Names from Trino's StandardErrorCode (io.trino.spi.StandardErrorCode) as the client reports
them in `TrinoQueryError.error_name`; exception types from trino.exceptions and requests.
"""

from __future__ import annotations

from rivergen.connectors._support import query_timeout, silent_server
from rivergen.connectors.classify import code_for_os_error, find_os_error
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security
from rivergen.security.scrub import scrub as one_line

TRINO_ERRORS: dict[str, ErrorCode] = {
    "PERMISSION_DENIED": ErrorCode.PERMISSION_DENIED,
    "CATALOG_NOT_FOUND": ErrorCode.DATABASE_NOT_FOUND,
    "SCHEMA_NOT_FOUND": ErrorCode.DATABASE_NOT_FOUND,
    "EXCEEDED_TIME_LIMIT": ErrorCode.TIMEOUT,
    "USER_CANCELED": ErrorCode.TIMEOUT,
    "ABANDONED_QUERY": ErrorCode.TIMEOUT,
    "SYNTAX_ERROR": ErrorCode.QUERY_ERROR,
    "TABLE_NOT_FOUND": ErrorCode.QUERY_ERROR,
    "COLUMN_NOT_FOUND": ErrorCode.QUERY_ERROR,
    "FUNCTION_NOT_FOUND": ErrorCode.QUERY_ERROR,
    "NOT_SUPPORTED": ErrorCode.QUERY_ERROR,
    "SERVER_STARTING_UP": ErrorCode.CONNECTION_ERROR,
    "SERVER_SHUTTING_DOWN": ErrorCode.CONNECTION_ERROR,
    "NO_NODES_AVAILABLE": ErrorCode.CONNECTION_ERROR,
}


def code_for_trino(name: str | None) -> ErrorCode | None:
    """The stable code of a Trino error name."""
    return TRINO_ERRORS.get(name) if name else None


def _transport(
    exc: BaseException, phase: Phase, deadline: Deadline, security: Security
) -> ProbeFailure | None:
    """Timeouts, TLS and socket errors below HTTP, whichever layer raised them."""
    import requests

    if isinstance(exc, requests.Timeout | TimeoutError):
        failure = silent_server(deadline) if phase is Phase.AUTH else query_timeout(deadline)
        failure.security = security
        return failure
    if isinstance(exc, requests.exceptions.SSLError):
        return ProbeFailure(
            ErrorCode.SSL_ERROR, Phase.TLS, "The TLS handshake failed", security=security
        )
    inner = find_os_error(exc)
    if inner is not None:
        return ProbeFailure(
            code_for_os_error(inner), phase, f"The connection failed: {inner}", security=security
        )
    return None


def info_failure(
    exc: BaseException, deadline: Deadline, secrets: list[str | None], security: Security
) -> ProbeFailure:
    """Why GET /v1/info failed; never the peer's own words."""
    failure = _transport(exc, Phase.AUTH, deadline, security)
    if failure is not None:
        return failure
    return ProbeFailure(
        ErrorCode.CONNECTION_ERROR,
        Phase.AUTH,
        "The server did not answer like a Trino coordinator",
        security=security,
    )


def failure_of(
    exc: BaseException, deadline: Deadline, secrets: list[str | None], security: Security
) -> ProbeFailure:
    """Classify an error of the statement: Trino's error name, HTTP status, transport."""
    from trino import exceptions

    if isinstance(exc, exceptions.TrinoQueryError):
        code = code_for_trino(exc.error_name)
        if code is ErrorCode.TIMEOUT:
            timed_out = query_timeout(deadline)
            timed_out.security = security
            return timed_out
        text = one_line(str(exc.message or exc.error_name), secrets)
        phase = Phase.AUTH if code is ErrorCode.DATABASE_NOT_FOUND else Phase.QUERY
        return ProbeFailure(code or ErrorCode.QUERY_ERROR, phase, text, security=security)
    text = one_line(str(exc).splitlines()[0] if str(exc) else type(exc).__name__, secrets)
    if isinstance(exc, exceptions.HttpError) and ("401" in text or "403" in text):
        return ProbeFailure(ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH, text, security=security)
    if isinstance(exc, exceptions.TrinoAuthError):
        return ProbeFailure(ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH, text, security=security)
    below = _transport(exc, Phase.QUERY, deadline, security)
    if below is not None:
        return below
    return ProbeFailure(ErrorCode.CONNECTION_ERROR, Phase.QUERY, text, security=security)
