"""Password hashing with the service's real Argon2id parameters."""

from __future__ import annotations

import re

import pytest

from rivergen.identity.passwords import hash_password, verify_password

pytestmark = pytest.mark.production_hashing


def test_production_hasher_is_argon2id_with_strong_parameters() -> None:
    hashed = hash_password("correct horse battery staple")
    match = re.match(r"^\$argon2id\$v=19\$m=(\d+),t=(\d+),p=(\d+)\$", hashed)
    assert match is not None, hashed
    memory_kib, iterations, _lanes = (int(part) for part in match.groups())
    # At least OWASP's minimum for Argon2id (19 MiB, 2 iterations).
    assert memory_kib >= 19 * 1024
    assert iterations >= 2
    assert "correct horse" not in hashed
    # Salted: the same password never hashes the same way twice.
    assert hash_password("correct horse battery staple") != hashed

    assert verify_password("correct horse battery staple", hashed)
    assert not verify_password("correct horse battery stapler", hashed)
    assert not verify_password("anything", None)
    assert not verify_password("anything", "not-a-hash")
