"""POST /api/v1/data-sources/{id}/test against a private PostgreSQL that wants TLS from TCP clients.

The server (tests/fixtures/tls.py) presents a fresh self-signed certificate and refuses
unencrypted connections in pg_hba.conf. Each `ssl_mode` is a saved data source tested through
the running app: what a user sees is the response, the hint and the data source's status. The
verifying modes are tried with that certificate, and with an unrelated CA, as `ssl_root_cert`.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.datasources import Tenancy, unique_name
from tests.fixtures.probing import assert_failed, assert_shape, network_body, result_of, run_test
from tests.fixtures.tls import TlsPostgres, unrelated_ca_pem

# One app serves the whole module (each test adds its own data sources); see fixtures/probing.py.
pytestmark = [pytest.mark.anyio, pytest.mark.store]

SESSION_USES_TLS = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
PASSWORD = "Tls-api-secret-never-shown-3"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """Module scope, so that the module's shared app runs on the tests' event loop."""
    return "asyncio"


async def outcome_with(
    tenancy: Tenancy, tls_postgres: TlsPostgres, ssl_mode: str, **connection: Any
) -> dict[str, Any]:
    """Save a data source on the TLS-only server with `ssl_mode` (and `connection` fields) and
    test it; the result."""
    body = network_body(
        "postgresql",
        tls_postgres.server,
        unique_name("tls"),
        ssl_mode=ssl_mode,
        password=PASSWORD,
        **connection,
    )
    created = await tenancy.create(body)
    for name, value in connection.items():
        assert created["connection"][name] == value
    data_source_id = int(created["id"])
    query = {"test_query": SESSION_USES_TLS, "timeout_seconds": 10}
    data = result_of(await run_test(tenancy.client, data_source_id, tenancy.owner, query))
    assert_shape(data)
    assert PASSWORD not in str(data)
    shown = await tenancy.get(data_source_id)
    assert shown["status"] == data["status"]
    return data


@pytest.mark.parametrize("ssl_mode", ["require", "prefer", "disable"])
async def test_a_tls_connection_succeeds_and_is_encrypted(
    module_tenancy: Tenancy, tls_postgres: TlsPostgres, ssl_mode: str
) -> None:
    """`disable` too: libpq opens with SSLRequest whatever the mode (README, "First bytes and
    credentials"), and a server that offers TLS gets it, unverified."""
    data = await outcome_with(module_tenancy, tls_postgres, ssl_mode)
    assert data["connection_successful"] is True, data
    assert data["test_query_result"] == "true"  # the server says this session is encrypted
    assert data["database_version"] == tls_postgres.version()
    assert data["security"]["tls"] is True
    assert data["security"]["tls_verified"] is False
    assert data["security"]["tls_version"] is None  # psycopg does not expose it


@pytest.mark.parametrize("ssl_mode", ["verify-ca", "verify-full"])
async def test_verifying_modes_refuse_the_self_signed_certificate(
    module_tenancy: Tenancy, tls_postgres: TlsPostgres, ssl_mode: str
) -> None:
    data = assert_failed(
        await outcome_with(module_tenancy, tls_postgres, ssl_mode), "SSL_ERROR", "tls"
    )
    assert "certificate verify failed" in data["error_message"]
    assert "system CA bundle" in data["error_message"]
    assert "certificate" in data["hint"]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
@pytest.mark.parametrize("ssl_mode", ["verify-full", "verify-ca"])
async def test_the_servers_certificate_as_ssl_root_cert_verifies(
    module_tenancy: Tenancy, tls_postgres: TlsPostgres, ssl_mode: str, host: str
) -> None:
    pem = tls_postgres.certificate_pem
    data = await outcome_with(module_tenancy, tls_postgres, ssl_mode, host=host, ssl_root_cert=pem)
    assert data["connection_successful"] is True, data
    assert data["test_query_result"] == "true"  # verified, and the server says it is encrypted
    assert data["database_version"] == tls_postgres.version()
    assert (data["security"]["tls"], data["security"]["tls_verified"]) == (True, True)
    shown = await module_tenancy.get(data["data_source_id"])
    assert shown["connection"]["ssl_root_cert"] == pem  # public: shown as stored
    assert shown["status"] == "active"


async def test_an_unrelated_ca_as_ssl_root_cert_does_not_verify(
    module_tenancy: Tenancy, tls_postgres: TlsPostgres
) -> None:
    outcome = await outcome_with(
        module_tenancy, tls_postgres, "verify-full", ssl_root_cert=unrelated_ca_pem()
    )
    data = assert_failed(outcome, "SSL_ERROR", "tls")
    assert "certificate verify failed" in data["error_message"]
    assert "does not chain to a CA in ssl_root_cert" in data["error_message"]
    assert "ssl_root_cert" in data["hint"]
