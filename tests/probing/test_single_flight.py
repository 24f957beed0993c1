"""Single-flight: one shared run per key, robust to waiters being cancelled."""

from __future__ import annotations

import asyncio
import gc

import pytest

from rivergen.probing.single_flight import SingleFlight


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Work:
    """A controllable piece of async work that counts how often it was started."""

    def __init__(self, result: str = "ok", error: Exception | None = None) -> None:
        self.starts = 0
        self.release = asyncio.Event()
        self.result = result
        self.error = error

    async def __call__(self) -> str:
        self.starts += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return self.result


@pytest.mark.anyio
async def test_concurrent_callers_share_one_run() -> None:
    flight: SingleFlight[int, str] = SingleFlight()
    work = Work("v1")
    waiters = [asyncio.create_task(flight.do(1, work)) for _ in range(5)]
    await asyncio.sleep(0)
    assert 1 in flight
    assert len(flight) == 1
    work.release.set()
    assert await asyncio.gather(*waiters) == ["v1"] * 5
    assert work.starts == 1
    assert len(flight) == 0


@pytest.mark.anyio
async def test_different_keys_run_separately() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    a, b = Work("a"), Work("b")
    ta = asyncio.create_task(flight.do("a", a))
    tb = asyncio.create_task(flight.do("b", b))
    await asyncio.sleep(0)
    assert len(flight) == 2
    a.release.set()
    b.release.set()
    assert (await ta, await tb) == ("a", "b")


@pytest.mark.anyio
async def test_exception_delivered_to_every_caller() -> None:
    flight: SingleFlight[int, str] = SingleFlight()
    work = Work(error=ConnectionError("refused"))
    waiters = [asyncio.create_task(flight.do(1, work)) for _ in range(3)]
    await asyncio.sleep(0)
    work.release.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    assert work.starts == 1
    assert len(flight) == 0


@pytest.mark.anyio
async def test_cancelled_waiter_does_not_cancel_the_others() -> None:
    flight: SingleFlight[int, str] = SingleFlight()
    work = Work("shared")
    first = asyncio.create_task(flight.do(1, work))
    second = asyncio.create_task(flight.do(1, work))
    await asyncio.sleep(0)
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    work.release.set()
    assert await second == "shared"
    assert work.starts == 1


@pytest.mark.anyio
async def test_run_finishes_even_when_every_waiter_left(caplog: pytest.LogCaptureFixture) -> None:
    flight: SingleFlight[int, str] = SingleFlight()
    work = Work(error=RuntimeError("nobody listens"))
    waiter = asyncio.create_task(flight.do(1, work))
    await asyncio.sleep(0)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert 1 in flight
    work.release.set()
    for _ in range(5):
        await asyncio.sleep(0)
    assert 1 not in flight
    gc.collect()  # asyncio reports unretrieved exceptions when the task is collected
    assert "never retrieved" not in caplog.text


@pytest.mark.anyio
async def test_key_forgotten_when_done_so_later_calls_run_again() -> None:
    flight: SingleFlight[int, str] = SingleFlight()
    work = Work("x")
    work.release.set()
    assert await flight.do(1, work) == "x"
    assert 1 not in flight
    assert await flight.do(1, work) == "x"
    assert work.starts == 2


@pytest.mark.anyio
async def test_factory_raising_at_once_reaches_the_caller() -> None:
    flight: SingleFlight[int, str] = SingleFlight()

    def broken() -> asyncio.Future[str]:
        raise ValueError("bad config")

    with pytest.raises(ValueError, match="bad config"):
        await flight.do(1, broken)
    assert len(flight) == 0
