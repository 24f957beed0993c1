"""The ssh_tunnel schema, host-key pins and private-key loading, without a server."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from rivergen.tunnels import (
    SSH_SECRET_FIELDS,
    SshTunnelConfig,
    check_private_key,
    fingerprint_of_known_hosts_line,
    parse_host_key_pin,
)
from tests.fixtures.required import require_binary


@pytest.fixture
def ssh_keygen() -> str:
    """The OpenSSH client's ssh-keygen: skip without it, fail under CI=true."""
    return require_binary("ssh-keygen")


needs_ssh_keygen = pytest.mark.usefixtures("ssh_keygen")


def keygen(tmp_path: Path, name: str, *args: str, passphrase: str = "") -> Path:
    """Generate a key pair with ssh-keygen; return the private key path."""
    path = tmp_path / name
    subprocess.run(
        ["ssh-keygen", "-q", "-N", passphrase, "-C", "", "-f", str(path), *args], check=True
    )
    return path


def valid(**overrides: Any) -> dict[str, Any]:
    """A valid password-auth tunnel body with some fields replaced."""
    body: dict[str, Any] = {
        "host": "bastion.example.com",
        "username": "tunnel",
        "auth_method": "password",
        "password": "s3cret",
    }
    body.update(overrides)
    return body


def test_defaults_and_secret_fields() -> None:
    config = SshTunnelConfig(**valid())
    assert config.port == 22
    assert config.host_key is None
    assert frozenset({"password", "private_key", "private_key_passphrase"}) == SSH_SECRET_FIELDS
    assert set(SshTunnelConfig.model_fields) >= SSH_SECRET_FIELDS
    assert "s3cret" not in repr(config)


@pytest.mark.parametrize(
    "overrides",
    [
        {"host": ""},
        {"host": "   "},
        {"host": "bad host"},
        {"username": ""},
        {"port": 0},
        {"port": 65536},
        {"auth_method": "agent"},
        {"password": None},
        {"password": ""},
        {"auth_method": "private_key", "password": None},
        {"auth_method": "private_key", "private_key": "  "},
        {"unknown": 1},
        {"host_key": "not a key"},
        {"host_key": "SHA256:tooshort"},
        {"host_key": "MD5:12:34"},
    ],
)
def test_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        SshTunnelConfig(**valid(**overrides))


def test_host_key_error_is_clear() -> None:
    with pytest.raises(ValidationError) as caught:
        SshTunnelConfig(**valid(host_key="ssh-ed25519 not-base64"))
    assert "known_hosts line" in str(caught.value)


def test_private_key_is_not_parsed_by_the_schema() -> None:
    # It is stored encrypted and checked when a test runs; the schema only wants it present.
    config = SshTunnelConfig(**valid(auth_method="private_key", private_key="anything"))
    assert config.private_key == "anything"


@needs_ssh_keygen
@pytest.mark.parametrize(
    ("key_type", "extra"), [("ed25519", ()), ("ecdsa", ()), ("rsa", ("-b", "2048"))]
)
def test_pin_forms_agree_with_ssh_keygen(
    tmp_path: Path, key_type: str, extra: tuple[str, ...]
) -> None:
    public = keygen(tmp_path, key_type, "-t", key_type, *extra).with_suffix(".pub")
    expected = subprocess.run(
        ["ssh-keygen", "-lf", str(public)], check=True, capture_output=True, text=True
    ).stdout.split()[1]
    line = public.read_text().strip()
    assert fingerprint_of_known_hosts_line(line) == expected
    assert fingerprint_of_known_hosts_line(f"[bastion]:2222 {line}") == expected
    assert fingerprint_of_known_hosts_line(f"bastion,10.0.0.1 {line}") == expected
    assert fingerprint_of_known_hosts_line(expected) == expected
    assert fingerprint_of_known_hosts_line(expected + "=") == expected
    assert parse_host_key_pin(expected).key is None
    assert parse_host_key_pin(line).key is not None


def test_marked_known_hosts_lines_are_refused() -> None:
    with pytest.raises(ValueError, match="cert-authority"):
        parse_host_key_pin("@cert-authority *.example.com ssh-ed25519 AAAA")


def expect_failure(text: str, passphrase: str | None, code: ErrorCode) -> ProbeFailure:
    """Check that the key fails with `code`, phase ssh, and a message free of the secrets."""
    with pytest.raises(ProbeFailure) as caught:
        check_private_key(text, passphrase)
    failure = caught.value
    assert (failure.code, failure.phase) == (code, Phase.SSH)
    assert "\n" not in failure.message
    assert text.strip()[:40] not in failure.message
    if passphrase:
        assert passphrase not in failure.message
    return failure


@needs_ssh_keygen
def test_key_formats_and_passphrases(tmp_path: Path) -> None:
    plain = keygen(tmp_path, "plain", "-t", "ed25519").read_text()
    check_private_key(plain, None)
    check_private_key(plain, "ignored for an unencrypted key")
    # Pasted into JSON by hand: escaped newlines and CRLF still load.
    check_private_key(plain.replace("\n", "\\n"), None)
    check_private_key(plain.replace("\n", "\r\n"), None)

    pem = keygen(tmp_path, "pem", "-t", "rsa", "-b", "2048", "-m", "PEM", passphrase="right one")
    check_private_key(pem.read_text(), "right one")
    failure = expect_failure(pem.read_text(), "wrong one", ErrorCode.SSH_AUTHENTICATION_FAILED)
    assert failure.message == "The private key passphrase is wrong"
    missing = expect_failure(pem.read_text(), None, ErrorCode.CONFIGURATION_ERROR)
    assert "passphrase" in missing.message

    public = pem.with_suffix(".pub").read_text()
    assert "public key" in expect_failure(public, None, ErrorCode.CONFIGURATION_ERROR).message


def test_garbage_key() -> None:
    text = "-----BEGIN OPENSSH PRIVATE KEY-----\nbm90IGEga2V5\n-----END OPENSSH PRIVATE KEY-----\n"
    failure = expect_failure(text, None, ErrorCode.CONFIGURATION_ERROR)
    assert "could not be read" in failure.message
    expect_failure("hunter2", None, ErrorCode.CONFIGURATION_ERROR)
