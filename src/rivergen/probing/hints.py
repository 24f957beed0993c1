"""What a user can do about each error code: the `hint` of a failed test."""

from __future__ import annotations

from rivergen.core.outcome import ErrorCode, Security

HINTS: dict[ErrorCode, str] = {
    ErrorCode.CONNECTION_ERROR: (
        "Nothing accepted the connection: check the host and port, that the database is "
        "running and listening on that address, and that firewalls allow this service."
    ),
    ErrorCode.TIMEOUT: (
        "The target did not answer in time: check firewalls that drop packets, the port (is it "
        "really the database?), or raise timeout_seconds for a slow or distant server."
    ),
    ErrorCode.HOST_NOT_FOUND: (
        "The host name does not resolve: check its spelling, or use the address this service "
        "can resolve (internal names may need the SSH tunnel)."
    ),
    ErrorCode.AUTHENTICATION_FAILED: "Check the username and password; the server refused them.",
    ErrorCode.DATABASE_NOT_FOUND: (
        "The server has no database by that name: check the database field (names can be "
        "case-sensitive)."
    ),
    ErrorCode.PERMISSION_DENIED: (
        "The user signed in but lacks a privilege: grant it CONNECT on the database and SELECT "
        "on what the test query reads."
    ),
    ErrorCode.SSL_ERROR: (
        "TLS between the service and the server failed or was refused: check ssl_mode against "
        "what the server accepts and, for the verifying modes, that its certificate is valid "
        "for this host name and issued by a CA the service trusts (the system CA bundle, or "
        "the CAs in ssl_root_cert for a private CA)."
    ),
    ErrorCode.QUERY_ERROR: (
        "The test query failed: it must be one read-only statement (writes are refused); try "
        "the default by leaving test_query out."
    ),
    ErrorCode.SSH_CONNECTION_ERROR: (
        "The SSH bastion could not be reached: check the tunnel host and port and that sshd "
        "is running there."
    ),
    ErrorCode.SSH_AUTHENTICATION_FAILED: (
        "The bastion refused the SSH credentials: check the tunnel username, its key (and "
        "passphrase) or password, and the bastion's authorized_keys."
    ),
    ErrorCode.SSH_HOST_KEY_MISMATCH: (
        "The bastion's host key is not the pinned one: if the bastion was rebuilt, pin its new "
        "key; otherwise someone may be intercepting the connection."
    ),
    ErrorCode.SSH_TUNNEL_ERROR: (
        "The bastion refused to forward to the database: check AllowTcpForwarding / PermitOpen "
        "on the bastion and that it can reach the database host and port."
    ),
    ErrorCode.HOST_NOT_ALLOWED: (
        "This address is refused by the service's host policy (metadata, link-local, the "
        "service's own store and broker, this machine's own addresses unless the operator set "
        "RIVERGEN_ALLOW_LOOPBACK=true, or, when disabled, private networks); ask an operator "
        "about RIVERGEN_ALLOW_LOOPBACK and RIVERGEN_ALLOWED_NETWORKS."
    ),
    ErrorCode.DRIVER_NOT_INSTALLED: (
        "The driver for this engine is not installed on the server; install the matching "
        "optional dependency."
    ),
    ErrorCode.CONFIGURATION_ERROR: "The stored configuration is incomplete or invalid; edit it.",
    ErrorCode.INTERNAL_ERROR: (
        "An unexpected error occurred in the service; retry, and report it with the request id "
        "if it persists."
    ),
}


CLEARTEXT_PASSWORD_HINT = (
    "The password crossed the network in clear text (this protocol has no challenge-response "
    "login): anyone on the path can read it; use ssl_mode verify-full (or an SSH tunnel)."
)


def hint_for(code: ErrorCode | None, security: Security | None = None) -> str | None:
    """The hint for an error code; for a success, None unless the password went in clear."""
    if code is not None:
        hint = HINTS.get(code)
        if security is not None and security.cleartext_password and hint is not None:
            return f"{hint} {CLEARTEXT_PASSWORD_HINT}"
        return hint
    if security is not None and security.cleartext_password:
        return CLEARTEXT_PASSWORD_HINT
    return None
