"""The service-token format: `rgt_` + 43 base62 characters (256 random bits) + a checksum.

The fixed prefix and the CRC32 suffix (6 base62 characters, as GitHub's tokens have) let secret
scanners recognise a token and tell a real one from a look-alike without asking the server; a
typo is refused before any store read.

Tokens are stored as their SHA-256, not Argon2: a password is guessable, so its hash must be
slow; a token carries 256 random bits, so a fast hash is already beyond any search, and it can
be looked up by an index (a salted slow hash could not, and would cost up to a second of CPU on
every request).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import zlib

PREFIX = "rgt_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_LENGTH = 43  # 62**43 > 2**256
_CHECK_LENGTH = 6  # 62**6 > 2**32
SHAPE = re.compile(rf"^{PREFIX}[0-9A-Za-z]{{{_BODY_LENGTH + _CHECK_LENGTH}}}$")


def _base62(number: int, length: int) -> str:
    digits = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        digits.append(_ALPHABET[digit])
    return "".join(reversed(digits))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode("ascii")), _CHECK_LENGTH)


def new_token() -> str:
    """A fresh service token."""
    body = _base62(secrets.randbits(256), _BODY_LENGTH)
    return f"{PREFIX}{body}{_checksum(body)}"


def looks_like_token(value: str) -> bool:
    """Whether a bearer value is meant as a service token (it has the prefix)."""
    return value.startswith(PREFIX)


def well_formed(token: str) -> bool:
    """Whether a token has the right shape and a matching checksum."""
    if SHAPE.match(token) is None:
        return False
    body, check = token[len(PREFIX) : -_CHECK_LENGTH], token[-_CHECK_LENGTH:]
    return secrets.compare_digest(_checksum(body), check)


def token_hash(token: str) -> str:
    """The SHA-256 the store keeps of a token."""
    return hashlib.sha256(token.encode("ascii")).hexdigest()
