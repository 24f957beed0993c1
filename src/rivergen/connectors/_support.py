"""Pieces every connector shares: connection models, sockets bounded by a deadline, query guards."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import functools
import os
import re
import socket
import ssl
import time
from collections.abc import Iterator, Mapping
from typing import Annotated, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from rivergen.connectors._trust import VERIFYING_MODES, require_verifying_mode, verified_context
from rivergen.connectors.base import ConnectionTarget, OptionValue
from rivergen.connectors.classify import code_for_os_error, describe_os_error
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure

# Host names, IPv4 and IPv6 literals; nothing that a driver would read as a socket path or URL.
HostName = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=253, pattern=r"^[A-Za-z0-9._:%\-]+$"
    ),
]
Port = Annotated[int, Field(ge=1, le=65535)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=255)]
_MAX_OPTION_TEXT = 255


def check_options(
    options: Mapping[str, OptionValue], allowed: Mapping[str, type]
) -> dict[str, OptionValue]:
    """Refuse driver options outside the engine's allow-list or of the wrong type."""
    checked: dict[str, OptionValue] = {}
    for name, value in options.items():
        expected = allowed.get(name)
        if expected is None:
            known = ", ".join(sorted(allowed)) or "none"
            raise ValueError(f"option {name!r} is not allowed (allowed: {known})")
        # bool is an int subclass, so compare exact types, widening int to float only.
        ok = type(value) is expected or (expected is float and type(value) is int)
        if not ok:
            raise ValueError(f"option {name!r} must be of type {expected.__name__}")
        if isinstance(value, str) and (
            len(value) > _MAX_OPTION_TEXT or any(ord(ch) < 32 for ch in value)
        ):
            raise ValueError(f"option {name!r} must be printable text of at most 255 characters")
        checked[name] = value
    return checked


class OptionsModel(BaseModel):
    """Base of every connection model: no unknown fields, options limited to an allow-list."""

    model_config = ConfigDict(extra="forbid")
    allowed_options: ClassVar[Mapping[str, type]] = {}

    options: dict[str, OptionValue] = Field(default_factory=dict)

    @field_validator("options")
    @classmethod
    def _allowed_only(cls, value: dict[str, OptionValue]) -> dict[str, OptionValue]:
        return check_options(value, cls.allowed_options)


class NetworkConnection(OptionsModel):
    """Fields shared by server engines; subclasses set the port default, ssl modes and
    `ssl_root_cert` (declared after `ssl_mode`, so that its check below can see the mode)."""

    host: HostName
    username: ShortText | None = None
    # Plain text (not SecretStr) because the data-source layer encrypts and masks it; kept out
    # of repr so it never lands in a log line by accident.
    password: str | None = Field(
        default=None, repr=False, json_schema_extra={"format": "password", "writeOnly": True}
    )

    @field_validator("ssl_root_cert", check_fields=False)
    @classmethod
    def _root_cert_needs_verification(cls, value: str | None, info: ValidationInfo) -> str | None:
        return require_verifying_mode(value, info)


class FileConnection(OptionsModel):
    """Fields of file engines: the database file, opened read-only."""

    path: Annotated[str, StringConstraints(min_length=1, max_length=4096)]


@contextlib.contextmanager
def driver_required(package: str) -> Iterator[None]:
    """Turn a failed driver import inside the block into DRIVER_NOT_INSTALLED naming `package`."""
    # A context manager rather than a function returning the module, so that the import
    # statement stays in the connector and the driver keeps its static types.
    try:
        yield
    except ImportError:
        raise ProbeFailure(
            ErrorCode.DRIVER_NOT_INSTALLED, Phase.POLICY, f"{package} is not installed"
        ) from None


class KeywordGuarded:
    """Base of connectors that refuse non-read keywords before sending a query."""

    def __init__(self, *, check_keywords: bool = True) -> None:
        # Tests switch the keyword guard off to prove that the engine's own read-only mode
        # (transaction, session, read-only open) alone refuses writes.
        self.check_keywords = check_keywords


@functools.cache
def tls_context(mode: str) -> ssl.SSLContext:
    """A shared client TLS context per ssl mode.

    `allow`, `prefer` and `require` encrypt without verifying, as libpq does, and skip loading
    the CA store (~50 ms); `verify-ca` checks the chain against the system CAs; `verify-full`
    checks the chain and the host name.
    """
    if mode in ("allow", "prefer", "require"):
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    context = ssl.create_default_context()
    if mode == "verify-ca":
        context.check_hostname = False
    return context


def client_context(mode: str, root_cert: str | None) -> ssl.SSLContext:
    """The context for `mode`: trusting only `root_cert`'s CAs when given to a verifying mode."""
    if root_cert is not None and mode in VERIFYING_MODES:
        return verified_context(mode, root_cert)
    return tls_context(mode)


def format_seconds(seconds: float) -> str:
    """`2` for whole seconds, `1.5` otherwise: for messages."""
    return f"{seconds:.0f}" if abs(seconds - round(seconds)) < 0.05 else f"{seconds:.1f}"


def budget_text(deadline: Deadline) -> str:
    """The test's whole time budget as message text."""
    return format_seconds(deadline.expires_at - deadline.started_at)


def silent_server(deadline: Deadline) -> ProbeFailure:
    """TCP worked but the server never answered in time."""
    return ProbeFailure(
        ErrorCode.TIMEOUT,
        Phase.AUTH,
        f"The server accepted the connection but did not answer within {budget_text(deadline)} s",
    )


def query_timeout(deadline: Deadline) -> ProbeFailure:
    """The test query did not finish in time."""
    return ProbeFailure(
        ErrorCode.TIMEOUT,
        Phase.QUERY,
        f"The test query did not finish within {budget_text(deadline)} s",
    )


def endpoint(host: str, port: int) -> str:
    """host:port, bracketing IPv6 literals."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Clock:
    """Per-phase timings in milliseconds."""

    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._mark = time.monotonic()

    def lap(self, phase: Phase) -> None:
        """Record the time since the previous lap under `phase`."""
        now = time.monotonic()
        self.timings[phase.value] = round((now - self._mark) * 1000.0, 3)
        self._mark = now


def require_host(target: ConnectionTarget) -> tuple[str, int]:
    """The connect host and port of a server target, or a configuration failure."""
    host = target.connect_host
    if not host or not target.port:
        raise ProbeFailure(
            ErrorCode.CONFIGURATION_ERROR, Phase.POLICY, "A host and a port are required"
        )
    return host, target.port


def resolve_address(target: ConnectionTarget, deadline: Deadline) -> tuple[str, int]:
    """The checked address when given; else resolve the host (the probing layer normally has)."""
    host, port = require_host(target)
    if target.address:
        return target.address, port
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        code = code_for_os_error(exc)
        raise ProbeFailure(code, Phase.DNS, describe_os_error(exc, endpoint(host, port))) from None
    if not infos:
        raise ProbeFailure(ErrorCode.HOST_NOT_FOUND, Phase.DNS, f"No address found for {host}")
    return str(infos[0][4][0]), port


def open_tcp(address: str, port: int, deadline: Deadline) -> socket.socket:
    """A connected TCP socket to address:port, classified by errno on failure."""
    if deadline.expired():
        raise ProbeFailure(ErrorCode.TIMEOUT, Phase.TCP, "No time was left to connect")
    where = endpoint(address, port)
    try:
        sock = socket.create_connection((address, port), timeout=deadline.remaining())
    except TimeoutError:
        raise ProbeFailure(
            ErrorCode.TIMEOUT,
            Phase.TCP,
            f"Connecting to {where} timed out after {budget_text(deadline)} s "
            "(no answer: a firewall may be dropping packets)",
        ) from None
    except OSError as exc:
        raise ProbeFailure(
            code_for_os_error(exc), Phase.TCP, describe_os_error(exc, where)
        ) from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


_COMMENT_OR_SPACE = re.compile(r"\s+|--[^\n]*(?:\n|$)|/\*.*?\*/|#[^\n]*(?:\n|$)", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_]+")

SQL_READ_KEYWORDS = frozenset(
    {"SELECT", "WITH", "VALUES", "SHOW", "EXPLAIN", "TABLE", "DESCRIBE", "DESC", "PRAGMA"}
)


def clean_query(query: str | None, default: str) -> str:
    """The query to run: the default when empty, without trailing semicolons or blanks."""
    text = (query or "").strip()
    while text.endswith(";"):
        text = text[:-1].rstrip()
    return text or default


def first_keyword(query: str, *, hash_comments: bool = False) -> str:
    """The statement's first word in upper case, skipping comments and opening parentheses."""
    pos = 0
    while pos < len(query):
        if query[pos] == "(":
            pos += 1
            continue
        match = _COMMENT_OR_SPACE.match(query, pos)
        if match is None or (match.group().startswith("#") and not hash_comments):
            break
        pos = match.end()
    word = _WORD.match(query, pos)
    return word.group().upper() if word else ""


def refuse_unless_read(
    query: str, allowed: frozenset[str] = SQL_READ_KEYWORDS, *, hash_comments: bool = False
) -> None:
    """Defence in depth before sending: refuse a query whose first keyword is not a read."""
    keyword = first_keyword(query, hash_comments=hash_comments)
    if keyword not in allowed:
        shown = keyword or "an empty statement"
        raise ProbeFailure(
            ErrorCode.QUERY_ERROR,
            Phase.QUERY,
            f"The test query must be a single read-only statement; {shown} is not allowed",
        )


def cell_text(value: object) -> str | None:
    """The first cell as the API returns it: text, bytes decoded, None kept."""
    if value is None:
        return None
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return "\\x" + raw.hex()  # binary data as PostgreSQL prints bytea
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    return str(value)


# What the API returns of the first cell at most; `test_query_result_truncated` flags the rest.
MAX_RESULT_CHARS = 1024
# What an engine lets the server send of that cell, in bytes, before it stops reading: enough
# for MAX_RESULT_CHARS characters of 4-byte UTF-8 or of hex-printed binary, with room to spare.
MAX_CELL_BYTES = 8 * MAX_RESULT_CHARS


def first_cell(value: object, *, cut: bool = False) -> tuple[str | None, bool]:
    """The first cell as the API returns it, at most MAX_RESULT_CHARS, and was-it-truncated.

    `cut` says that the engine already stopped the value short (it read only a prefix), so
    the result is truncated whatever its length now.
    """
    if isinstance(value, bytes | bytearray | memoryview) and len(value) > MAX_CELL_BYTES:
        value, cut = bytes(value[:MAX_CELL_BYTES]), True
    text = cell_text(value)
    if text is None:
        return None, cut
    if len(text) > MAX_RESULT_CHARS:
        return text[:MAX_RESULT_CHARS], True
    return text, cut


def check_database_file(path: str | None) -> str:
    """The path of an existing, readable database file, or the failure a user can act on."""
    if not path:
        raise ProbeFailure(ErrorCode.CONFIGURATION_ERROR, Phase.POLICY, "A file path is required")
    if not os.path.exists(path):
        raise ProbeFailure(
            ErrorCode.DATABASE_NOT_FOUND, Phase.AUTH, "The database file does not exist"
        )
    if not os.path.isfile(path):
        raise ProbeFailure(
            ErrorCode.DATABASE_NOT_FOUND, Phase.AUTH, "The path is not a regular file"
        )
    if not os.access(path, os.R_OK):
        raise ProbeFailure(
            ErrorCode.PERMISSION_DENIED, Phase.AUTH, "The service may not read the database file"
        )
    return os.path.abspath(path)
