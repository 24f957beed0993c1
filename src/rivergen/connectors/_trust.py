"""`ssl_root_cert`: CA certificates a user trusts for one data source, instead of the system CAs.

The field is PEM text stored with the connection (certificates are public, not secrets). Each
driver takes it its own way: libpq reads a file (`root_cert_file`), PyMySQL and redis-py take an
`ssl.SSLContext` (`verified_context`). Both get the certificates re-encoded from what
`cryptography` parsed, so text around the PEM blocks, or blocks of another kind, never reaches
OpenSSL (Python's `cadata`, for one, silently stops at the first block that is not a certificate).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationInfo

from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure

MAX_ROOT_CERT_BYTES = 64 * 1024
VERIFYING_MODES = frozenset({"verify-ca", "verify-full"})
_FILE_NAME = "root.crt"


def load_certificates(text: str) -> list[Any]:
    """The certificates of PEM `text` (`cryptography.x509.Certificate`); ValueError if none."""
    from cryptography import x509

    # Lone surrogates (valid in JSON) cannot be PEM: replace them so that parsing refuses them.
    certificates: list[Any] = x509.load_pem_x509_certificates(
        text.encode("utf-8", errors="replace")
    )
    return certificates


def check_root_cert(value: str) -> str:
    """Accept one or more PEM certificates of at most 64 KiB, and no private key material."""
    if "\x00" in value:
        raise ValueError("ssl_root_cert must not contain NUL (U+0000) characters")
    if len(value.encode("utf-8", errors="replace")) > MAX_ROOT_CERT_BYTES:
        raise ValueError("ssl_root_cert must be at most 64 KiB of PEM text")
    if "PRIVATE KEY" in value:
        raise ValueError(
            "ssl_root_cert must hold CA certificates only: it contains a private key, "
            "which the service never accepts here"
        )
    try:
        load_certificates(value)
    except ValueError:
        raise ValueError(
            "ssl_root_cert must be one or more PEM certificates "
            "(-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)"
        ) from None
    return value


def _check_optional_root_cert(value: str | None) -> str | None:
    return None if value is None else check_root_cert(value)


# Optional in itself, so that the description sits on the field in the engine catalogue.
RootCertificates = Annotated[
    str | None,
    AfterValidator(_check_optional_root_cert),
    Field(
        description="PEM text of the CA certificates that ssl_mode verify-ca and verify-full "
        "trust instead of the system CA bundle (at most 64 KiB, no private key)"
    ),
]


def require_verifying_mode(value: str | None, info: ValidationInfo) -> str | None:
    """Refuse `ssl_root_cert` next to an ssl_mode that would not use it."""
    mode = info.data.get("ssl_mode")
    # A missing ssl_mode failed its own validation, which already reports it.
    if value is not None and mode is not None and mode not in VERIFYING_MODES:
        raise ValueError(
            f"ssl_root_cert is only used to verify the server, and ssl_mode {mode} does not "
            "verify: set ssl_mode to verify-ca or verify-full, or remove ssl_root_cert (null)"
        )
    return value


def trusted_pem(text: str) -> str:
    """The certificates of `text` alone, re-encoded as PEM: what a driver is given to trust."""
    from cryptography.hazmat.primitives.serialization import Encoding

    try:
        certificates = load_certificates(text)
    except ValueError:
        # Stored configurations were validated; this is for targets built some other way.
        raise ProbeFailure(
            ErrorCode.CONFIGURATION_ERROR,
            Phase.POLICY,
            "ssl_root_cert holds no PEM certificate",
        ) from None
    return "".join(cert.public_bytes(Encoding.PEM).decode("ascii") for cert in certificates)


def verified_context(mode: str, root_cert: str) -> ssl.SSLContext:
    """A client context trusting only `root_cert`'s CAs; verify-full also checks the host name."""
    context = ssl.create_default_context(cadata=trusted_pem(root_cert))
    context.check_hostname = mode == "verify-full"
    # Private CAs often lack extensions the strict checks want; libpq does not ask for them
    # either, so one certificate verifies the same on every engine.
    context.verify_flags &= ~ssl.VERIFY_X509_STRICT
    return context


@contextlib.contextmanager
def root_cert_file(root_cert: str | None) -> Iterator[str | None]:
    """Path of a private file holding `root_cert`'s certificates, removed on leaving."""
    if root_cert is None:
        yield None
        return
    pem = trusted_pem(root_cert)
    directory = tempfile.mkdtemp(prefix="rivergen-ca-")  # fresh, mode 0700
    try:
        path = os.path.join(directory, _FILE_NAME)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(pem)
        yield path
    finally:
        # Only public certificates are in it: a failed removal must not hide the test's outcome.
        shutil.rmtree(directory, ignore_errors=True)
