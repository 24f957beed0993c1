"""Removing secrets from text bound for a response or a log line.

Two layers: the exact secrets the caller knows (the password it just used, in plain and encoded
forms) and patterns that look like credentials whoever wrote them (URL userinfo, `password=...`,
PEM private keys, bearer tokens, JWTs). The exact layer catches what the patterns cannot guess;
the pattern layer catches secrets the caller did not know about (a DSN inside a driver message).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "is_sensitive_key", "scrub", "scrub_event_dict", "scrub_patterns"]

MASK = "********"
DEFAULT_MAX_LENGTH = 500
_ELLIPSIS = "…"
_MAX_DEPTH = 8

# A PEM private key block; an unterminated one (a message cut short) is masked to the end.
_PEM_RE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*?)PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*?PRIVATE KEY-----|\Z)",
    re.DOTALL,
)
# scheme://user:password@host. The password part is greedy up to the last "@" before the path,
# because an unencoded "@" inside a password is common in hand-written DSNs.
_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^:/?#@\s]*):([^\s/?#]*)@")
# Authorization headers, with or without a scheme word.
_AUTH_HEADER_RE = re.compile(
    r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?)"
    r"(?:(bearer|basic|digest|token|negotiate)\s+)?"
    r"[^\s\"',;]+"
)
# Only "Bearer": "basic" is too common an English word outside headers.
_BEARER_RE = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/\-]{8,}=*")
# JSON Web Tokens (header.payload.signature, base64url, header starts with {" -> eyJ).
_JWT_RE = re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*")
# Service tokens (rivergen.apitokens.secret), wherever they appear.
_SERVICE_TOKEN_RE = re.compile(r"\brgt_[0-9A-Za-z]{20,}")
# key=value and key: value where the key names a credential (db_password, client_secret,
# access_token, SECRET_KEYS...). Quoted values keep their quotes so the text still parses.
_SENSITIVE_WORDS = (
    r"password|passwd|pwd|passphrase|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key"
)
_KEY_VALUE_RE = re.compile(
    rf"(?i)(?<![\w.\-])([\w.\-]*?(?:{_SENSITIVE_WORDS})[\w\-]*[\"']?\s*[=:]\s*)"
    # A bare value runs on over commas: a comma-separated key list must not leak its tail.
    r"(?:\"((?:[^\"\\]|\\.)*)\"|'((?:[^'\\]|\\.)*)'|([^\s&;\"')\]}]+))"
)

# MySQL's "Access denied ... (using password: YES)" says whether a password was sent; keep it.
_NOT_SECRETS = frozenset({"YES", "NO"})

# Names of structured-log keys whose values are masked wholesale.
_SENSITIVE_KEY_RE = re.compile(
    r"(?i)(password|passwd|(?<![a-z])pwd(?![a-z])|passphrase|secret|token|authorization|private[_\-]?key"
    r"|api[_\-]?key|access[_\-]?key|credential|cookie)"
)


def is_sensitive_key(name: str) -> bool:
    """Whether a mapping key names a credential (password, token, private_key, ...)."""
    return _SENSITIVE_KEY_RE.search(name) is not None


def _mask_key_value(match: re.Match[str]) -> str:
    prefix = match.group(1)
    if match.group(4) in _NOT_SECRETS:
        return match.group(0)
    if match.group(2) is not None:
        return f'{prefix}"{MASK}"'
    if match.group(3) is not None:
        return f"{prefix}'{MASK}'"
    return prefix + MASK


def _mask_auth_header(match: re.Match[str]) -> str:
    scheme = match.group(2)
    return f"{match.group(1)}{scheme} {MASK}" if scheme else match.group(1) + MASK


def scrub_patterns(text: str) -> str:
    """Mask anything shaped like a credential, keeping the text's layout."""
    text = _PEM_RE.sub(lambda m: f"-----BEGIN {m.group(1)}PRIVATE KEY-----{MASK}", text)
    text = _USERINFO_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", text)
    text = _AUTH_HEADER_RE.sub(_mask_auth_header, text)
    text = _BEARER_RE.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _JWT_RE.sub(MASK, text)
    text = _SERVICE_TOKEN_RE.sub(MASK, text)
    return _KEY_VALUE_RE.sub(_mask_key_value, text)


def _secret_forms(secret: str) -> set[str]:
    """The ways a secret can appear in a message: as is, URL-encoded, escaped, collapsed."""
    forms = {
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        repr(secret)[1:-1],
        secret.replace("\\", "\\\\").replace('"', '\\"'),
        " ".join(secret.split()),
    }
    return {form for form in forms if form.strip()}


def _remove_secrets(text: str, secrets: Iterable[str | None]) -> str:
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= _secret_forms(secret)
    # Longest first, so a secret that contains another is removed whole.
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def scrub(
    text: str,
    secrets: Iterable[str | None] = (),
    *,
    max_length: int | None = DEFAULT_MAX_LENGTH,
    one_line: bool = True,
) -> str:
    """Remove the given secrets and credential-shaped text; one line, capped to max_length."""
    secret_list = list(secrets)
    text = _remove_secrets(text, secret_list)
    text = scrub_patterns(text)
    if one_line:
        text = " ".join(text.split())
        # Collapsing whitespace can reassemble a multi-line secret's collapsed form.
        text = _remove_secrets(text, secret_list)
    # Capping comes last: cutting first could leave half a secret the patterns no longer match.
    if max_length is not None and len(text) > max_length:
        text = text[: max(0, max_length - len(_ELLIPSIS))] + _ELLIPSIS
    return text


def _scrub_value(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return scrub_patterns(value)
    if depth >= _MAX_DEPTH:
        return value
    if isinstance(value, Mapping):
        return {
            k: (
                _mask(v)
                if isinstance(k, str) and is_sensitive_key(k)
                else _scrub_value(v, depth + 1)
            )
            for k, v in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [_scrub_value(v, depth + 1) for v in value]
        if isinstance(value, list):
            return items
        # Named tuples and other subclasses lose their type; a plain container logs the same.
        return tuple(items) if isinstance(value, tuple) else set(items)
    return value


def _mask(value: Any) -> Any:
    # None and empty values carry no secret and show that nothing was set.
    return value if value is None or value == "" else MASK


def scrub_event_dict(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Structlog processor: mask credential-named keys and credential-shaped text, recursively."""
    for key in list(event_dict):
        value = event_dict[key]
        if key != "event" and is_sensitive_key(key):
            event_dict[key] = _mask(value)
        else:
            event_dict[key] = _scrub_value(value, 0)
    return event_dict
