"""Parsing of a bastion host-key pin and SHA256 fingerprints of SSH public keys."""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

import asyncssh

_SHA256_PREFIX = "SHA256:"
_SHA256_DIGEST_SIZE = 32


@dataclass(frozen=True)
class HostKeyPin:
    """A pinned bastion host key: the full public key when known, always its SHA256 fingerprint."""

    fingerprint: str
    key: asyncssh.SSHKey | None = None

    def matches(self, key: asyncssh.SSHKey) -> bool:
        """Whether `key` is the pinned key."""
        # Fingerprints are public; compare_digest only keeps the comparison uniform.
        return hmac.compare_digest(self.fingerprint, fingerprint_of_key(key))


def fingerprint_of_key(key: asyncssh.SSHKey) -> str:
    """The OpenSSH-style `SHA256:...` fingerprint of a public key."""
    return key.get_fingerprint("sha256")


def _normalize_sha256_fingerprint(text: str) -> str:
    body = text[len(_SHA256_PREFIX) :].strip().rstrip("=")
    try:
        digest = base64.b64decode(body + "=" * (-len(body) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "host_key: the SHA256 fingerprint is not valid base64 (expected 'SHA256:' "
            "followed by 43 characters, as printed by ssh-keygen -lf)"
        ) from None
    if len(digest) != _SHA256_DIGEST_SIZE:
        raise ValueError(
            "host_key: the SHA256 fingerprint has the wrong length (expected 'SHA256:' "
            "followed by 43 characters, as printed by ssh-keygen -lf)"
        )
    # Re-encode so that equivalent spellings (with or without padding) compare equal.
    return _SHA256_PREFIX + base64.b64encode(digest).decode("ascii").rstrip("=")


def _import_key(key_type: str, key_data: str) -> asyncssh.SSHKey | None:
    try:
        key = asyncssh.import_public_key(f"{key_type} {key_data}")
    except (asyncssh.KeyImportError, ValueError, TypeError):
        return None
    # A certificate is not a host key a user can pin here; treat it as unparseable.
    return key if isinstance(key, asyncssh.SSHKey) else None


def parse_host_key_pin(text: str) -> HostKeyPin:
    """Parse a known_hosts line (with or without its host field) or a `SHA256:` fingerprint.

    Raises ValueError with a message fit for a user when the text is not a usable pin.
    """
    stripped = text.strip()
    if not stripped:
        raise ValueError("host_key: must not be empty")
    if stripped.upper().startswith(_SHA256_PREFIX.upper()):
        return HostKeyPin(fingerprint=_normalize_sha256_fingerprint(stripped))
    if stripped.upper().startswith("MD5:"):
        raise ValueError("host_key: MD5 fingerprints are not accepted; use the SHA256 fingerprint")
    if "\n" in stripped or "\r" in stripped:
        raise ValueError("host_key: give a single known_hosts line, not several")
    fields = stripped.split()
    if fields[0].startswith("@"):
        raise ValueError(
            "host_key: marked known_hosts lines (@cert-authority, @revoked) are not accepted; "
            "pin the bastion's own host key"
        )
    # Either "<type> <base64> [comment]" or "<hosts> <type> <base64> [comment]".
    for offset in (0, 1):
        if len(fields) >= offset + 2:
            key = _import_key(fields[offset], fields[offset + 1])
            if key is not None:
                return HostKeyPin(fingerprint=fingerprint_of_key(key), key=key)
    raise ValueError(
        "host_key: not a known_hosts line ('[host]:port ssh-ed25519 AAAA...' or "
        "'ssh-ed25519 AAAA...') nor a 'SHA256:...' fingerprint"
    )


def fingerprint_of_known_hosts_line(line: str) -> str:
    """The SHA256 fingerprint a pin stands for (a known_hosts line or a fingerprint)."""
    return parse_host_key_pin(line).fingerprint
