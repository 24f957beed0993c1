"""`ssl_root_cert` on create: what the field accepts, where it is refused, how it is shown.

PATCH and the destination rule are in test_update.py; the field at work against a real TLS
server in tests/connectors/test_postgresql_tls.py and tests/probing/test_tls_api.py.
"""

from __future__ import annotations

from typing import Any, get_args

import pytest

from rivergen.connectors._trust import MAX_ROOT_CERT_BYTES
from rivergen.connectors.registry import ENGINES
from tests.fixtures.datasources import (
    DATA_SOURCE_TYPES,
    DATA_SOURCES,
    PG_PASSWORD,
    Tenancy,
    detail_fields,
    error_of,
    mysql_body,
    ok_data,
    postgres_body,
    redis_body,
    sqlite_body,
)
from tests.fixtures.tls import unrelated_ca_pem

pytestmark = pytest.mark.anyio

FIELD = "body.connection.ssl_root_cert"
BUNDLE = unrelated_ca_pem("First test CA") + unrelated_ca_pem("Second test CA")
KEY_BODY = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg"
KEY = f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}\n-----END PRIVATE KEY-----\n"
# The first certificate with its middle lines cut out: PEM framing, but no certificate inside.
MANGLED = "".join(BUNDLE.splitlines(keepends=True)[:3]) + "-----END CERTIFICATE-----\n"


def verifying(make: Any, mode: str = "verify-full", **fields: Any) -> dict[str, Any]:
    """A create body of `make` with a verifying ssl_mode and `fields` in the connection."""
    body: dict[str, Any] = make()
    return {**body, "connection": {**body["connection"], "ssl_mode": mode, **fields}}


async def refusal(tenancy: Tenancy, body: dict[str, Any]) -> dict[str, Any]:
    """POST a body that must be refused on `ssl_root_cert`; the error, after checks."""
    response = await tenancy.client.post(DATA_SOURCES, json=body, headers=tenancy.owner)
    error = error_of(response, 422, "VALIDATION_ERROR")
    assert detail_fields(error) == [FIELD], error
    # The input is never echoed.
    for line in (*BUNDLE.splitlines()[1:3], KEY_BODY):
        assert line not in response.text
    assert PG_PASSWORD not in response.text
    listed = ok_data(await tenancy.client.get(DATA_SOURCES, headers=tenancy.owner))
    assert listed["total"] == 0
    return error


@pytest.mark.parametrize(
    ("make", "mode"),
    [
        (postgres_body, "verify-full"),
        (postgres_body, "verify-ca"),
        (mysql_body, "verify-full"),
        (lambda: mysql_body(type="mariadb"), "verify-ca"),
        (redis_body, "verify-full"),
    ],
    ids=["postgresql-full", "postgresql-ca", "mysql", "mariadb", "redis"],
)
async def test_a_bundle_of_two_certificates_is_stored_and_shown(
    tenancy: Tenancy, make: Any, mode: str
) -> None:
    created = await tenancy.create(verifying(make, mode, ssl_root_cert=BUNDLE))
    # Certificates are public: shown as sent, unlike the password.
    assert created["connection"]["ssl_root_cert"] == BUNDLE
    assert created["connection"]["password"] == "********"
    shown = await tenancy.get(created["id"])
    assert shown["connection"]["ssl_root_cert"] == BUNDLE
    assert shown["connection"]["ssl_mode"] == mode


async def test_without_the_field_nothing_changes(tenancy: Tenancy) -> None:
    created = await tenancy.create(verifying(postgres_body))
    assert created["connection"]["ssl_root_cert"] is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("not a certificate", "one or more PEM certificates"),
        ("", "one or more PEM certificates"),
        (MANGLED, "one or more PEM certificates"),
        (BUNDLE + KEY, "contains a private key"),
        (KEY, "contains a private key"),
        (BUNDLE * (MAX_ROOT_CERT_BYTES // len(BUNDLE) + 1), "at most 64 KiB"),
        (12, "string"),
    ],
    ids=["garbage", "empty", "mangled", "with-a-key", "only-a-key", "over-64-kib", "number"],
)
async def test_bad_values_are_refused_on_the_field(
    tenancy: Tenancy, value: Any, message: str
) -> None:
    error = await refusal(tenancy, verifying(postgres_body, ssl_root_cert=value))
    assert message in error["details"][0]["message"]


async def test_nul_is_refused_like_other_text(tenancy: Tenancy) -> None:
    error = await refusal(tenancy, verifying(postgres_body, ssl_root_cert=BUNDLE + "\x00"))
    assert "NUL" in error["details"][0]["message"]


@pytest.mark.parametrize(
    ("make", "mode"),
    [
        (postgres_body, "require"),
        (postgres_body, "prefer"),
        (postgres_body, "disable"),
        (mysql_body, "require"),
        (redis_body, "disable"),
    ],
)
async def test_a_mode_that_does_not_verify_is_refused_with_it(
    tenancy: Tenancy, make: Any, mode: str
) -> None:
    error = await refusal(tenancy, verifying(make, mode, ssl_root_cert=BUNDLE))
    detail = error["details"][0]["message"]
    assert f"ssl_mode {mode} does not verify" in detail
    assert "verify-ca or verify-full" in detail


async def test_the_engine_default_mode_does_not_verify(tenancy: Tenancy) -> None:
    body = mysql_body()  # no ssl_mode: prefer
    body["connection"]["ssl_root_cert"] = BUNDLE
    error = await refusal(tenancy, body)
    assert "ssl_mode prefer does not verify" in error["details"][0]["message"]


async def test_file_engines_have_no_such_field(tenancy: Tenancy) -> None:
    body = sqlite_body("a.db")
    body["connection"]["ssl_root_cert"] = BUNDLE
    await refusal(tenancy, body)


async def test_the_catalogue_lists_it_for_the_engines_that_verify_tls(tenancy: Tenancy) -> None:
    data = ok_data(await tenancy.client.get(DATA_SOURCE_TYPES, headers=tenancy.owner))
    for engine in data:
        fields = {field["name"]: field for field in engine["fields"]}
        ssl_mode = ENGINES[engine["type"]].connection_model.model_fields.get("ssl_mode")
        modes = set(get_args(ssl_mode.annotation)) if ssl_mode is not None else set()
        if engine["file_based"] or not modes & {"verify-ca", "verify-full"}:
            # No mode that verifies (file engines; SQL Server through FreeTDS): no CA to give.
            assert "ssl_root_cert" not in fields, engine["type"]
            continue
        field = fields["ssl_root_cert"]
        assert (field["required"], field["secret"], field["default"]) == (False, False, None)
        assert "verify-ca" in field["description"]
