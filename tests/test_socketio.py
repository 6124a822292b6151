"""The socket.io flavour on a real socket: python-socketio's own client, raw Engine.IO, the CLI."""

from __future__ import annotations

import contextlib
import gc
import http.client
import json
import logging
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import resources

import pytest
import socketio
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from demo_server import ServerStartError, ServerThread, SocketIOServer

from .conftest import demo_threads
from .test_cli import launch, read_until

# A tick is emitted right after its second starts; on a loaded 2-core machine it may be
# late, but a ticker that drifts or starts at a random phase lands anywhere in the second.
ON_TIME = 0.3
EIO_WEBSOCKET = "/socket.io/?EIO=4&transport=websocket"
EIO_POLLING = "/socket.io/?EIO=4&transport=polling"
TICK = re.compile(r'42\["second",\{"second":(\d+)\}\]')


@pytest.fixture
def server():
    with ServerThread(flavour="socketio") as running:
        yield running


class Events:
    """What a python-socketio client received: (arrival time, event, args), in order."""

    def __init__(self, client: socketio.Client) -> None:
        self.queue: queue.Queue[tuple[float, str, tuple]] = queue.Queue()
        client.on("*", lambda event, *args: self.queue.put((time.time(), event, args)))

    def next(self, event: str, timeout: float = 3.0) -> tuple[float, object]:
        """The next ``event``'s arrival time and data, skipping other events."""
        deadline = time.monotonic() + timeout
        while True:
            arrived, name, args = self.queue.get(timeout=max(0.01, deadline - time.monotonic()))
            if name == event:
                return arrived, args[0] if args else None


@contextlib.contextmanager
def sio_client(url: str, **options) -> Iterator[tuple[socketio.Client, Events]]:
    """python-socketio's sync client, connected; ``options`` go to ``connect()``."""
    client = socketio.Client(reconnection=False)
    events = Events(client)
    client.connect(url, wait_timeout=5, **options)
    try:
        yield client, events
    finally:
        client.disconnect()


@contextlib.contextmanager
def raw_session(port: int, **options) -> Iterator[ClientConnection]:
    """Engine.IO straight over a WebSocket, joined to the ``/`` namespace by hand."""
    with connect(f"ws://127.0.0.1:{port}{EIO_WEBSOCKET}", open_timeout=3, **options) as ws:
        assert ws.recv(timeout=3).startswith('0{"sid":')  # Engine.IO OPEN
        ws.send("40")  # Socket.IO CONNECT to /
        assert ws.recv(timeout=3).startswith('40{"sid":')
        yield ws


def next_text(ws: ClientConnection, wanted: re.Pattern[str], timeout: float = 3.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = ws.recv(timeout=max(0.01, deadline - time.monotonic()))
        if isinstance(text, str) and wanted.fullmatch(text):
            return text


def request(port: int, method: str, path: str, headers: dict[str, str] | None = None,
            body: str | None = None) -> tuple[int, bytes]:
    """One HTTP request (``Host`` names the port, as browsers send it); status and body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# -- lifecycle -----------------------------------------------------------------------------

def test_start_returns_listening_on_a_real_port(server):
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}/"
    assert server.page_url == f"http://127.0.0.1:{server.port}/socket.html"
    assert repr(server) == f"<ServerThread socketio {server.url}>"
    assert request(server.port, "GET", "/") == (200, b"Hello, World.")
    with pytest.raises(RuntimeError, match="no /ws"):
        server.ws_url  # noqa: B018


def test_the_plain_flavour_is_still_the_default():
    assert ServerThread().flavour == "websocket"
    with pytest.raises(ValueError, match="flavour must be one of websocket, socketio"):
        ServerThread(flavour="socket.io")


@pytest.mark.parametrize("options", [{"ping_interval": 0}, {"ping_timeout": float("inf")},
                                     {"ping_interval": "2"}, {"port": 70000}])
def test_bad_options_are_refused_before_any_thread_starts(options):
    with pytest.raises(ValueError, match="must be"):
        ServerThread(flavour="socketio", **options).start()
    assert demo_threads() == []


def test_port_in_use_raises_a_clear_error_in_the_caller(server):
    with pytest.raises(ServerStartError, match=f"port {server.port} .* already in use"):
        ServerThread(flavour="socketio", port=server.port).start()
    assert demo_threads() == ["demo-server"]


def test_bad_host_raises_a_clear_error():
    with pytest.raises(ServerStartError, match="cannot listen on host 'no-such-host.invalid'"):
        ServerThread(flavour="socketio", host="no-such-host.invalid").start()
    assert demo_threads() == []


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 in this Python")
    try:
        server = ServerThread(flavour="socketio", host="::1").start()
    except ServerStartError:
        pytest.skip("no IPv6 loopback on this machine")
    with server, sio_client(server.url) as (client, events):
        assert server.url == f"http://[::1]:{server.port}/"
        events.next("second")
        client.emit("client_data", "v6")
        assert server.received.wait_for(1, timeout=3)
    assert re.fullmatch(r"\[::1\]:\d+", server.received.snapshot()[0].address)


def test_stop_sends_every_client_engineios_close_packet_on_both_transports(server):
    reasons: dict[str, queue.Queue[str]] = {}
    with sio_client(server.url) as (upgraded, _), \
            sio_client(server.url, transports=["polling"]) as (polling, _):
        assert (upgraded.transport(), polling.transport()) == ("websocket", "polling")
        assert server.clients == 2
        for name, client in (("upgraded", upgraded), ("polling", polling)):
            reasons[name] = queue.Queue()
            client.on("disconnect", reasons[name].put)
        started = time.monotonic()
        server.stop()
        assert time.monotonic() - started < 2
        # Engine.IO's close packet ("1"), not a dropped connection ("transport error");
        # the polling client takes it with its pending GET.
        for name in reasons:
            assert (name, reasons[name].get(timeout=3)) == (name, upgraded.reason.SERVER_DISCONNECT)
    assert demo_threads() == []


def test_20_start_stop_cycles_leave_nothing_behind():
    def cycle():
        with ServerThread(flavour="socketio") as server, raw_session(server.port) as ws:
            ws.send('42["client_data","x"]')
            assert server.received.wait_for(1, timeout=3)

    cycle()  # warm up: first use imports modules and creates lazily-made objects
    gc.collect()
    threads, fds = threading.active_count(), open_fds()
    for _ in range(20):
        cycle()
    gc.collect()
    assert threading.active_count() == threads
    assert open_fds() == fds
    assert demo_threads() == []


# -- what python-socketio's client sees ----------------------------------------------------

def test_the_python_client_polls_first_then_upgrades(server, caplog):
    caplog.set_level(logging.INFO)
    client = socketio.Client(reconnection=False,
                             engineio_logger=logging.getLogger("test.engineio.client"))
    client.connect(server.url, wait_timeout=5)
    try:
        assert client.transport() == "websocket"
    finally:
        client.disconnect()
    said = [r.getMessage() for r in caplog.records if r.name == "test.engineio.client"]
    assert said[0].startswith("Attempting polling connection to ")
    assert said.index("WebSocket upgrade was successful") > 0
    assert re.search(r"client 1 connected from 127\.0\.0\.1:\d+ \(socket\.io, polling\)",
                     caplog.text)


@pytest.mark.parametrize("transports", [None, ["polling"]], ids=["upgraded", "polling"])
def test_ticks_arrive_on_each_wall_clock_second(server, transports):
    with sio_client(server.url, transports=transports) as (_, events):
        ticks = [events.next("second") for _ in range(4)]
    seconds = [tick["second"] for _, tick in ticks]
    assert seconds == [(seconds[0] + i) % 60 for i in range(4)], "one tick per second, in order"
    for arrived, tick in ticks:
        assert tick == {"second": int(arrived) % 60}  # the article's payload, nothing more
        assert arrived - int(arrived) < ON_TIME


def test_after_a_stall_there_is_no_burst_of_stale_ticks(server):
    with sio_client(server.url) as (_, events):
        events.next("second")
        server._loop.call_soon_threadsafe(time.sleep, 2.5)  # block the server's loop
        ticks = [events.next("second", timeout=5) for _ in range(3)]
    seconds = [tick["second"] for _, tick in ticks]
    assert len(set(seconds)) == 3, "never the same second twice"
    assert seconds[2] == (seconds[1] + 1) % 60
    assert all(tick["second"] == int(arrived) % 60 for arrived, tick in ticks)


def test_a_tick_on_the_wire_is_the_articles_frame_uncompressed(server):
    # Compression is off unless asked for, so a capture shows 42["second",{"second":N}].
    with raw_session(server.port) as ws:  # websockets' client offers permessage-deflate
        assert ws.protocol.extensions == []
        tick = next_text(ws, TICK)
    assert 0 <= int(TICK.fullmatch(tick)[1]) < 60


def test_compression_when_asked():
    with ServerThread(flavour="socketio", compression=True) as server, \
            raw_session(server.port) as ws:
        assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
        next_text(ws, TICK)


def test_heartbeats_are_engineio_text_frames_at_the_chosen_interval():
    with ServerThread(flavour="socketio", ping_interval=1, ping_timeout=2) as server, \
            connect(f"ws://127.0.0.1:{server.port}{EIO_WEBSOCKET}") as ws:
        handshake = json.loads(ws.recv(timeout=3)[1:])
        assert (handshake["pingInterval"], handshake["pingTimeout"]) == (1000, 2000)
        for _ in range(2):
            started = time.monotonic()
            assert next_text(ws, re.compile("2"), timeout=3) == "2"  # Engine.IO PING
            assert time.monotonic() - started < 2
            ws.send("3")  # PONG; without it the server closes the session after 1 + 2 s
        assert server.clients == 0  # never joined a Socket.IO namespace: Engine.IO only


# -- client_data and bad input -------------------------------------------------------------

def test_client_data_is_recorded_with_a_client_id_and_address(server, caplog):
    caplog.set_level(logging.INFO, logger="demo_server")
    with sio_client(server.url) as (a, _), sio_client(server.url) as (b, _):
        for ch in "hi":
            a.emit("client_data", ch)
        b.emit("client_data", "B")
        assert server.received.wait_for(3, timeout=3)
    records = server.received.snapshot()
    assert [r.data for r in records if r.data != "B"] == ["h", "i"]
    by_text = {r.data: r for r in records}
    assert by_text["h"].client == by_text["i"].client != by_text["B"].client
    assert by_text["h"].address == by_text["i"].address
    assert re.fullmatch(r"127\.0\.0\.1:\d+", by_text["h"].address)
    assert f"client_data from {by_text['h'].address}: 'h'" in caplog.text


@pytest.mark.parametrize(("event", "data", "message"), [
    ("client_data", 5, "client_data takes one string, got a number"),
    ("client_data", {"a": 1}, "client_data takes one string, got an object"),
    ("client_data", None, "client_data takes one string, got 0 arguments"),
    ("client_data", ("a", "b"), "client_data takes one string, got 2 arguments"),
    ("client_data", b"\x00", "client_data takes one string, got binary data"),
    ("shout", "x", "unknown event 'shout'"),
])
def test_bad_input_gets_an_error_event_and_nothing_is_recorded(server, event, data, message):
    with sio_client(server.url) as (client, events):
        client.emit(event, data)
        assert events.next("error")[1] == {"message": message}
        client.emit("client_data", "still here")
        assert server.received.wait_for(1, timeout=3)
    assert server.received.text() == "still here"


@pytest.mark.parametrize(("packet", "stays_open"), [
    ("42[", True),  # Socket.IO EVENT, JSON cut short: python-socketio logs it, reads on
    ("42{}", True),  # an EVENT that is not an array
    ("4x", True),  # unknown Socket.IO packet type
    ("9", True),  # unknown Engine.IO packet type
    ("x", False),  # not an Engine.IO packet at all: uvicorn drops the connection
    ("", False),  # empty: the same
])
def test_malformed_packets_harm_at_most_their_own_connection(server, packet, stays_open):
    with sio_client(server.url) as (bystander, events), raw_session(server.port) as ws:
        ws.send(packet)
        if stays_open:
            ws.send('42["client_data","after"]')
            assert server.received.wait_for(1, timeout=3)
        else:
            with pytest.raises(ConnectionClosed):
                ws.recv(timeout=3)
        bystander.emit("client_data", "bystander")
        events.next("second")
        assert server.received.wait_for(2 if stays_open else 1, timeout=3)
    with sio_client(server.url) as (_, events):  # the server takes new clients
        events.next("second")


def test_a_malformed_polling_body_is_acknowledged_and_the_session_goes_on(server):
    status, body = request(server.port, "GET", EIO_POLLING)
    session = f"{EIO_POLLING}&sid={json.loads(body[1:])['sid']}"
    for payload in ["40", "42[", '42["client_data","polled"]']:
        assert request(server.port, "POST", session, body=payload) == (200, b"OK")
    assert server.received.wait_for(1, timeout=3)
    assert server.received.text() == "polled"


# -- the HTTP side and origins -------------------------------------------------------------

def test_one_port_serves_hello_the_page_and_the_socketio_client(server):
    static = resources.files("demo_server") / "static"
    assert request(server.port, "GET", "/") == (200, b"Hello, World.")
    status, page = request(server.port, "GET", "/socket.html")
    assert status == 200
    assert page == (static / "socketio.html").read_bytes()
    assert b'<script src="/socket.io/socket.io.js"></script>' in page
    status, script = request(server.port, "GET", "/socket.io/socket.io.js")
    assert status == 200
    assert script == (static / "socket.io.min.js").read_bytes()
    assert re.match(rb"/\*!\n \* Socket\.IO v4\.\d+\.\d+\n.*\n \* Released under the MIT License",
                    script)
    assert request(server.port, "GET", "/socketio-client.js")[0] == 200
    assert request(server.port, "GET", "/client.js")[0] == 404  # the plain flavour's page only
    assert request(server.port, "POST", "/")[0] == 405
    with pytest.raises(InvalidStatus, match="403"):
        connect(f"ws://127.0.0.1:{server.port}/ws")


FOREIGN = "http://evil.example"


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_a_foreign_origin_is_refused_on_both_transports(server, transport):
    own = f"http://127.0.0.1:{server.port}"
    if transport == "polling":
        assert request(server.port, "GET", EIO_POLLING, {"Origin": own})[0] == 200
        status, body = request(server.port, "GET", EIO_POLLING, {"Origin": FOREIGN})
        assert (status, body) == (400, b'"http://evil.example is not an accepted origin."')
    else:
        with raw_session(server.port, origin=own):
            pass
        with pytest.raises(InvalidStatus, match="403"):
            connect(f"ws://127.0.0.1:{server.port}{EIO_WEBSOCKET}", origin=FOREIGN)
    assert server.clients == 0


def test_a_dns_rebound_page_is_refused_on_a_loopback_server(server):
    # A page on evil.example whose name now resolves to 127.0.0.1: same-origin with itself.
    rebound = f"evil.example:{server.port}"
    status, _ = request(server.port, "GET", EIO_POLLING,
                        {"Origin": f"http://{rebound}", "Host": rebound})
    assert status == 400


def test_allow_origins_lets_a_listed_page_in():
    with ServerThread(flavour="socketio", allow_origins=["http://teacher.local:8001"]) as server:
        status, body = request(server.port, "GET", EIO_POLLING,
                               {"Origin": "http://teacher.local:8001"})
        assert status == 200 and b'"upgrades":["websocket"]' in body
        assert request(server.port, "GET", EIO_POLLING, {"Origin": FOREIGN})[0] == 400
    with pytest.raises(ValueError, match="an origin looks like"):
        SocketIOServer(allow_origins=["teacher.local"])


# -- the CLI -------------------------------------------------------------------------------

@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_socketio_serves_and_exits_0_on_a_signal(sig):
    proc, port = launch("--socketio")
    try:
        assert request(port, "GET", "/") == (200, b"Hello, World.")
        with sio_client(f"http://127.0.0.1:{port}/") as (client, events):
            events.next("second")
            client.emit("client_data", "h")
            logged = read_until(proc, r"client_data from 127\.0\.0\.1:\d+: 'h'")
            started = time.monotonic()
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=5)
            assert time.monotonic() - started < 2
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "stopping" in out
    assert "second" not in logged + err, "packets are logged with -v only"


def test_cli_socketio_port_in_use_is_one_clear_line_and_exit_2():
    proc, port = launch("--socketio")
    try:
        second = subprocess.run(
            [sys.executable, "-m", "demo_server", "--socketio", "--port", str(port)],
            capture_output=True, text=True, timeout=10)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=5)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"demo-server: error: port {port} on 127.0.0.1 is already in use (another "
        "demo-server?): stop it, or choose another port (0 picks a free one)"
    ]


def test_cli_rate_limit_is_for_ws_only():
    result = subprocess.run([sys.executable, "-m", "demo_server", "--socketio",
                             "--rate-limit", "off"], capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert "--rate-limit: not allowed with argument --socketio" in result.stderr


def test_a_polling_client_says_goodbye_at_once(server):
    """Its close packet comes in a POST; the GET it left waiting is answered then, as Node
    does, not at the ping timeout (python-socketio's disconnect() would block that long)."""
    with sio_client(server.url, transports=["polling"]) as (client, events):
        events.next("second")
        started = time.monotonic()
        client.disconnect()
        took = time.monotonic() - started
    assert took < 2, f"disconnect() took {took:.1f} s"
    deadline = time.monotonic() + 3
    while server.clients and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.clients == 0
