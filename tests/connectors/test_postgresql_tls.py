"""The PostgreSQL connector against a private server that accepts TCP clients over TLS only.

The server's certificate is self-signed (tests/fixtures/tls.py): modes that encrypt without
verifying must connect over TLS, modes that verify must refuse it, and `disable` (which libpq
runs as `prefer`, so that its first bytes are always the fixed SSLRequest) gets TLS from a
server that offers it, unverified, as `security` says. With that certificate as
`ssl_root_cert` the verifying modes connect; with an unrelated CA they fail; libpq's temporary
file never outlives the test.
"""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from rivergen.connectors.base import ConnectionTarget
from rivergen.connectors.postgresql import SPEC
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.tls import TlsPostgres, unrelated_ca_pem

CONNECTOR = SPEC.connector
# The server's own view of this session: 'true' only if the connection is encrypted.
SESSION_USES_TLS = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
# Trust auth never asks for it; it is there to prove that no message repeats it.
PASSWORD = "Tls-secret-never-shown-7"


def fail(tls_postgres: TlsPostgres, ssl_mode: str) -> ProbeFailure:
    target = tls_postgres.server.target(ssl_mode=ssl_mode, password=PASSWORD)
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, None, Deadline.after(10))
    assert PASSWORD not in info.value.message
    return info.value


@pytest.mark.parametrize("ssl_mode", ["require", "prefer", "allow", None])
def test_modes_that_do_not_verify_connect_over_tls(
    tls_postgres: TlsPostgres, ssl_mode: str | None
) -> None:
    target = tls_postgres.server.target(ssl_mode=ssl_mode)
    result = CONNECTOR.probe(target, SESSION_USES_TLS, Deadline.after(10))
    assert result.test_query_result == "true"
    assert result.database_version == tls_postgres.version()
    assert set(result.timings_ms) == {"tcp", "auth", "query"}


def test_disable_opens_with_sslrequest_and_gets_tls_from_a_tls_only_server(
    tls_postgres: TlsPostgres,
) -> None:
    target = tls_postgres.server.target(ssl_mode="disable")
    result = CONNECTOR.probe(target, SESSION_USES_TLS, Deadline.after(10))
    assert result.test_query_result == "true"
    assert result.security.tls is True
    assert result.security.tls_verified is False


@pytest.mark.parametrize("ssl_mode", ["require", "prefer", "allow", "disable"])
def test_security_reports_unverified_tls(tls_postgres: TlsPostgres, ssl_mode: str) -> None:
    result = CONNECTOR.probe(
        tls_postgres.server.target(ssl_mode=ssl_mode), None, Deadline.after(10)
    )
    assert (result.security.tls, result.security.tls_verified) == (True, False)
    assert result.security.auth_method == "none"  # the private cluster trusts its clients


@pytest.mark.parametrize("ssl_mode", ["verify-ca", "verify-full"])
def test_verifying_modes_refuse_a_certificate_no_system_ca_signed(
    tls_postgres: TlsPostgres, ssl_mode: str
) -> None:
    failure = fail(tls_postgres, ssl_mode)
    assert (failure.code, failure.phase) == (ErrorCode.SSL_ERROR, Phase.TLS)
    assert "certificate verify failed" in failure.message
    assert f"ssl_mode {ssl_mode}" in failure.message
    assert "system CA bundle" in failure.message
    assert "BEGIN" not in failure.message  # no certificate or key material either


def test_the_certificate_verifies_when_its_ca_is_trusted(tls_postgres: TlsPostgres) -> None:
    # The control of the test above: only the missing trust anchor made verification fail,
    # not a certificate that is invalid for localhost or 127.0.0.1.
    for host in ("localhost", "127.0.0.1"):
        with psycopg.connect(
            host=host,
            hostaddr="127.0.0.1",
            port=tls_postgres.cluster.port,
            user="postgres",
            dbname="postgres",
            sslmode="verify-full",
            sslrootcert=str(tls_postgres.certificate.cert),
            connect_timeout=5,
        ) as conn:
            row = conn.execute(SESSION_USES_TLS).fetchone()
        assert row == (True,)


def test_the_server_refuses_unencrypted_clients_itself(tls_postgres: TlsPostgres) -> None:
    # pg_hba.conf, not the connector, makes TLS mandatory: libpq alone is refused too.
    with pytest.raises(psycopg.OperationalError, match="no encryption"):
        psycopg.connect(tls_postgres.cluster.dsn + " sslmode=disable")


# ----- ssl_root_cert: the data source's own CAs -------------------------------------------------


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
@pytest.mark.parametrize("ssl_mode", ["verify-full", "verify-ca"])
def test_the_servers_certificate_as_ssl_root_cert_verifies(
    tls_postgres: TlsPostgres, temp_root: Path, ssl_mode: str, host: str
) -> None:
    target = tls_postgres.server.target(
        host=host, ssl_mode=ssl_mode, ssl_root_cert=tls_postgres.certificate_pem
    )
    result = CONNECTOR.probe(target, SESSION_USES_TLS, Deadline.after(10))
    assert result.test_query_result == "true"
    assert result.database_version == tls_postgres.version()
    assert (result.security.tls, result.security.tls_verified) == (True, True)
    assert list(temp_root.iterdir()) == []  # the file libpq read is gone


@pytest.mark.parametrize("ssl_mode", ["verify-full", "verify-ca"])
def test_an_unrelated_ca_as_ssl_root_cert_does_not_verify(
    tls_postgres: TlsPostgres, temp_root: Path, ssl_mode: str
) -> None:
    target = tls_postgres.server.target(
        ssl_mode=ssl_mode, ssl_root_cert=unrelated_ca_pem(), password=PASSWORD
    )
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, None, Deadline.after(10))
    failure = info.value
    assert (failure.code, failure.phase) == (ErrorCode.SSL_ERROR, Phase.TLS)
    # libpq read the file (a missing one fails with "could not read root certificate").
    assert "certificate verify failed" in failure.message
    assert f"ssl_mode {ssl_mode}" in failure.message
    assert "does not chain to a CA in ssl_root_cert" in failure.message
    assert "system CA bundle" not in failure.message
    assert "BEGIN" not in failure.message
    assert PASSWORD not in failure.message
    assert list(temp_root.iterdir()) == []


def test_the_file_is_removed_when_the_test_times_out(
    silent_listener: tuple[str, int], tls_postgres: TlsPostgres, temp_root: Path
) -> None:
    host, port = silent_listener
    target = ConnectionTarget(
        host="localhost",
        address=host,
        port=port,
        username="postgres",
        ssl_mode="verify-full",
        ssl_root_cert=tls_postgres.certificate_pem,
    )
    with pytest.raises(ProbeFailure) as info:
        CONNECTOR.probe(target, None, Deadline.after(1))
    assert info.value.code is ErrorCode.TIMEOUT
    assert list(temp_root.iterdir()) == []


def test_a_mode_that_does_not_verify_ignores_ssl_root_cert(
    tls_postgres: TlsPostgres, temp_root: Path
) -> None:
    # The API refuses this pairing; a target built without it behaves as without the field.
    target = tls_postgres.server.target(ssl_mode="require", ssl_root_cert=unrelated_ca_pem())
    result = CONNECTOR.probe(target, SESSION_USES_TLS, Deadline.after(10))
    assert result.test_query_result == "true"
    assert list(temp_root.iterdir()) == []
