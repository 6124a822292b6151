"""Long-polling (``GET /sensor?after=T``) and Server-Sent Events (``/sensor/events`` on a port
of its own), against the real server on real sockets."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest

from demo_server import ServerThread
from demo_server.routes import next_change
from demo_server.sensor import Sensor
from demo_server.server import DemoServer
from demo_server.sse import EventParser, EventStream, ServerSentEvent, format_event

QUICK = Sensor(width=0.3, period=1.5, seed=11)  # a change every 0.75 s on average


def far_sensor() -> Sensor:
    """A sensor whose next change is more than two minutes away."""
    for seed in range(100):
        sensor = Sensor(width=1.0, period=3600.0, seed=seed)
        if next(sensor.changes(time.time()))[0] > time.time() + 120:
            return sensor
    raise AssertionError("no seed of 100 puts the next change two minutes away")


def get(server: ServerThread, target: str, timeout: float = 15) -> tuple[int, dict, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def wait_for(condition, what: str, seconds: float = 10) -> None:
    """Wait until ``condition()`` holds (server-side state no client event can signal)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"still not {what} after {seconds} s"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def quick_server():
    with ServerThread(sensor=QUICK) as running:
        yield running


# -- long-polling ----------------------------------------------------------------------------

def test_a_long_poll_is_held_until_the_next_change(quick_server):
    _, _, body = get(quick_server, "/sensor")
    last = json.loads(body)["t"]
    when, value = next_change(QUICK, last)
    status, headers, body = get(quick_server, f"/sensor?after={last:.6f}")
    arrived = time.time()
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "no-store"
    assert json.loads(body) == {"value": value, "t": round(when, 6)}
    assert arrived >= when  # held: the answer left once the reading had changed


def test_a_change_already_past_is_answered_at_once_with_the_reading_now(quick_server):
    asked = time.time()
    status, _, body = get(quick_server, f"/sensor?after={asked - 60:.6f}")
    reading = json.loads(body)
    assert status == 200 and asked <= reading["t"] <= time.time()
    assert reading["value"] == QUICK.value_at(reading["t"] + 1e-6)


def test_without_a_change_the_answer_comes_at_the_cap():
    sensor = far_sensor()
    with ServerThread(sensor=sensor) as server:
        server.server.router.long_poll_hold = 0.3
        asked = time.time()
        status, _, body = get(server, f"/sensor?after={asked:.6f}")
        answered = time.time()
    assert status == 200 and json.loads(body)["value"] == sensor.base
    # at the cap, not before; well before the next change (2 minutes away)
    assert 0.3 <= answered - asked < 5


@pytest.mark.parametrize("query", [
    "after=", "after=abc", "after=-1", "after=1e9", "after=nan", "after=inf", "after=1_000",
    "after=%201", "after=1.", "after=9999999999999", "after=1&after=2",
])
def test_a_bad_after_is_a_400_that_says_what_after_must_be(quick_server, query):
    status, headers, body = get(quick_server, f"/sensor?{query}")
    assert status == 400 and headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body.startswith(b"Bad Request: after must be the t of your last reading, once, in "
                           b"seconds since the epoch (like 1735689610.25), got ")


def test_many_waiting_clients_are_released_together_by_one_change(quick_server):
    last = time.time()
    while (when := next_change(QUICK, last)[0]) < time.time() + 0.8:  # time to send them all
        last = round(when, 6)
    targets = [f"/sensor?after={last:.6f}"] * 20
    with ThreadPoolExecutor(len(targets)) as pool:
        answers = list(pool.map(lambda target: (get(quick_server, target), time.time()),
                                targets))
    bodies = {body for (status, _, body), _ in answers if status == 200}
    assert len(bodies) == 1 and json.loads(bodies.pop())["t"] == round(when, 6)
    arrivals = [arrived for _, arrived in answers]
    assert min(arrivals) >= when
    assert max(arrivals) - min(arrivals) < 0.5  # one wake-up (generous: a loaded machine)
    assert quick_server.server.router.held == 0


def test_stopping_the_server_releases_held_long_polls_with_503():
    server = ServerThread(sensor=far_sensor()).start()
    server.server.router.long_poll_hold = 9.0  # below websockets' open_timeout of 10 s
    answers: list[tuple[int, dict, bytes]] = []
    threads = [threading.Thread(target=lambda: answers.append(
        get(server, f"/sensor?after={time.time():.6f}"))) for _ in range(5)]
    for thread in threads:
        thread.start()
    wait_for(lambda: server.server.router.held == 5, "5 long-polls held")
    stopping = time.monotonic()
    server.stop()
    stopped = time.monotonic() - stopping
    for thread in threads:
        thread.join(10)
    assert stopped < 4  # not the 9 s hold: released at once (generous: a loaded machine)
    assert [(status, body) for status, _, body in answers] == [
        (503, b"Service Unavailable: the server is shutting down\n")] * 5


# -- Server-Sent Events: the format ----------------------------------------------------------

def open_stream(url: str) -> tuple[socket.socket, bytes, bytes]:
    """``GET`` the event stream as ``EventSource`` does; the socket, the head, what followed."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    sock.sendall(f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed after {received!r}"
        received += chunk
    head, _, rest = received.partition(b"\r\n\r\n")
    return sock, head, rest


def test_the_stream_is_text_event_stream_with_data_lines_and_a_retry(quick_server):
    sock, head, body = open_stream(quick_server.sse_url)
    with sock:
        while body.count(b"\n\n") < 3:  # the reading at once, then two changes
            chunk = sock.recv(65536)
            assert chunk
            body += chunk
    status, *headers = head.decode().split("\r\n")
    assert status == "HTTP/1.1 200 OK"
    assert {"Content-Type: text/event-stream", "Cache-Control: no-store",
            "Connection: close"} <= set(headers)
    assert not any(h.startswith(("Content-Length", "Transfer-Encoding")) for h in headers)
    blocks = body.split(b"\n\n")[:3]
    assert blocks[0].startswith(b"retry: 2000\ndata: {")
    assert all(block.startswith(b"data: {") and block.count(b"\n") == 0 for block in blocks[1:])
    parser = EventParser()
    events = parser.feed(body)
    assert parser.retry_ms == 2000 and len(events) >= 3
    for event in events:
        message = json.loads(event.data)
        assert message["event"] == "sensor" and event.type == "message"
        reading = message["data"]
        assert reading["value"] == QUICK.value_at(reading["t"] + 1e-6)


def test_format_event_and_the_parser_follow_the_whatwg_rules():
    assert format_event("a\r\nb\rc\nd") == b"data: a\ndata: b\ndata: c\ndata: d\n\n"
    assert format_event("x", retry_ms=5) == b"retry: 5\ndata: x\n\n"
    stream = (b": a comment\r\ndata: one\r\ndata:two\r\n\r\n"  # one leading space only goes
              b"retry: soon\nretry: 1500\nid: 7\nid: a\0b\nevent: add\ndata\n\n"
              b"data:  spaced\r\rdata: no blank line yet")
    parser = EventParser()
    events = []
    for i in range(len(stream)):  # byte by byte: CRLF split between two chunks too
        events += parser.feed(stream[i:i + 1])
    assert events == [ServerSentEvent("one\ntwo"), ServerSentEvent("", "add", "7"),
                      ServerSentEvent(" spaced", "message", "7")]
    assert parser.retry_ms == 1500  # "soon" is not all digits: ignored
    assert EventParser().feed(b"event: lonely\n\n") == []  # no data: nothing dispatched


# -- Server-Sent Events: bounded ------------------------------------------------------------

async def read_event(reader: asyncio.StreamReader) -> bytes:
    return await asyncio.wait_for(reader.readuntil(b"\n\n"), 10)


async def connect_stream(stream: EventStream, request: bytes | None = None
                         ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", stream.port, limit=2**20)
    writer.write(request or b"GET /sensor/events HTTP/1.1\r\nHost: x\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    return reader, writer, head


def test_at_most_max_clients_streams_then_503():
    async def main() -> None:
        async with EventStream(max_clients=2, first=lambda: "now") as stream:
            first, second = [await connect_stream(stream) for _ in range(2)]
            for reader, _, head in (first, second):
                assert head.startswith(b"HTTP/1.1 200 OK")
                assert await read_event(reader) == b"retry: 2000\ndata: now\n\n"
            reader, _, head = await connect_stream(stream)
            assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
            assert b"Retry-After: 10\r\n" in head
            assert await reader.read() == b"Service Unavailable: 2 event streams are open already\n"
            first[1].close()  # one leaves: the server sees it at once, not at the next event
            for _ in range(500):
                if stream.clients == 1:
                    break
                await asyncio.sleep(0.01)
            assert stream.clients == 1
            _, _, head = await connect_stream(stream)
            assert head.startswith(b"HTTP/1.1 200 OK")

    asyncio.run(main())


def test_a_slow_reader_is_dropped_and_a_fast_one_keeps_every_event():
    big = "x" * 65536

    async def main() -> None:
        loop = asyncio.get_running_loop()
        async with EventStream(queue_size=4) as stream:
            slow = socket.socket()
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            slow.setblocking(False)
            await loop.sock_connect(slow, ("127.0.0.1", stream.port))
            await loop.sock_sendall(slow, b"GET /sensor/events HTTP/1.1\r\nHost: x\r\n\r\n")
            reader, writer, _ = await connect_stream(stream)
            await read_event(reader)  # the retry
            for _ in range(2000):  # the slow one never reads: its buffers fill, then its queue
                if stream.dropped:
                    break
                stream.publish(big)
                assert await read_event(reader) == format_event(big)
            assert stream.dropped == 1 and stream.clients == 1
            stream.publish("still here")
            assert await read_event(reader) == b"data: still here\n\n"
            slow.close()
            writer.close()

    asyncio.run(main())


def test_bad_requests_get_a_status_that_says_why():
    async def main() -> None:
        async with EventStream() as stream:
            for request, status in (
                (b"POST /sensor/events HTTP/1.1\r\n\r\n", b"405 Method Not Allowed"),
                (b"GET /events HTTP/1.1\r\n\r\n", b"404 Not Found"),
                (b"GET /sensor/events HTTP/1.1\r\nX: " + b"y" * 9000 + b"\r\n\r\n",
                 b"431 Request Header Fields Too Large"),
            ):
                reader, _, head = await connect_stream(stream, request)
                assert head.startswith(b"HTTP/1.1 " + status), head
                assert (await reader.read()).endswith(b"\n")
            assert stream.clients == 0

    asyncio.run(main())


def test_stopping_the_server_ends_every_stream():
    server = ServerThread(sensor=far_sensor()).start()
    sock, head, received = open_stream(server.sse_url)  # the first event may come with it
    with sock:
        assert head.startswith(b"HTTP/1.1 200 OK")
        assert server.server.sse.clients == 1
        server.stop()
        for _ in range(100):  # the first event, then the end of the stream
            chunk = sock.recv(65536)
            if not chunk:
                break
            received += chunk
        assert not chunk and received.startswith(b"retry: 2000\ndata: ")
    assert not server.running


def test_a_new_stream_s_first_reading_is_never_newer_than_a_change_still_to_be_pushed():
    # The pusher's timer fired late: a change is due but not sent yet. A stream opened then
    # must start with the reading before that change, which then follows in order (seen
    # once in CI: the first reading's t was 0.14 ms after the change pushed next).
    sensor = Sensor(period=0.5, width=0.1)
    server = DemoServer(port=0, sensor=sensor)
    due, new_value = next(sensor.changes(time.time() - 1.0))  # in the past: overdue
    server._next_change = due
    first = json.loads(server._sensor_now())["data"]
    assert first["t"] < due
    assert first["value"] == sensor.value_at(first["t"] + 1e-6) != new_value
    server._next_change = time.time() + 60  # not due: the reading now
    now = json.loads(server._sensor_now())["data"]
    assert now["t"] == pytest.approx(time.time(), abs=1.0)
