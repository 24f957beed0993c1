"""Loading a user's SSH private key, with classified errors that never echo the key."""

from __future__ import annotations

import base64
import binascii
import importlib.util
import re
import struct

import asyncssh

from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure

_OPENSSH_MAGIC = b"openssh-key-v1\x00"
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

    Fast except for encrypted OpenSSH-format keys, whose bcrypt KDF costs real CPU time:
    callers on an event loop should run those in a thread.
    """
    key_text = normalize_private_key(text)
    _refuse_obvious_mistakes(key_text)
    encrypted = is_encrypted_private_key(key_text)
    if encrypted and not passphrase:
        raise _failure(
            ErrorCode.CONFIGURATION_ERROR,
            "The private key is encrypted: provide its passphrase",
        )
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
