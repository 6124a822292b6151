"""Servers joined by a real ``redis-server`` share the teacher's view and the announcement:
each roster lists every server's students, an announcement reaches every page, and a server
that starts late (or again) catches up."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from websockets.sync.client import ClientConnection, connect

from demo_server import ServerThread
from demo_server.bus import SILENT, Bus
from demo_server.redis_local import RedisServer
from demo_server.roster import Student
from demo_server.sharing import JOIN, publish_join

from .redis_server import start_redis
from .test_bus import send, wait_until

TIMEOUT = 15  # seconds for a message to cross Redis on a loaded machine


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    yield from start_redis()


def students(server: ServerThread) -> dict[tuple[str, int], tuple[str, bool]]:
    """(process, client) -> (what it typed, still connected), as ``server``'s roster has it."""
    return {(s.process, s.client): (s.typing, s.left is None) for s in server.roster.snapshot()}


def next_announcement(client: ClientConnection) -> str:
    while True:
        message = json.loads(client.recv(timeout=TIMEOUT))
        if message["event"] == "announce":
            return str(message["data"]["text"])


def test_each_roster_lists_every_server_s_students_as_they_join_type_and_leave(redis):
    with ServerThread(redis_url=redis.url, process="A") as a, \
            ServerThread(redis_url=redis.url, process="B") as b:
        with connect(a.ws_url) as ann, connect(b.ws_url) as bo:
            send(ann, "hi from A")
            send(bo, "hi from B")
            both = {("A", 1): ("hi from A", True), ("B", 1): ("hi from B", True)}
            for server in (a, b):
                wait_until(lambda s=server: students(s) == both, TIMEOUT, "both rosters")
        gone = {("A", 1): ("hi from A", False), ("B", 1): ("hi from B", False)}
        for server in (a, b):
            wait_until(lambda s=server: students(s) == gone, TIMEOUT, "both left")


def test_an_announcement_reaches_the_pages_of_every_server(redis):
    with ServerThread(redis_url=redis.url, process="A") as a, \
            ServerThread(redis_url=redis.url, process="B") as b:
        wait_until(lambda: "B" in a.server.bus.peers and "A" in b.server.bus.peers,
                   TIMEOUT, "the servers to hear each other")
        with connect(b.ws_url) as page:
            a.announce("Open exercise 3")
            assert next_announcement(page) == "Open exercise 3"
            assert b.server is not None and b.server.announcement_text == "Open exercise 3"
        with connect(b.ws_url) as later:  # a page of B's that opens afterwards
            assert next_announcement(later) == "Open exercise 3"


def test_a_server_that_starts_late_gets_the_class_and_the_announcement(redis):
    with ServerThread(redis_url=redis.url, process="A") as a, connect(a.ws_url) as ann:
        send(ann, "early")
        a.announce("Welcome")
        wait_until(lambda: a.received.total == 1, TIMEOUT, "A's record")
        with ServerThread(redis_url=redis.url, process="C") as c:
            wait_until(lambda: students(c).get(("A", 1)) == ("early", True), TIMEOUT,
                       "A's student in C's roster")
            with connect(c.ws_url) as page:
                assert next_announcement(page) == "Welcome"


def test_a_server_started_again_under_its_name_is_heard_again(redis):
    # A notebook's server restarted keeps its process name, and its bus counts from 1 again:
    # its messages are a new run, not duplicates of the old ones.
    with ServerThread(redis_url=redis.url, process="A") as a:
        b = ServerThread(redis_url=redis.url, process="B")
        for run in range(2):
            with b, connect(b.ws_url) as bo:
                for i in range(3):
                    send(bo, f"run{run}-{i}")
                wait_until(lambda n=run: a.received.total == 3 * (n + 1), TIMEOUT,
                           f"B's messages of run {run} in A's record")
        assert [r.data for r in a.received.snapshot()] == [
            f"run{run}-{i}" for run in range(2) for i in range(3)]
        assert a.server is not None and sum(a.server.bus.missed.values()) == 0


def test_a_join_from_a_broken_peer_is_logged_and_changes_nothing(redis, caplog):
    with ServerThread(redis_url=redis.url, process="A") as a, \
            ServerThread(redis_url=redis.url, process="B") as b:
        assert b.server is not None and b.server.bus is not None
        bus = b.server.bus
        b._loop.call_soon_threadsafe(bus.publish, JOIN, {"client": "not a Student"})
        b._loop.call_soon_threadsafe(bus.publish, "announce", {"text": 42})
        wait_until(lambda: sum("handling" in r.getMessage() for r in caplog.records) >= 2,
                   TIMEOUT, "the two failures logged")
        assert students(a) == {} and a.server is not None and a.server.announcement is None


def test_a_server_that_stops_takes_its_students_out_of_the_other_rosters(redis):
    with ServerThread(redis_url=redis.url, process="A") as a:
        b = ServerThread(redis_url=redis.url, process="B").start()
        try:
            with connect(b.ws_url) as bo:
                send(bo, "still here")
                wait_until(lambda: students(a) == {("B", 1): ("still here", True)}, TIMEOUT,
                           "B's student in A's roster")
                b.stop()  # with its student still connected
        finally:
            b.stop()
        # B closed its client (1001) before its bus: the leave reached A, sooner than A
        # would take the silent B as gone.
        wait_until(lambda: students(a) == {("B", 1): ("still here", False)}, SILENT - 0.5,
                   "B's leave in A's roster")


def test_a_silent_process_s_students_are_gone_until_it_is_heard_again(redis):
    async def peer(run: int) -> Bus:
        """A process "P" with one student, joined to Redis; closed without a leave (a
        crash, or a cut link), its beats stop."""
        bus = Bus(redis.url, "P")
        await bus.start()
        publish_join(bus, Student(1, "10.0.0.9:5000", "Chrome on Android", 0.0, typing=f"run{run}"))
        return bus

    with ServerThread(redis_url=redis.url, process="A") as a:
        loop = a._loop
        assert loop is not None

        def run(coroutine):
            return asyncio.run_coroutine_threadsafe(coroutine, loop).result(TIMEOUT)

        first = run(peer(0))
        wait_until(lambda: students(a) == {("P", 1): ("run0", True)}, TIMEOUT, "P's student")
        run(first.aclose())  # P stops beating
        wait_until(lambda: students(a) == {("P", 1): ("run0", False)}, SILENT + TIMEOUT,
                   "P taken as gone")
        second = run(peer(1))  # P again (a new run): its student is back, once
        wait_until(lambda: students(a) == {("P", 1): ("run1", True)}, TIMEOUT, "P back")
        run(second.aclose())
