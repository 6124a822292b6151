"""demo_server.capture on the real loopback, and dissection of what it captures.

Every test here captures live (root or CAP_NET_RAW), except the simulated non-root ones.
Servers are plain websockets servers on 127.0.0.1, port 0, in a thread; the last test uses
the demo server itself.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.extensions.permessage_deflate import (
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.frames import CloseCode, Opcode
from websockets.frames import Frame as WsFrame
from websockets.sync.client import connect
from websockets.sync.server import serve

from demo_server import ClientThread, Event, ServerThread
from demo_server import capture as capture_module
from demo_server.capture import (
    SAMPLE_PORT,
    CaptureUnavailable,
    capture,
    capture_or_sample,
    load_sample,
)
from demo_server.dissect import Direction, dissect

ROOT = Path(__file__).resolve().parent.parent
C2S, S2C = Direction.C2S, Direction.S2C



def can_capture() -> bool:
    try:
        capture(9).start().stop()
    except CaptureUnavailable:
        return False
    return True


live = pytest.mark.skipif(not can_capture(), reason="live capture needs root or CAP_NET_RAW")


def echo(ws):
    with contextlib.suppress(ConnectionClosed):
        for message in ws:
            ws.send(message)


@contextlib.contextmanager
def ws_server(handler=echo, host="127.0.0.1", **options):
    """A plain websockets server on ``host``, a free port, in a thread; yields the port.

    Compression is off unless asked for, as in the demo server.
    """
    options.setdefault("compression", None)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with serve(handler, sock=socket.create_server((host, 0), family=family), **options) as server:
        thread = threading.Thread(target=server.serve_forever, name="test-ws-server")
        thread.start()
        try:
            yield server.socket.getsockname()[1]
        finally:
            server.shutdown()
            thread.join(10)
            assert not thread.is_alive()


def ws_connect(port: int, host: str = "127.0.0.1", **options):
    """A websockets sync client, compression off unless asked for."""
    options.setdefault("compression", None)
    return connect(f"ws://{f'[{host}]' if ':' in host else host}:{port}/", **options)


def raw_session(port: int, writes: list[bytes], reply_ends_with: bytes) -> None:
    """Upgrade by hand, sendall each write, wait for the reply, close, read until EOF."""
    request = (f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(request)
        reply = b""
        while b"\r\n\r\n" not in reply:  # a client waits for the 101 before sending frames
            reply += sock.recv(65536) or pytest.fail("no handshake response")
        for data in writes:
            time.sleep(0.005)  # one write, one segment
            sock.sendall(data)
        while not reply.endswith(reply_ends_with):
            reply += sock.recv(1 << 20) or pytest.fail("the server closed early")
        sock.sendall(client(CLOSE))
        while sock.recv(65536):
            pass


def packet_key(pkt):
    """What tells two packets apart (a retransmission gets a new IP id)."""
    ip, tcp = pkt["IP"], pkt["TCP"]
    return ip.src, tcp.sport, ip.id, tcp.seq, tcp.ack, str(tcp.flags), len(tcp.payload)


def messages(conv, way=None):
    return [(m.direction, m.opcode, m.data) for m in conv.messages
            if way is None or m.direction is way]


def client(*frames: WsFrame) -> bytes:
    return b"".join(frame.serialize(mask=True) for frame in frames)


CLOSE = WsFrame(Opcode.CLOSE, CloseCode.NORMAL_CLOSURE.to_bytes(2, "big"))


# -- the capture itself -----------------------------------------------------------------------

@live
def test_listens_before_the_block_and_keeps_each_packet_once():
    with (ws_server() as port, capture(port) as cap,
          ws_connect(port) as ws):  # at once: the SYN must be seen
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
    assert cap.bpf == f"port {port}" and cap.drops == 0
    assert str(cap.packets[0]["TCP"].flags) == "S"
    assert set(collections.Counter(map(packet_key, cap)).values()) == {1}
    conv = dissect(cap, port)
    assert conv.warnings == []
    assert messages(conv)[:2] == [(C2S, Opcode.TEXT, b"hi"), (S2C, Opcode.TEXT, b"hi")]
    assert [s.flags for s in conv.segments][-1] == "A"  # drained up to the last ACK


@live
def test_without_the_fix_loopback_shows_every_packet_twice(monkeypatch):
    opened = capture_module._open_socket

    def keep_outgoing(iface, bpf):
        sock = opened(iface, bpf)
        sock.drop_outgoing = False
        return sock

    monkeypatch.setattr(capture_module, "_open_socket", keep_outgoing)
    with ws_server() as port, capture(port) as cap, ws_connect(port) as ws:
        ws.send("hi")
        ws.recv(timeout=5)
    assert set(collections.Counter(map(packet_key, cap)).values()) == {2}


@live
def test_64_kb_loopback_segments_are_captured_whole():
    big = random.Random(1).randbytes(1_000_000)
    with ws_server(max_size=None) as port:
        for _ in range(5):  # the kernel picks segment sizes: wait for a 64 KB one
            with capture(port) as cap:
                raw_session(port, [client(WsFrame(Opcode.BINARY, big))], big[-100:])
            if max(len(p) for p in cap) > 65_535:
                break
    assert max(len(p) for p in cap) > 65_535  # 64 KB of data with its headers, not cut
    conv = dissect(cap, port)
    assert conv.warnings == [] and cap.drops == 0
    assert messages(conv)[:2] == [(C2S, Opcode.BINARY, big), (S2C, Opcode.BINARY, big)]


@live
def test_filters_in_python_without_libpcap(monkeypatch):
    def no_libpcap(*args):
        raise ImportError("libpcap is not available")

    monkeypatch.setattr(capture_module, "compile_filter", no_libpcap)
    with ws_server() as port, ws_server() as other, capture(port) as cap:
        for target in (other, port):
            with ws_connect(target) as ws:
                ws.send("hi")
                ws.recv(timeout=5)
    assert cap.bpf is None
    assert all(port in (p["TCP"].sport, p["TCP"].dport) for p in cap)
    assert dissect(cap, port).warnings == []


@live
def test_ipv6_loopback():
    with (ws_server(host="::1") as port, capture(port) as cap,
          ws_connect(port, "::1") as ws):
        ws.send("over IPv6")
        ws.recv(timeout=5)
    conv = dissect(cap, port)
    assert conv.client[0] == "::1" and conv.warnings == []
    assert messages(conv)[0] == (C2S, Opcode.TEXT, b"over IPv6")


@live
def test_save_writes_a_pcap_that_dissects_the_same(tmp_path):
    with ws_server() as port, capture(port) as cap, ws_connect(port) as ws:
        ws.send("saved")
        ws.recv(timeout=5)
    path = cap.save(tmp_path / "saved.pcap")
    assert messages(dissect(path, port)) == messages(dissect(cap, port))


# -- without permission ------------------------------------------------------------------------

def refuse(iface, bpf):
    raise PermissionError(errno.EPERM, "Operation not permitted")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux advice")
def test_no_permission_is_one_clear_sentence(monkeypatch):
    monkeypatch.setattr(capture_module, "_open_socket", refuse)
    with pytest.raises(CaptureUnavailable) as info:
        capture(8001).start()
    message = str(info.value)
    assert isinstance(info.value, PermissionError)
    assert message.count(". ") == 0 and message.endswith(".")
    assert "Operation not permitted" in message and "run it as root" in message
    assert f"setcap cap_net_raw,cap_net_admin+eip {os.path.realpath(sys.executable)}" in message


def test_no_permission_falls_back_to_the_sample(monkeypatch, capsys):
    monkeypatch.setattr(capture_module, "_open_socket", refuse)
    with capture_or_sample(12345, deflate=True) as cap:
        pass
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Showing the bundled sample capture instead." in err
    assert cap.port == SAMPLE_PORT and cap.source.endswith("sample-deflate.pcap")
    assert len(cap) == len(load_sample(deflate=True))
    assert dissect(cap, cap.port).handshake.deflate is not None


@live  # as root: drop the capability to show what a reader without it sees
@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs util-linux setpriv")
def test_cli_without_cap_net_raw_says_why_and_exits_2(tmp_path):
    caps = "-net_raw,-net_admin"
    result = subprocess.run(
        ["setpriv", "--bounding-set", caps, "--inh-caps", caps, sys.executable, "-m",
         "demo_server.capture", "--port", "8001", "--seconds", "5", "--out",
         str(tmp_path / "x.pcap")],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "setcap" in result.stderr
    assert not (tmp_path / "x.pcap").exists()


# -- the capture CLI ---------------------------------------------------------------------------

@live
def test_cli_captures_until_ctrl_c(tmp_path):
    out = tmp_path / "cli.pcap"
    with ws_server() as port:
        proc = subprocess.Popen(
            [sys.executable, "-m", "demo_server.capture", "--port", str(port), "--seconds",
             "30", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, cwd=ROOT)
        try:
            assert "capturing TCP port" in proc.stdout.readline()  # listening from here on
            with ws_connect(port) as ws:
                ws.send("from the CLI")
                ws.recv(timeout=5)
            proc.send_signal(signal.SIGINT)
            stdout, stderr = proc.communicate(timeout=30)
        finally:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, stderr
    count = int(stdout.split()[0])
    conv = dissect(out, port)
    assert count == len(conv.segments) and conv.warnings == []
    assert messages(conv)[0] == (C2S, Opcode.TEXT, b"from the CLI")


@live
def test_cli_stops_after_the_given_seconds(tmp_path):
    out = tmp_path / "quiet.pcap"
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "demo_server.capture", "--port", "9", "--seconds", "0.3",
         "--out", str(out)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0 and "0 packets written" in result.stdout
    assert time.monotonic() - started < 30 and out.exists()


# -- dissecting what was captured --------------------------------------------------------------

@live
def test_coalesced_frames_in_one_segment():
    frames = client(WsFrame(Opcode.TEXT, b"one"), WsFrame(Opcode.PING, b"ping"),
                    WsFrame(Opcode.TEXT, b"two"))
    with ws_server() as port, capture(port) as cap:
        raw_session(port, [frames], b"two")
    conv = dissect(cap, port)
    assert conv.warnings == []
    c2s = [f for f in conv.frames if f.direction is C2S]
    assert len({f.packet for f in c2s[:3]}) == 1  # three frames came in one segment
    assert messages(conv, C2S) == [(C2S, Opcode.TEXT, b"one"), (C2S, Opcode.PING, b"ping"),
                                   (C2S, Opcode.TEXT, b"two"), (C2S, Opcode.CLOSE, b"\x03\xe8")]
    assert {(S2C, Opcode.TEXT, b"one"), (S2C, Opcode.PONG, b"ping")} <= set(messages(conv, S2C))


@live
def test_fragmented_message_with_a_ping_between_fragments():
    writes = [client(WsFrame(Opcode.TEXT, b"frag", fin=False)),
              client(WsFrame(Opcode.PING, b"meanwhile")),
              client(WsFrame(Opcode.CONT, b"mented", fin=True))]
    with ws_server() as port, capture(port) as cap:
        raw_session(port, writes, b"fragmented")
    conv = dissect(cap, port)
    assert conv.warnings == []
    c2s = [f for f in conv.frames if f.direction is C2S]
    assert [(f.opcode, f.fin) for f in c2s] == [(Opcode.TEXT, False), (Opcode.PING, True),
                                                (Opcode.CONT, True), (Opcode.CLOSE, True)]
    assert len({f.packet for f in c2s}) == 4
    assert messages(conv, C2S)[:2] == [(C2S, Opcode.PING, b"meanwhile"),
                                       (C2S, Opcode.TEXT, b"fragmented")]
    assert {(S2C, Opcode.PONG, b"meanwhile"), (S2C, Opcode.TEXT, b"fragmented")} <= set(
        messages(conv, S2C))


@live
def test_100_kb_frame_over_several_segments():
    big = random.Random(2).randbytes(100_000)
    with (ws_server(max_size=None) as port, capture(port) as cap,
          ws_connect(port, max_size=None) as ws):
        ws.send(big)
        assert ws.recv(timeout=5) == big
    conv = dissect(cap, port)
    assert conv.warnings == []
    for way in Direction:
        frame = next(f for f in conv.frames if f.direction is way)
        assert frame.payload_length == 100_000 and frame.length_bits == 64
        carried = [s for s in conv.segments if s.direction is way
                   and frame.offset <= s.seq < frame.offset + 100_000]
        assert len(carried) >= 2
        assert frame.payload == big


@live
def test_server_initiated_close():
    def hang_up(ws):
        ws.recv()
        ws.close(CloseCode.GOING_AWAY, "server shutting down")

    with (ws_server(hang_up) as port, capture(port) as cap,
          ws_connect(port) as ws):
        ws.send("bye?")
        with pytest.raises(ConnectionClosedOK):
            ws.recv(timeout=5)
    conv = dissect(cap, port)
    assert conv.warnings == []
    closes = [m for m in conv.messages if m.opcode is Opcode.CLOSE]
    assert [(m.direction, m.close_code, m.close_reason) for m in closes] == [
        (S2C, CloseCode.GOING_AWAY, "server shutting down"),
        (C2S, CloseCode.GOING_AWAY, "server shutting down")]
    fins = [s.direction for s in conv.segments if "F" in s.flags]
    assert fins[0] is S2C  # the server closes TCP first


def fragment_replies(ws):
    for message in ws:
        third = len(message) // 3
        ws.send([message[:third], message[third:2 * third], message[2 * third:]])


DEFLATE_CASES = {
    "default": ({"compression": "deflate"}, {"compression": "deflate"}),
    "no context takeover, small windows": (
        {"compression": None, "extensions": [ServerPerMessageDeflateFactory(
            server_no_context_takeover=True, client_no_context_takeover=True,
            server_max_window_bits=10, client_max_window_bits=11)]},
        {"compression": None, "extensions": [ClientPerMessageDeflateFactory(
            client_max_window_bits=True)]}),
}


@live
@pytest.mark.parametrize("case", DEFLATE_CASES)
def test_deflate_fragmented_and_not(case):
    server_options, client_options = DEFLATE_CASES[case]
    texts = [f"tick {i} " * 50 for i in range(3)]
    with (ws_server(fragment_replies, **server_options) as port, capture(port) as cap,
          ws_connect(port, **client_options) as ws):
        for text in texts:
            ws.send(text)
            assert ws.recv(timeout=5) == text
        ws.send([texts[0], texts[1]])  # fragmented and compressed from the client too
        assert ws.recv(timeout=5) == texts[0] + texts[1]
    conv = dissect(cap, port)
    assert conv.warnings == []
    if case != "default":
        deflate = conv.handshake.deflate
        assert deflate.server_no_context_takeover and deflate.client_no_context_takeover
        assert (deflate.server_max_window_bits, deflate.client_max_window_bits) == (10, 11)
    expected = [*texts, texts[0] + texts[1]]
    for way in Direction:
        data = [m for m in conv.messages if m.opcode is Opcode.TEXT and m.direction is way]
        assert [m.text for m in data] == expected and all(m.compressed for m in data)
    firsts = [f for f in conv.frames if f.opcode is Opcode.TEXT]
    assert all(f.rsv1 for f in firsts) and all(len(f.payload) < 500 for f in conv.frames)
    assert not any(f.rsv1 for f in conv.frames if f.opcode is Opcode.CONT)


@live
def test_twenty_captures_in_a_row_are_complete():
    """The bar: 100 KB each way, every byte reassembled in both directions, 20 times."""
    rng = random.Random(20)
    timings = []
    with ws_server(max_size=None) as port:
        for _ in range(20):
            payload = rng.randbytes(100_000)
            started = time.perf_counter()
            with (capture(port) as cap,
                  ws_connect(port, max_size=None) as ws):
                ws.send(payload)
                assert ws.recv(timeout=5) == payload
            timings.append(time.perf_counter() - started)
            conv = dissect(cap, port)
            assert conv.warnings == [] and cap.drops == 0
            assert messages(conv)[:2] == [(C2S, Opcode.BINARY, payload),
                                          (S2C, Opcode.BINARY, payload)]
            for way in Direction:  # every byte up to the last one seen, once
                last = max(s.seq + len(s.data) for s in conv.segments
                           if s.direction is way and s.data)
                assert len(conv.streams[way].data) == last
    print(f"20 captures: median {sorted(timings)[10] * 1000:.0f} ms, "
          f"max {max(timings) * 1000:.0f} ms each")


@live
def test_the_demo_server_ticks_and_client_data():
    with (ServerThread() as server, capture(server.port) as cap,
          ClientThread(server.ws_url) as client_thread):
        client_thread.send(Event.CLIENT_DATA, "hi")
        client_thread.next(Event.SECOND, timeout=5)
        port = server.port
    conv = dissect(cap, port)
    assert conv.warnings == [] and conv.handshake.request.path == "/ws"
    assert conv.handshake.accept_ok
    texts = [(m.direction, m.text) for m in conv.messages if m.opcode is Opcode.TEXT]
    assert (C2S, '{"event":"client_data","data":"hi"}') in texts
    assert any(way is S2C and '"event":"second"' in text for way, text in texts)
