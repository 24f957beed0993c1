"""The bounded thread pool in which blocking driver calls run.

Why not `concurrent.futures.ThreadPoolExecutor`: its queue is unbounded (a flood of tests would
pile up instead of being refused), and its workers stay alive, idle, until shutdown and are
joined at interpreter exit, so one driver call hung in C would hold the process open. This pool
instead:

* refuses work at once with `PoolBusy` when running + queued calls reach
  `max_workers + max_queue`;
* starts daemon threads on demand (named ``rivergen-probe_N``), up to `max_workers`, and lets each
  exit after `idle_timeout` seconds without work, so once the blocking calls end the thread count
  returns to where it was (after `idle_timeout`, or at once after `shutdown()`);
* stops waiting when the caller's deadline passes (the caller gets `ProbeFailure(TIMEOUT)`), while
  the thread runs on until the driver's own native timeouts end it; such calls are counted in the
  `rivergen_probe_calls_overrunning` gauge. A call still queued when its deadline passes is
  dropped without ever running.

Calls run in a copy of the caller's contextvars, as `asyncio.to_thread` does, so log context
bound for the request follows the call into the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import itertools
import math
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from prometheus_client import Counter, Gauge

from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure

__all__ = [
    "CALLS_IN_FLIGHT",
    "CALLS_OVERRUNNING",
    "CALLS_QUEUED",
    "CALLS_REJECTED",
    "PoolBusy",
    "PoolClosed",
    "ProbePool",
]

T = TypeVar("T")

# Created once at import (the default registry refuses a second registration of a name). Several
# pools in one process (tests) add up, which is what a process-wide gauge should show.
CALLS_OVERRUNNING = Gauge(
    "rivergen_probe_calls_overrunning",
    "Blocking probe calls whose caller stopped waiting (deadline passed or request cancelled) "
    "but whose thread is still running",
)
CALLS_IN_FLIGHT = Gauge("rivergen_probe_calls_in_flight", "Blocking probe calls running in threads")
CALLS_QUEUED = Gauge("rivergen_probe_calls_queued", "Blocking probe calls waiting for a thread")
CALLS_REJECTED = Counter(
    "rivergen_probe_calls_rejected", "Blocking probe calls refused because the pool was full"
)

_MAX_RETRY_AFTER = 60


class PoolBusy(Exception):
    """The pool and its queue are full; try again after `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"The probe pool is busy; retry after {retry_after} s")
        self.retry_after = retry_after


class PoolClosed(RuntimeError):
    """The pool was shut down."""


@dataclass(eq=False)
class _Call:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    deadline: Deadline
    context: contextvars.Context
    future: Future[Any] = field(default_factory=Future)
    running: bool = False
    finished: bool = False
    overrunning: bool = False


class ProbePool:
    """A bounded pool of daemon threads for blocking driver calls, owned by the app lifespan."""

    def __init__(
        self,
        max_workers: int,
        max_queue: int,
        *,
        idle_timeout: float = 1.0,
        thread_name_prefix: str = "rivergen-probe",
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        if max_queue < 0:
            raise ValueError("max_queue must not be negative")
        self.max_workers = max_workers
        self.max_queue = max_queue
        self._idle_timeout = idle_timeout
        self._prefix = thread_name_prefix
        self._cond = threading.Condition()
        self._queue: deque[_Call] = deque()
        self._running: set[_Call] = set()
        self._threads: set[threading.Thread] = set()
        self._idle = 0
        self._overrunning = 0
        self._closed = False
        self._names = itertools.count()

    @property
    def in_flight(self) -> int:
        """Calls running in a thread now, overrunning ones included."""
        with self._cond:
            return len(self._running)

    @property
    def queued(self) -> int:
        """Calls waiting for a free thread."""
        with self._cond:
            return len(self._queue)

    @property
    def overrunning(self) -> int:
        """This pool's calls still running after their caller stopped waiting."""
        with self._cond:
            return self._overrunning

    @property
    def threads(self) -> int:
        """Worker threads alive now, busy or idle."""
        with self._cond:
            return len(self._threads)

    async def run(
        self,
        fn: Callable[..., T],
        *args: Any,
        deadline: Deadline,
        timeout_phase: Phase = Phase.AUTH,
        timeout_message: str | None = None,
    ) -> T:
        """Run `fn(*args)` in a thread; ProbeFailure(TIMEOUT, timeout_phase) past the deadline."""
        if deadline.expired():
            raise _timeout(deadline, timeout_phase, timeout_message)
        call = self._submit(fn, args, deadline)
        result: T
        try:
            result = await asyncio.wait_for(asyncio.wrap_future(call.future), deadline.remaining())
        except TimeoutError:
            if not self._abandon(call):
                raise _timeout(deadline, timeout_phase, timeout_message) from None
            # It finished as the deadline passed: report what it did rather than a timeout.
            result = call.future.result()
        except asyncio.CancelledError:
            self._abandon(call)
            raise
        return result

    def _submit(self, fn: Callable[..., Any], args: tuple[Any, ...], deadline: Deadline) -> _Call:
        call = _Call(fn, args, deadline, contextvars.copy_context())
        with self._cond:
            if self._closed:
                raise PoolClosed("The probe pool is shut down")
            if len(self._running) + len(self._queue) >= self.max_workers + self.max_queue:
                CALLS_REJECTED.inc()
                raise PoolBusy(self._retry_after())
            self._queue.append(call)
            CALLS_QUEUED.inc()
            # Idle workers each take one call; start another only when they cannot cover the
            # queue (counting idle ones not yet woken, so a burst does not wait on one thread).
            if len(self._queue) > self._idle and len(self._threads) < self.max_workers:
                self._start_worker()
            self._cond.notify()
        return call

    def _retry_after(self) -> int:
        """Seconds until the soonest running call's deadline: when a slot should free up."""
        remaining = [c.deadline.remaining() for c in self._running if not c.overrunning]
        if not remaining:
            return 1
        return max(1, min(_MAX_RETRY_AFTER, math.ceil(min(remaining))))

    def _abandon(self, call: _Call) -> bool:
        """The caller stopped waiting: drop a queued call, count a running one as overrunning.

        Returns True when the call had in fact just finished, so its outcome can be used after all.
        """
        with self._cond:
            if call.future.cancel():
                # Not running (workers mark a call running under this same lock): never run it.
                # asyncio may have cancelled the future already (wrap_future chains the
                # cancellation), and a worker may then have popped it: only a queued call is
                # still ours to remove.
                with contextlib.suppress(ValueError):
                    self._queue.remove(call)
                    CALLS_QUEUED.dec()
                return False
            if call.running and not call.finished:
                call.overrunning = True
                self._overrunning += 1
                CALLS_OVERRUNNING.inc()
                return False
        return call.future.done() and not call.future.cancelled()

    def _start_worker(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self._prefix}_{next(self._names)}", daemon=True
        )
        self._threads.add(thread)
        thread.start()

    def _next_call(self) -> _Call | None:
        """Wait for a call to run; None when idle too long or shutting down."""
        with self._cond:
            self._idle += 1
            try:
                while not self._queue and not self._closed:
                    if not self._cond.wait(self._idle_timeout) and not self._queue:
                        break
                if not self._queue:
                    self._threads.discard(threading.current_thread())
                    return None
                call = self._queue.popleft()
                CALLS_QUEUED.dec()
                if not call.future.set_running_or_notify_cancel():
                    return _CANCELLED
                call.running = True
                self._running.add(call)
                CALLS_IN_FLIGHT.inc()
                return call
            finally:
                self._idle -= 1

    def _work(self) -> None:
        while (call := self._next_call()) is not None:
            if call is _CANCELLED:
                continue
            error: BaseException | None = None
            result: Any = None
            try:
                result = call.context.run(call.fn, *call.args)
            except BaseException as exc:
                error = exc
            # Free the slot before delivering the outcome: a caller that gets its result and
            # submits again at once must find the capacity it just released.
            with self._cond:
                call.finished = True
                self._running.discard(call)
                CALLS_IN_FLIGHT.dec()
                if call.overrunning:
                    self._overrunning -= 1
                    CALLS_OVERRUNNING.dec()
            if error is None:
                call.future.set_result(result)
            else:
                call.future.set_exception(error)
            # Drop the references (and the result) before waiting idle.
            del call, result, error

    def shutdown(self, wait: bool = True, timeout: float | None = None) -> None:
        """Refuse new calls, fail queued ones and, when `wait`, join the worker threads."""
        # Running calls cannot be interrupted; joining waits for their native timeouts.
        with self._cond:
            self._closed = True
            pending = list(self._queue)
            self._queue.clear()
            CALLS_QUEUED.dec(len(pending))
            threads = list(self._threads)
            self._cond.notify_all()
        for call in pending:
            if call.future.set_running_or_notify_cancel():
                call.future.set_exception(PoolClosed("The probe pool was shut down"))
        if wait:
            for thread in threads:
                thread.join(timeout)


def _timeout(deadline: Deadline, phase: Phase, message: str | None) -> ProbeFailure:
    total = deadline.expires_at - deadline.started_at
    return ProbeFailure(
        ErrorCode.TIMEOUT,
        phase,
        message or f"No answer within the {total:g} s time limit",
    )


# Marker for a call cancelled while queued, which a worker skips.
_CANCELLED = _Call(lambda: None, (), Deadline(0.0), contextvars.Context())
