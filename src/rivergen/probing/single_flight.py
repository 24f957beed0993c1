"""Concurrent requests for the same work share one run of it (single-flight)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

__all__ = ["SingleFlight"]

K = TypeVar("K", bound=Hashable)
T = TypeVar("T")


class SingleFlight(Generic[K, T]):
    """Callers of `do` with the same key while a run is in progress all get that run's outcome.

    A caller that is cancelled stops waiting, but the shared run goes on for the others; it goes
    on even when every caller has gone, so work that records its own result (a connection test
    updating the data source) is not left half done. The key is forgotten as soon as the run
    ends: a later call starts a fresh run, results are never cached.
    """

    def __init__(self) -> None:
        self._tasks: dict[K, asyncio.Task[T]] = {}

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, key: object) -> bool:
        return key in self._tasks

    async def do(self, key: K, coro_factory: Callable[[], Awaitable[T]]) -> T:
        """Return the outcome of the run for `key`, starting one with `coro_factory` if none."""
        task = self._tasks.get(key)
        if task is None:
            task = asyncio.get_running_loop().create_task(self._run(key, coro_factory))
            self._tasks[key] = task
            task.add_done_callback(_retrieve_exception)
        # shield: cancelling this waiter must not cancel the task the other waiters share.
        return await asyncio.shield(task)

    async def _run(self, key: K, coro_factory: Callable[[], Awaitable[T]]) -> T:
        try:
            return await coro_factory()
        finally:
            # Forget the key in the task itself (not in a done callback, which runs a loop turn
            # later), so a caller arriving after the end always starts a fresh run.
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]


def _retrieve_exception(task: asyncio.Task[object]) -> None:
    # When every waiter has gone, nobody reads the exception; mark it read so asyncio does not
    # log "Task exception was never retrieved" for an outcome that was expected to be dropped.
    if not task.cancelled():
        task.exception()
