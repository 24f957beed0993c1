"""Rate limits that hold across server processes: counters in the metadata store.

A limit is reserved before the work it guards (an Argon2 verification, an account or an
organization created), so concurrent requests cannot all pass a check made before any of them
is recorded; counting in the store makes replicas share one budget instead of one each.
Windows are fixed: they start at a key's first hit and last `window` seconds.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import time
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from rivergen.core.errors import RateLimited
from rivergen.security import counter_repository as counters

# Every this many reservations a process drops the counters whose window ended.
_PURGE_EVERY = 500


@dataclass(frozen=True)
class Limit:
    """At most `limit` hits of `subject` in the scope `scope` per `window` seconds."""

    scope: str
    subject: str
    limit: int
    window: float

    @property
    def key(self) -> str:
        """The stored key: the scope and a digest (no email or address is stored in clear)."""
        digest = hashlib.sha256(self.subject.encode()).hexdigest()
        return f"{self.scope}:{digest}"


class StoreCounters:
    """Reserves, refunds and resets hits of shared counters."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._calls = itertools.count(1)

    async def reserve(self, *limits: Limit) -> int | None:
        """Count one hit against every limit; None when all had room, else seconds to wait.

        When any limit is full, nothing is counted (every hit of this call is taken back).
        """
        now = time.time()
        wait: float | None = None
        async with self._sessions() as session, session.begin():
            if next(self._calls) % _PURGE_EVERY == 0:
                await counters.purge(session, now)
            for limit in limits:
                hits, window_ends = await counters.hit(session, limit.key, limit.window, now)
                if hits > limit.limit:
                    wait = max(wait or 0.0, window_ends - now)
            if wait is not None:
                for limit in limits:
                    await counters.refund(session, limit.key)
        return None if wait is None else max(1, math.ceil(wait))

    async def refund(self, limit: Limit) -> None:
        """Take back one hit (the attempt should not count, e.g. a successful sign-in)."""
        async with self._sessions() as session, session.begin():
            await counters.refund(session, limit.key)

    async def reset(self, limit: Limit) -> None:
        """Start a key from zero (e.g. an account after a successful sign-in)."""
        async with self._sessions() as session, session.begin():
            await counters.reset(session, limit.key)


_DAY = 86400.0


@dataclass(frozen=True)
class CreationLimits:
    """Per-user daily budgets for making organizations and for accounts and invitations.

    Without them one user could make organizations without end, each with its own share of
    the per-organization test rate limit.
    """

    counters: StoreCounters
    organizations_per_day: int
    accounts_per_day: int

    async def organization(self, user_id: int) -> None:
        """Count an organization the user creates; RATE_LIMITED when the day's budget is spent."""
        limit = Limit("create-organization", str(user_id), self.organizations_per_day, _DAY)
        await self._take(limit, "Too many organizations created; try again later")

    async def account(self, user_id: int) -> None:
        """Count an account created or an invitation sent by the user (RATE_LIMITED when spent)."""
        limit = Limit("create-account", str(user_id), self.accounts_per_day, _DAY)
        await self._take(limit, "Too many accounts created or invited; try again later")

    async def _take(self, limit: Limit, message: str) -> None:
        wait = await self.counters.reserve(limit)
        if wait is not None:
            raise RateLimited(message, retry_after=wait)
