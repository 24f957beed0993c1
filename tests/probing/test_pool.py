"""The bounded probe pool, with real threads and real blocking calls."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from collections.abc import AsyncIterator, Callable

import pytest
from prometheus_client import REGISTRY

from rivergen.core.deadline import Deadline
from rivergen.core.outcome import ErrorCode, Phase, ProbeFailure
from rivergen.probing.pool import PoolBusy, PoolClosed, ProbePool
from tests.fixtures.timing import SLACK_SECONDS


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def pool() -> AsyncIterator[ProbePool]:
    probe_pool = ProbePool(max_workers=2, max_queue=1, idle_timeout=0.2)
    yield probe_pool
    probe_pool.shutdown(wait=True, timeout=10)


def overrunning_gauge() -> float:
    value = REGISTRY.get_sample_value("rivergen_probe_calls_overrunning")
    assert value is not None
    return value


def probe_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rivergen-probe")]


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not reached in time"
        await asyncio.sleep(0.02)


request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")


@pytest.mark.anyio
async def test_runs_in_a_named_thread_with_the_callers_context(pool: ProbePool) -> None:
    request_id.set("r-1")

    def where(x: int) -> tuple[str, str, int]:
        return threading.current_thread().name, request_id.get(), x * 2

    name, rid, doubled = await pool.run(where, 21, deadline=Deadline.after(5))
    assert name.startswith("rivergen-probe_")
    assert (rid, doubled) == ("r-1", 42)


@pytest.mark.anyio
async def test_exceptions_propagate(pool: ProbePool) -> None:
    def fail() -> None:
        raise ConnectionRefusedError(111, "refused")

    with pytest.raises(ConnectionRefusedError):
        await pool.run(fail, deadline=Deadline.after(5))
    assert pool.in_flight == 0


@pytest.mark.anyio
async def test_busy_when_full(pool: ProbePool) -> None:
    release = threading.Event()
    started = threading.Semaphore(0)

    def block() -> str:
        started.release()
        release.wait(10)
        return "done"

    tasks = [asyncio.create_task(pool.run(block, deadline=Deadline.after(10))) for _ in range(3)]
    await wait_until(lambda: pool.in_flight == 2 and pool.queued == 1)
    began = time.monotonic()
    with pytest.raises(PoolBusy) as info:
        await pool.run(block, deadline=Deadline.after(10))
    # Refused at once, not after waiting for room until the 10 s deadline (scheduling slack).
    assert time.monotonic() - began < SLACK_SECONDS
    assert 1 <= info.value.retry_after <= 10
    release.set()
    assert await asyncio.gather(*tasks) == ["done"] * 3
    # Capacity is back once the calls are over.
    assert await pool.run(block, deadline=Deadline.after(5)) == "done"


@pytest.mark.anyio
@pytest.mark.slow
async def test_deadline_honoured_and_overrun_counted(pool: ProbePool) -> None:
    before = overrunning_gauge()
    finished = threading.Event()

    def slow() -> None:
        time.sleep(3)
        finished.set()

    began = time.monotonic()
    with pytest.raises(ProbeFailure) as info:
        await pool.run(slow, deadline=Deadline.after(1))
    elapsed = time.monotonic() - began
    assert 0.9 < elapsed < 1.2
    assert (info.value.code, info.value.phase) == (ErrorCode.TIMEOUT, Phase.AUTH)
    # The thread cannot be interrupted: it runs on, counted as overrunning.
    assert pool.overrunning == 1
    assert overrunning_gauge() == before + 1
    assert pool.in_flight == 1
    assert finished.wait(5)
    await wait_until(lambda: pool.overrunning == 0)
    assert overrunning_gauge() == before
    assert pool.in_flight == 0


@pytest.mark.anyio
async def test_timeout_phase_and_message_chosen_by_caller(pool: ProbePool) -> None:
    release = threading.Event()
    with pytest.raises(ProbeFailure) as info:
        await pool.run(
            release.wait,
            5,
            deadline=Deadline.after(0.2),
            timeout_phase=Phase.QUERY,
            timeout_message="The test query did not finish in time",
        )
    release.set()
    assert (info.value.code, info.value.phase) == (ErrorCode.TIMEOUT, Phase.QUERY)
    assert info.value.message == "The test query did not finish in time"


@pytest.mark.anyio
async def test_expired_deadline_never_submits(pool: ProbePool) -> None:
    ran = threading.Event()
    with pytest.raises(ProbeFailure):
        await pool.run(ran.set, deadline=Deadline.after(0))
    await asyncio.sleep(0.1)
    assert not ran.is_set()


@pytest.mark.anyio
async def test_queued_call_past_its_deadline_never_runs() -> None:
    pool = ProbePool(max_workers=1, max_queue=5, idle_timeout=0.2)
    release = threading.Event()
    ran = threading.Event()
    blocker = asyncio.create_task(pool.run(release.wait, 5, deadline=Deadline.after(10)))
    await wait_until(lambda: pool.in_flight == 1)
    with pytest.raises(ProbeFailure) as info:
        await pool.run(ran.set, deadline=Deadline.after(0.2))
    assert info.value.code is ErrorCode.TIMEOUT
    assert pool.queued == 0
    assert pool.overrunning == 0  # it never started, so nothing overruns
    release.set()
    assert await blocker is True
    await asyncio.sleep(0.1)
    assert not ran.is_set()
    pool.shutdown()


@pytest.mark.anyio
async def test_cancelled_caller_leaves_thread_counted_until_it_ends(pool: ProbePool) -> None:
    release = threading.Event()
    task = asyncio.create_task(pool.run(release.wait, 5, deadline=Deadline.after(10)))
    await wait_until(lambda: pool.in_flight == 1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert pool.overrunning == 1
    release.set()
    await wait_until(lambda: pool.overrunning == 0 and pool.in_flight == 0)


@pytest.mark.anyio
async def test_burst_gets_all_workers_at_once() -> None:
    pool = ProbePool(max_workers=4, max_queue=0, idle_timeout=0.2)
    barrier = threading.Barrier(4, timeout=5)
    # Each call waits for the other three: this only finishes if four threads run together.
    results = await asyncio.gather(
        *(pool.run(barrier.wait, deadline=Deadline.after(5)) for _ in range(4))
    )
    assert sorted(results) == [0, 1, 2, 3]
    pool.shutdown()


@pytest.mark.anyio
async def test_event_loop_stays_responsive(pool: ProbePool) -> None:
    release = threading.Event()
    task = asyncio.create_task(pool.run(release.wait, 5, deadline=Deadline.after(10)))
    await wait_until(lambda: pool.in_flight == 1)
    began = time.monotonic()
    await asyncio.sleep(0.05)
    assert time.monotonic() - began < 0.5
    release.set()
    assert await task is True


@pytest.mark.anyio
async def test_idle_threads_exit_so_the_count_returns() -> None:
    baseline = len(probe_threads())
    pool = ProbePool(max_workers=3, max_queue=0, idle_timeout=0.1)
    barrier = threading.Barrier(3, timeout=5)
    await asyncio.gather(*(pool.run(barrier.wait, deadline=Deadline.after(5)) for _ in range(3)))
    assert pool.threads == 3
    await wait_until(lambda: pool.threads == 0 and len(probe_threads()) == baseline)


@pytest.mark.anyio
async def test_shutdown_fails_queued_calls_and_refuses_new_ones() -> None:
    pool = ProbePool(max_workers=1, max_queue=2, idle_timeout=5)
    release = threading.Event()
    running = asyncio.create_task(pool.run(release.wait, 5, deadline=Deadline.after(10)))
    await wait_until(lambda: pool.in_flight == 1)
    queued = asyncio.create_task(pool.run(time.sleep, 0, deadline=Deadline.after(10)))
    await wait_until(lambda: pool.queued == 1)
    pool.shutdown(wait=False)
    with pytest.raises(PoolClosed):
        await queued
    with pytest.raises(PoolClosed):
        await pool.run(time.sleep, 0, deadline=Deadline.after(5))
    release.set()
    assert await running is True
    await wait_until(lambda: pool.threads == 0)


def test_sync_shutdown_joins_threads() -> None:
    async def main() -> ProbePool:
        pool = ProbePool(max_workers=2, max_queue=0, idle_timeout=30)
        await pool.run(time.sleep, 0.05, deadline=Deadline.after(5))
        return pool

    pool = asyncio.run(main())
    assert pool.threads == 1
    workers = set(pool._threads)
    pool.shutdown(wait=True, timeout=5)
    assert pool.threads == 0
    assert not any(t.is_alive() for t in workers)


def test_bad_sizes_refused() -> None:
    with pytest.raises(ValueError, match="max_workers"):
        ProbePool(max_workers=0, max_queue=1)
    with pytest.raises(ValueError, match="max_queue"):
        ProbePool(max_workers=1, max_queue=-1)
