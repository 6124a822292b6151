"""Hostile clients against a real server: floods, clients that never read, odd requests.

Each test reproduces a finding of the red-team pass in issue 13 on a real socket (a real
``demo-server`` process where the figure is the process's own: memory, exit time).
"""

from __future__ import annotations

import json
import logging
import resource
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from websockets.frames import Frame, Opcode
from websockets.sync.client import connect

from demo_server import ServerThread

from .conftest import http_get, http_raw
from .test_cli import launch, read_until
from .test_websocket import ON_TIME

HANDSHAKE = ("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n")
CLIENT_DATA = Frame(Opcode.TEXT, b'{"event":"client_data","data":"x"}').serialize(mask=True)


def open_raw(port: int, path: str = "/ws", rcvbuf: int | None = None) -> socket.socket:
    """A WebSocket connection done by hand, handshake read; ``rcvbuf`` shrinks the
    socket's receive buffer (set before connecting, so the window stays small)."""
    sock = socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(5)
    sock.connect(("127.0.0.1", port))
    sock.sendall(HANDSHAKE.format(path=path, port=port).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = sock.recv(1)  # byte by byte: nothing after the head is consumed
        assert chunk, head
        head += chunk
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def push(sock: socket.socket, data: bytes, seconds: float) -> tuple[int, bool]:
    """Write ``data`` over and over for up to ``seconds`` without reading anything.

    Returns the bytes the kernel took and whether the server closed the connection.
    """
    sock.settimeout(0.05)
    sent, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sent += sock.send(data)
        except TimeoutError:
            continue
        except OSError:  # reset or broken pipe: the server closed it
            return sent, True
    return sent, False


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for {pid}")


def stop_within(proc, seconds: float) -> float:
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=seconds + 15)
    return time.monotonic() - started


# -- a client that never reads -------------------------------------------------------------

def test_an_unread_ping_flood_is_closed_and_memory_stays_flat():
    proc, port = launch()
    try:
        before = rss_mb(proc.pid)
        # Pings of 125 bytes: each makes a pong of 127 for a client that never reads.
        pings = Frame(Opcode.PING, b"p" * 125).serialize(mask=True) * 512
        with open_raw(port, rcvbuf=4096) as flooder:
            peak, closed = before, False
            deadline = time.monotonic() + 8  # unfixed: +370 MB in 10 s
            while not closed and time.monotonic() < deadline:
                closed = push(flooder, pings, 0.25)[1]
                peak = max(peak, rss_mb(proc.pid))
        print(f"RSS under an unread ping flood: {before:.1f} MB before, {peak:.1f} MB peak")
        assert closed, "the server still takes pings from a client that reads nothing"
        assert peak - before < 30
        logged = read_until(proc, r"not reading")
        assert "1008" in logged
    finally:
        proc.kill()
        proc.communicate()


# -- shutdown under load -------------------------------------------------------------------

def flood_client_data(port: int, seconds: float = 2.0) -> socket.socket:
    """A client that pushed ``client_data`` for ``seconds`` and reads nothing: with the
    rate limit, tens of thousands of messages wait in the server and the kernel."""
    flooder = open_raw(port)
    sent, closed = push(flooder, CLIENT_DATA * 1000, seconds)
    assert not closed and sent > 20_000 * len(CLIENT_DATA), sent
    return flooder


def test_sigint_under_a_flood_exits_within_2_s():
    proc, port = launch()
    try:
        with flood_client_data(port):
            took = stop_within(proc, 2)
        print(f"demo-server SIGINT under a client_data flood: exited in {took:.2f} s")
        assert proc.returncode == 0
        assert took < 3  # 2 s asked, 1 s for a loaded machine; unfixed: 11-13 s
    finally:
        proc.kill()


def test_server_thread_stop_under_a_flood_is_quick_and_says_1001():
    with ServerThread() as server:
        polite = open_raw(server.port)
        with polite, flood_client_data(server.port):
            started = time.monotonic()
            server.stop()
            took = time.monotonic() - started
            polite.settimeout(5)
            data = b""
            while chunk := polite.recv(65536):
                data += chunk
    print(f"ServerThread.stop() under a client_data flood: {took:.2f} s")
    assert took < 3
    close = Frame(Opcode.CLOSE, (1001).to_bytes(2, "big")).serialize(mask=False)
    assert close in data, "a client that reads gets 1001 (going away)"


# -- /ws/sensor ----------------------------------------------------------------------------

def drain(sock: socket.socket, until: float) -> None:
    """Read and drop whatever the server sends until ``until`` (monotonic) or it closes."""
    sock.settimeout(0.1)
    while time.monotonic() < until:
        try:
            if not sock.recv(65536):
                return
        except TimeoutError:
            continue
        except OSError:
            return


def test_a_sensor_flood_makes_no_tick_late_and_shutdown_quick():
    proc, port = launch()
    try:
        flooders = [open_raw(port, "/ws/sensor") for _ in range(2)]
        until = time.monotonic() + 6
        threads = [threading.Thread(target=job, args=args) for sock in flooders
                   for job, args in ((push, (sock, CLIENT_DATA * 1000, 5)), (drain, (sock, until)))]
        for thread in threads:
            thread.start()
        late = []
        with connect(f"ws://127.0.0.1:{port}/ws") as observer:
            while len(late) < 4:
                message = json.loads(observer.recv(timeout=5))
                if message["event"] == "second":
                    late.append(time.time() - message["data"]["epoch"])
        took = stop_within(proc, 2)
        for thread in threads:
            thread.join()
        for sock in flooders:
            sock.close()
        print(f"ticks under a /ws/sensor flood: {max(late) * 1000:.0f} ms late at most; "
              f"SIGINT exited in {took:.2f} s")
        assert max(late) < ON_TIME  # unfixed: up to 0.97 s
        assert took < 3
    finally:
        proc.kill()


# -- odd requests --------------------------------------------------------------------------

UPGRADE = ("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


@pytest.mark.parametrize("request_head", [
    UPGRADE + "Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1\r\nOrigin: http://evil\r\n\r\n",
    UPGRADE + "Host: evil.example\r\nSec-WebSocket-Version: 13\r\nOrigin: http://evil.example\r\n\r\n",
    "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.example\r\n\r\n",
])
def test_two_host_or_origin_headers_are_400_without_a_traceback(server, request_head, caplog):
    reply = http_raw(server.port, request_head.encode())
    assert reply.startswith(b"HTTP/1.1 400"), reply[:80]
    assert b"more than one" in reply
    assert all(r.levelno < logging.ERROR for r in caplog.records), caplog.text


def test_a_version_8_upgrade_is_told_the_version_spoken(server):
    reply = http_raw(server.port, (UPGRADE + "Sec-WebSocket-Version: 8\r\n\r\n").encode())
    assert reply.startswith(b"HTTP/1.1 400")
    assert b"\r\nSec-WebSocket-Version: 13\r\n" in reply  # RFC 6455 4.4


@pytest.mark.parametrize("after_head", [b"\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", b"junk"])
def test_bytes_after_the_head_do_not_cost_the_answer(server, after_head, caplog):
    reply = http_raw(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + after_head)
    assert reply.startswith(b"HTTP/1.1 200") and reply.endswith(b"Hello, World.")
    assert all(r.levelno < logging.ERROR for r in caplog.records)


def test_thirty_pipelined_upgrades_are_each_answered_with_no_internal_error(server, caplog):
    caplog.set_level(logging.INFO)
    for _ in range(30):
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.sendall((UPGRADE + "Sec-WebSocket-Version: 13\r\n\r\n").encode() * 2)
            assert sock.recv(4096).startswith(b"HTTP/1.1 101")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


@pytest.mark.parametrize("extra", [b"Content-Length: 5\r\n\r\nhello",
                                   b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"])
def test_a_request_with_a_body_is_closed_cleanly(server, extra, caplog):
    caplog.set_level(logging.INFO)
    reply = http_raw(server.port, b"GET / HTTP/1.1\r\nHost: x\r\n" + extra)
    assert reply == b"" or reply.startswith(b"HTTP/1.1 4")
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
    assert http_get(server.port, "/")[0] == 200


# -- who may open /ws on a non-loopback bind -----------------------------------------------

def _first_line(port: int, host: str, origin: str) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                      f"Sec-WebSocket-Version: 13\r\nOrigin: {origin}\r\n\r\n").encode())
        return int(sock.recv(4096).split()[1])


@pytest.mark.parametrize("allow", [[], ["http://teacher.local:8001"]])
def test_dns_rebinding_is_refused_on_a_wildcard_bind(allow):
    with ServerThread(host="0.0.0.0", allow_origins=allow) as server:
        port = server.port
        rebound = f"evil.example:{port}"
        assert _first_line(port, rebound, f"http://{rebound}") == 403
        assert _first_line(port, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}") == 101
        assert _first_line(port, f"localhost:{port}", f"http://localhost:{port}") == 101
        if allow:
            assert _first_line(port, rebound, allow[0]) == 101


# -- one port for every address ------------------------------------------------------------

def test_a_name_of_two_addresses_listens_on_one_port_for_both(monkeypatch):
    """As ``localhost`` is where it means ``::1`` and ``127.0.0.1`` (here it is IPv4 only): a
    name that resolves to two loopback addresses, each bound for real."""
    real = socket.getaddrinfo
    both = [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, 0))
            for address in ("127.0.0.1", "127.0.0.2")]

    def resolve(host, port, *args, **kwargs):
        if host == "two.localhost":
            return [(*info[:4], (info[4][0], port)) for info in both]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    with ServerThread(host="two.localhost") as server:
        ports = {sock.getsockname()[1] for sock in server.server._server.sockets}
        assert len(server.server._server.sockets) == 2 and ports == {server.port}
        for address in ("127.0.0.1", "127.0.0.2"):
            with socket.create_connection((address, server.port), timeout=3):
                pass


# -- the log -------------------------------------------------------------------------------

def test_the_log_says_which_code_the_server_sent_and_why(caplog):
    caplog.set_level(logging.INFO, logger="demo_server")
    with ServerThread(max_size=1024) as server, open_raw(server.port) as sock:
        sock.sendall(Frame(Opcode.TEXT, b"x" * 2000).serialize(mask=True))
        drain(sock, time.monotonic() + 5)
        deadline = time.monotonic() + 5
        while "left" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.05)
    left = [r.getMessage() for r in caplog.records if " left: " in r.getMessage()]
    assert left and "closed by the server: 1009" in left[0], left


def test_client_data_is_logged_clipped_with_its_length(server, caplog):
    caplog.set_level(logging.INFO, logger="demo_server")
    with connect(server.ws_url) as ws:
        ws.send(json.dumps({"event": "client_data", "data": "y" * 50_000}))
        assert server.received.wait_for(1, timeout=3)
    line = next(r.getMessage() for r in caplog.records if "client_data from" in r.getMessage())
    assert len(line) < 300 and "(50000 characters)" in line


# -- out of file descriptors ---------------------------------------------------------------

def test_out_of_descriptors_is_one_line_then_a_back_off_then_recovery():
    proc, port = launch()
    held: list[socket.socket] = []
    try:
        resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (64, 64))
        for _ in range(80):  # more than the server can accept: the rest wait in the backlog
            held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        logged = read_until(proc, r"cannot accept connections")
        time.sleep(3)  # unfixed: a traceback per accept attempt, thousands of lines
        for sock in held:
            sock.close()
        held.clear()
        logged += read_until(proc, r"accepting connections again")
        assert http_get(port, "/")[0] == 200
        # One line a shortage (one more if a descriptor freed for a moment meanwhile).
        assert "Traceback" not in logged and logged.count("cannot accept") <= 3, logged[:2000]
    finally:
        for sock in held:
            sock.close()
        proc.kill()
