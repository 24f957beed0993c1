"""A bounded thread pool with admission control, for blocking calls that may never finish.

`asyncio`'s default executor is small and shared: a zone whose nameservers never answer fills
it with lookups no deadline can interrupt, and everything else that uses it (password hashing,
key loading) waits behind them. A `BoundedExecutor` is one kind of work's own pool: at most
`workers` calls run and `queue` wait; beyond that a call is refused at once (`Saturated`)
instead of queueing without end. A slot is held until the thread really finishes, not until
its caller gave up, so abandoned calls count against the bound.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

__all__ = ["BoundedExecutor", "Saturated"]


class Saturated(Exception):
    """Every worker is busy and the queue is full."""


class BoundedExecutor:
    """`workers` threads and `queue` waiting calls; more are refused with Saturated."""

    def __init__(self, name: str, workers: int, queue: int) -> None:
        self.name = name
        self.limit = workers + queue
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=name)
        self._lock = threading.Lock()
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Calls running or waiting (including those whose caller stopped waiting)."""
        with self._lock:
            return self._in_flight

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run `func(*args)` in a worker thread, or raise Saturated when no slot is free."""
        with self._lock:
            if self._in_flight >= self.limit:
                raise Saturated(f"{self.name}: {self._in_flight} calls in progress")
            self._in_flight += 1
        call = functools.partial(contextvars.copy_context().run, func, *args)
        try:
            future: Future[T] = self._pool.submit(call)
        except RuntimeError:  # shut down
            self._release(None)
            raise Saturated(f"{self.name}: shut down") from None
        future.add_done_callback(self._release)
        return await asyncio.wrap_future(future)

    def _release(self, _future: object) -> None:
        with self._lock:
            self._in_flight -= 1

    def shutdown(self) -> None:
        """Stop taking work; queued calls are cancelled, running ones end on their own."""
        self._pool.shutdown(wait=False, cancel_futures=True)
