"""Secret scrubbing of driver messages."""

from __future__ import annotations

from rivergen.security.scrub import MASK, scrub
from rivergen.security.scrub import scrub as one_line


def test_known_secrets_in_every_form_are_masked() -> None:
    secret = "p@ss word/ü"
    message = f"auth failed for {secret} (url: x://u:{secret.replace(' ', '%20')}@h) {secret!r}"
    cleaned = scrub(message, [secret, None, ""])
    assert secret not in cleaned
    assert "p%40ss" not in cleaned
    assert MASK in cleaned


def test_dsn_userinfo_and_key_values_are_masked_without_knowing_them() -> None:
    message = "could not use postgresql://reader:hunter2@db:5432/x with password=hunter3 pwd: 'a b'"
    cleaned = scrub(message)
    assert "hunter2" not in cleaned
    assert "hunter3" not in cleaned
    assert "a b" not in cleaned
    assert "postgresql://reader:********@db" in cleaned


def test_mysql_using_password_flag_stays_readable() -> None:
    message = "Access denied for user 'bob'@'10.0.0.1' (using password: YES)"
    assert scrub(message) == message


def test_one_line_folds_whitespace() -> None:
    assert one_line("FATAL:  a\n\tb  c\n", ["c"]) == f"FATAL: a b {MASK}"
