"""Servers joined through a real ``redis-server``: records, order, a Redis lost and back."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterator

import pytest
from websockets.sync.client import ClientConnection, connect

from demo_server import ServerStartError, ServerThread
from demo_server.bus import Bus, Message
from demo_server.redis_local import RedisServer, free_port

from .redis_server import start_redis

MESSAGES = 20  # per client


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A fresh redis-server on a free port, stopped after the test."""
    yield from start_redis()


def send(client: ClientConnection, text: str) -> None:
    client.send(json.dumps({"event": "client_data", "data": text}))


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` every 20 ms; fail naming ``what`` after ``timeout`` seconds
    (generous: the machine is shared and loaded)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def per_client(thread: ServerThread) -> dict[tuple[str, int], list[str]]:
    """What each client (process, number) sent, in the order the record got it."""
    seen: dict[tuple[str, int], list[str]] = {}
    for item in thread.received.snapshot():
        seen.setdefault((item.process, item.client), []).append(item.data)
    return seen


def test_two_servers_record_every_client_data_of_both_once_in_order(redis):
    with ServerThread(redis_url=redis.url, process="A") as a, \
            ServerThread(redis_url=redis.url, process="B") as b:
        assert a.port != b.port
        opened = contextlib.ExitStack()
        clients = [opened.enter_context(connect(url)) for url in (a.ws_url, a.ws_url, b.ws_url)]
        assert [c.response.headers["X-Demo-Process"] for c in clients] == ["A", "A", "B"]
        for i in range(MESSAGES):
            for n, client in enumerate(clients):
                send(client, f"c{n}-{i}")
        total = MESSAGES * len(clients)
        assert a.received.wait_for(total, 30) and b.received.wait_for(total, 30)
        time.sleep(0.3)  # a duplicate would come now
        expected = {("A", 1): [f"c0-{i}" for i in range(MESSAGES)],
                    ("A", 2): [f"c1-{i}" for i in range(MESSAGES)],
                    ("B", 1): [f"c2-{i}" for i in range(MESSAGES)]}
        assert per_client(a) == expected
        assert per_client(b) == expected
        assert a.received.total == b.received.total == total
        # The other server's record keeps the time and address the receiving one saw.
        ours = [r for r in a.received.snapshot() if r.process == "B"]
        theirs = [r for r in b.received.snapshot() if r.process == "B"]
        assert ours == theirs
        opened.close()
        assert a.server is not None and b.server is not None
        assert a.server.bus is not None and b.server.bus is not None
        wait_until(lambda: "A" in b.server.bus.peers and "B" in a.server.bus.peers, 5,
                   "a beat from each")
        assert a.server.bus.missed == {} and b.server.bus.missed == {}
        assert set(a.server.bus.heard) == {"B"} and set(b.server.bus.heard) == {"A"}
        # Each second's beat says how many clients a process has, and on which port.
        wait_until(lambda: b.server.bus.peers["A"] == {"clients": 0, "port": a.port}, 5,
                   "a beat of A's without clients")


def seconds(client: ClientConnection, count: int) -> list[int]:
    """The next ``count`` ``second`` ticks' epoch seconds."""
    return [json.loads(client.recv(timeout=5))["data"]["epoch"] for _ in range(count)]


def test_redis_lost_and_back_ticks_go_on_and_nothing_is_silently_lost(redis, caplog):
    caplog.set_level(logging.INFO, logger="demo_server.bus")
    with ServerThread(redis_url=redis.url, process="B") as b, \
            ServerThread(redis_url=redis.url, process="A") as a:
        assert a.server is not None and b.server is not None
        bus_a, bus_b = a.server.bus, b.server.bus
        assert bus_a is not None and bus_b is not None
        with connect(a.ws_url) as client, connect(b.ws_url) as other:
            send(client, "before")
            assert b.received.wait_for(1, 10)
            seconds(client, 1)
            redis.stop()
            for i in range(5):
                send(client, f"during-{i}")
            ticks = seconds(client, 3)  # Redis is gone: the ticks go on, one each second
            assert ticks == list(range(ticks[0], ticks[0] + 3))
            assert a.received.wait_for(6, 5)  # its own record still takes every message
            wait_until(lambda: not bus_a.connected and not bus_b.connected, 10, "the loss")
            assert bus_a.queued >= 5  # waiting in the outbox, not dropped
            redis.start()
            wait_until(lambda: bus_a.connected and bus_b.connected, 15, "the link back")
            send(client, "after")
            send(other, "from B after")
            wait_until(lambda: any(r.data == "after" for r in b.received.snapshot()), 10,
                       "a message sent after the link came back")
            assert a.received.wait_for(8, 10)
            assert ticks[-1] < seconds(client, 1)[0]
        assert bus_a.losses == bus_b.losses == 1
        # B got the messages queued in A's outbox, or counted each one it missed (A may
        # have sent them before B subscribed again): no number of A's is unaccounted for.
        from_a = [r.data for r in b.received.snapshot() if r.process == "A"]
        assert from_a[0] == "before" and from_a[-1] == "after"
        assert from_a == sorted(set(from_a), key=from_a.index)  # no duplicates
        assert set(from_a[1:-1]) <= {f"during-{i}" for i in range(5)}
        assert from_a[1:-1] == sorted(from_a[1:-1])  # in order
        assert bus_b.received_from["A"] + bus_b.missed.get("A", 0) == bus_b.last_seq["A"]
        if len(from_a) < 7:
            assert bus_b.missed["A"] >= 7 - len(from_a)
    log = [r.getMessage() for r in caplog.records if r.name == "demo_server.bus"]
    assert sum("lost the link to Redis" in line for line in log) == 2  # once per server
    assert sum("the link to Redis is back" in line for line in log) == 2
    missed = [line for line in log if line.startswith("missed")]
    assert sum(int(line.split()[1]) for line in missed) == sum(
        bus.missed.get(origin, 0) for bus, origin in ((bus_a, "B"), (bus_b, "A")))


async def _gap(url: str) -> tuple[Bus, Bus, list[Message]]:
    """B's subscription is cut (CLIENT KILL) while A publishes: B must count what it missed."""
    got: list[Message] = []
    a, b = Bus(url, "A"), Bus(url, "B")
    b.on("note", got.append)
    await b.start()
    await a.start()
    try:
        a.publish("note", {"n": 0})
        await _until(lambda: len(got) == 1)
        for line in (await a._redis.execute_command("CLIENT", "LIST")).decode().splitlines():
            fields = dict(field.split("=", 1) for field in line.split())
            if fields["name"] == "demo_server:B" and fields["sub"] == "1":
                await a._redis.execute_command("CLIENT", "KILL", "ID", fields["id"])
        await _until(lambda: not b.connected)
        for n in range(1, 11):
            a.publish("note", {"n": n})
        await _until(lambda: a.queued == 0)
        await _until(lambda: b.connected)
        last = a.publish("note", {"n": 11})
        await _until(lambda: got[-1].payload["n"] == 11)
        assert [m.payload["n"] for m in got] == [0, 11]
        assert b.missed["A"] >= 10  # those ten, and a beat of A's if one fell in the gap
        assert b.received_from["A"] + b.missed["A"] == b.last_seq["A"] == last.seq
        assert b.losses == 1 and a.losses == 0
        return a, b, got
    finally:
        await a.aclose()
        await b.aclose()


async def _until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not condition():
            await asyncio.sleep(0.01)


def test_a_subscriber_cut_off_counts_exactly_what_it_missed(redis):
    asyncio.run(_gap(redis.url))


def test_bus_messages_are_typed_and_checked():
    message = Message("client_data", "host/1", 3, {"data": "hi"}, run="5eed")
    assert Message.decode(message.encode()) == message
    for bad in ('["k","o","3",{},""]', '{"kind":"k"}', "[1,2,3,4,5]", '["k","o",3,{}]'):
        with pytest.raises(ValueError, match="not a bus message"):
            Message.decode(bad)
    with pytest.raises(ValueError, match="'beat' is the bus's own kind"):
        Bus("redis://127.0.0.1:1/0").on("beat", print)


def test_bad_url_and_redis_down_are_clear_errors():
    with pytest.raises(ValueError, match=r"bad Redis URL 'http://x'.*redis://127"):
        ServerThread(redis_url="http://x").start()
    port = free_port()  # nothing listens there
    with pytest.raises(ServerStartError,
                       match=rf"cannot reach Redis at redis://127.0.0.1:{port}/0: "
                             r"Error 111 connecting .*\(is redis-server running\?\)"):
        ServerThread(redis_url=f"redis://127.0.0.1:{port}/0").start()


def test_a_lone_server_adds_no_header_but_names_its_process_in_the_record():
    # Notebooks capture and show a lone server's handshake header by header.
    with ServerThread(process="solo") as server, connect(server.ws_url) as client:
        assert "X-Demo-Process" not in client.response.headers
        send(client, "hi")
        assert server.received.wait_for(1, 10)
        assert server.received.snapshot()[0].process == "solo"
