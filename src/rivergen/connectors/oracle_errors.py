"""python-oracledb's DPY- and the server's ORA- errors mapped to stable error codes.

Codes from the python-oracledb documentation ("Error Messages") and Oracle's Database Error
Messages reference; the thin driver reports the ORA code a listener refusal resembles inside
its DPY-6000 message ("Similar to ORA-12514").
"""

from __future__ import annotations

import re

from rivergen.connectors._support import query_timeout, silent_server
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security
from rivergen.security.scrub import scrub as one_line

ORACLE_CODES: dict[str, ErrorCode] = {
    "ORA-01017": ErrorCode.AUTHENTICATION_FAILED,  # invalid username/password
    "ORA-28000": ErrorCode.AUTHENTICATION_FAILED,  # the account is locked
    "ORA-28001": ErrorCode.AUTHENTICATION_FAILED,  # the password has expired
    "ORA-01045": ErrorCode.PERMISSION_DENIED,  # lacks CREATE SESSION privilege
    "ORA-01031": ErrorCode.PERMISSION_DENIED,  # insufficient privileges
    "ORA-00942": ErrorCode.QUERY_ERROR,  # table or view does not exist
    "ORA-00900": ErrorCode.QUERY_ERROR,  # invalid SQL statement
    "ORA-00933": ErrorCode.QUERY_ERROR,  # SQL command not properly ended
    "ORA-01456": ErrorCode.QUERY_ERROR,  # may not perform DML in a read-only transaction
    "ORA-12514": ErrorCode.DATABASE_NOT_FOUND,  # listener does not know the service
    "ORA-12505": ErrorCode.DATABASE_NOT_FOUND,  # listener does not know the SID
    "ORA-01013": ErrorCode.TIMEOUT,  # user requested cancel (call_timeout)
    "DPY-4024": ErrorCode.TIMEOUT,  # call timeout exceeded
    "DPY-6005": ErrorCode.CONNECTION_ERROR,  # cannot connect (refused, unreachable)
    "DPY-6000": ErrorCode.CONNECTION_ERROR,  # listener refused the connection
    "DPY-4011": ErrorCode.CONNECTION_ERROR,  # the database or network closed the connection
    "DPY-3001": ErrorCode.CONFIGURATION_ERROR,  # feature unsupported by thin mode
    "DPY-3010": ErrorCode.CONFIGURATION_ERROR,  # server version unsupported by thin mode
}
# What a listener says when it does not know the service or SID: the fixed check's answer.
_LISTENER_REFUSALS = frozenset({"ORA-12514", "ORA-12505"})
_CODE = re.compile(r"\b(ORA|DPY)-(\d{4,5})\b")


def codes_in(text: str) -> list[str]:
    """Every ORA-/DPY- code in an error's text, in order."""
    return [f"{kind}-{number}" for kind, number in _CODE.findall(text)]


def code_for_oracle(codes: list[str]) -> ErrorCode | None:
    """The most specific stable code: the first mapped ORA- code, else the first DPY- one."""
    for prefix in ("ORA-", "DPY-"):
        for code in codes:
            if code.startswith(prefix) and code in ORACLE_CODES:
                return ORACLE_CODES[code]
    return None


def proves_listener(exc: BaseException) -> bool:
    """Whether the error is an Oracle listener refusing an unknown service or SID."""
    return bool(_LISTENER_REFUSALS & set(codes_in(str(exc))))


def failure_of(
    exc: BaseException,
    phase: Phase,
    deadline: Deadline,
    secrets: list[str | None],
    security: Security,
) -> ProbeFailure:
    """Classify an oracledb error by the codes in its text."""
    text = str(exc)
    code = code_for_oracle(codes_in(text))
    if code is ErrorCode.TIMEOUT:
        failure = silent_server(deadline) if phase is Phase.AUTH else query_timeout(deadline)
        failure.security = security
        return failure
    if code is ErrorCode.CONFIGURATION_ERROR:
        phase = Phase.AUTH
    first = one_line(text.strip().splitlines()[0] if text.strip() else type(exc).__name__, secrets)
    default = ErrorCode.QUERY_ERROR if phase is Phase.QUERY else ErrorCode.CONNECTION_ERROR
    return ProbeFailure(code or default, phase, first, security=security)
