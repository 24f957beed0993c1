"""Argon2id with the smallest parameters, for tests that sign in many times.

The service's hasher costs about 0.2 s of CPU per hash or check; a test that opens an app and
signs in a few users pays that many times over. These tests are about who may do what, not
about the hash's cost, so they swap in the same algorithm (Argon2id through pwdlib) with tiny
parameters. `test_production_hasher_is_argon2id` keeps the real parameters honest.
"""

from __future__ import annotations

import functools

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from rivergen.identity import passwords


@functools.cache
def _cheap() -> tuple[PasswordHash, str]:
    hasher = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1),))
    return hasher, hasher.hash("rivergen-timing-equaliser")


def use_cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `hash_password` / `verify_password` cheap for the current test."""
    hasher, dummy = _cheap()
    monkeypatch.setattr(passwords, "_hasher", hasher)
    monkeypatch.setattr(passwords, "_DUMMY_HASH", dummy)
