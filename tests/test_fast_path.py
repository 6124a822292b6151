"""The tick fast path, ``broadcast_serialized``: what it assumes of websockets, and the wire.

It writes one serialized frame straight to each connection's transport, so it relies on
websockets internals (``demo_server.server.FAST_PATH_RELIES_ON``). The first tests fail
naming the attribute when a websockets release changes one; the last ones check on a live
capture that no tick ever follows a Close frame, whoever starts the closing handshake.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import websockets
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as aconnect
from websockets.asyncio.server import ServerConnection
from websockets.client import ClientProtocol
from websockets.frames import Opcode
from websockets.protocol import State
from websockets.uri import parse_uri

from demo_server.capture import Capture, CaptureUnavailable, capture
from demo_server.dissect import Conversation, Direction, conversations
from demo_server.server import (
    FAST_PATH_RELIES_ON,
    DemoServer,
    SystemClock,
    broadcast_serialized,
    tick_message,
)

TIMEOUT = 10  # seconds any one wait in these tests may take before it is a failure


def relied_on(name: str) -> str:
    """What a failure says: which attribute, what the fast path needs of it, what to do."""
    return (f"websockets {websockets.__version__} changed ServerConnection.{name}, which "
            f"demo_server.server.broadcast_serialized relies on: {FAST_PATH_RELIES_ON[name]}. "
            "Fix broadcast_serialized or pin websockets to a release where this holds.")


class StoppedClock(SystemClock):
    """A clock whose seconds never come: the ticker sends nothing."""

    async def sleep_until(self, deadline: float) -> None:
        await asyncio.get_running_loop().create_future()


@contextlib.asynccontextmanager
async def one_connection() -> AsyncIterator[tuple[ServerConnection, ClientConnection]]:
    """A client on ``/ws`` of a server that does not tick, and the server's side of it."""
    async with (DemoServer(port=0, clock=StoppedClock()) as server,
                aconnect(server.ws_url) as client):
        await until(lambda: len(server.clients) == 1)
        (connection,) = server.clients
        yield connection, client


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition()`` holds, checking between every two steps."""
    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), TIMEOUT)


# -- the internals, one by one -------------------------------------------------------------

def test_every_internal_the_fast_path_relies_on_is_still_there():
    async def check() -> None:
        async with one_connection() as (connection, _):
            for name in FAST_PATH_RELIES_ON:
                assert hasattr(connection, name), relied_on(name)
            assert isinstance(connection.transport, asyncio.Transport), relied_on("transport")
            assert connection.send_in_progress is None, relied_on("send_in_progress")
            assert connection.state is State.OPEN, relied_on("state")

    asyncio.run(check())


def test_send_in_progress_is_set_during_a_fragmented_message_and_the_tick_skips_it():
    async def check() -> tuple[str | bytes, str | bytes]:
        async with one_connection() as (connection, client):
            halfway = asyncio.Event()
            finish = asyncio.Event()

            async def fragments() -> AsyncIterator[str]:
                yield "first half, "
                halfway.set()
                await finish.wait()
                yield "second half"

            sending = asyncio.create_task(connection.send(fragments()))
            await asyncio.wait_for(halfway.wait(), TIMEOUT)
            assert connection.send_in_progress is not None, relied_on("send_in_progress")
            broadcast_serialized([connection], tick_message(0, 0.0))  # must write nothing
            finish.set()
            await sending
            await connection.send("after")
            return await client.recv(), await client.recv()

    assert asyncio.run(check()) == ("first half, second half", "after")


@pytest.mark.parametrize("who", ["server", "client"])
def test_websockets_writes_its_close_frame_in_the_step_that_leaves_open(who):
    # The fast path writes behind websockets' back, between two steps of the loop. At
    # each of them, what websockets has queued must be written already, the Close frame
    # included: else a tick would overtake a queued frame, or follow a queued Close frame.
    async def check() -> None:
        async with one_connection() as (connection, client):

            def left_open() -> bool:
                assert connection.protocol.data_to_send() == [], relied_on("state")
                return connection.state is not State.OPEN

            closing = asyncio.create_task(
                connection.close() if who == "server" else client.close())
            await until(left_open)
            await closing

    asyncio.run(check())


# -- on the wire ---------------------------------------------------------------------------

def capture_started(port: int) -> Capture:
    try:
        return capture(port).start()
    except CaptureUnavailable as exc:
        pytest.skip(f"live capture needs root or CAP_NET_RAW: {exc}")


def frames_after_close(conv: Conversation) -> list[str]:
    """The frames the server sent after its Close frame, by opcode name."""
    sent = sorted((f for f in conv.frames if f.direction is Direction.S2C),
                  key=lambda f: f.offset)
    closes = [i for i, frame in enumerate(sent) if frame.opcode is Opcode.CLOSE]
    assert closes, f"{conv}: the server sent no Close frame"
    return [frame.opcode_name for frame in sent[closes[0] + 1:]]


def check_wire(found: list[Conversation], clients: int, first_close: Direction) -> None:
    upgraded = [conv for conv in found if conv.handshake and conv.handshake.upgraded]
    assert len(upgraded) == clients, [repr(conv) for conv in found]
    for conv in upgraded:
        assert conv.streams[Direction.S2C].hole is None, f"{conv}: capture incomplete"
        assert any(f.opcode is Opcode.TEXT and f.direction is Direction.S2C
                   for f in conv.frames), f"{conv}: never got a tick"
        closes = [f for f in conv.frames if f.opcode is Opcode.CLOSE]
        assert [f.direction for f in closes][:1] == [first_close], f"{conv}: who closed?"
        assert frames_after_close(conv) == [], f"{conv}: sent after its Close frame"


async def at_times_around_the_next_boundary(count: int, spread: float) -> AsyncIterator[int]:
    """Yield 0..count-1 at times spread evenly over ``spread`` s around a second boundary."""
    boundary = int(time.time()) + 2  # at least a second away: every client has had a tick
    for i in range(count):
        start = boundary - spread / 2 + spread * i / max(1, count - 1)
        await asyncio.sleep(max(0.0, start - time.time()))
        yield i


CLIENTS = 20
SPREAD = 0.1  # seconds: the closes start 50 ms before a tick and end 50 ms after it


async def slow_closer(server: DemoServer, opened: asyncio.Event,
                      reply_when: Callable[[], Awaitable[None]]) -> None:
    """A client that answers the server's Close frame only once ``reply_when()`` returns.

    A Sans-I/O websockets client over a plain stream, so the reply can be held back.
    """
    protocol = ClientProtocol(parse_uri(server.ws_url))
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    protocol.send_request(protocol.connect())
    held_back = False
    try:
        while protocol.state is not State.CLOSED:
            if protocol.close_rcvd is not None and not held_back:
                held_back = True
                await reply_when()  # websockets has queued the reply: it goes out below
            for data in protocol.data_to_send():
                if data:
                    writer.write(data)
                elif writer.can_write_eof():
                    writer.write_eof()
            data = await asyncio.wait_for(reader.read(65536), TIMEOUT)
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            protocol.events_received()
            if protocol.state is State.OPEN:
                opened.set()
    finally:
        writer.close()


def test_no_tick_follows_a_close_frame_on_the_wire_when_the_server_closes():
    # The server closes 20 connections around a tick's boundary; each client holds its
    # reply to the Close frame back until the ticker has sent a tick since: every closing
    # handshake spans a tick.
    async def run() -> list[Conversation]:
        async with DemoServer(port=0) as server:
            cap = capture_started(server.port)
            try:
                openings = [asyncio.Event() for _ in range(CLIENTS)]

                async def after_the_next_tick() -> None:
                    tick = server.last_tick
                    await until(lambda: server.last_tick != tick)

                clients = [asyncio.create_task(slow_closer(server, opened, after_the_next_tick))
                           for opened in openings]
                for opened in openings:
                    await asyncio.wait_for(opened.wait(), TIMEOUT)
                await until(lambda: len(server.clients) == CLIENTS)
                connections = list(server.clients)
                random.shuffle(connections)
                closing = []
                async for i in at_times_around_the_next_boundary(CLIENTS, SPREAD):
                    closing.append(asyncio.create_task(connections[i].close()))
                await asyncio.wait_for(asyncio.gather(*closing, *clients), TIMEOUT)
            finally:
                cap.stop()
            return conversations(cap.packets, server.port)

    check_wire(asyncio.run(run()), CLIENTS, first_close=Direction.S2C)


def test_no_tick_follows_a_close_frame_on_the_wire_when_clients_close():
    # 20 clients close around a tick's boundary; the server answers each Close frame and
    # half-closes TCP in the same step (so asyncio would refuse a late write, too).
    async def run() -> list[Conversation]:
        async with DemoServer(port=0) as server:
            cap = capture_started(server.port)
            try:
                clients = [await aconnect(server.ws_url) for _ in range(CLIENTS)]
                for client in clients:
                    assert json.loads(await client.recv())["event"] == "second"
                closing = []
                async for i in at_times_around_the_next_boundary(CLIENTS, SPREAD):
                    closing.append(asyncio.create_task(clients[i].close()))
                await asyncio.wait_for(asyncio.gather(*closing), TIMEOUT)
            finally:
                cap.stop()
            return conversations(cap.packets, server.port)

    check_wire(asyncio.run(run()), CLIENTS, first_close=Direction.C2S)
