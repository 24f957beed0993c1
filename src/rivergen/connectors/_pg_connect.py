"""libpq's non-blocking connect for the PostgreSQL connector: the wait loop bounded by the
deadline, and the classification of a failed startup (libpq gives no SQLSTATE there)."""

from __future__ import annotations

import re
import selectors
from typing import TYPE_CHECKING

from rivergen.connectors._support import Clock, budget_text, silent_server
from rivergen.connectors._trust import VERIFYING_MODES
from rivergen.connectors.classify import (
    PG_PROTOCOL_MISMATCH,
    code_for_pg_message,
    pg_refused_without_tls,
)
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security
from rivergen.security.scrub import scrub as one_line

if TYPE_CHECKING:
    from psycopg.pq.abc import PGconn

_CLEARTEXT_REFUSED = re.compile(r"(?i)server requested a cleartext password")
_SERVER_PREFIX = re.compile(r'^connection to server at "[^"]*"(?: \([^)]*\))?, port \d+ failed:\s*')
_SEVERITY = re.compile(r"^(?:FATAL|ERROR|PANIC):\s+")
# OpenSSL's words (through libpq) for a certificate chain it could not verify; libpq says
# nothing of why, and a name mismatch has its own message.
_UNVERIFIED_CHAIN = re.compile(r"(?i)certificate verify failed")


def _startup_message(raw: str) -> str:
    """libpq's first line without the "connection to server at ... failed:" and severity
    prefixes; the lines after it are hints such as "Is the server running on that host?"."""
    lines = [line.strip() for line in raw.strip().splitlines() if line.strip()]
    first = _SERVER_PREFIX.sub("", lines[0]) if lines else ""
    return _SEVERITY.sub("", first) or "The connection failed"


def _startup_failure(
    pgconn: PGconn,
    tcp_done: bool,
    where: str,
    ssl_mode: str,
    secrets: list[str | None],
    trusted: str,
) -> ProbeFailure:
    message = one_line(_startup_message(pgconn.get_error_message()), secrets)
    # libpq exposes no SQLSTATE for startup failures, so after the signals it does give (did
    # TCP connect, did the server ask for a password we lacked) the server's text decides.
    code = code_for_pg_message(message)
    if code is ErrorCode.CONFIGURATION_ERROR:
        return ProbeFailure(code, Phase.POLICY, message)
    if not tcp_done:
        if code not in (ErrorCode.TIMEOUT, ErrorCode.HOST_NOT_FOUND):
            code = ErrorCode.CONNECTION_ERROR
        return ProbeFailure(code, Phase.TCP, f"Could not connect to {where}: {message}")
    if _CLEARTEXT_REFUSED.search(message):
        return ProbeFailure(
            ErrorCode.SSL_ERROR,
            Phase.AUTH,
            "The server asked for the password in clear text, which is sent only over TLS "
            f"with a verified certificate (ssl_mode {ssl_mode}): it was not sent; set ssl_mode "
            "to verify-full (or verify-ca), or use SCRAM on the server",
            security=Security(tls=bool(pgconn.ssl_in_use), tls_verified=False),
        )
    if pgconn.needs_password:
        return ProbeFailure(
            ErrorCode.AUTHENTICATION_FAILED, Phase.AUTH, "The server requires a password"
        )
    if pg_refused_without_tls(message, ssl_mode):
        return ProbeFailure(
            ErrorCode.SSL_ERROR,
            Phase.TLS,
            f"The server refused this unencrypted connection ({message}): it most likely "
            "accepts this client over TLS only; set ssl_mode to require or stricter",
        )
    if PG_PROTOCOL_MISMATCH.search(message):
        return ProbeFailure(
            ErrorCode.CONNECTION_ERROR,
            Phase.AUTH,
            f"The server at {where} did not answer like a PostgreSQL server; check the port",
        )
    code = code or ErrorCode.CONNECTION_ERROR
    if ssl_mode in VERIFYING_MODES and _UNVERIFIED_CHAIN.search(message):
        message += (
            f" (ssl_mode {ssl_mode}: the server's certificate does not chain to a CA in "
            f"{trusted}; it may be self-signed, from a private CA or expired)"
        )
    phase = Phase.TLS if code is ErrorCode.SSL_ERROR else Phase.AUTH
    return ProbeFailure(code, phase, message)


def open_pgconn(
    conninfo: str,
    deadline: Deadline,
    clock: Clock,
    where: str,
    ssl_mode: str,
    secrets: list[str | None],
    trusted: str,
) -> PGconn:
    """Run libpq's connect state machine, waiting on its socket until the deadline.

    `trusted` names the CAs a verifying mode checks against, for messages.
    """
    import psycopg
    from psycopg import pq

    pgconn = pq.PGconn.connect_start(conninfo.encode())
    tcp_done = False

    def failed() -> ProbeFailure:
        return _startup_failure(pgconn, tcp_done, where, ssl_mode, secrets, trusted)

    events = selectors.EVENT_WRITE  # libpq: after connect_start, wait as if polling to write
    try:
        while True:
            if pgconn.status == pq.ConnStatus.BAD:
                raise failed()
            try:
                fd = pgconn.socket
            except psycopg.OperationalError:  # libpq dropped the socket without saying BAD
                raise failed() from None
            with selectors.DefaultSelector() as selector:
                selector.register(fd, events)
                ready = selector.select(timeout=deadline.remaining())
            if not ready:
                if tcp_done:
                    raise silent_server(deadline)
                raise ProbeFailure(
                    ErrorCode.TIMEOUT,
                    Phase.TCP,
                    f"Connecting to {where} timed out after {budget_text(deadline)} s",
                )
            status = pgconn.connect_poll()
            if not tcp_done and pgconn.status not in (pq.ConnStatus.STARTED, pq.ConnStatus.BAD):
                tcp_done = True
                clock.lap(Phase.TCP)
            if status == pq.PollingStatus.OK:
                break
            if status == pq.PollingStatus.FAILED:
                raise failed()
            reading = status == pq.PollingStatus.READING
            events = selectors.EVENT_READ if reading else selectors.EVENT_WRITE
    except BaseException:
        pgconn.finish()
        raise
    clock.lap(Phase.AUTH)
    return pgconn
