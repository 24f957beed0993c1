"""`ssl_root_cert`: what the field accepts, the TLS contexts it builds, libpq's temporary file.

The contexts are checked by real TLS handshakes in memory (ssl.MemoryBIO) against a server
context holding a fresh self-signed certificate: no socket, no driver.
"""

from __future__ import annotations

import os
import ssl
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rivergen.connectors._support import client_context, tls_context
from rivergen.connectors._trust import (
    MAX_ROOT_CERT_BYTES,
    check_root_cert,
    root_cert_file,
    trusted_pem,
    verified_context,
)
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from tests.fixtures.tls import (
    Certificate,
    private_key_pem,
    self_signed_certificate,
    unrelated_ca_pem,
)


@pytest.fixture
def server_cert(tmp_path: Path) -> Certificate:
    """A self-signed certificate for localhost and 127.0.0.1, with its key."""
    return self_signed_certificate(tmp_path)


def handshake(client: ssl.SSLContext, server_cert: Certificate, host: str) -> None:
    """Complete a TLS handshake in memory between `client` and a server presenting the cert."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(server_cert.cert, server_cert.key)
    to_server, to_client = ssl.MemoryBIO(), ssl.MemoryBIO()
    client_side = client.wrap_bio(to_client, to_server, server_hostname=host)
    server_side = server.wrap_bio(to_server, to_client, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side in (("client", client_side), ("server", server_side)):
            if not done[name]:
                try:
                    side.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        if all(done.values()):
            return
    raise AssertionError("the handshake did not finish")


# ----- what the field accepts ---------------------------------------------------------------


def test_one_certificate_and_a_bundle_of_two_are_accepted(server_cert: Certificate) -> None:
    pem = server_cert.cert.read_text()
    assert check_root_cert(pem) == pem
    bundle = pem + unrelated_ca_pem()
    assert check_root_cert(bundle) == bundle
    # Text around the blocks, as CA bundles carry, is kept as sent.
    annotated = "# Internal PKI root\n" + bundle
    assert check_root_cert(annotated) == annotated


@pytest.mark.parametrize(
    "text",
    [
        "not a certificate",
        "",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        "-----BEGIN CERTIFICATE-----\n",
    ],
    ids=["garbage", "empty", "bad-base64-body", "unterminated"],
)
def test_anything_but_pem_certificates_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="one or more PEM certificates"):
        check_root_cert(text)


def test_more_than_64_kib_is_refused_even_when_valid() -> None:
    one = unrelated_ca_pem()
    bundle = one * (MAX_ROOT_CERT_BYTES // len(one) + 1)
    assert len(bundle.encode()) > MAX_ROOT_CERT_BYTES
    with pytest.raises(ValueError, match="at most 64 KiB"):
        check_root_cert(bundle)
    fitting = one * (MAX_ROOT_CERT_BYTES // len(one))
    assert check_root_cert(fitting) == fitting


def test_private_key_material_is_refused(server_cert: Certificate) -> None:
    pem = server_cert.cert.read_text()
    key = server_cert.key.read_text()
    for text in (pem + key, key, pem.replace("CERTIFICATE", "RSA PRIVATE KEY")):
        with pytest.raises(ValueError, match="contains a private key") as info:
            check_root_cert(text)
        assert "BEGIN" not in str(info.value)  # the key never comes back in the message


def test_nul_is_refused(server_cert: Certificate) -> None:
    with pytest.raises(ValueError, match="NUL"):
        check_root_cert(server_cert.cert.read_text() + "\x00")


def test_drivers_get_the_certificates_alone(server_cert: Certificate) -> None:
    pem = server_cert.cert.read_text()
    other = unrelated_ca_pem()
    public_key = private_key_pem(ec.generate_private_key(ec.SECP256R1())).decode()
    public_key = public_key.replace("PRIVATE KEY", "PUBLIC KEY")  # any non-certificate block
    trusted = trusted_pem("Zertifikatsstelle Ü\n" + public_key + pem + "note\n" + other)
    assert trusted == pem + other
    assert trusted.isascii()
    with pytest.raises(ProbeFailure) as info:
        trusted_pem("garbage")
    assert info.value.code is ErrorCode.CONFIGURATION_ERROR


# ----- TLS contexts ---------------------------------------------------------------------------


def test_verify_full_trusts_only_the_given_cas_and_checks_the_name(
    server_cert: Certificate,
) -> None:
    pem = server_cert.cert.read_text()
    context = verified_context("verify-full", pem)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    # That one CA and no system CA came along.
    assert [ca["subject"] for ca in context.get_ca_certs()] == [((("commonName", "localhost"),),)]
    for host in ("localhost", "127.0.0.1"):
        handshake(context, server_cert, host)
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake(context, server_cert, "db.example.com")


def test_verify_ca_checks_the_chain_but_not_the_name(server_cert: Certificate) -> None:
    context = verified_context("verify-ca", server_cert.cert.read_text())
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, False)
    handshake(context, server_cert, "db.example.com")


@pytest.mark.parametrize("mode", ["verify-ca", "verify-full"])
def test_an_unrelated_ca_does_not_verify(server_cert: Certificate, mode: str) -> None:
    context = verified_context(mode, unrelated_ca_pem())
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        handshake(context, server_cert, "localhost")


def test_a_bundle_verifies_through_any_of_its_cas(server_cert: Certificate) -> None:
    bundle = unrelated_ca_pem() + server_cert.cert.read_text()
    handshake(verified_context("verify-full", bundle), server_cert, "localhost")


def test_without_the_field_or_a_verifying_mode_the_shared_contexts_are_used(
    server_cert: Certificate,
) -> None:
    pem = server_cert.cert.read_text()
    for mode in ("verify-ca", "verify-full", "require", "prefer"):
        assert client_context(mode, None) is tls_context(mode)
    for mode in ("require", "prefer", "allow"):
        assert client_context(mode, pem) is tls_context(mode)
    assert client_context("verify-full", pem) is not tls_context("verify-full")


# ----- libpq's file ---------------------------------------------------------------------------


def test_the_file_is_private_holds_the_certificates_and_is_removed(
    server_cert: Certificate, temp_root: Path
) -> None:
    pem = server_cert.cert.read_text()
    with root_cert_file("# comment\n" + pem) as path:
        assert path is not None
        file = Path(path)
        assert file.parent.parent == temp_root
        assert stat.S_IMODE(file.stat().st_mode) == 0o600
        assert stat.S_IMODE(file.parent.stat().st_mode) == 0o700
        assert file.read_text() == pem
        assert file.stat().st_uid == os.geteuid()
    assert not file.exists()
    assert list(temp_root.iterdir()) == []


def test_the_file_is_removed_when_the_block_fails(
    server_cert: Certificate, temp_root: Path
) -> None:
    seen: list[Path] = []

    def time_out_inside() -> None:
        with root_cert_file(server_cert.cert.read_text()) as path:
            assert path is not None
            seen.append(Path(path))
            assert seen[0].exists()
            raise ProbeFailure(ErrorCode.TIMEOUT, Phase.AUTH, "the test ran out of time")

    with pytest.raises(ProbeFailure):
        time_out_inside()
    assert len(seen) == 1
    assert not seen[0].exists()
    assert list(temp_root.iterdir()) == []


def test_no_field_no_file(temp_root: Path) -> None:
    with root_cert_file(None) as path:
        assert path is None
        assert list(temp_root.iterdir()) == []
