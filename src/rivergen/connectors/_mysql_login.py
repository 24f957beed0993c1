"""PyMySQL's Connection as the MySQL connector uses it: the greeting checked, the password sent
only in a form the server cannot read unless TLS is verified, and what protected the login.

MySQL servers speak first: PyMySQL sends nothing a user typed (user name, database, program
name, password) before it has read the server's greeting, and `_checked_greeting` requires
that greeting to be a MySQL handshake (protocol version 10) before the handshake response goes
out. Methods that hand the server the password itself (`mysql_clear_password`, `dialog`, and
the RSA or TLS paths of `sha256_password` and `caching_sha2_password`, where an unverified peer
supplies the key or terminates the TLS) are refused unless the ssl mode verifies the server's
certificate; the challenge-response methods (`mysql_native_password`, the `caching_sha2`
fast path, `client_ed25519`) never send it.
"""

from __future__ import annotations

import functools
import ssl
from typing import Any

from rivergen.connectors._support import tls_context
from rivergen.connectors._trust import VERIFYING_MODES
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure, Security

# Plugins whose every use hands the password itself to the server.
_CLEARTEXT_PLUGINS = frozenset({b"mysql_clear_password", b"dialog", b"sha256_password"})
_CACHING_SHA2 = "caching_sha2_password"
_FULL_AUTH_NEEDED = 4  # caching_sha2's answer when its cache cannot check the fast path
_HANDSHAKE_V10 = 10
# What the query's answer (column definitions and the first row) may cost this process: PyMySQL
# reads a row whole, in packets of up to 16 MiB that it joins, so a huge value (or a hostile
# server's endless row) is refused before its bytes are read.
MAX_ROW_BYTES = 4 << 20


def cleartext_refused(plugin: str, ssl_mode: str) -> ProbeFailure:
    """The failure of a login that would have sent the password where the server reads it."""
    return ProbeFailure(
        ErrorCode.SSL_ERROR,
        Phase.AUTH,
        f"The server asked for the password through {plugin}, which hands it over readable; "
        f"it is sent so only over TLS with a verified certificate (ssl_mode {ssl_mode}): it "
        "was not sent; set ssl_mode to verify-full (or verify-ca), or give the account a "
        "challenge-response method (mysql_native_password, caching_sha2_password)",
        security=Security(tls=None, tls_verified=False, auth_method=plugin),
    )


def not_mysql() -> ProbeFailure:
    """The peer's first packet is not a MySQL greeting."""
    return ProbeFailure(
        ErrorCode.CONNECTION_ERROR,
        Phase.AUTH,
        "The server did not answer like a MySQL server; check the port",
    )


def row_too_large() -> ProbeFailure:
    """The answer to the test query is larger than this process reads."""
    return ProbeFailure(
        ErrorCode.QUERY_ERROR,
        Phase.QUERY,
        f"The query's first row is larger than {MAX_ROW_BYTES >> 20} MiB and was not read; "
        "select a shorter value (LEFT(col, 1024))",
    )


class _GuardedCachingSha2:
    """caching_sha2_password: the fast path (a scramble) always, the full authentication (the
    password itself, over TLS or RSA with the server's key) only behind verified TLS."""

    def __init__(self, conn: Any) -> None:
        self.conn = conn

    def authenticate(self, pkt: Any) -> Any:
        from pymysql import _auth

        conn = self.conn
        if conn.password and not conn.rivergen_verified:
            if pkt.is_auth_switch_request():
                salt = pkt.read_all()
                conn.salt = salt.removesuffix(b"\0")
                conn.write_packet(_auth.scramble_caching_sha2(conn.password, conn.salt))
                pkt = conn._read_packet()
            if pkt.is_extra_auth_data() and pkt.get_bytes(1)[0] == _FULL_AUTH_NEEDED:
                raise cleartext_refused(_CACHING_SHA2 + " (full authentication)", conn.ssl_mode)
        conn.rivergen_plugin = _CACHING_SHA2
        return _auth.caching_sha2_password_auth(conn, pkt)


@functools.cache
def connection_class(pymysql: Any) -> Any:
    """PyMySQL's Connection with the guards above, reusing our TLS context for PREFERRED mode.

    PyMySQL builds a fresh default context for every connection it may encrypt, which loads
    the CA store each time (~50 ms per test). The hooks are PyMySQL's private methods; the
    tests against fake and real servers show when a new PyMySQL moves them.
    """

    class _Connection(pymysql.connections.Connection):  # type: ignore[misc]
        def __init__(self, *, ssl_mode: str, **kwargs: Any) -> None:
            self.ssl_mode = ssl_mode
            self.rivergen_verified = ssl_mode in VERIFYING_MODES
            self.rivergen_plugin: str | None = None
            self.rivergen_read_budget: int | None = None
            kwargs["auth_plugin_map"] = {_CACHING_SHA2: _GuardedCachingSha2}
            super().__init__(**kwargs)

        def _create_ssl_ctx(self, sslp: object) -> ssl.SSLContext:
            if isinstance(sslp, ssl.SSLContext):
                return sslp
            return tls_context("prefer")

        def _read_bytes(self, num_bytes: int) -> bytes:
            if self.rivergen_read_budget is not None:
                self.rivergen_read_budget -= num_bytes
                if self.rivergen_read_budget < 0:
                    # Nothing may read the rest: not the result's clean-up (it would drain the
                    # row), not the close (the session is abandoned, the server rolls back).
                    result = getattr(self, "_result", None)
                    if result is not None:
                        result.unbuffered_active = False
                    self._force_close()
                    raise row_too_large()
            data: bytes = super()._read_bytes(num_bytes)
            return data

        def _get_server_information(self) -> None:
            super()._get_server_information()
            if self.protocol_version != _HANDSHAKE_V10:
                raise not_mysql()

        def _request_authentication(self) -> None:
            plugin = str(self._auth_plugin_name or "")
            self.rivergen_plugin = plugin or "mysql_native_password"
            if plugin.encode() in _CLEARTEXT_PLUGINS and self.password:
                self._refuse_unless_verified(plugin)
            super()._request_authentication()

        def _process_auth(self, plugin_name: bytes, auth_packet: Any, handler: Any = None) -> Any:
            name = plugin_name.decode("ascii", "replace")
            self.rivergen_plugin = name
            if plugin_name in _CLEARTEXT_PLUGINS:
                self._refuse_unless_verified(name)
            return super()._process_auth(plugin_name, auth_packet, handler)

        def _refuse_unless_verified(self, plugin: str) -> None:
            if not self.rivergen_verified:
                raise cleartext_refused(plugin, self.ssl_mode)

    return _Connection


def login_security(conn: Any) -> Security:
    """TLS as negotiated and the login method the server last asked for."""
    if conn is None:
        return Security()
    sock = getattr(conn, "_sock", None)
    tls = isinstance(sock, ssl.SSLSocket)
    return Security(
        tls=tls,
        tls_verified=tls and bool(getattr(conn, "rivergen_verified", False)),
        tls_version=sock.version() if isinstance(sock, ssl.SSLSocket) else None,
        auth_method=getattr(conn, "rivergen_plugin", None),
    )
