"""Encryption of stored secrets with named, rotatable keys.

Every ciphertext is ``v1:<key_id>:<fernet token>``. The key id is the first 8 hex characters of
the SHA-256 of the raw key, so it is stable, short, reveals nothing usable about the key, and
lets decryption pick the right key at once (instead of trying every key) and lets rotation tell
which stored values were made by an older key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import stat
from collections.abc import Sequence
from pathlib import Path

import structlog
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from rivergen.security.keyfile import create_private_file, ensure_private_dir

__all__ = [
    "KEY_FILE_NAME",
    "SETTING_NAME",
    "TOKEN_VERSION",
    "SecretBox",
    "SecretDecryptionError",
    "generate_key",
    "key_id",
    "load_or_create_keys",
    "parse_keys",
]

SETTING_NAME = "RIVERGEN_SECRET_KEYS"
KEY_FILE_NAME = "secret.key"
TOKEN_VERSION = "v1"
_KEY_ID_LENGTH = 8

_log = structlog.get_logger(__name__)


class SecretDecryptionError(Exception):
    """A stored secret could not be decrypted; the message never contains the secret or a key."""


def generate_key() -> str:
    """Return a new random Fernet key as urlsafe base64 text."""
    return Fernet.generate_key().decode("ascii")


def _raw_key(key: str) -> bytes:
    """Decode a Fernet key to its 32 raw bytes, raising ValueError when it is not one."""
    try:
        raw = base64.urlsafe_b64decode(key.encode("ascii"))
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise ValueError("not urlsafe base64") from None
    if len(raw) != 32:
        raise ValueError("not 32 bytes")
    return raw


def key_id(key: str) -> str:
    """Return the short stable id of a Fernet key (first 8 hex chars of its SHA-256)."""
    return hashlib.sha256(_raw_key(key)).hexdigest()[:_KEY_ID_LENGTH]


def _validate_keys(keys: Sequence[str], source: str) -> list[str]:
    """Check every key, naming the source and the 1-based position (never the key) on error."""
    checked: list[str] = []
    seen: dict[str, int] = {}
    for position, key in enumerate(keys, start=1):
        try:
            kid = key_id(key)
        except ValueError:
            raise ValueError(
                f"{source}: key #{position} is not a valid Fernet key "
                "(expected 32 bytes encoded as urlsafe base64, e.g. from `rivergen rotate-keys`)"
            ) from None
        if kid in seen:
            raise ValueError(f"{source}: key #{position} repeats key #{seen[kid]}")
        seen[kid] = position
        checked.append(key)
    if not checked:
        raise ValueError(f"{source}: no key given")
    return checked


def parse_keys(setting_value: str, source: str = SETTING_NAME) -> list[str]:
    """Split a comma- or newline-separated key list (newest first) and validate every key."""
    parts = [part.strip() for part in setting_value.replace("\n", ",").split(",")]
    return _validate_keys([part for part in parts if part], source)


def _read_key_file(path: Path) -> list[str]:
    """Read the keys from an existing key file, warning when others may read it."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        _log.warning(
            "secret_key_file_readable_by_others", path=str(path), mode=oct(mode), hint="chmod 600"
        )
    keys = parse_keys(path.read_text(encoding="ascii"), source=str(path))
    _log.info("secret_keys_loaded_from_file", path=str(path), key_ids=[key_id(k) for k in keys])
    return keys


def load_or_create_keys(setting_value: str | None, data_dir: Path) -> list[str]:
    """Return the keys (newest first) from the setting, else from or into `data_dir/secret.key`."""
    if setting_value and setting_value.strip():
        return parse_keys(setting_value)
    path = data_dir / KEY_FILE_NAME
    if not path.exists():
        ensure_private_dir(data_dir)
        if create_private_file(path, (generate_key() + "\n").encode("ascii")):
            _log.warning(
                "generated_secret_key_file",
                path=str(path),
                hint=f"{SETTING_NAME} is not set; back this file up (stored secrets cannot be "
                f"decrypted without it) or set {SETTING_NAME}",
            )
    return _read_key_file(path)


class SecretBox:
    """Encrypts with the newest key and decrypts with whichever key made the token."""

    def __init__(self, keys: Sequence[str]) -> None:
        if isinstance(keys, str):
            # A bare string is a sequence of characters; refuse it rather than misread it.
            raise TypeError("SecretBox takes a list of keys; use parse_keys() for a setting value")
        checked = _validate_keys(keys, SETTING_NAME)
        self._ids = [key_id(k) for k in checked]
        self._newest_raw = _raw_key(checked[0])
        self._fernets = {
            kid: Fernet(k.encode("ascii")) for kid, k in zip(self._ids, checked, strict=True)
        }

    @classmethod
    def from_setting(cls, setting_value: str | None, data_dir: Path) -> SecretBox:
        """Build a box from `RIVERGEN_SECRET_KEYS` or the data directory's key file."""
        return cls(load_or_create_keys(setting_value, data_dir))

    @property
    def key_ids(self) -> list[str]:
        """Ids of the configured keys, newest first."""
        return list(self._ids)

    @property
    def current_key_id(self) -> str:
        """Id of the key new ciphertexts are made with."""
        return self._ids[0]

    def derive_key(self, purpose: bytes) -> bytes:
        """A 32-byte key for another use, derived from the newest key (HKDF-SHA256, `purpose`
        as the info): it reveals nothing of the key, and differs for each purpose."""
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
            self._newest_raw
        )

    def encrypt(self, plaintext: str) -> str:
        """Encrypt `plaintext` with the newest key and return a `v1:<key_id>:...` token."""
        kid = self._ids[0]
        body = self._fernets[kid].encrypt(plaintext.encode("utf-8")).decode("ascii")
        return f"{TOKEN_VERSION}:{kid}:{body}"

    @staticmethod
    def token_key_id(token: str) -> str:
        """Return the id of the key that made `token`, or raise SecretDecryptionError."""
        version, sep, rest = token.partition(":")
        kid, sep2, body = rest.partition(":")
        if (
            version != TOKEN_VERSION
            or not sep
            or not sep2
            or len(kid) != _KEY_ID_LENGTH
            or not body
        ):
            raise SecretDecryptionError("The stored secret is not in a known encrypted format")
        return kid

    def decrypt(self, token: str) -> str:
        """Decrypt a token made by any configured key."""
        kid = self.token_key_id(token)
        fernet = self._fernets.get(kid)
        if fernet is None:
            raise SecretDecryptionError(
                f"The stored secret was encrypted with key {kid}, which is not among the "
                f"configured {SETTING_NAME}"
            )
        body = token.split(":", 2)[2]
        try:
            return fernet.decrypt(body.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError):
            raise SecretDecryptionError(
                f"The stored secret could not be decrypted with key {kid}: it is damaged or was "
                "altered"
            ) from None

    def needs_rotation(self, token: str) -> bool:
        """Whether `token` was made by a key other than the newest."""
        return self.token_key_id(token) != self._ids[0]

    def rotate(self, token: str) -> str:
        """Return `token` re-encrypted with the newest key (unchanged when it already is)."""
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token))

    def __repr__(self) -> str:
        return f"SecretBox(key_ids={self._ids!r})"
