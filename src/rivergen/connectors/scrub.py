"""Remove secrets from driver messages before they leave a connector."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "********"

# scheme://user:password@ -> keep the user, mask the password (drivers echo DSNs back).
_USERINFO = re.compile(r"(?i)([a-z][a-z0-9+.\-]*://[^:/?#@\s]*):[^\s/?#]*@")
# password=..., pwd: ..., passwd='...' as libpq conninfo strings and driver reprs print them.
_KEY_VALUE = re.compile(
    r"(?i)\b(password|passwd|pwd|requirepass)(\s*[=:]\s*)"
    # MySQL's "(using password: YES)" only says whether one was sent: keep it readable.
    r"(?!(?:YES|NO)\b)"
    r"(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|[^\s,;&)]+)"
)


def _variants(secret: str) -> set[str]:
    """The forms a secret takes inside messages: raw, URL-encoded, repr-escaped."""
    forms = {secret, quote(secret, safe=""), quote_plus(secret), repr(secret)[1:-1]}
    return {form for form in forms if form}


def scrub(message: str, secrets: Iterable[str | None] = ()) -> str:
    """Return `message` with every given secret and credential-looking pattern masked."""
    text = message
    # Longest first so that a secret containing another one is masked whole.
    forms = sorted(
        {form for secret in secrets if secret for form in _variants(secret)},
        key=len,
        reverse=True,
    )
    for form in forms:
        text = text.replace(form, MASK)
    text = _USERINFO.sub(rf"\1:{MASK}@", text)
    return _KEY_VALUE.sub(rf"\1\2{MASK}", text)


def one_line(message: str, secrets: Iterable[str | None] = ()) -> str:
    """Scrub `message` and fold it onto a single line."""
    return " ".join(scrub(message, secrets).split())
