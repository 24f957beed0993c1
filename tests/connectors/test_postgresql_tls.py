"""The PostgreSQL connector against a private server that accepts TCP clients over TLS only.

The server's certificate is self-signed (tests/fixtures/tls.py): modes that encrypt without
verifying must connect over TLS, modes that verify must refuse it, and `disable` must be told
that the server wants TLS.
"""

from __future__ import annotations

import psycopg
import pytest

from rivergen.connectors.postgresql import SPEC
from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.tls import TlsPostgres

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


def test_disable_is_refused_and_told_to_use_tls(tls_postgres: TlsPostgres) -> None:
    failure = fail(tls_postgres, "disable")
    assert (failure.code, failure.phase) == (ErrorCode.SSL_ERROR, Phase.TLS)
    assert "pg_hba.conf rejects connection" in failure.message
    assert "no encryption" in failure.message
    assert "TLS only" in failure.message
    assert "set ssl_mode to require" in failure.message


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
