"""Secret encryption at rest: named keys, rotation, tamper detection, the generated key file."""

from __future__ import annotations

import base64
import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from rivergen.security.crypto import (
    KEY_FILE_NAME,
    SecretBox,
    SecretDecryptionError,
    generate_key,
    key_id,
    load_or_create_keys,
    parse_keys,
)
from tests.fixtures.threads import run_at_once

OLD_KEY = generate_key()
NEW_KEY = generate_key()
BOX = SecretBox([OLD_KEY])


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """A permissive umask, to show the key file's mode does not depend on it."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def test_round_trip_and_token_names_its_key() -> None:
    box = SecretBox([NEW_KEY, OLD_KEY])
    token = box.encrypt("s3cret")
    assert token.startswith(f"v1:{key_id(NEW_KEY)}:")
    assert "s3cret" not in token
    assert box.decrypt(token) == "s3cret"
    assert box.key_ids == [key_id(NEW_KEY), key_id(OLD_KEY)]
    assert box.current_key_id == key_id(NEW_KEY)


def test_each_encryption_differs() -> None:
    assert BOX.encrypt("same") != BOX.encrypt("same")


def test_key_id_is_sha256_prefix_of_raw_key() -> None:
    raw = base64.urlsafe_b64decode(OLD_KEY)
    assert key_id(OLD_KEY) == hashlib.sha256(raw).hexdigest()[:8]
    assert SecretBox([OLD_KEY]).key_ids == [key_id(OLD_KEY)]


@settings(max_examples=50, deadline=None)
@given(st.text())
def test_any_text_round_trips(plaintext: str) -> None:
    assert BOX.decrypt(BOX.encrypt(plaintext)) == plaintext


def test_rotation() -> None:
    old_token = SecretBox([OLD_KEY]).encrypt("pw")
    rotated_box = SecretBox([NEW_KEY, OLD_KEY])
    assert rotated_box.needs_rotation(old_token)
    assert rotated_box.decrypt(old_token) == "pw"
    new_token = rotated_box.rotate(old_token)
    assert new_token.startswith(f"v1:{key_id(NEW_KEY)}:")
    assert not rotated_box.needs_rotation(new_token)
    assert rotated_box.rotate(new_token) == new_token
    # Once the old key is retired, only the re-encrypted token still opens.
    assert SecretBox([NEW_KEY]).decrypt(new_token) == "pw"
    with pytest.raises(SecretDecryptionError, match=key_id(OLD_KEY)):
        SecretBox([NEW_KEY]).decrypt(old_token)


def test_unknown_key_refused_without_leaking() -> None:
    token = SecretBox([OLD_KEY]).encrypt("hunter2")
    with pytest.raises(SecretDecryptionError) as info:
        SecretBox([NEW_KEY]).decrypt(token)
    assert "hunter2" not in str(info.value)
    assert NEW_KEY not in str(info.value)
    assert OLD_KEY not in str(info.value)


@pytest.mark.parametrize("position", [10, 40, -5, -1])
def test_tampered_token_refused(position: int) -> None:
    token = BOX.encrypt("hunter2")
    flipped = "A" if token[position] != "A" else "B"
    tampered = token[:position] + flipped + token[position + 1 :]
    with pytest.raises(SecretDecryptionError) as info:
        BOX.decrypt(tampered)
    assert "hunter2" not in str(info.value)


def test_fernet_token_from_the_same_key_but_another_key_id_is_refused() -> None:
    # A token claiming the wrong key id fails authentication rather than decrypting.
    body = Fernet(NEW_KEY.encode()).encrypt(b"x").decode()
    with pytest.raises(SecretDecryptionError):
        SecretBox([OLD_KEY, NEW_KEY]).decrypt(f"v1:{key_id(OLD_KEY)}:{body}")


@pytest.mark.parametrize(
    "token", ["", "garbage", "v1:", "v1:abc:xyz", "v2:12345678:abc", f"v1:{key_id(OLD_KEY)}:"]
)
def test_malformed_tokens_refused(token: str) -> None:
    with pytest.raises(SecretDecryptionError):
        BOX.decrypt(token)
    with pytest.raises(SecretDecryptionError):
        BOX.needs_rotation(token)


def test_bad_key_names_setting_and_position_not_key() -> None:
    bad = "not-a-key-" + "x" * 20
    with pytest.raises(ValueError, match=r"RIVERGEN_SECRET_KEYS: key #2") as info:
        parse_keys(f"{NEW_KEY},{bad}")
    assert bad not in str(info.value)
    assert info.value.__cause__ is None
    with pytest.raises(ValueError, match="RIVERGEN_SECRET_KEYS: key #1"):
        SecretBox([base64.urlsafe_b64encode(b"short").decode()])


def test_duplicate_and_missing_keys_refused() -> None:
    with pytest.raises(ValueError, match="key #2 repeats key #1"):
        parse_keys(f"{NEW_KEY}, {NEW_KEY}")
    with pytest.raises(ValueError, match="no key"):
        SecretBox([])
    with pytest.raises(TypeError):
        SecretBox(NEW_KEY)


def test_parse_keys_tolerates_spaces_and_newlines() -> None:
    assert parse_keys(f" {NEW_KEY} ,\n{OLD_KEY},") == [NEW_KEY, OLD_KEY]


def test_setting_wins_over_key_file(tmp_path: Path) -> None:
    assert load_or_create_keys(f"{NEW_KEY},{OLD_KEY}", tmp_path) == [NEW_KEY, OLD_KEY]
    assert not (tmp_path / KEY_FILE_NAME).exists()


@pytest.mark.usefixtures("permissive_umask")
@pytest.mark.parametrize("setting", [None, "", "  "])
def test_key_file_generated_private_and_reused(tmp_path: Path, setting: str | None) -> None:
    data_dir = tmp_path / "var"
    with capture_logs() as logs:
        keys = load_or_create_keys(setting, data_dir)
    path = data_dir / KEY_FILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(keys) == 1
    SecretBox(keys)  # valid
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert [e["event"] for e in warnings] == ["generated_secret_key_file"]
    assert keys[0] not in repr(logs)
    assert list(data_dir.iterdir()) == [path]  # the temporary file is gone
    assert load_or_create_keys(setting, data_dir) == keys


def test_existing_key_file_is_used(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.write_text(f"{NEW_KEY}\n{OLD_KEY}\n")
    path.chmod(0o600)
    with capture_logs() as logs:
        assert load_or_create_keys(None, tmp_path) == [NEW_KEY, OLD_KEY]
    assert not [e for e in logs if e["log_level"] == "warning"]


def test_readable_key_file_warns(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.write_text(NEW_KEY)
    path.chmod(0o644)
    with capture_logs() as logs:
        load_or_create_keys(None, tmp_path)
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == [
        "secret_key_file_readable_by_others"
    ]
    assert NEW_KEY not in repr(logs)


def test_bad_key_file_names_file_not_key(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE_NAME
    path.write_text("garbage-key")
    path.chmod(0o600)
    with pytest.raises(ValueError, match=r"secret\.key: key #1") as info:
        load_or_create_keys(None, tmp_path)
    assert "garbage-key" not in str(info.value)


def test_concurrent_creation_agrees_on_one_key(tmp_path: Path) -> None:
    results = run_at_once(lambda: load_or_create_keys(None, tmp_path), 8)
    assert len(results) == 8
    assert all(r == results[0] for r in results)
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE_NAME]


def test_generate_key_is_a_fernet_key() -> None:
    key = generate_key()
    assert len(base64.urlsafe_b64decode(key)) == 32
    assert generate_key() != key
