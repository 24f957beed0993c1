"""pymongo's exceptions and MongoDB's server error codes mapped to stable error codes.

Codes from MongoDB's src/mongo/base/error_codes.yml; exception types from pymongo.errors.
"""

from __future__ import annotations

from rivergen.connectors._support import query_timeout, silent_server
from rivergen.connectors.classify import code_for_os_error, find_os_error
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security
from rivergen.security.scrub import scrub as one_line

MONGO_CODES: dict[int, ErrorCode] = {
    18: ErrorCode.AUTHENTICATION_FAILED,  # AuthenticationFailed
    11: ErrorCode.AUTHENTICATION_FAILED,  # UserNotFound
    13: ErrorCode.PERMISSION_DENIED,  # Unauthorized
    8000: ErrorCode.PERMISSION_DENIED,  # AtlasError (user lacks the privilege, Atlas)
    50: ErrorCode.TIMEOUT,  # MaxTimeMSExpired
    262: ErrorCode.TIMEOUT,  # ExceededTimeLimit
    26: ErrorCode.QUERY_ERROR,  # NamespaceNotFound
    59: ErrorCode.QUERY_ERROR,  # CommandNotFound
    2: ErrorCode.QUERY_ERROR,  # BadValue
    9: ErrorCode.QUERY_ERROR,  # FailedToParse
    73: ErrorCode.QUERY_ERROR,  # InvalidNamespace
    11600: ErrorCode.CONNECTION_ERROR,  # InterruptedAtShutdown
    91: ErrorCode.CONNECTION_ERROR,  # ShutdownInProgress
    189: ErrorCode.CONNECTION_ERROR,  # PrimarySteppedDown
}


def code_for_mongo(code: int | None) -> ErrorCode | None:
    """The stable code of a MongoDB server error code."""
    return MONGO_CODES.get(code) if code is not None else None


def failure_of(
    exc: BaseException,
    phase: Phase,
    deadline: Deadline,
    secrets: list[str | None],
    security: Security,
) -> ProbeFailure:
    """Classify a pymongo exception by type, server code and the socket error inside it."""
    from pymongo import errors

    def timed_out() -> ProbeFailure:
        failure = silent_server(deadline) if phase is Phase.AUTH else query_timeout(deadline)
        failure.security = security
        return failure

    text = one_line(str(exc).split(", Timeout:")[0], secrets) or type(exc).__name__
    if isinstance(exc, errors.OperationFailure):
        errmsg = (exc.details or {}).get("errmsg")
        text = one_line(str(errmsg), secrets) if errmsg else text
        code = code_for_mongo(exc.code)
        if code is ErrorCode.TIMEOUT:
            return timed_out()
        if code is ErrorCode.AUTHENTICATION_FAILED:
            phase = Phase.AUTH
        default = ErrorCode.QUERY_ERROR if phase is Phase.QUERY else ErrorCode.CONNECTION_ERROR
        return ProbeFailure(code or default, phase, text, security=security)
    if isinstance(exc, errors.ConfigurationError | errors.InvalidURI):
        return ProbeFailure(ErrorCode.CONFIGURATION_ERROR, Phase.POLICY, text, security=security)
    inner = find_os_error(exc)
    if inner is not None and not isinstance(inner, TimeoutError):
        return ProbeFailure(code_for_os_error(inner), phase, text, security=security)
    lowered = text.lower()
    if "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
        return ProbeFailure(ErrorCode.SSL_ERROR, Phase.TLS, text, security=security)
    if "connection refused" in lowered:
        return ProbeFailure(ErrorCode.CONNECTION_ERROR, Phase.TCP, text, security=security)
    if isinstance(exc, errors.ServerSelectionTimeoutError | errors.NetworkTimeout) or (
        isinstance(exc, errors.PyMongoError) and exc.timeout
    ):
        return timed_out()
    if isinstance(exc, errors.ConnectionFailure | errors.ProtocolError):
        message = f"The server did not answer like a MongoDB server: {text}"
        return ProbeFailure(ErrorCode.CONNECTION_ERROR, phase, message, security=security)
    if isinstance(exc, errors.PyMongoError):
        default = ErrorCode.QUERY_ERROR if phase is Phase.QUERY else ErrorCode.CONNECTION_ERROR
        return ProbeFailure(default, phase, text, security=security)
    raise exc
