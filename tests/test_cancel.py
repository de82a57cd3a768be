"""Calls nobody waits for are cancelled: the coroutine stops, its in-flight awaits are cancelled."""

from __future__ import annotations

import asyncio

import pytest

from fusion.cancel import Abandoned, until_stopped


def test_work_that_finishes_returns_its_result() -> None:
    async def work() -> int:
        await asyncio.sleep(0.01)
        return 7

    assert asyncio.run(until_stopped(work(), lambda: False, poll=0.005)) == 7


def test_errors_of_the_work_pass_through() -> None:
    async def work() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        asyncio.run(until_stopped(work(), lambda: False))


def test_a_stop_cancels_the_calls_in_flight_and_the_ones_not_started() -> None:
    started, cancelled, finished = [], [], []

    async def call(i: int) -> None:
        started.append(i)
        try:
            await asyncio.sleep(30)  # a hanging server
            finished.append(i)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    async def run() -> None:
        sem = asyncio.Semaphore(2)

        async def limited(i: int) -> None:
            async with sem:
                await call(i)

        await asyncio.gather(*(limited(i) for i in range(6)))

    flag = {"stop": False}

    async def main() -> None:
        async def stop_soon() -> None:
            await asyncio.sleep(0.05)
            flag["stop"] = True

        asyncio.ensure_future(stop_soon())
        await until_stopped(run(), lambda: flag["stop"], poll=0.01)

    loop_time = asyncio.new_event_loop()
    try:
        t0 = loop_time.time()
        with pytest.raises(Abandoned):
            loop_time.run_until_complete(main())
        assert loop_time.time() - t0 < 5  # not the 30 s of the hanging calls
    finally:
        loop_time.close()
    assert sorted(started) == [0, 1]  # the other four were never sent
    assert sorted(cancelled) == [0, 1] and finished == []
