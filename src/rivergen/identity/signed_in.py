"""Verified sign-in sessions (user and roles), kept in process for a few seconds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cachetools import TTLCache

from rivergen.identity.models import Role, User

# Enough for every session that signs in within the TTL on a busy server; beyond it the oldest
# entries go first, which costs a store read, never correctness.
_MAX_ENTRIES = 10_000


@dataclass(frozen=True)
class SignedIn:
    """A signed-in user and their role in each organization, oldest membership first.

    For a service token: its creator, its one organization with the token's role, and its id.
    """

    user: User
    roles: dict[int, Role]
    token_id: int | None = None
    expires_at: datetime | None = None


class SignedInCache:
    """Sessions verified against the store in the last `ttl_seconds`, by session id.

    Checking the session and the memberships is two store reads on every authenticated
    request, about a quarter of the CPU of a connection test. Trusting a recent check for a
    few seconds is the trade-off: this process forgets a session the moment it revokes it or
    changes a membership; another server process sees the change within the TTL. A TTL of 0
    turns the cache off.
    """

    def __init__(self, ttl_seconds: float) -> None:
        self._entries: TTLCache[str, SignedIn] | None = (
            TTLCache(maxsize=_MAX_ENTRIES, ttl=ttl_seconds) if ttl_seconds > 0 else None
        )
        # Bumped by every forget: a check that read the store before a change and finishes
        # after it must not put its outdated answer back.
        self._generation = 0

    @property
    def generation(self) -> int:
        """Take this before reading the store; hand it back to `put`."""
        return self._generation

    def get(self, session_id: str, user_id: int | None = None) -> SignedIn | None:
        """The cached check of a session, if fresh and for this user (any, when None)."""
        if self._entries is None:
            return None
        found = self._entries.get(session_id)
        if found is None or (user_id is not None and found.user.id != user_id):
            return None
        return found

    def put(self, session_id: str, signed_in: SignedIn, generation: int) -> None:
        """Keep a check made from a store read that began at `generation`."""
        if self._entries is not None and generation == self._generation:
            self._entries[session_id] = signed_in

    def forget_session(self, session_id: str) -> None:
        """Drop one session (revoked by this process)."""
        self._generation += 1
        if self._entries is not None:
            self._entries.pop(session_id, None)

    def forget_user(self, user_id: int) -> None:
        """Drop every session of a user (their memberships changed)."""
        self._generation += 1
        if self._entries is not None:
            for session_id in [k for k, v in self._entries.items() if v.user.id == user_id]:
                self._entries.pop(session_id, None)
