"""demo_server.diagrams: the ladder, the header bits and the Wireshark-like panes.

Pictures are checked through what they hold (labels, bits, bytes), not pixel by pixel.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from matplotlib.figure import Figure
from matplotlib.text import Text
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode

from demo_server import diagrams
from demo_server.capture import load_sample
from demo_server.diagrams import (
    arrows,
    as_image,
    header_bits,
    hexdump,
    ladder,
    packet_details,
    packet_list,
    session_ladder,
    session_steps,
)
from demo_server.dissect import Direction, conversations, dissect, parse_header

from .scripts import make_sample

ROOT = Path(__file__).resolve().parent.parent
C2S, S2C = Direction.C2S, Direction.S2C
RFC_KEY, RFC_ACCEPT = "dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

SAMPLE_LADDER = [
    "SYN", "SYN, ACK", "ACK",
    "GET /ws  (Upgrade: websocket)", "101 Switching Protocols",
    "TEXT second: 1", 'TEXT client_data: "hi"  · masked', "TEXT second: 2",
    'PING "are you there?"  · masked', 'PONG "are you there?"', "TEXT second: 3",
    'CLOSE 1000 "bye"  · masked', 'CLOSE 1000 "bye"',
    "FIN, ACK", "FIN, ACK", "ACK",
]


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.findobj(Text)]


@pytest.fixture(scope="module")
def sample():
    cap = load_sample()
    return cap, dissect(cap, cap.port)


@pytest.fixture(scope="module")
def deflate_sample():
    cap = load_sample(deflate=True)
    return cap, dissect(cap, cap.port)


def flow_conversation(chunks, *, mss: int = 65_483):
    """A synthetic connection (the sample script's TcpFlow): handshake, chunks, close."""
    flow = make_sample.TcpFlow()
    flow.open(1000.0)
    packets = make_sample.sample_packets(False)
    request, response = packets[3], packets[5]  # GET /ws and the 101
    flow.send(C2S, bytes(request["Raw"]), 1000.1)
    flow.send(S2C, bytes(response["Raw"]), 1000.2)
    for i, (way, data) in enumerate(chunks):
        flow.send(way, data, 1001.0 + i / 100, mss=mss)
    flow.close(C2S, 1002.0)
    return dissect(flow.packets, 8001)


# -- the ladder ---------------------------------------------------------------------------------

def test_sample_ladder_has_one_arrow_per_packet_but_bare_acks(sample):
    _, conv = sample
    rows = arrows(conv)
    assert [row.label for row in rows] == SAMPLE_LADDER
    assert [row.segment.direction for row in rows[:3]] == [C2S, S2C, C2S]
    assert [row.protocol for row in rows].count("WebSocket") == 8
    assert {row.kind for row in rows} == {"tcp", "http", "s2c", "c2s", "control", "close"}


def test_with_acks_every_packet_is_an_arrow(sample):
    _, conv = sample
    rows = arrows(conv, acks=True)
    assert len(rows) == len(conv.segments)
    assert [row.segment.packet for row in rows] == sorted(s.packet for s in conv.segments)
    assert sum(row.kind == "ack" for row in rows) == len(rows) - len(SAMPLE_LADDER)


def test_compressed_frames_are_labelled_from_the_inflated_messages(deflate_sample):
    _, conv = deflate_sample
    labels = [row.label for row in arrows(conv)]
    assert labels == SAMPLE_LADDER  # the same conversation, compressed on the wire


def test_phases_group_the_rows(sample):
    _, conv = sample
    assert diagrams._phases(arrows(conv)) == [
        (0, 2, "TCP\nopen"), (3, 4, "HTTP\nUpgrade"), (5, 12, "WebSocket\nframes"),
        (13, 15, "TCP\nclose")]
    with_acks = diagrams._phases(arrows(conv, acks=True))
    assert [phase for *_, phase in with_acks] == [
        "TCP\nopen", "HTTP\nUpgrade", "WebSocket\nframes", "TCP\nclose"]


def test_ladder_draws_labels_hosts_and_times(sample):
    _, conv = sample
    fig = ladder(conv, title="the sample")
    shown = texts(fig)
    for label in SAMPLE_LADDER:
        assert label in shown
    assert "client\n127.0.0.1:50542" in shown and "server\n127.0.0.1:8001" in shown
    assert "  0.0000" in shown and "the sample" in shown
    assert "WebSocket · 41" in shown  # client_data: 6-byte header + 35 bytes
    assert fig.get_figheight() > 5  # grows with the number of rows


def test_several_frames_in_one_segment_and_one_frame_over_several():
    ping = make_sample.encode_frame(Opcode.PING, b"1", key=b"abcd")
    big = make_sample.encode_frame(Opcode.BINARY, bytes(3000), key=b"wxyz")
    conv = flow_conversation([(C2S, ping + ping + ping), (C2S, big)], mss=1000)
    labels = [row.label for row in arrows(conv)]
    assert 'PING "1" + 2 more  · masked' in labels
    assert labels.count("TCP segment of a frame") == 3  # 3006 bytes: 4 segments, 3 before
    assert "BINARY 3000 bytes  · masked" in labels
    ladder(conv)  # draws


def test_a_capture_without_handshake_or_syn_still_draws(sample):
    cap, conv = sample
    late = dissect(cap.packets[7:], cap.port)  # starts after the handshake
    assert late.handshake is None or not late.handshake.upgraded
    rows = arrows(late)
    assert rows and all(row.label for row in rows)
    ladder(late)


def test_random_conversations_never_break_the_pictures():
    rng = random.Random(5)
    for _ in range(20):
        chunks = [(rng.choice([C2S, S2C]), rng.randbytes(rng.randrange(1, 300)))
                  for _ in range(rng.randrange(1, 6))]
        conv = flow_conversation(chunks, mss=rng.choice([50, 500, 65_483]))
        ladder(conv)
        for frame in conv.frames:
            header_bits(frame)
        packet_list(conv)


# -- the header bits ----------------------------------------------------------------------------

def header_of(payload_length: int, *, mask: bool):
    wire = WsFrame(Opcode.TEXT, bytes(payload_length)).serialize(mask=mask)
    return parse_header(wire)


@pytest.mark.parametrize("length, mask, row2", [
    (35, True, "masking key"),
    (83, False, None),
    (300, False, "extended payload length = 300"),
    (70_000, True, "extended payload length = 70,000"),
])
def test_header_bits_shows_every_bit_and_the_bytes_after(length, mask, row2):
    header = header_of(length, mask=mask)
    shown = texts(header_bits(header, title="t"))
    bits = f"{header.header_bytes[0]:08b}{header.header_bytes[1]:08b}"
    assert [t for t in shown if t in ("0", "1")] == list(bits)
    for name in ("FIN", "RSV1", "RSV2", "RSV3", "opcode", "MASK", "payload len"):
        assert name in shown
    assert f"byte 0  =  0x{header.header_bytes[0]:02X}" in shown
    assert f"payload{', masked' if mask else ''}: {length:,} bytes" in shown
    assert "masked" in shown if mask else "not\nmasked" in shown
    if row2:
        assert row2 in shown
        assert [t for t in shown if len(t) == 2 and t not in ("0", "1")] == [
            f"{b:02x}" for b in header.header_bytes[2:]]
    else:
        assert any("no extended length, no masking key" in t for t in shown)


def test_header_bits_names_opcode_fin_and_rsv1():
    shown = texts(header_bits(parse_header(bytes([0x42, 0x05]))))  # RSV1, binary, not FIN
    assert "0x2 = binary" in shown and "more\nto come" in shown and "deflate" in shown
    shown = texts(header_bits(parse_header(bytes([0x83, 0x00]))))  # a reserved opcode
    assert "0x3 = 0x3?" in shown


def test_as_image_is_a_png_at_its_natural_size(sample):
    _, conv = sample
    image = as_image(header_bits(conv.frames[1]), dpi=144)
    assert image.data[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.format == "png" and 500 < image.width < 1000


# -- Wireshark's panes ---------------------------------------------------------------------------

def test_hexdump_is_wireshark_like():
    data = b"GET /ws HTTP/1.1\r\nHost" + bytes([0, 255])
    assert hexdump(data).splitlines() == [
        "0000  47 45 54 20 2f 77 73 20  48 54 54 50 2f 31 2e 31  GET /ws HTTP/1.1",
        "0010  0d 0a 48 6f 73 74 00 ff                           ..Host..",
    ]
    assert hexdump(b"") == ""
    assert hexdump(b"ab", start=0x40) == "0040  61 62" + " " * 43 + "  ab"


def test_packet_details_of_the_request_and_the_101(sample):
    cap, conv = sample
    request = packet_details(conv, cap.packets, C2S).splitlines()
    assert request[:3] == [
        "▸ Ethernet II, Src: 00:00:00:00:00:00, Dst: 00:00:00:00:00:00",
        "▸ Internet Protocol Version 4, Src: 127.0.0.1, Dst: 127.0.0.1",
        "▾ Transmission Control Protocol, Src: 127.0.0.1:50542, Dst: 127.0.0.1:8001",
    ]
    assert "      Flags: PSH, ACK" in request
    assert "      GET /ws HTTP/1.1\\r\\n" in request
    assert f"      Sec-WebSocket-Key: {RFC_KEY}\\r\\n" in request
    assert request[-2:] == ["      \\r\\n", f"      [expected Sec-WebSocket-Accept: {RFC_ACCEPT}]"]
    response = packet_details(conv, cap.packets, S2C).splitlines()
    assert "      HTTP/1.1 101 Switching Protocols\\r\\n" in response
    assert response[-1] == "      [Sec-WebSocket-Accept matches the key: True]"


def test_packet_details_needs_a_handshake(sample):
    cap, _ = sample
    late = dissect(cap.packets[7:], cap.port)
    with pytest.raises(ValueError):
        packet_details(late, cap.packets[7:], C2S)


def test_packet_list_has_a_row_per_frame(sample):
    _, conv = sample
    table = packet_list(conv).data
    assert table.count("<tr") == 1 + len(conv.frames)
    assert table.count("[MASKED]") == 3 and table.count('class="ws-key"') == 8
    assert '<td class="ws-key" style="' in table and ">37 fa 21 3d</td>" in table
    assert ">Close [FIN] [MASKED]<" in table and ">Pong [FIN]<" in table
    assert table.count(">client → server<") == 3 and table.count(">server → client<") == 5
    assert '{"event":"client_data","data":"hi"}' in table  # quotes kept for the sanitizer
    assert "03 e8 62 79 65" in table  # a close payload is not printable: hex
    assert packet_list(conv, limit=2).data.count("<tr") == 3


def test_packet_list_escapes_html():
    conv = flow_conversation([(S2C, make_sample.encode_frame(Opcode.TEXT, b"<b>&</b>"))])
    table = packet_list(conv).data
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in table and "<b>" not in table


def test_the_101_and_the_first_frame_in_one_segment():
    packets = make_sample.sample_packets(False)
    flow = make_sample.TcpFlow()
    flow.open(1000.0)
    flow.send(C2S, bytes(packets[3]["Raw"]), 1000.1)
    tick = make_sample.encode_frame(Opcode.TEXT, make_sample.TICKS[1].encode())
    flow.send(S2C, bytes(packets[5]["Raw"]) + tick, 1000.2)
    flow.close(S2C, 1001.0)
    rows = arrows(dissect(flow.packets, 8001))
    assert "101 Switching Protocols + TEXT second: 1" in [row.label for row in rows]


def test_plain_http_is_drawn_as_http():
    flow = make_sample.TcpFlow()
    flow.open(1000.0)
    flow.send(C2S, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 1000.1)
    flow.send(S2C, b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\n\r\nHello, World.", 1000.2)
    flow.close(S2C, 1001.0)
    conv = dissect(flow.packets, 8001)
    labels = [(row.label, row.protocol) for row in arrows(conv)]
    assert ("GET /", "HTTP") in labels and ("200 OK", "HTTP") in labels
    ladder(conv)


def test_session_ladder_draws_polling_then_the_upgrade():
    from .test_dissect_socketio import NODE_PCAP, NODE_PORT

    convs = conversations(NODE_PCAP, NODE_PORT)
    steps = session_steps(convs)
    assert [s.time for s in steps] == sorted(s.time for s in steps)
    first, opened = steps[:2]
    assert (first.connection, first.direction, first.label) == (
        1, Direction.C2S, "GET /socket.io/ (polling)")
    assert opened.direction is Direction.S2C and opened.label.startswith("200 OK: 0 open sid=")
    upgrade = next(s for s in steps if "Upgrade" in s.label)
    assert upgrade.connection > 1  # a new TCP connection, after polling began
    probe = next(s for s in steps if s.label == "2 ping probe")
    assert probe.connection == upgrade.connection and probe.kind == "control"
    ticks = [s for s in steps if s.label.startswith('42 EVENT second {"second":')]
    assert ticks and all(s.kind == "s2c" and s.connection == upgrade.connection for s in ticks)
    assert {s.kind for s in steps if s.label.startswith("binary message")} == {"c2s", "s2c"}
    fig = session_ladder(convs, limit=10, title="socket.io")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "GET /socket.io/ (polling)" in texts and f"... {len(steps) - 10} more" in texts
