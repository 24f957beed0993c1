"""Scrubbing secrets from messages and structured log events."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, quote_plus

import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from rivergen.security.scrub import MASK, is_sensitive_key, scrub, scrub_event_dict

PEM = """-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDnN0cGV5bmFtaWNrZXlzZWNyZXRwYXJ0AAAA
-----END OPENSSH PRIVATE KEY-----"""


@pytest.mark.parametrize(
    "secret",
    ["s3cr3t!", "p@ss:w/rd", "with space", 'quo"te\\back', "ünïcødé", "a&b=c%d"],
)
def test_given_secret_removed_in_all_forms(secret: str) -> None:
    forms = [secret, quote(secret, safe=""), quote_plus(secret), repr(secret)[1:-1]]
    for form in forms:
        out = scrub(f"connect failed ({form}) for user bob", [secret])
        assert form not in out
        assert MASK in out
        assert "user bob" in out


def test_none_and_empty_secrets_ignored() -> None:
    assert scrub("nothing here", [None, "", "  "]) == "nothing here"


def test_longest_secret_first() -> None:
    assert scrub("token abcdef", ["abc", "abcdef"]) == f"token {MASK}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "could not connect to postgresql://reader:s3cret@db.example:5432/app",
            f"could not connect to postgresql://reader:{MASK}@db.example:5432/app",
        ),
        (
            "dsn mysql+pymysql://root:p@ss@10.0.0.1/db failed",
            f"dsn mysql+pymysql://root:{MASK}@10.0.0.1/db failed",
        ),
        ("host=db password=hunter2 user=bob", f"host=db password={MASK} user=bob"),
        ("host=db password='hun ter2' user=bob", f"host=db password='{MASK}' user=bob"),
        ('{"password": "hunter2", "user": "bob"}', f'{{"password": "{MASK}", "user": "bob"}}'),
        ("PWD=abc;UID=sa", f"PWD={MASK};UID=sa"),
        ("?user=a&passwd=xyz&db=1", f"?user=a&passwd={MASK}&db=1"),
        ("client_secret=abc123 scope=x", f"client_secret={MASK} scope=x"),
        ("access_token: abc.def", f"access_token: {MASK}"),
        ("RIVERGEN_SECRET_KEYS=abc,def", f"RIVERGEN_SECRET_KEYS={MASK}"),
        ("password=abc, host=x", f"password={MASK} host=x"),
        ("Authorization: Bearer abcdef123456", f"Authorization: Bearer {MASK}"),
        ("authorization=Basic dXNlcjpwYXNz", f"authorization=Basic {MASK}"),
        ("sent bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig", f"sent bearer {MASK}"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln here", f"jwt {MASK} here"),
        (
            "Access denied for user 'root'@'localhost' (using password: YES)",
            "Access denied for user 'root'@'localhost' (using password: YES)",
        ),
        (
            'FATAL:  password authentication failed for user "bob"',
            'FATAL: password authentication failed for user "bob"',
        ),
        ("nothing secret here", "nothing secret here"),
    ],
)
def test_patterns(text: str, expected: str) -> None:
    assert scrub(text) == expected


def test_pem_block_masked() -> None:
    out = scrub(f"bad key:\n{PEM}\nend")
    assert "b3BlbnNzaC1rZXkt" not in out
    assert out == f"bad key: -----BEGIN OPENSSH PRIVATE KEY-----{MASK} end"


def test_truncated_pem_masked_to_the_end() -> None:
    cut = PEM[:120]
    assert scrub(f"key {cut}") == f"key -----BEGIN OPENSSH PRIVATE KEY-----{MASK}"


def test_one_line_and_capped() -> None:
    out = scrub("line one\n\tline two   " + "x" * 1000)
    assert "\n" not in out
    assert out.startswith("line one line two x")
    assert len(out) == 500
    assert out.endswith("…")
    assert len(scrub("y" * 50, max_length=10)) == 10
    assert scrub("a\nb", one_line=False, max_length=None) == "a\nb"


def test_cap_applies_after_scrubbing() -> None:
    # A secret straddling the cap must not survive half-masked.
    secret = "S" * 40
    out = scrub("x" * 480 + secret, [secret])
    assert "SSSS" not in out


def test_multiline_secret_removed_after_collapsing() -> None:
    secret = "line1\nline2"
    assert "line1" not in scrub(f"got {secret.replace(chr(10), chr(10) + '  ')}", [secret])


@given(
    # No "*": a secret made of asterisks would match the mask itself.
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_characters="*"),
        min_size=6,
        max_size=40,
    ),
    st.text(max_size=60),
    st.text(max_size=60),
)
def test_given_secret_never_survives(secret: str, before: str, after: str) -> None:
    if not secret.strip():
        return
    out = scrub(before + secret + after, [secret], max_length=None, one_line=False)
    assert secret not in out


@pytest.mark.parametrize(
    ("key", "sensitive"),
    [
        ("password", True),
        ("db_password", True),
        ("Authorization", True),
        ("private_key", True),
        ("private_key_passphrase", True),
        ("api_key", True),
        ("apiKey", True),
        ("refresh_token", True),
        ("client_secret", True),
        ("pwd", True),
        ("host", False),
        ("username", False),
        ("key_ids", False),
        ("event", False),
    ],
)
def test_sensitive_keys(key: str, sensitive: bool) -> None:
    assert is_sensitive_key(key) is sensitive


def test_event_dict_processor() -> None:
    event: dict[str, Any] = {
        "event": "connect to postgresql://u:pw1@h/db",
        "password": "pw2",
        "private_key_passphrase": None,
        "host": "db.example",
        "connection": {
            "username": "bob",
            "password": "pw3",
            "options": {"api_key": "k", "note": "token=pw4"},
            "hosts": ["x", "password=pw5", ("pwd=pw6",)],
        },
        "port": 5432,
    }
    out = scrub_event_dict(None, "info", event)
    assert out["event"] == f"connect to postgresql://u:{MASK}@h/db"
    assert out["password"] == MASK
    assert out["private_key_passphrase"] is None
    assert out["host"] == "db.example"
    assert out["port"] == 5432
    assert out["connection"]["username"] == "bob"
    assert out["connection"]["password"] == MASK
    assert out["connection"]["options"] == {"api_key": MASK, "note": f"token={MASK}"}
    assert out["connection"]["hosts"] == ["x", f"password={MASK}", (f"pwd={MASK}",)]
    assert not any(f"pw{n}" in repr(out) for n in range(1, 7))


def test_processor_keeps_tracebacks_multiline() -> None:
    out = scrub_event_dict(None, "error", {"event": "x", "exception": "Traceback\n  line"})
    assert out["exception"] == "Traceback\n  line"


def test_processor_in_a_structlog_chain() -> None:
    with capture_logs(processors=[scrub_event_dict]) as logs:
        structlog.get_logger("t").warning("login failed", password="hunter2", user="bob")
    assert logs == [
        {"event": "login failed", "password": MASK, "user": "bob", "log_level": "warning"}
    ]
