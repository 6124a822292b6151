"""ServerThread and ClientThread: start, stop, errors, and nothing left behind."""

from __future__ import annotations

import contextlib
import gc
import os
import re
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from websockets.exceptions import ConnectionClosedOK
from websockets.frames import CloseCode
from websockets.sync.client import connect
from websockets.utils import accept_key

from demo_server import ClientThread, ReceivedLog, ServerStartError, ServerThread
from demo_server.thread import FLAVOURS

from .conftest import demo_threads, http_get


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled(count: Callable[[], int], baseline: int, timeout: float = 10.0) -> int:
    """``count()`` once it is back to ``baseline`` or below, or when ``timeout`` s are up.

    A thread that was just joined may still be counted for a moment, and a socket may wait
    for the collector; something another test started may end meanwhile, lowering the
    count. A leak raises it for good.
    """
    deadline = time.monotonic() + timeout
    while (now := count()) > baseline and time.monotonic() < deadline:
        gc.collect()
        time.sleep(0.05)
    return now


def test_start_returns_listening_on_a_real_port():
    server = ServerThread().start()
    try:
        assert server.port > 0
        assert server.url == f"http://127.0.0.1:{server.port}/"
        assert server.ws_url == f"ws://127.0.0.1:{server.port}/ws"
        assert server.page_url == f"http://127.0.0.1:{server.port}/socket.html"
        assert http_get(server.port, "/")[0] == 200  # no wait needed: start() means listening
    finally:
        server.stop()
    assert not server.running
    with pytest.raises(RuntimeError, match="not running"):
        server.port  # noqa: B018


def test_start_twice_is_harmless_and_never_a_second_server(server):
    port = server.port
    assert server.start() is server
    assert server.port == port
    assert demo_threads().count("demo-server") == 1


def test_stop_twice_and_stop_before_start_are_harmless():
    server = ServerThread()
    server.stop()
    server.start()
    server.stop()
    server.stop()
    assert demo_threads() == []


def test_stop_closes_clients_with_1001(server):
    with connect(server.ws_url) as ws:
        ws.recv(timeout=3)
        server.stop()
        with pytest.raises(ConnectionClosedOK):
            while True:
                ws.recv(timeout=3)
        assert ws.protocol.close_rcvd.code == CloseCode.GOING_AWAY


def test_restart_keeps_the_record():
    server = ServerThread()
    with server, connect(server.ws_url) as ws:
        ws.send('{"event":"client_data","data":"a"}')
        assert server.received.wait_for(1, timeout=3)
    with server:
        assert server.received.text() == "a"


def test_port_in_use_raises_a_clear_error_in_the_caller(server):
    with pytest.raises(ServerStartError, match=f"port {server.port} .* already in use"):
        ServerThread(port=server.port).start()
    assert demo_threads() == ["demo-server"]


@pytest.mark.parametrize("host", ["no-such-host.invalid", "256.1.1.1", "192.0.2.1"])
def test_bad_host_raises_a_clear_error(host):
    with pytest.raises(ServerStartError, match=f"cannot listen on host '{host}'"):
        ServerThread(host=host).start()
    assert demo_threads() == []


@pytest.mark.parametrize("port", [-1, 65536, "8001", 1.5, None, True])
def test_bad_port_is_refused_before_any_thread_starts(port):
    with pytest.raises(ValueError, match="port must be an integer"):
        ServerThread(port=port).start()
    assert demo_threads() == []


def test_unknown_option_is_a_type_error():
    with pytest.raises(TypeError):
        ServerThread(colour="blue").start()


def test_50_start_stop_cycles_leave_nothing_behind():
    # Warm up once: first use imports modules and creates lazily-made objects.
    with ServerThread() as server, connect(server.ws_url) as ws:
        ws.recv(timeout=3)
    gc.collect()
    threads, fds = threading.active_count(), open_fds()
    for _ in range(50):
        with ServerThread() as server, connect(server.ws_url) as ws:
            ws.send('{"event":"client_data","data":"x"}')
            assert server.received.wait_for(1, timeout=3)
    assert settled(threading.active_count, threads) <= threads
    assert settled(open_fds, fds) <= fds  # one leaked per cycle would be 50 more
    assert demo_threads() == []


def test_the_port_is_free_again_after_stop():
    with ServerThread() as server:
        port = server.port
    with ServerThread(port=port) as again:
        assert again.port == port


# -- ClientThread --------------------------------------------------------------------------

def test_client_thread_receives_sends_and_calls_back(server):
    calls = []
    with ClientThread(server.ws_url) as client:
        unsubscribe = client.on("second", calls.append)
        tick = client.next("second", timeout=3)
        assert tick["second"] == tick["epoch"] % 60
        client.send("client_data", "from a thread")
        assert server.received.wait_for(1, timeout=3)
        client.send_raw("oops")
        assert "not JSON" in client.next("error", timeout=3)["message"]
        client.next("second", timeout=3)
        unsubscribe()
    assert server.received.text() == "from a thread"
    assert calls and all("second" in c for c in calls)
    assert client.close_code == CloseCode.NORMAL_CLOSURE
    assert demo_threads() == ["demo-server"]


def test_a_failing_callback_does_not_stop_the_client(server):
    def boom(_):
        raise RuntimeError("student bug")

    with ClientThread(server.ws_url) as client:
        client.on("second", boom)
        client.next("second", timeout=3)
        assert client.next("second", timeout=3)
        assert client.running


def test_client_next_raises_when_the_server_goes_away():
    server = ServerThread().start()
    client = ClientThread(server.ws_url).start()
    client.clear()
    server.stop()
    with pytest.raises(ConnectionError, match="closed.*1001"):
        client.next("second", timeout=3)
    client.stop()
    assert demo_threads() == []


def test_client_next_times_out_clearly(server):
    with ClientThread(server.ws_url) as client, pytest.raises(TimeoutError, match="'error'"):
        client.next("error", timeout=0.2)


def test_client_connect_failure_is_a_connection_error():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connection refused
        with pytest.raises(ConnectionError, match=f"cannot connect to ws://127.0.0.1:{port}"):
            ClientThread(f"ws://127.0.0.1:{port}/ws").start()
    assert demo_threads() == []


@pytest.mark.parametrize("url", ["http://127.0.0.1/ws", "127.0.0.1:8001", None])
def test_client_refuses_a_non_websocket_url(url):
    with pytest.raises(ValueError, match="ws://"):
        ClientThread(url)


def test_send_before_start_is_a_clear_error():
    with pytest.raises(ConnectionError, match="not connected"):
        ClientThread("ws://127.0.0.1:1/ws").send("client_data", "x")


def test_client_sends_only_known_events(server):
    with ClientThread(server.ws_url) as client, pytest.raises(ValueError):
        client.send("shout", "x")


def test_client_threads_from_many_threads_at_once(server):
    with ClientThread(server.ws_url) as client:
        senders = [threading.Thread(target=lambda i=i: [client.send("client_data", f"{i}")
                                                       for _ in range(20)]) for i in range(5)]
        for t in senders:
            t.start()
        for t in senders:
            t.join()
        assert server.received.wait_for(100, timeout=5)
    assert sorted(server.received.text()) == sorted("01234" * 20)


# -- what the API refuses, and stop means stopped (issue 13) --------------------------------

def test_an_empty_received_log_passed_in_is_the_one_kept():
    log = ReceivedLog()  # empty, so falsy (len 0): it must not be swapped for a new one
    with ServerThread(received=log) as server, connect(server.ws_url) as ws:
        ws.send('{"event":"client_data","data":"mine"}')
        assert log.wait_for(1, timeout=3)
    assert server.received is log and log.text() == "mine"


@pytest.mark.parametrize("flavour", FLAVOURS)
@pytest.mark.parametrize("limit", [10, 2.5, "50,100", (50, 100)])
def test_a_rate_limit_that_is_not_a_rate_limit_is_refused_at_the_call(flavour, limit):
    with pytest.raises(TypeError, match=r"rate_limit must be a RateLimit \(e\.g\. "
                                        r"RateLimit\(rate=10\)\) or None, got "):
        ServerThread(flavour=flavour, rate_limit=limit)
    assert demo_threads() == []


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf"), "5", None])
def test_start_refuses_a_timeout_that_is_not_a_positive_number(timeout):
    with pytest.raises(ValueError, match="timeout must be a positive, finite number of "
                                         "seconds, got "):
        ServerThread().start(timeout=timeout)
    assert demo_threads() == []


def test_start_that_times_out_leaves_nothing_running():
    """Listening takes milliseconds, a microsecond is too short: what did start stops.

    The caller's thread must get the GIL back before the server listens, so switch threads
    every microsecond, and try again in the rare case the server still won the race.
    """
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        for _ in range(20):
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", 0))
                port = probe.getsockname()[1]
            server = ServerThread(port=port)
            try:
                server.start(timeout=1e-6)
            except ServerStartError as exc:
                assert str(exc) == "the server did not start within 1e-06 s"
                break
            server.stop()
        else:
            pytest.fail("the server always started within a microsecond")
    finally:
        sys.setswitchinterval(interval)
    assert not server.running and demo_threads() == []
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=3).close()
    with server:  # and it can start normally afterwards, on the same port
        assert server.port == port


@contextlib.contextmanager
def silent_websocket_server() -> Iterator[str]:
    """A real server that answers the handshake, then neither reads nor closes: a close
    frame sent to it is never answered. Yields its ws:// URL."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def handshake() -> None:
        sock, _ = listener.accept()
        accepted.append(sock)
        request = b""
        while b"\r\n\r\n" not in request:
            request += sock.recv(4096) or b"\r\n\r\n"
        key = re.search(rb"Sec-WebSocket-Key: (\S+)", request, re.IGNORECASE)
        assert key is not None, request
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                     + accept_key(key.group(1).decode()).encode() + b"\r\n\r\n")

    thread = threading.Thread(target=handshake, name="test-silent-server")
    thread.start()
    try:
        yield f"ws://127.0.0.1:{listener.getsockname()[1]}/ws"
    finally:
        thread.join(10)
        for sock in [*accepted, listener]:
            sock.close()


def test_client_stop_returns_within_its_timeout_with_the_thread_ended():
    """Before: close() waited 1 s for the answer, then join() 1 s more, and the thread lived
    on until websockets' own 10 s close timeout."""
    with silent_websocket_server() as url:
        client = ClientThread(url).start()
        started = time.monotonic()
        client.stop(timeout=1)
        took = time.monotonic() - started
        assert not client.running, "the client's thread outlived stop()"
        assert took < 1.9, f"stop(timeout=1) took {took:.2f} s"  # 2 s before; a loaded margin
        assert client.close_code == CloseCode.ABNORMAL_CLOSURE  # no close frame came back
    assert "demo-client" not in demo_threads()


def test_client_next_before_start_says_to_start():
    with pytest.raises(ConnectionError, match=r"not connected: call start\(\) first"):
        ClientThread("ws://127.0.0.1:1/ws").next("second", timeout=1)
