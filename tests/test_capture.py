"""demo_server.capture on the real loopback, and dissection of what it captures.

Every test here captures live (root or CAP_NET_RAW; dumpcap for its backend), except those
that feed the capture the exceptions scapy raises on other OSes. Servers are plain
websockets servers on 127.0.0.1, port 0, in a thread; some tests use the demo server
itself. test_capture_unprivileged.py captures as a user without those rights.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import itertools
import json
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from scapy.config import conf
from scapy.error import Scapy_Exception
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
    SAMPLES,
    CaptureUnavailable,
    capture,
    capture_or_sample,
    load_sample,
)
from demo_server.dissect import Direction, conversations, dissect
from demo_server.sensor import Sensor
from demo_server.sse import EventParser

ROOT = Path(__file__).resolve().parent.parent
C2S, S2C = Direction.C2S, Direction.S2C



def can_capture(backend: str) -> bool:
    try:
        capture(9, backend=backend).start().stop()
    except CaptureUnavailable:
        return False
    return True


live = pytest.mark.skipif(not can_capture("socket"),
                          reason="live capture needs root or CAP_NET_RAW")
with_dumpcap = pytest.mark.skipif(not can_capture("dumpcap"),
                                  reason="needs Wireshark's dumpcap, permitted to capture")
BACKENDS = [pytest.param("socket", marks=live), pytest.param("dumpcap", marks=with_dumpcap)]


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

@pytest.mark.parametrize("backend", BACKENDS)
def test_listens_before_the_block_and_keeps_each_packet_once(backend):
    with (ws_server() as port, capture(port, backend=backend) as cap,
          ws_connect(port) as ws):  # at once: the SYN must be seen
        ws.send("hi")
        assert ws.recv(timeout=5) == "hi"
    assert cap.backend == backend and cap.bpf == f"port {port}" and cap.drops == 0
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


@pytest.mark.parametrize("backend", BACKENDS)
def test_64_kb_loopback_segments_are_captured_whole(backend):
    big = random.Random(1).randbytes(1_000_000)
    with ws_server(max_size=None) as port:
        for _ in range(5):  # the kernel picks segment sizes: wait for a 64 KB one
            with capture(port, backend=backend) as cap:
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


# -- every way a capture can fail: CaptureUnavailable, with advice for the OS -----------------

def failing(exc: Exception):
    """An opener that raises ``exc``, as scapy raises it on another OS."""
    def open_socket(iface, bpf):
        raise exc
    return open_socket


def one_sentence(exc: CaptureUnavailable) -> str:
    message = str(exc)
    assert isinstance(exc, PermissionError) and "\n" not in message
    assert message.startswith("Live capture is not possible: ") and message.endswith(".")
    assert message.count(". ") == 0, message
    return message


# scapy 2.8's exceptions, word for word: macOS from scapy/arch/bpf/core.py (get_dev_bpf) and
# supersocket.py; Windows from scapy/arch/windows/__init__.py (_NotAvailableSocket) and
# arch/libpcap.py (pcap_activate's PCAP_ERROR_PERM_DENIED), interfaces.py (resolve_iface).
NPF_LOOPBACK = r"\Device\NPF_Loopback"  # scapy's conf.loopback_name with Npcap
OS_FAILURES = {
    "macos-bpf-permission": ("darwin", "lo0", Scapy_Exception(
        "Permission denied: could not open /dev/bpf0. Make sure to be running Scapy as root !"
        " (sudo)"), "this process may not read the BPF devices /dev/bpf*", "ChmodBPF"),
    "macos-no-bpf-device": ("darwin", "lo0", Scapy_Exception(
        "No /dev/bpf handle is available !"), "scapy could not capture on lo0", "ChmodBPF"),
    "macos-no-such-interface": ("darwin", "lo0", Scapy_Exception("BIOCSETIF failed on lo0"),
                                "no loopback interface lo0 was found", "interfaces found"),
    "windows-no-npcap": ("win32", NPF_LOOPBACK, RuntimeError(
        "Sniffing and sending packets is not available at layer 2: winpcap is not installed. "
        "You may use conf.L3socket or conf.L3socket6 to access layer 3"),
        "Npcap is not installed", '"Support loopback traffic" ticked'),
    "windows-npcap-for-administrators": ("win32", NPF_LOOPBACK, OSError(
        NPF_LOOPBACK + ": You don't have permission to perform this capture on that device\n"
        "(Error opening adapter: Access is denied.  (5))"),
        "Npcap refused to open", "run as administrator"),
    "windows-no-loopback-adapter": ("win32", NPF_LOOPBACK, ValueError(
        f"Interface '{NPF_LOOPBACK}' not found !"), "no loopback interface", "npcap.com"),
    "linux-raw-socket": ("linux", "lo", PermissionError(errno.EPERM, "Operation not permitted"),
                         "may not open a raw socket on lo (Operation not permitted)",
                         "apt install wireshark-common"),
}


@pytest.mark.parametrize("case", OS_FAILURES)
def test_each_os_failure_is_one_sentence_with_that_os_advice(case, monkeypatch):
    platform, loopback, exc, why, advice = OS_FAILURES[case]
    monkeypatch.setattr(sys, "platform", platform)
    monkeypatch.setattr(conf, "loopback_name", loopback)
    monkeypatch.setattr(capture_module, "_open_socket", failing(exc))
    with pytest.raises(CaptureUnavailable) as info:
        capture(8001, backend="socket").start()
    message = one_sentence(info.value)
    assert why in message and advice in message


def test_real_missing_interface_names_those_that_exist():
    for backend in ("socket", "dumpcap"):  # scapy's ValueError; dumpcap's words (or absence)
        with pytest.raises(CaptureUnavailable) as info:
            capture(8001, iface="nosuch0", backend=backend).start()
        message = one_sentence(info.value)
        if backend == "dumpcap" and not shutil.which("dumpcap"):
            assert "Wireshark's dumpcap is not installed" in message
            continue
        assert "there is no interface nosuch0" in message
        assert "pass one of the interfaces found here: " in message and " lo" in message


def test_real_missing_loopback(monkeypatch):
    monkeypatch.setattr(conf, "loopback_name", "lo-gone")
    with pytest.raises(CaptureUnavailable) as info:
        capture(8001).start()
    assert "no loopback interface lo-gone was found" in one_sentence(info.value)


def test_without_dumpcap_on_path_both_reasons(monkeypatch):
    monkeypatch.setattr(capture_module, "_open_socket",
                        failing(PermissionError(errno.EPERM, "Operation not permitted")))
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(CaptureUnavailable) as info:
        capture(8001).start()
    message = one_sentence(info.value)
    assert "raw socket on lo (Operation not permitted), and Wireshark's dumpcap is not " \
           "installed; to capture without root" in message


@live
def test_libpcap_socket_and_without_libpcap_a_python_filter(monkeypatch):
    """The macOS / Windows path, with scapy's real libpcap socket on Linux."""
    monkeypatch.setattr(capture_module, "_open_socket", capture_module._open_libpcap_socket)
    monkeypatch.setattr(conf, "use_pcap", True)  # scapy's libpcap sockets; undone after
    libpcap_socket = conf.L2listen
    assert libpcap_socket.__name__ == "L2pcapListenSocket"
    bpfs = []
    for missing_libpcap in (False, True):
        if missing_libpcap:  # what scapy raises when libpcap cannot compile the filter
            monkeypatch.setattr(libpcap_socket, "__init__", refuse_a_filter(
                libpcap_socket.__init__))
        with ws_server() as port, capture(port) as cap, ws_connect(port) as ws:
            ws.send("hi")
            ws.recv(timeout=5)
        bpfs.append(cap.bpf and cap.bpf.replace(str(port), "PORT"))
        conv = dissect(cap, port)
        assert conv.warnings == [] and messages(conv)[0] == (C2S, Opcode.TEXT, b"hi")
    assert bpfs == ["port PORT", None]


def refuse_a_filter(init):
    def without_filter(self, *args, filter=None, **kwargs):
        if filter:
            raise Scapy_Exception("Cannot set filter: libpcap is not available. Cannot compile "
                                  "filter !")
        init(self, *args, **kwargs)
    return without_filter


def test_no_permission_falls_back_to_the_sample(monkeypatch, capsys):
    monkeypatch.setattr(capture_module, "_open_socket",
                        failing(PermissionError(errno.EPERM, "Operation not permitted")))
    monkeypatch.setenv("PATH", "/nonexistent")  # no dumpcap either
    with capture_or_sample(12345, deflate=True) as cap:
        pass
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Showing the bundled sample capture instead." in err
    assert cap.port == SAMPLE_PORT and cap.source.endswith("sample-deflate.pcap")
    assert cap.backend == "sample" and len(cap) == len(load_sample(deflate=True))
    assert dissect(cap, cap.port).handshake.deflate is not None


def test_forced_sample_and_every_sample_name(capsys):
    with capture_or_sample(12345, sample="observers", backend="sample") as cap:
        pass
    assert capsys.readouterr().err == "" and cap.source.endswith("sample-observers.pcap")
    assert all(len(load_sample(name)) > 10 for name in SAMPLES)
    with pytest.raises(ValueError, match="no sample named 'nope': choose one of handshake"):
        load_sample("nope")
    with pytest.raises(ValueError, match="backend must be one of socket, dumpcap"):
        capture(8001, backend="sample")


@live  # as root: drop the capability to show what a reader without it sees
@pytest.mark.skipif(not shutil.which("setpriv"), reason="needs util-linux setpriv")
@pytest.mark.parametrize("backend", [["--backend", "socket"], []])
def test_cli_as_root_without_cap_net_raw_says_why_and_exits_2(tmp_path, backend):
    """Root in a container started without CAP_NET_RAW: "run it as root", or "let your user
    run dumpcap", would not help; giving the capability back would."""
    caps = "-net_raw,-net_admin"
    result = subprocess.run(
        ["setpriv", "--bounding-set", caps, "--inh-caps", caps, sys.executable, "-m",
         "demo_server.capture", "--port", "8001", "--seconds", "5", "--out",
         str(tmp_path / "x.pcap"), *backend],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert "this process may not open a raw socket on lo (Operation not permitted)" in \
        result.stderr
    assert "runs as root but without the CAP_NET_RAW capability" in result.stderr
    assert "docker run --cap-add=NET_RAW" in result.stderr
    assert "wireshark-common" not in result.stderr and "this user" not in result.stderr
    assert not (tmp_path / "x.pcap").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "0"], "argument --port: expected a TCP port from 1 to 65535, got '0'"),
    (["--port", "-1"], "argument --port: expected a TCP port from 1 to 65535, got '-1'"),
    (["--port", "70000"], "argument --port: expected a TCP port from 1 to 65535, got '70000'"),
    (["--port", "http"], "argument --port: expected a TCP port from 1 to 65535, got 'http'"),
    (["--seconds", "nan"], "argument --seconds: expected seconds from 0 to 86400 (a day), "
                           "got 'nan'"),
    (["--seconds", "inf"], "argument --seconds: expected seconds from 0 to 86400"),
    (["--seconds", "1e10"], "argument --seconds: expected seconds from 0 to 86400"),
    (["--seconds", "-1"], "argument --seconds: expected seconds from 0 to 86400"),
    (["--out", "/nonexistent/x.pcap"], "argument --out: cannot write /nonexistent/x.pcap: "
                                       "No such file or directory"),
    (["--out", "."], "argument --out: cannot write .: Is a directory"),
])
def test_cli_bad_arguments_exit_2_with_one_line_before_capturing(tmp_path, args, message):
    """Before: tracebacks (port 0 after the whole capture, nan and inf from time.sleep),
    and an unwritable --out only after capturing, the capture lost."""
    given = {"--port": "9", "--seconds": "0.2", "--out": str(tmp_path / "x.pcap")}
    given.update(zip(args[::2], args[1::2], strict=True))
    result = subprocess.run(
        [sys.executable, "-m", "demo_server.capture", *itertools.chain(*given.items())],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""  # "capturing ..." never printed
    assert result.stderr.startswith(f"python -m demo_server.capture: error: {message}")
    assert result.stderr.count("\n") == 1 and result.stderr.endswith("\n")
    assert list(tmp_path.iterdir()) == []


def test_cli_with_a_missing_interface_says_why_and_exits_2(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "demo_server.capture", "--port", "8001", "--seconds", "5",
         "--out", str(tmp_path / "x.pcap"), "--iface", "nosuch0"],
        capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "there is no interface nosuch0" in result.stderr


# -- the capture CLI ---------------------------------------------------------------------------

@pytest.mark.parametrize("backend", BACKENDS)
def test_cli_captures_until_ctrl_c(tmp_path, backend):
    out = tmp_path / "cli.pcap"
    with ws_server() as port:
        proc = subprocess.Popen(
            [sys.executable, "-m", "demo_server.capture", "--port", str(port), "--seconds",
             "30", "--out", str(out), "--backend", backend], stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, cwd=ROOT)
        try:
            line = proc.stdout.readline()  # listening from here on
            assert f"capturing TCP port {port} on lo with {backend}" in line
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
def test_cli_saves_what_it_got_on_sigterm_even_when_sigint_was_ignored(tmp_path):
    """A shell starts background commands with SIGINT ignored; Python keeps that, so the CLI
    sets its own handlers: SIGINT and SIGTERM both end the capture and save it."""
    out = tmp_path / "term.pcap"
    for sig in (signal.SIGINT, signal.SIGTERM):
        proc = subprocess.Popen(
            [sys.executable, "-m", "demo_server.capture", "--port", "9", "--seconds", "30",
             "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            cwd=ROOT, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
        try:
            assert "capturing TCP port 9" in proc.stdout.readline()
            proc.send_signal(sig)
            stdout, _ = proc.communicate(timeout=10)
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == 0 and f"packets written to {out}" in stdout


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


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_demo_server_ticks_and_client_data(backend):
    with (ServerThread() as server, capture(server.port, backend=backend) as cap,
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


# -- notebook 07's samples -----------------------------------------------------------------

SCRIPT = ROOT / "scripts" / "make_sample_capture.py"


def test_synthesized_samples_are_what_the_script_makes(tmp_path):
    subprocess.run([sys.executable, str(SCRIPT), "--out-dir", str(tmp_path)], check=True,
                   capture_output=True, timeout=60, cwd=ROOT)
    made = sorted(p.name for p in tmp_path.iterdir())
    assert made == ["sample-deflate.pcap", "sample-frames.pcap", "sample-observers.pcap",
                    "sample.pcap"]
    for name in made:
        bundled = ROOT / "demo_server" / "data" / name
        assert (tmp_path / name).read_bytes() == bundled.read_bytes(), f"re-run the script: {name}"


def observers_sample() -> tuple[dict[str, list], list]:
    """The observers sample's connections to 8001 by ``client=`` (or path), and to 8002."""
    packets = load_sample("observers").packets
    by_client = collections.defaultdict(list)
    for conv in conversations(packets, SAMPLE_PORT):
        assert conv.handshake is not None
        target = urlsplit(conv.handshake.request.path)
        by_client[parse_qs(target.query).get("client", [target.path])[0]].append(conv)
    return by_client, conversations(packets, 8002)


def test_the_observers_sample_holds_five_observers_of_the_real_sensor_at_once():
    sensor = Sensor()
    by_client, (stream,) = observers_sample()
    assert sorted(by_client) == ["/ws/sensor", "long-poll", "poll-10hz", "poll-1hz"]
    first_packet = min(c.segments[0].time for convs in by_client.values() for c in convs)
    start = first_packet  # every observer starts at 00:00:10 and watches 10 s
    for name, polls in (("poll-1hz", 10), ("poll-10hz", 100)):
        convs = by_client[name]
        assert len(convs) == polls and len({c.client for c in convs}) == polls
        for conv in convs:
            request, answer = (conv.streams[way].data for way in Direction)
            assert request.startswith(f"GET /sensor?client={name} HTTP/1.1\r\n".encode())
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK") and b"Cache-Control: no-store" in head
            reading = json.loads(body)
            assert reading["value"] == sensor.value_at(reading["t"])
            assert [s.flags for s in conv.segments][-3:] == ["FA", "FA", "A"]  # server first
            assert conv.segments[-3].direction is S2C
        assert convs[0].segments[0].time == start
        assert convs[-1].segments[0].time - start == pytest.approx(10 - 10 / polls)
    (push,) = by_client["/ws/sensor"]
    assert push.warnings == [] and push.segments[0].time == start
    events = [json.loads(m.text)["data"] for m in push.messages if m.opcode is Opcode.TEXT]
    changes = list(itertools.takewhile(lambda c: c[0] < start + 9.998, sensor.changes(start)))
    assert [(e["t"], e["value"]) for e in events[1:]] == [
        (round(when, 6), value) for when, value in changes]
    assert events[0]["value"] == sensor.value_at(events[0]["t"])
    assert len(sensor.spikes(start, start + 10)) >= 3
    assert [m.close_code for m in push.messages if m.opcode is Opcode.CLOSE] == [1000, 1000]
    # Server-Sent Events on 8002: the same events, as data: lines
    request, body = (stream.streams[way].data for way in Direction)
    assert request.startswith(b"GET /sensor/events HTTP/1.1\r\n")
    head, _, body = body.partition(b"\r\n\r\n")
    assert b"Content-Type: text/event-stream" in head and body.startswith(b"retry: 2000\n")
    parser = EventParser()
    assert [json.loads(e.data)["data"] for e in parser.feed(body)] == events
    assert parser.retry_ms == 2000 and stream.segments[0].time == start
    # long-polling: each request names the t of the answer before; each answer is a change
    polls = by_client["long-poll"]
    answers = [json.loads(c.streams[S2C].data.partition(b"\r\n\r\n")[2]) for c in polls[:-1]]
    assert [(a["t"], a["value"]) for a in answers[1:]] == [
        (round(when, 6), value) for when, value in changes]
    afters = [parse_qs(urlsplit(c.handshake.request.path).query).get("after") for c in polls]
    assert afters == [None] + [[f"{a['t']:.6f}"] for a in answers]
    assert polls[-1].streams[S2C].data == b""  # still held at the end, given up by the client
