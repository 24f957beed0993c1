"""Loading a user's SSH private key, with classified errors that never echo the key."""

from __future__ import annotations

import base64
import binascii
import importlib.util
import re
import struct
from typing import Any

import asyncssh
from asyncssh.asn1 import ASN1DecodeError, ObjectIdentifier, der_decode

from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure

_OPENSSH_MAGIC = b"openssh-key-v1\x00"
_PKCS8_BLOCK = re.compile(
    r"-----BEGIN ENCRYPTED PRIVATE KEY-----(?P<body>.*?)-----END ENCRYPTED PRIVATE KEY-----",
    re.DOTALL,
)
# The key-derivation work a passphrase may demand. Decrypting runs in C where no deadline can
# stop it: a key crafted with 2**31 PBKDF2 iterations held the event loop for minutes, one with
# a huge scrypt cost takes gigabytes, and huge bcrypt rounds hold a CPU for hours.
MAX_BCRYPT_ROUNDS = 500  # ssh-keygen's default is 16; "-a 100" is the hardened advice
MAX_PBKDF2_ITERATIONS = 5_000_000  # OpenSSL's default is 2048; OWASP's advice 600,000
MAX_SCRYPT_BYTES = 256 * 1024 * 1024  # 128 * N * r (OpenSSL's default N=16384, r=8: 16 MiB)
# Loading an RSA private key checks its primes: 6 s of CPU for an 8192-bit key here, roughly
# eight times that per doubling, and a 64 KiB key text can hold a modulus of ~87,000 bits.
MAX_RSA_BITS = 8192
_MAX_ENCRYPTED_KEY_BYTES = 8 * 1024  # the DER of an encrypted 8192-bit key is ~5 KiB
_MAX_OPENSSH_PRIVATE_BYTES = 5 * 1024  # an 8192-bit RSA private section is ~3.7 KiB
_PBKDF2 = "1.2.840.113549.1.5.12"
_RSA_ENCRYPTION = "1.2.840.113549.1.1.1"
_PEM_BLOCK = re.compile(
    r"-----BEGIN (?P<kind>[A-Z ]+)-----\n(?P<headers>(?:[A-Za-z-]+:.*\n)*)(?P<body>.*?)"
    r"-----END (?P=kind)-----",
    re.DOTALL,
)
_SCRYPT = "1.3.6.1.4.1.11591.4.11"
_OPENSSH_BLOCK = re.compile(
    r"-----BEGIN OPENSSH PRIVATE KEY-----(?P<body>.*?)-----END OPENSSH PRIVATE KEY-----",
    re.DOTALL,
)


def normalize_private_key(text: str) -> str:
    """Undo common pasting damage: literal `\\n` sequences, CRLF, surrounding blanks."""
    if "\n" not in text and "\\n" in text:
        # A key pasted into a JSON string by hand often carries escaped newlines.
        text = text.replace("\\n", "\n")
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    return text + "\n"


def _openssh_cipher(text: str) -> str | None:
    """The cipher name of an OpenSSH-format key, or None when the text is not one."""
    match = _OPENSSH_BLOCK.search(text)
    if match is None:
        return None
    try:
        blob = base64.b64decode("".join(match.group("body").split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    if not blob.startswith(_OPENSSH_MAGIC):
        return None
    offset = len(_OPENSSH_MAGIC)
    try:
        (length,) = struct.unpack_from(">I", blob, offset)
    except struct.error:
        return None
    return blob[offset + 4 : offset + 4 + length].decode("ascii", errors="replace")


def _openssh_bcrypt_rounds(text: str) -> int | None:
    """The bcrypt KDF rounds of an encrypted OpenSSH-format key, or None."""
    match = _OPENSSH_BLOCK.search(text)
    if match is None:
        return None
    try:
        blob = base64.b64decode("".join(match.group("body").split()), validate=True)
        offset = len(_OPENSSH_MAGIC)
        fields: list[bytes] = []
        for _ in range(3):  # cipher name, KDF name, KDF options
            (length,) = struct.unpack_from(">I", blob, offset)
            fields.append(blob[offset + 4 : offset + 4 + length])
            offset += 4 + length
        if fields[1] != b"bcrypt":
            return None
        (salt_length,) = struct.unpack_from(">I", fields[2], 0)
        (rounds,) = struct.unpack_from(">I", fields[2], 4 + salt_length)
    except (binascii.Error, ValueError, struct.error):
        return None
    return int(rounds)


def _pkcs8_kdf_cost(text: str) -> str | None:
    """Why an encrypted PKCS#8 key's key derivation is too costly to attempt, or None."""
    match = _PKCS8_BLOCK.search(text)
    if match is None:
        return None
    try:
        decoded = der_decode(base64.b64decode("".join(match.group("body").split())))
    except (ASN1DecodeError, binascii.Error, ValueError, TypeError):
        return None  # not readable: import_private_key reports it
    if not isinstance(decoded, tuple) or not decoded:
        return None
    return _kdf_cost(decoded[0])


# PKCS#12 PBE and PKCS#5 PBES1/PBKDF2: parameters are (salt, iterations, ...).
_ITERATED = (_PBKDF2, "1.2.840.113549.1.12.1.", "1.2.840.113549.1.5.")


def _kdf_cost(node: object) -> str | None:
    """Walk an AlgorithmIdentifier tree for PBKDF2 / PBES1 iterations and scrypt parameters."""
    if not isinstance(node, tuple):
        return None
    if len(node) == 2 and isinstance(node[0], ObjectIdentifier) and isinstance(node[1], tuple):
        oid, params = str(node[0]), node[1]
        numbers = [n for n in params if isinstance(n, int) and not isinstance(n, bool)]
        if oid == _SCRYPT and len(numbers) >= 3:
            cost, block, parallel = numbers[:3]
            if 128 * cost * block * max(parallel, 1) > MAX_SCRYPT_BYTES:
                return "its scrypt parameters demand more memory and time than a test allows"
        elif oid.startswith(_ITERATED) and numbers and numbers[0] > MAX_PBKDF2_ITERATIONS:
            return (
                f"it demands {numbers[0]} key-derivation iterations "
                f"(at most {MAX_PBKDF2_ITERATIONS} are accepted)"
            )
    for child in node:
        reason = _kdf_cost(child)
        if reason is not None:
            return reason
    return None


def _rsa_bits(key_text: str) -> int | None:
    """The modulus size of an RSA key, read from its structure without loading it.

    None when it cannot be told without decrypting (then `_oversized_encrypted` bounds it).
    """
    match = _OPENSSH_BLOCK.search(key_text)
    if match is not None:
        try:
            blob = base64.b64decode("".join(match.group("body").split()), validate=True)
            sections = _openssh_sections(blob)
        except (binascii.Error, ValueError, struct.error):
            return None
        cipher, public, private = sections
        # The header's public key is never used by the loader (asyncssh reads the private
        # section): a header that lies must not hide a huge modulus, so both are measured.
        sizes = [_ssh_rsa_modulus_bits(public, 0)]
        if cipher == b"none":
            sizes.append(_ssh_rsa_modulus_bits(private, 8))  # after the two check integers
        known = [bits for bits in sizes if bits is not None]
        return max(known) if known else None
    match = _PEM_BLOCK.search(key_text)
    if match is None or match.group("headers").strip():
        return None  # not PEM, or legacy-encrypted PEM (Proc-Type headers)
    try:
        decoded: Any = der_decode(base64.b64decode("".join(match.group("body").split())))
        if match.group("kind") == "RSA PRIVATE KEY":  # PKCS#1: (version, n, e, d, ...)
            modulus = decoded[1]
        elif match.group("kind") == "PRIVATE KEY":  # PKCS#8: (version, algorithm, key)
            algorithm = decoded[1][0]
            if not isinstance(algorithm, ObjectIdentifier) or str(algorithm) != _RSA_ENCRYPTION:
                return None
            inner: Any = der_decode(decoded[2])
            modulus = inner[1]
        else:
            return None
    except (ASN1DecodeError, binascii.Error, ValueError, TypeError, IndexError, KeyError):
        return None
    return modulus.bit_length() if isinstance(modulus, int) else None


def _openssh_sections(blob: bytes) -> tuple[bytes, bytes, bytes]:
    """(cipher name, first public key, private section) of an OpenSSH key blob."""
    if not blob.startswith(_OPENSSH_MAGIC):
        raise ValueError("not an OpenSSH key")
    offset = len(_OPENSSH_MAGIC)
    fields: list[bytes] = []
    for _ in range(3):  # cipher name, KDF name, KDF options
        (length,) = struct.unpack_from(">I", blob, offset)
        fields.append(blob[offset + 4 : offset + 4 + length])
        offset += 4 + length
    offset += 4  # number of keys (always 1)
    (length,) = struct.unpack_from(">I", blob, offset)
    public = blob[offset + 4 : offset + 4 + length]
    offset += 4 + length
    (length,) = struct.unpack_from(">I", blob, offset)
    return fields[0], public, blob[offset + 4 : offset + 4 + length]


def _ssh_rsa_modulus_bits(data: bytes, offset: int) -> int | None:
    """The size of n in an SSH-encoded RSA key at `offset` (public: type, e, n; private:
    type, n, e, ...), or None when it is not an RSA key."""
    parts: list[bytes] = []
    cursor = offset
    for _ in range(3):
        (length,) = struct.unpack_from(">I", data, cursor)
        parts.append(data[cursor + 4 : cursor + 4 + length])
        cursor += 4 + length
        if parts[0] != b"ssh-rsa":
            return None  # other key types have other layouts, and no costly check
    # The public encoding is (type, e, n), the private one (type, n, e, d, iqmp, p, q).
    modulus = parts[2] if offset == 0 else parts[1]
    return int.from_bytes(modulus, "big").bit_length()


def _oversized_encrypted(key_text: str) -> bool:
    """Whether an encrypted key's private part is larger than any key this service accepts."""
    openssh = _OPENSSH_BLOCK.search(key_text)
    if openssh is not None:
        try:
            blob = base64.b64decode("".join(openssh.group("body").split()), validate=True)
            cipher, _, private = _openssh_sections(blob)
        except (binascii.Error, ValueError, struct.error):
            return False
        # Encrypted, its size is all there is to judge before decrypting (then loading costs
        # the primes' check): an 8192-bit RSA private section is about 3.7 KiB.
        return cipher != b"none" and len(private) > _MAX_OPENSSH_PRIVATE_BYTES
    match = _PEM_BLOCK.search(key_text)
    if match is None or "ENCRYPTED" not in match.group("kind") + match.group("headers"):
        return False
    return len("".join(match.group("body").split())) * 3 // 4 > _MAX_ENCRYPTED_KEY_BYTES


def _refuse_costly_key(key_text: str) -> None:
    bits = _rsa_bits(key_text)
    if (bits is not None and bits > MAX_RSA_BITS) or _oversized_encrypted(key_text):
        shown = f"a {bits}-bit RSA key" if bits is not None else "the key is too large"
        raise _failure(
            ErrorCode.CONFIGURATION_ERROR,
            f"The private key is refused: {shown}; RSA keys of at most {MAX_RSA_BITS} bits "
            "are accepted (loading larger ones costs minutes of CPU); use Ed25519 or ECDSA",
        )


def _refuse_costly_key_derivation(key_text: str) -> None:
    rounds = _openssh_bcrypt_rounds(key_text)
    if rounds is not None and rounds > MAX_BCRYPT_ROUNDS:
        reason: str | None = (
            f"it demands {rounds} bcrypt rounds (at most {MAX_BCRYPT_ROUNDS} are accepted)"
        )
    else:
        reason = _pkcs8_kdf_cost(key_text)
    if reason is not None:
        raise _failure(
            ErrorCode.CONFIGURATION_ERROR,
            f"The private key's passphrase protection is refused: {reason}; re-encrypt it "
            "(ssh-keygen -p -a 100 -f KEY)",
        )


def is_encrypted_private_key(text: str) -> bool:
    """Whether the key text is protected by a passphrase (by its format, not by trying)."""
    cipher = _openssh_cipher(text)
    if cipher is not None:
        return cipher != "none"
    return "-----BEGIN ENCRYPTED PRIVATE KEY-----" in text or "Proc-Type: 4,ENCRYPTED" in text


def needs_bcrypt(text: str) -> bool:
    """Whether decrypting this key needs the optional bcrypt module (encrypted OpenSSH format)."""
    cipher = _openssh_cipher(text)
    return cipher is not None and cipher != "none"


def _failure(code: ErrorCode, message: str) -> ProbeFailure:
    return ProbeFailure(code, Phase.SSH, message)


def _refuse_obvious_mistakes(key_text: str) -> None:
    first_line = key_text.split("\n", 1)[0]
    if first_line.startswith(("ssh-", "ecdsa-sha2-")) or "PUBLIC KEY" in first_line:
        raise _failure(
            ErrorCode.CONFIGURATION_ERROR,
            "This is a public key: paste the private key (the file without .pub)",
        )
    if first_line.startswith("PuTTY-User-Key-File"):
        raise _failure(
            ErrorCode.CONFIGURATION_ERROR,
            "PuTTY keys are not supported: export the key in OpenSSH format (PuTTYgen, "
            "Conversions > Export OpenSSH key)",
        )


def load_private_key(text: str, passphrase: str | None) -> asyncssh.SSHKey:
    """Import a private key (OpenSSH, PEM or PKCS#8), raising a classified ProbeFailure.

    Costs real CPU time for encrypted keys (key derivation: bcrypt, PBKDF2, scrypt) and large
    RSA keys (their primes are checked): callers on an event loop should run it in a thread.
    A key costlier than any test could afford is refused before that work starts.
    """
    key_text = normalize_private_key(text)
    _refuse_obvious_mistakes(key_text)
    _refuse_costly_key(key_text)
    encrypted = is_encrypted_private_key(key_text)
    if encrypted and not passphrase:
        raise _failure(
            ErrorCode.CONFIGURATION_ERROR,
            "The private key is encrypted: provide its passphrase",
        )
    if encrypted:
        _refuse_costly_key_derivation(key_text)
    if encrypted and needs_bcrypt(key_text) and importlib.util.find_spec("bcrypt") is None:
        raise _failure(
            ErrorCode.CONFIGURATION_ERROR,
            "Encrypted OpenSSH-format keys need the bcrypt package, which is not installed; "
            "install it or convert the key to PEM (ssh-keygen -p -m PEM)",
        )
    try:
        key = asyncssh.import_private_key(key_text, passphrase if encrypted else None)
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError, ValueError) as exc:
        if encrypted:
            # The format is a well-formed encrypted key, so a failed decryption or a
            # garbage result after decryption both mean the passphrase is not the right one.
            raise _failure(
                ErrorCode.SSH_AUTHENTICATION_FAILED, "The private key passphrase is wrong"
            ) from None
        raise _failure(
            ErrorCode.CONFIGURATION_ERROR,
            "The private key could not be read: it is not an OpenSSH, PEM or PKCS#8 private "
            f"key ({type(exc).__name__})",
        ) from None
    return key


def check_private_key(text: str, passphrase: str | None) -> None:
    """Raise ProbeFailure (phase ssh) unless the key text parses with this passphrase."""
    load_private_key(text, passphrase)
