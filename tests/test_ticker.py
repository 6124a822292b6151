"""The ticker's timing on a fake clock: seconds pass in microseconds, every case exactly."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable

from websockets.asyncio.server import ServerConnection

from demo_server.server import SYSTEM_CLOCK, WAKE_EARLY, DemoServer, wall_clock_seconds


class FakeClock:
    """A wall clock and a monotonic clock that move only when told, or when slept on.

    Times are multiples of 1/4 s, which floats hold exactly, so boundaries are exact.
    """

    def __init__(self, wall: float) -> None:
        self.wall = wall
        self.mono = 0.0
        self.wall_lag_on_next_sleep = 0.0  # the wall clock falls behind while sleeping

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    async def sleep_until(self, deadline: float) -> None:
        self.pass_time(max(0.0, deadline - self.mono))
        self.wall -= self.wall_lag_on_next_sleep
        self.wall_lag_on_next_sleep = 0.0
        await asyncio.sleep(0)

    def pass_time(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


async def seconds_seen(clock: FakeClock, count: int, work: dict[int, float] | None = None
                       ) -> list[tuple[int, float]]:
    """The first ``count`` seconds yielded, each with the wall time it came at.

    ``work[i]`` seconds pass on the clock after the i-th one, as if the caller were busy.
    """
    seen: list[tuple[int, float]] = []
    ticks = wall_clock_seconds(clock)
    async for second in ticks:
        seen.append((second, clock.time()))
        if len(seen) == count:
            break
        clock.pass_time((work or {}).get(len(seen) - 1, 0.0))
    await ticks.aclose()
    return seen


def test_each_second_comes_once_exactly_on_its_boundary():
    seen = asyncio.run(seconds_seen(FakeClock(100.25), 4))
    assert seen == [(101, 101.0), (102, 102.0), (103, 103.0), (104, 104.0)]


def test_a_second_whose_caller_runs_past_the_next_boundary_comes_at_once_late():
    # E.g. a long garbage collection right after a tick: 1.25 s of work after second 101.
    seen = asyncio.run(seconds_seen(FakeClock(100.5), 3, work={0: 1.25}))
    assert seen == [(101, 101.0), (102, 102.25), (103, 103.0)]


def test_after_a_stall_only_the_current_second_comes_never_a_burst_of_stale_ones():
    seen = asyncio.run(seconds_seen(FakeClock(100.5), 3, work={0: 3.5}))
    assert seen == [(101, 101.0), (104, 104.5), (105, 105.0)]


def test_a_wall_clock_stepped_back_yields_nothing_until_it_passes_the_last_second():
    clock = FakeClock(100.5)

    async def run() -> list[tuple[int, float]]:
        ticks = wall_clock_seconds(clock)
        seen = [(await anext(ticks), clock.time())]
        clock.wall -= 5.25  # e.g. NTP stepped the clock back: 101.0 -> 95.75
        seen.append((await anext(ticks), clock.time()))
        await ticks.aclose()
        return seen

    assert asyncio.run(run()) == [(101, 101.0), (102, 102.0)]
    assert clock.mono == 0.5 + 6.25  # to 101.0, then from 95.75 to 102.0


def test_a_wall_clock_behind_the_monotonic_one_at_the_boundary_is_waited_for():
    # The monotonic deadline passed but the wall clock still reads the old second (it is
    # being slewed): yielding now would name the second that is ending.
    clock = FakeClock(100.5)
    clock.wall_lag_on_next_sleep = 0.25
    seen = asyncio.run(seconds_seen(clock, 2))
    assert seen == [(101, 101.0), (102, 102.0)]


def test_the_system_clock_never_returns_before_the_deadline():
    async def overshoot() -> float:
        deadline = SYSTEM_CLOCK.monotonic() + 5 * WAKE_EARLY
        await SYSTEM_CLOCK.sleep_until(deadline)
        return SYSTEM_CLOCK.monotonic() - deadline

    assert asyncio.run(overshoot()) >= 0


# -- DemoServer's ticker: its clock and its sender -----------------------------------------


async def ticks_sent(clock: FakeClock, count: int, stall: dict[int, float] | None = None
                     ) -> list[dict]:
    """The data of the first ``count`` ticks a DemoServer hands to its sender.

    The sender keeps the clock busy for ``stall[i]`` seconds on the i-th tick.
    """
    sent: list[dict] = []
    done = asyncio.Event()

    def record(connections: Iterable[ServerConnection], message: str) -> None:
        sent.append(json.loads(message)["data"])
        clock.pass_time((stall or {}).get(len(sent) - 1, 0.0))
        if len(sent) == count:
            done.set()

    async with DemoServer(port=0, clock=clock, sender=record) as server:
        await asyncio.wait_for(done.wait(), timeout=10)
        assert server.last_tick == sent[-1]["epoch"]
    return sent[:count]


def test_the_server_ticks_on_its_clock_through_its_sender():
    sent = asyncio.run(ticks_sent(FakeClock(1_700_000_000.75), 3))
    assert sent == [{"second": 21, "epoch": 1_700_000_001, "sent": 1_700_000_001.0},
                    {"second": 22, "epoch": 1_700_000_002, "sent": 1_700_000_002.0},
                    {"second": 23, "epoch": 1_700_000_003, "sent": 1_700_000_003.0}]


def test_a_tick_that_runs_past_the_next_boundary_is_followed_at_once():
    sent = asyncio.run(ticks_sent(FakeClock(1_700_000_000.75), 3, stall={0: 1.25}))
    assert [(tick["epoch"], tick["sent"]) for tick in sent] == [
        (1_700_000_001, 1_700_000_001.0),
        (1_700_000_002, 1_700_000_002.25),  # late, but sent
        (1_700_000_003, 1_700_000_003.0),
    ]

