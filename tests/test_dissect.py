"""demo_server.dissect offline: golden vectors, frames from websockets, synthetic TCP, CLI, fuzz.

Live captures made on loopback are dissected in test_capture.py.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, CloseCode, Opcode
from websockets.frames import Frame as WsFrame
from websockets.streams import StreamReader
from websockets.utils import accept_key as library_accept_key
from websockets.utils import apply_mask

from demo_server.capture import SAMPLE_PORT, load_sample
from demo_server.dissect import (
    Direction,
    DissectError,
    accept_key,
    dissect,
    parse_header,
    unmask,
)

from .scripts import make_sample

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_sample_capture.py"
TcpFlow, encode_frame = make_sample.TcpFlow, make_sample.encode_frame
C2S, S2C = Direction.C2S, Direction.S2C
RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
MASK = bytes.fromhex("37fa213d")  # RFC 6455, section 5.7


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "demo_server.dissect", *args],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)


def handshake_bytes(extensions: str | None = None) -> tuple[bytes, bytes]:
    """A client request with RFC 6455's key and the server's 101 (optionally deflate)."""
    offer = f"Sec-WebSocket-Extensions: {extensions}\r\n" if extensions else ""
    request = (f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8001\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {RFC_KEY}\r\n"
               f"Sec-WebSocket-Version: 13\r\n{offer}\r\n").encode()
    response = (f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {RFC_ACCEPT}\r\n{offer}\r\n"
                ).encode()
    return request, response


def flow_with(chunks: list[tuple[Direction, bytes]], extensions: str | None = None
              ) -> Any:  # a make_sample.TcpFlow
    """A synthetic connection: handshake, then each chunk in its own segment, then FINs."""
    flow = TcpFlow()
    flow.open(1000.0)
    request, response = handshake_bytes(extensions)
    flow.send(C2S, request, 1000.1)
    flow.send(S2C, response, 1000.2)
    for i, (way, data) in enumerate(chunks):
        flow.send(way, data, 1001.0 + i / 100)
    flow.close(S2C, 1002.0)
    return flow


def library_parse(data: bytes, *, mask: bool) -> WsFrame:
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = WsFrame.parse(reader.read_exact, mask=mask)
    with pytest.raises(StopIteration) as done:
        next(parser)
    return done.value.value


# -- golden vectors ---------------------------------------------------------------------------

def test_accept_key_of_rfc_6455_example():
    assert accept_key(RFC_KEY) == RFC_ACCEPT


def test_accept_key_agrees_with_websockets():
    rng = random.Random(6455)
    for _ in range(50):
        key = rng.randbytes(16).hex()
        assert accept_key(key) == library_accept_key(key)


RFC_FRAMES = [  # RFC 6455, section 5.7: (bytes, fin, opcode, masked, length bits, payload)
    ("810548656c6c6f", True, Opcode.TEXT, False, 7, b"Hello"),
    ("818537fa213d7f9f4d5158", True, Opcode.TEXT, True, 7, b"Hello"),
    ("010348656c", False, Opcode.TEXT, False, 7, b"Hel"),
    ("80026c6f", True, Opcode.CONT, False, 7, b"lo"),
    ("890548656c6c6f", True, Opcode.PING, False, 7, b"Hello"),
    ("8a8537fa213d7f9f4d5158", True, Opcode.PONG, True, 7, b"Hello"),
    ("827e0100" + "00" * 256, True, Opcode.BINARY, False, 16, bytes(256)),
    ("827f0000000000010000" + "00" * 65536, True, Opcode.BINARY, False, 64, bytes(65536)),
]


@pytest.mark.parametrize("wire, fin, opcode, masked, bits, payload", RFC_FRAMES)
def test_rfc_6455_example_frames(wire, fin, opcode, masked, bits, payload):
    data = bytes.fromhex(wire)
    header = parse_header(data)
    assert (header.fin, header.opcode, header.masked, header.length_bits) == (
        fin, opcode, masked, bits)
    assert not (header.rsv1 or header.rsv2 or header.rsv3)
    assert header.payload_length == len(payload)
    assert header.masking_key == (MASK if masked else None)
    body = data[len(header.header_bytes):]
    assert (unmask(body, header.masking_key) if masked else body) == payload


@pytest.mark.parametrize("first, rsv", [(0xC1, (1, 0, 0)), (0xA1, (0, 1, 0)), (0x91, (0, 0, 1)),
                                        (0xF1, (1, 1, 1))])
def test_reserved_bits_are_read_one_by_one(first, rsv):
    header = parse_header(bytes([first, 0]))
    assert (header.rsv1, header.rsv2, header.rsv3) == tuple(map(bool, rsv))
    assert header.opcode is Opcode.TEXT


def test_reserved_opcode_is_kept_as_an_int():
    header = parse_header(bytes([0x83, 0]))
    assert header.opcode == 3 and not isinstance(header.opcode, Opcode)
    assert header.opcode_name == "0x3?"


LENGTHS = [0, 1, 125, 126, 127, 65535, 65536, 100_000]


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("opcode", list(Opcode))
def test_header_parser_agrees_with_websockets(opcode, masked):
    lengths = LENGTHS if opcode < Opcode.CLOSE else [0, 1, 2, 125]
    for length in lengths:
        payload = (1000).to_bytes(2, "big") if opcode is Opcode.CLOSE and length else b""
        payload = (payload + bytes(range(256)) * (length // 256 + 1))[:length]
        for fin in (True, False) if opcode < Opcode.CLOSE else (True,):
            wire = WsFrame(opcode, payload, fin=fin).serialize(mask=masked)
            ours, theirs = parse_header(wire), library_parse(wire, mask=masked)
            assert (ours.opcode, ours.fin, ours.masked, ours.payload_length) == (
                theirs.opcode, theirs.fin, masked, len(theirs.data))
            assert ours.length_bits == (7 if length < 126 else 16 if length < 65536 else 64)
            body = wire[len(ours.header_bytes):]
            assert (unmask(body, ours.masking_key) if masked else body) == theirs.data
            assert len(ours.header_bytes) == 2 + {7: 0, 16: 2, 64: 8}[ours.length_bits] + (
                4 if masked else 0)
            for cut in range(len(ours.header_bytes)):
                assert parse_header(wire[:cut]) is None  # too short: no guess


def test_unmask_is_xor_with_the_key_and_its_own_inverse():
    rng = random.Random(5)
    for length in (0, 1, 3, 4, 5, 1000):
        data, key = rng.randbytes(length), rng.randbytes(4)
        assert unmask(data, key) == apply_mask(data, key)
        assert unmask(unmask(data, key), key) == data


def test_sample_script_frames_match_websockets():
    for opcode, payload in ((Opcode.TEXT, b"hi"), (Opcode.BINARY, bytes(300)),
                            (Opcode.BINARY, bytes(70_000)), (Opcode.PING, b"")):
        assert encode_frame(opcode, payload) == WsFrame(opcode, payload).serialize(mask=False)
        masked = encode_frame(opcode, payload, key=MASK)
        assert library_parse(masked, mask=True) == WsFrame(opcode, payload)


# -- the bundled samples -----------------------------------------------------------------------

def test_sample_is_what_the_script_makes(tmp_path):
    subprocess.run([sys.executable, str(SCRIPT), "--out-dir", str(tmp_path)], check=True,
                   capture_output=True, timeout=60, cwd=ROOT)
    for name in ("sample.pcap", "sample-deflate.pcap"):
        bundled = ROOT / "demo_server" / "data" / name
        assert (tmp_path / name).read_bytes() == bundled.read_bytes(), f"re-run the script: {name}"


def test_sample_dissects_like_the_script_says():
    conv = dissect(load_sample(), SAMPLE_PORT)
    assert conv.warnings == []
    shake = conv.handshake
    assert shake.request.path == "/ws" and shake.response.status_code == 101
    assert shake.accept_expected == RFC_ACCEPT and shake.accept_ok
    assert shake.deflate is None
    assert [(f.direction, f.opcode, f.masked) for f in conv.frames] == [
        (S2C, Opcode.TEXT, False), (C2S, Opcode.TEXT, True), (S2C, Opcode.TEXT, False),
        (C2S, Opcode.PING, True), (S2C, Opcode.PONG, False), (S2C, Opcode.TEXT, False),
        (C2S, Opcode.CLOSE, True), (S2C, Opcode.CLOSE, False)]
    assert [f.masking_key for f in conv.frames if f.masked] == make_sample.KEYS
    texts = [json.loads(m.text) for m in conv.messages if m.opcode is Opcode.TEXT]
    assert [t["data"]["second"] for t in texts if t["event"] == "second"] == [1, 2, 3]
    assert {"event": "client_data", "data": "hi"} in texts
    pings = [m.data for m in conv.messages if m.opcode in (Opcode.PING, Opcode.PONG)]
    assert pings == [b"are you there?"] * 2
    closes = [(m.direction, m.close_code, m.close_reason) for m in conv.messages
              if m.opcode is Opcode.CLOSE]
    assert closes == [(C2S, CloseCode.NORMAL_CLOSURE, "bye"), (S2C, CloseCode.NORMAL_CLOSURE,
                                                                "bye")]


def test_deflate_sample_is_compressed_on_the_wire_and_inflated():
    plain, deflated = (dissect(load_sample(deflate=d), SAMPLE_PORT) for d in (False, True))
    assert deflated.warnings == []
    assert deflated.handshake.deflate.server_max_window_bits == 12
    assert deflated.handshake.deflate.client_max_window_bits == 12
    data = [f for f in deflated.frames if f.opcode is Opcode.TEXT]
    assert all(f.rsv1 for f in data) and not any(b'"event"' in f.payload for f in data)
    assert len(data[2].payload) < 20  # context takeover: the second tick reuses the first
    assert [(m.opcode, m.data) for m in deflated.messages] == [
        (m.opcode, m.data) for m in plain.messages]
    assert [m.compressed for m in deflated.messages] == [
        m.opcode is Opcode.TEXT for m in plain.messages]


# -- reassembly on synthetic TCP ---------------------------------------------------------------

def chunks_of_many_frames(big: bool = True) -> list[tuple[Direction, bytes]]:
    """Every opcode, 7/16/64-bit lengths (``big``), a fragmented message with a ping between."""
    blob = random.Random(17).randbytes(100_000 if big else 200)
    close = WsFrame(Opcode.CLOSE, Close(CloseCode.GOING_AWAY, "tab closed").serialize())
    frames = [
        (C2S, WsFrame(Opcode.TEXT, b"Hel", fin=False)), (C2S, WsFrame(Opcode.PING, b"between")),
        (C2S, WsFrame(Opcode.CONT, b"lo", fin=True)), (S2C, WsFrame(Opcode.PONG, b"between")),
        (C2S, WsFrame(Opcode.BINARY, blob)), (C2S, WsFrame(Opcode.BINARY, bytes(300))),
        (S2C, WsFrame(Opcode.TEXT, "é中".encode() * 50)),
        (S2C, WsFrame(Opcode.BINARY, blob[:70_000])), (C2S, close), (S2C, close),
    ]
    return [(way, frame.serialize(mask=way is C2S)) for way, frame in frames]


def summary(conv):
    return [(m.direction, m.opcode, m.data, m.close_code, m.close_reason) for m in conv.messages]


def per_direction(conv):
    """Messages of each direction, in order (reordering packets may interleave them anew)."""
    return {way: [m for m in summary(conv) if m[0] is way] for way in Direction}


@pytest.fixture(scope="module")
def baseline():
    conv = dissect(flow_with(chunks_of_many_frames()).packets, 8001)
    assert conv.warnings == []
    return conv


def test_every_opcode_and_length_in_a_conversation(baseline):
    frames = baseline.frames
    assert {f.opcode for f in frames} == set(Opcode)
    assert {f.length_bits for f in frames} == {7, 16, 64}
    assert all(f.masked == (f.direction is C2S) for f in frames)
    messages = summary(baseline)
    assert messages[0] == (C2S, Opcode.PING, b"between", None, None)  # done before "Hello"
    assert messages[1] == (C2S, Opcode.TEXT, b"Hello", None, None)
    assert baseline.messages[1].frames == (0, 2)  # fragments joined, the ping between skipped
    assert (S2C, Opcode.TEXT, "é中".encode() * 50, None, None) in messages
    assert messages[-2:] == [(C2S, Opcode.CLOSE, Close(1001, "tab closed").serialize(),
                              CloseCode.GOING_AWAY, "tab closed"),
                             (S2C, Opcode.CLOSE, Close(1001, "tab closed").serialize(),
                              CloseCode.GOING_AWAY, "tab closed")]


def resegment(packets, size):
    """Cut every data segment into pieces of ``size`` bytes (one frame over many segments)."""
    out = []
    for pkt in packets:
        data = bytes(pkt["TCP"].payload)
        if len(data) <= size:
            out.append(pkt)
            continue
        for start in range(0, len(data), size):
            piece = pkt.copy()
            piece["TCP"].remove_payload()
            piece["TCP"].seq = (pkt["TCP"].seq + start) % 2**32
            piece["IP"].len = None
            out.append(piece / data[start:start + size])
    return out


def coalesce(chunks):
    """All chunks of a direction run in one segment: many frames per segment."""
    merged: list[tuple[Direction, bytes]] = []
    for way, data in chunks:
        if merged and merged[-1][0] is way:
            merged[-1] = (way, merged[-1][1] + data)
        else:
            merged.append((way, data))
    return merged


def test_frames_coalesced_in_one_segment(baseline):
    conv = dissect(flow_with(coalesce(chunks_of_many_frames())).packets, 8001)
    assert conv.warnings == [] and summary(conv) == summary(baseline)
    assert len({f.packet for f in conv.frames}) < len(conv.frames)


@pytest.mark.parametrize("size, big", [(1, False), (3, False), (1000, True), (30_000, True)])
def test_frames_spanning_segments(size, big):
    chunks = chunks_of_many_frames(big)
    conv = dissect(resegment(flow_with(chunks).packets, size), 8001)
    assert conv.warnings == [] and summary(conv) == summary(dissect(flow_with(chunks).packets,
                                                                     8001))
    longest = max(conv.frames, key=lambda f: f.payload_length)
    started = conv.streams[longest.direction].delivered_by(longest.offset + 1)[0]
    assert longest.packet > started  # completed by a later segment than it started in


def test_retransmitted_duplicated_and_out_of_order_segments(baseline):
    packets = resegment(flow_with(chunks_of_many_frames()).packets, 1000)
    rng = random.Random(3)
    data = [i for i, p in enumerate(packets) if len(p["TCP"].payload)]
    again = [packets[i] for i in rng.sample(data, 20)]  # retransmissions, later on
    doubled = [copy for p in packets + again for copy in (p, p)]  # loopback copies
    head, tail = doubled[:20], doubled[20:]
    rng.shuffle(tail)  # out of order (the handshake stays first)
    conv = dissect(head + tail, 8001)
    assert conv.warnings == [] and per_direction(conv) == per_direction(baseline)


def test_overlapping_retransmission_keeps_bytes_once(baseline):
    packets = flow_with(chunks_of_many_frames()).packets
    conv = dissect(resegment(packets, 700) + resegment(packets, 500), 8001)
    assert conv.warnings == [] and per_direction(conv) == per_direction(baseline)


def test_keepalive_probe_before_the_stream_is_not_a_hole(baseline):
    flow = flow_with(chunks_of_many_frames())
    probe = flow.packets[2].copy()  # the client's first ACK, at stream offset 0
    probe["TCP"].seq -= 1  # a keep-alive probe: one garbage byte already acknowledged
    probe["IP"].len = None
    conv = dissect([*flow.packets[:3], probe / b"\x00", *flow.packets[3:]], 8001)
    assert conv.warnings == [] and summary(conv) == summary(baseline)
    assert conv.segments[3].seq == -1


def test_a_lost_segment_is_reported_and_frames_before_it_are_kept():
    packets = resegment(flow_with(chunks_of_many_frames()).packets, 1000)
    big_piece = max(i for i, p in enumerate(packets) if len(p["TCP"].payload) == 1000)
    conv = dissect(packets[:big_piece] + packets[big_piece + 1:], 8001)
    assert any("never captured" in w for w in conv.warnings)
    assert any("ends inside a frame" in w for w in conv.warnings)
    assert conv.messages and conv.messages[0].opcode is Opcode.PING


def test_truncated_packets_are_reported():
    packets = flow_with(chunks_of_many_frames()).packets
    victim = next(i for i, p in enumerate(packets) if len(p["TCP"].payload) > 60_000)
    raw = bytes(packets[victim])
    cut = packets[victim].__class__(raw[:30_000])  # what a small snaplen keeps
    conv = dissect(packets[:victim] + [cut] + packets[victim + 1:], 8001)
    assert any(f"packet #{victim + 1} was cut short" in w for w in conv.warnings)


# -- handshakes and protocol problems ----------------------------------------------------------

def test_plain_http_is_not_websocket():
    flow = TcpFlow()
    flow.open(1.0)
    flow.send(C2S, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1.1)
    flow.send(S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World.", 1.2)
    conv = dissect(flow.packets, 8001)
    assert conv.frames == [] and conv.handshake.response.status_code == 200
    assert any("not a WebSocket upgrade" in w for w in conv.warnings)


def test_refused_upgrade_and_wrong_accept_are_warnings():
    request, response = handshake_bytes()
    flow = TcpFlow()
    flow.send(C2S, request, 1.0)
    flow.send(S2C, response.replace(RFC_ACCEPT.encode(), b"A" * 27 + b"="), 1.1)
    conv = dissect(flow.packets, 8001)
    assert not conv.handshake.accept_ok
    assert any("does not match" in w for w in conv.warnings)
    assert any("after the TCP connection was opened" in w for w in conv.warnings)


def test_the_websocket_connection_is_picked_among_several():
    page = TcpFlow(client=("127.0.0.1", 40000))
    page.open(1.0)
    page.send(C2S, b"GET /socket.html HTTP/1.1\r\nHost: x\r\n\r\n", 1.1)
    ws = flow_with([(S2C, WsFrame(Opcode.TEXT, b"tick").serialize(mask=False))])
    conv = dissect(page.packets + ws.packets, 8001)
    assert conv.client == ("127.0.0.1", 50542) and conv.messages[0].data == b"tick"
    assert dissect(page.packets + ws.packets, 8001, client_port=40000).frames == []


def test_masking_rules_and_control_frame_rules_are_checked():
    chunks = [(C2S, WsFrame(Opcode.TEXT, b"unmasked").serialize(mask=False)),
              (S2C, WsFrame(Opcode.TEXT, b"masked").serialize(mask=True)),
              (S2C, encode_frame(Opcode.PING, b"x", fin=False)),
              (S2C, encode_frame(Opcode.TEXT, b"rsv1 without deflate", rsv1=True))]
    conv = dissect(flow_with(chunks).packets, 8001)
    problems = " | ".join(conv.warnings)
    assert "frame #1 (c2s): not masked, but clients must mask" in problems
    assert "frame #2 (s2c): masked, but servers must not mask" in problems
    assert "fragmented control frame" in problems and "reserved bits must be 0" in problems


def deflate_frames(way: Direction, messages, ext: PerMessageDeflate) -> list[bytes]:
    """Frames as websockets' encoder sends them; a list of str is one fragmented message."""
    out = []
    for message in messages:
        parts = message if isinstance(message, list) else [message]
        for i, part in enumerate(parts):
            frame = WsFrame(Opcode.TEXT if i == 0 else Opcode.CONT, part.encode(),
                            fin=i == len(parts) - 1)
            out.append(frame.serialize(mask=way is C2S, extensions=[ext]))
    return out


@pytest.mark.parametrize("params, ext_args", [
    ("permessage-deflate", (False, False, 15, 15)),
    ("permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
     "server_max_window_bits=9; client_max_window_bits=10", (True, True, 9, 10)),
])
def test_deflate_per_direction_with_negotiated_parameters(params, ext_args):
    server_nct, client_nct, server_bits, client_bits = ext_args
    # local = the sender's side: a wrong window size or context would fail to inflate
    client = PerMessageDeflate(server_nct, client_nct, server_bits, max(client_bits, 9))
    server = PerMessageDeflate(client_nct, server_nct, client_bits, max(server_bits, 9))
    texts = ["tick " * 40, "tick " * 41, ["frag" * 30, "ment" * 30, "ed" * 30], "tick " * 42]
    chunks = [(C2S, f) for f in deflate_frames(C2S, texts, client)]
    chunks += [(S2C, f) for f in deflate_frames(S2C, texts[::-1], server)]
    conv = dissect(flow_with(chunks, params).packets, 8001)
    assert conv.warnings == []
    joined = [t if isinstance(t, str) else "".join(t) for t in texts]
    assert [(m.direction, m.text, m.compressed) for m in conv.messages] == [
        (C2S, t, True) for t in joined] + [(S2C, t, True) for t in joined[::-1]]
    fragmented = conv.messages[2]
    assert [conv.frames[i].rsv1 for i in fragmented.frames] == [True, False, False]


def test_undecodable_compressed_data_is_a_warning():
    chunks = [(S2C, encode_frame(Opcode.TEXT, b"\xff\xff\xff not deflate", rsv1=True)),
              (S2C, encode_frame(Opcode.TEXT, b"\x03\x00", rsv1=True))]  # empty, still fine
    conv = dissect(flow_with(chunks, "permessage-deflate").packets, 8001)
    assert any("decompression failed" in w for w in conv.warnings)
    assert [m.data for m in conv.messages] == [b""]


# -- the CLI -----------------------------------------------------------------------------------

SAMPLE = ROOT / "demo_server" / "data" / "sample.pcap"


def test_cli_json_is_one_object_in_the_issue_schema():
    result = run_cli(str(SAMPLE), "--port", str(SAMPLE_PORT), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)  # exactly one JSON document, nothing else
    assert {"handshake", "frames", "messages"} <= set(out)
    shake = out["handshake"]
    assert shake["request"]["method"] == "GET" and shake["request"]["path"] == "/ws"
    assert ["Sec-WebSocket-Key", RFC_KEY] in shake["request"]["headers"]
    assert shake["response"]["status"] == 101 and shake["response"]["reason"]
    assert shake["accept_expected"] == RFC_ACCEPT and shake["accept_ok"] is True
    first = out["frames"][1]
    assert {"direction", "fin", "rsv1", "rsv2", "rsv3", "opcode", "masked", "payload_length",
            "masking_key", "payload_hex"} <= set(first)
    assert first["direction"] == "c2s" and first["masking_key"] == "37fa213d"
    assert bytes.fromhex(first["payload_hex"]) == b'{"event":"client_data","data":"hi"}'
    assert out["messages"][1] == {"direction": "c2s", "opcode": 1, "opcode_name": "TEXT",
                                  "compressed": False,
                                  "text": '{"event":"client_data","data":"hi"}'}
    assert out["messages"][-1]["close_code"] == 1000
    assert out["messages"][-1]["close_reason"] == "bye"


def test_cli_table_by_default():
    result = run_cli(str(SAMPLE), "--port", str(SAMPLE_PORT))
    assert result.returncode == 0 and result.stderr == ""
    assert f"Sec-WebSocket-Accept expected {RFC_ACCEPT}: OK" in result.stdout
    assert "37fa213d" in result.stdout and "NORMAL_CLOSURE" in result.stdout


@pytest.mark.parametrize("content, port, message", [
    (b"not a capture at all", SAMPLE_PORT, "not a pcap"),
    (None, 9, "no TCP packets to or from port 9"),
])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, content, port, message):
    path = SAMPLE
    if content is not None:
        path = tmp_path / "bad.pcap"
        path.write_bytes(content)
    result = run_cli(str(path), "--port", str(port), "--json")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_cli_truncated_capture_prints_what_it_can(tmp_path):
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(SAMPLE.read_bytes()[:2000])
    result = run_cli(str(cut), "--port", str(SAMPLE_PORT), "--json")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cut short" in result.stderr
    out = json.loads(result.stdout)
    assert out["handshake"]["accept_ok"] and out["messages"] and out["warnings"]


# -- robustness -------------------------------------------------------------------------------

def dissect_or_documented_error(source, port=SAMPLE_PORT):
    try:
        conv = dissect(source, port)
    except DissectError:
        return None
    conv.to_json(), conv.to_table()  # reports never crash either
    return conv


def test_random_files_never_crash(tmp_path):
    rng = random.Random(2024)
    sample = SAMPLE.read_bytes()
    path = tmp_path / "fuzz.pcap"
    for i in range(150):
        if i % 3 == 0:
            data = rng.randbytes(rng.randrange(0, 3000))
        else:  # a real capture with bytes flipped: headers, TCP and frames all get hit
            data = bytearray(sample)
            for _ in range(rng.randrange(1, 20)):
                data[rng.randrange(24, len(data))] = rng.randrange(256)
            data = bytes(data)
        path.write_bytes(data)
        dissect_or_documented_error(path)


def test_random_payloads_never_crash():
    rng = random.Random(7)
    for i in range(150):
        junk = [(rng.choice([C2S, S2C]), rng.randbytes(rng.randrange(1, 300)))
                for _ in range(rng.randrange(1, 6))]
        ext = "permessage-deflate" if i % 2 else None
        flow = flow_with(junk, ext) if i % 5 else TcpFlow()
        if not i % 5:
            for way, data in junk:
                flow.send(way, data, 1.0)
        dissect_or_documented_error(flow.packets, 8001)


def test_dissect_reads_a_pcap_from_any_source(tmp_path):
    path = tmp_path / "copy.pcap"
    sample = load_sample()
    sample.save(path)
    expected = summary(dissect(sample.packets, SAMPLE_PORT))
    assert summary(dissect(path, SAMPLE_PORT)) == summary(dissect(str(path), SAMPLE_PORT)) \
        == expected
