"""Stable error codes and phases of a connection test, and the exception that carries them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """Error codes a connection test can report; stable and documented in the README."""

    CONNECTION_ERROR = "CONNECTION_ERROR"
    TIMEOUT = "TIMEOUT"
    HOST_NOT_FOUND = "HOST_NOT_FOUND"
    AUTHENTICATION_FAILED = "AUTHENTICATION_FAILED"
    DATABASE_NOT_FOUND = "DATABASE_NOT_FOUND"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    SSL_ERROR = "SSL_ERROR"
    QUERY_ERROR = "QUERY_ERROR"
    SSH_CONNECTION_ERROR = "SSH_CONNECTION_ERROR"
    SSH_AUTHENTICATION_FAILED = "SSH_AUTHENTICATION_FAILED"
    SSH_HOST_KEY_MISMATCH = "SSH_HOST_KEY_MISMATCH"
    SSH_TUNNEL_ERROR = "SSH_TUNNEL_ERROR"
    HOST_NOT_ALLOWED = "HOST_NOT_ALLOWED"
    DRIVER_NOT_INSTALLED = "DRIVER_NOT_INSTALLED"
    CONFIGURATION_ERROR = "CONFIGURATION_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"


class Phase(StrEnum):
    """The step of a connection test in which a failure happened."""

    DNS = "dns"
    TCP = "tcp"
    TLS = "tls"
    SSH = "ssh"
    AUTH = "auth"
    QUERY = "query"
    POLICY = "policy"


@dataclass(frozen=True)
class Security:
    """How the connection of one test was protected; None where the driver cannot tell.

    `auth_method` names how the credentials went to the server (for example `scram-sha-256`,
    `mysql_native_password`, `AUTH (cleartext)`, `none`). `cleartext_password` is True when
    the password itself crossed the network without verified TLS (Redis `AUTH` without TLS):
    the result's hint then says so.
    """

    tls: bool | None = None
    tls_verified: bool | None = None
    tls_version: str | None = None
    auth_method: str | None = None
    cleartext_password: bool = False


class ProbeFailure(Exception):
    """A classified failure of one phase of a test; `message` is one line and holds no secret.

    `security` is what the connector knew of the connection's protection when it failed.
    """

    def __init__(
        self, code: ErrorCode, phase: Phase, message: str, *, security: Security | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.phase = phase
        self.message = " ".join(message.split()) or code.value
        self.security = security

    def __repr__(self) -> str:
        return f"ProbeFailure({self.code.value}, {self.phase.value}, {self.message!r})"
