"""Make the sample captures in demo_server/data/, shown to readers who cannot capture live.

Usage: ``python scripts/make_sample_capture.py [--out-dir demo_server/data]``

The packets are synthesized with scapy (Ethernet/IPv4/TCP on loopback, consistent sequence
and acknowledgement numbers, fixed timestamps), not captured, so every run writes the same
bytes; tests check that the bundled files are what this script writes. ``sample.pcap`` and
``sample-deflate.pcap`` hold one connection from 127.0.0.1:50542 to the demo server on
127.0.0.1:8001, on 2025-01-01 UTC:

1. the TCP handshake, then ``GET /ws`` with RFC 6455's example key
   ``dGhlIHNhbXBsZSBub25jZQ==`` and the ``101`` answer with ``s3pPLMBiTxaQ9kYGzzhZRbK+xOo=``;
2. ``second`` ticks for seconds 1, 2 and 3, sent by the server just after each second;
3. ``client_data`` ``"hi"`` from the client, masked with RFC 6455's example key 37 fa 21 3d;
4. a ping from the client (payload ``are you there?``) and the server's pong;
5. a close 1000 ``bye`` from the client, echoed by the server, which closes TCP first.

Client frames use fixed masking keys (:data:`KEYS`). In ``sample-deflate.pcap`` the same
conversation negotiates permessage-deflate (window bits 12, context takeover); its data
messages were compressed once with zlib 1.2.13 (level 6, memLevel 5, as websockets does)
and are stored below as hex, so the file does not depend on the local zlib.

Notebook 07's five observers of one sensor, ``sample-observers.pcap``: all at the same time,
for the same 10 s from 2025-01-01 00:00:10 UTC, with the demo server's default
:class:`~demo_server.sensor.Sensor` (so its spikes are the real ones of those seconds), the
demo server on port 8001 and its Server-Sent Events on port 8002:

- ``GET /sensor?client=poll-1hz`` once a second and ``GET /sensor?client=poll-10hz`` ten
  times a second; every poll is a new TCP connection, from its own client port, that the
  server closes after its ``Connection: close`` answer;
- long-polling, ``GET /sensor?client=long-poll`` answered at once, then each next request
  with ``&after=`` the ``t`` of the last answer, 1 ms after it, answered 1 ms after the
  next change; each on a new connection; the last one, still held at the end, is closed
  by the client;
- one WebSocket connection to ``/ws/sensor``: the reading at once, then a ``sensor`` event
  at each change, 2 ms after it; a close 1000 from the client at the end;
- one ``GET /sensor/events`` on port 8002: the ``text/event-stream`` head, ``retry: 2000``
  with the reading at once, then the same ``sensor`` events as ``data:`` lines, 2 ms after
  each change; the client closes it at the end.

Notebook 06's other frame types, ``sample-frames.pcap``: one connection from
127.0.0.1:50544, opened at 00:00:50 UTC with the same handshake as ``sample.pcap``; after the
tick of second 51, ``client_data`` ``"hello"`` in three fragments (text, FIN 0; continuation,
FIN 0; continuation, FIN 0; then an empty continuation with FIN 1, as ``websockets`` ends a
fragmented message) with a ping ``between`` (and its pong) after the first fragment; a binary
message 00 01 02 ff and the server's ``error`` answer; a close 1000 ``bye`` both ways.
Client frames are masked with :data:`KEYS` in turn.
"""

from __future__ import annotations

import argparse
import http
import itertools
import json
from email.utils import formatdate
from pathlib import Path

from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import wrpcap
from websockets.datastructures import Headers
from websockets.frames import Opcode
from websockets.http11 import Request, Response
from websockets.utils import accept_key

from demo_server.capture import SNAPLEN
from demo_server.dissect import Direction, unmask
from demo_server.events import Event, EventError, decode, encode, sensor_data, tick_data
from demo_server.routes import JSON, SENSOR_WS_PATH, next_change, respond
from demo_server.sensor import Sensor
from demo_server.server import CLIENT_EVENTS
from demo_server.sse import CONTENT_TYPE, SSE_PATH, format_event

__all__ = ["FRAGMENTS", "KEYS", "TcpFlow", "encode_frame", "frames_packets", "main",
           "observers_packets", "sample_packets"]

DATA = Path(__file__).resolve().parent.parent / "demo_server" / "data"
CLIENT, SERVER = ("127.0.0.1", 50542), ("127.0.0.1", 8001)
EPOCH = 1_735_689_600  # 2025-01-01 00:00:00 UTC, second 0
KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455, section 1.3
KEYS = [bytes.fromhex(key) for key in ("37fa213d", "0badf00d", "5eed1e55")]  # client masks
AGENT = "Python/3.11 websockets/17.4"
TICKS = {
    second: encode(Event.SECOND, {"second": second, "epoch": EPOCH + second,
                                  "sent": EPOCH + second + 0.000391})
    for second in (1, 2, 3)
}
HI = encode(Event.CLIENT_DATA, "hi")
DEFLATED = {  # zlib.compressobj(wbits=-12, memLevel=5), Z_SYNC_FLUSH, 00 00 ff ff removed
    TICKS[1]: "aa564a2d4bcd2b51b2522a4e4dcecf4b51d2514a492c4954b2aa86095819ea28a516e427670059e6"
              "c6a6661696660640a162b02e84889e818181b1a5616d2d00",
    TICKS[2]: "aa266ca211a6894618261ac14d0400",  # context takeover: tick 1 is the dictionary
    TICKS[3]: "22c244634c138d314c34869b0800",
    HI: "aa564a2d4bcd2b51b2524acec90432e253124b12957494c094955246a6522d00",
}
OFFER = "permessage-deflate; client_max_window_bits"  # websockets' client offer
AGREED = "permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"
RUN_START, RUN_SECONDS = EPOCH + 10, 10  # notebook 07's observers, all at once
SSE_SERVER = (SERVER[0], 8002)
FRAMES_START = EPOCH + 50  # notebook 06's frames, 00:00:50
HELLO = encode(Event.CLIENT_DATA, "hello")
FRAGMENTS = (HELLO[:12], HELLO[12:26], HELLO[26:])  # as notebook 06 splits it
BINARY = bytes([0, 1, 2, 255])


def encode_frame(opcode: Opcode, payload: bytes, *, fin: bool = True, rsv1: bool = False,
                 key: bytes | None = None) -> bytes:
    """One frame on the wire; client frames get ``key`` (fixed here, random in real life)."""
    first = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    mask = 0x80 if key else 0
    if len(payload) < 126:
        header = bytes([first, mask | len(payload)])
    elif len(payload) < 2**16:
        header = bytes([first, mask | 126]) + len(payload).to_bytes(2, "big")
    else:
        header = bytes([first, mask | 127]) + len(payload).to_bytes(8, "big")
    return header + key + unmask(payload, key) if key else header + payload


class TcpFlow:
    """The packets of one synthetic loopback TCP connection, with consistent seq/ack."""

    def __init__(self, client: tuple[str, int] = CLIENT, server: tuple[str, int] = SERVER,
                 *, timestamps: bool = False) -> None:
        self.ends = {Direction.C2S: (client, server), Direction.S2C: (server, client)}
        self.timestamps = timestamps  # TCP timestamps, as Linux sends: 52-byte headers
        self.last_tsval = dict.fromkeys(Direction, 0)
        self.next_seq = {Direction.C2S: 0x1A2B3C4D, Direction.S2C: 0x5E6F7081}
        self.ip_id = {Direction.C2S: 0x1000, Direction.S2C: 0x8000}
        self.packets: list[Packet] = []

    def segment(self, way: Direction, at: float, flags: str = "PA", data: bytes = b"") -> Packet:
        """Append one segment sent ``at`` (epoch seconds); advance the sequence numbers."""
        (src, sport), (dst, dport) = self.ends[way]
        other = Direction.S2C if way is Direction.C2S else Direction.C2S
        options = []
        if self.timestamps:
            self.last_tsval[way] = round(at * 1000) % 2**32  # a 1 ms clock
            options = [("NOP", None), ("NOP", None),
                       ("Timestamp", (self.last_tsval[way], self.last_tsval[other]))]
        pkt = (Ether(src="00:00:00:00:00:00", dst="00:00:00:00:00:00")
               / IP(src=src, dst=dst, id=self.ip_id[way], flags="DF", ttl=64)
               / TCP(sport=sport, dport=dport, seq=self.next_seq[way],
                     ack=self.next_seq[other] if "A" in flags else 0, flags=flags,
                     window=65535, options=options)
               / data)
        pkt.time = at
        self.ip_id[way] += 1
        self.next_seq[way] = (self.next_seq[way] + len(data) + ("S" in flags)
                              + ("F" in flags)) % 2**32
        self.packets.append(pkt)
        return pkt

    def open(self, at: float) -> None:
        """The three-way handshake."""
        self.segment(Direction.C2S, at, "S")
        self.segment(Direction.S2C, at + 0.00003, "SA")
        self.segment(Direction.C2S, at + 0.00005, "A")

    def send(self, way: Direction, data: bytes, at: float, mss: int = 65_483) -> None:
        """``data`` in segments of at most ``mss`` bytes, acknowledged by the other side."""
        for start in range(0, len(data), mss):
            self.segment(way, at, "PA", data[start : start + mss])
        other = Direction.S2C if way is Direction.C2S else Direction.C2S
        self.segment(other, at + 0.00004, "A")

    def close(self, first: Direction, at: float) -> None:
        """``first`` sends FIN, the other side answers FIN+ACK, ``first`` acknowledges."""
        other = Direction.S2C if first is Direction.C2S else Direction.C2S
        self.segment(first, at, "FA")
        self.segment(other, at + 0.00008, "FA")
        self.segment(first, at + 0.0001, "A")


def _data_frame(text: str, deflate: bool, key: bytes | None = None) -> bytes:
    payload = bytes.fromhex(DEFLATED[text]) if deflate else text.encode()
    return encode_frame(Opcode.TEXT, payload, rsv1=deflate, key=key)


def _upgrade(flow: TcpFlow, at: float, deflate: bool) -> None:
    """TCP open, then ``GET /ws`` with RFC 6455's key and the ``101`` (Date: 2025-01-01)."""
    offer = [("Sec-WebSocket-Extensions", OFFER)] if deflate else []
    agreed = [("Sec-WebSocket-Extensions", AGREED)] if deflate else []
    request = Request("/ws", Headers([
        ("Host", f"{SERVER[0]}:{SERVER[1]}"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", "13"),
        *offer,
        ("User-Agent", AGENT),
    ]))
    response = Response(101, "Switching Protocols", Headers([
        ("Date", "Wed, 01 Jan 2025 00:00:00 GMT"), ("Upgrade", "websocket"),
        ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(KEY)), *agreed,
        ("Server", AGENT),
    ]))
    flow.open(at)
    flow.send(Direction.C2S, request.serialize(), at + 0.0003)
    flow.send(Direction.S2C, response.serialize(), at + 0.0011)


def sample_packets(deflate: bool) -> list[Packet]:
    """The sample conversation described in this module's docstring."""
    close = (1000).to_bytes(2, "big") + b"bye"
    flow = TcpFlow()
    _upgrade(flow, EPOCH + 0.25, deflate)
    flow.send(Direction.S2C, _data_frame(TICKS[1], deflate), EPOCH + 1.0004)
    flow.send(Direction.C2S, _data_frame(HI, deflate, KEYS[0]), EPOCH + 1.412)
    flow.send(Direction.S2C, _data_frame(TICKS[2], deflate), EPOCH + 2.00035)
    flow.send(Direction.C2S, encode_frame(Opcode.PING, b"are you there?", key=KEYS[1]),
              EPOCH + 2.5)
    flow.send(Direction.S2C, encode_frame(Opcode.PONG, b"are you there?"), EPOCH + 2.50012)
    flow.send(Direction.S2C, _data_frame(TICKS[3], deflate), EPOCH + 3.00038)
    flow.send(Direction.C2S, encode_frame(Opcode.CLOSE, close, key=KEYS[2]), EPOCH + 3.2)
    flow.send(Direction.S2C, encode_frame(Opcode.CLOSE, close), EPOCH + 3.20015)
    flow.close(Direction.S2C, EPOCH + 3.2003)
    return flow.packets


def _error_answer(raw: bytes) -> str:
    """The demo server's ``error`` answer to a message it refuses, as ``DemoServer`` sends it."""
    try:
        decode(raw, expect=CLIENT_EVENTS)
    except EventError as exc:
        return encode(Event.ERROR, {"message": str(exc)})
    raise ValueError(f"the demo server accepts {raw!r}: no error to answer")


def frames_packets() -> list[Packet]:
    """Notebook 06's fragmented and binary messages, as this module's docstring says."""
    keys = itertools.cycle(KEYS)
    close = (1000).to_bytes(2, "big") + b"bye"
    flow = TcpFlow((CLIENT[0], 50544))
    _upgrade(flow, FRAMES_START + 0.25, False)
    t = FRAMES_START + 1
    flow.send(Direction.S2C, encode_frame(Opcode.TEXT, encode(
        Event.SECOND, tick_data(FRAMES_START + 1, t + 0.000391)).encode()), t + 0.0004)
    first, *rest = (fragment.encode() for fragment in FRAGMENTS)
    client_frames = [(Opcode.TEXT, first, False), (Opcode.PING, b"between", True)]
    client_frames += [(Opcode.CONT, fragment, False) for fragment in rest]
    client_frames += [(Opcode.CONT, b"", True), (Opcode.BINARY, BINARY, True)]
    at = t + 0.0012
    for opcode, payload, fin in client_frames:
        flow.send(Direction.C2S, encode_frame(opcode, payload, fin=fin, key=next(keys)), at)
        if opcode is Opcode.PING:  # the client waits for the pong before the next fragment
            flow.send(Direction.S2C, encode_frame(Opcode.PONG, payload), at + 0.00012)
            at += 0.0002
        at += 0.00005
    answer = _error_answer(BINARY)
    flow.send(Direction.S2C, encode_frame(Opcode.TEXT, answer.encode()), at + 0.0003)
    flow.send(Direction.C2S, encode_frame(Opcode.CLOSE, close, key=next(keys)), at + 0.0012)
    flow.send(Direction.S2C, encode_frame(Opcode.CLOSE, close), at + 0.00135)
    flow.close(Direction.S2C, at + 0.0015)
    return flow.packets


def _ask(flow: TcpFlow, path: str, at: float) -> None:
    """A new connection at ``at`` and ``GET path`` on it, as ``http.client`` sends it."""
    flow.open(at)
    request = Request(path, Headers([("Host", f"{SERVER[0]}:{SERVER[1]}"),
                                     ("Accept-Encoding", "identity")]))
    flow.send(Direction.C2S, request.serialize(), at + 0.0002)


def _answer(flow: TcpFlow, answered: float, reading: float, value: float) -> None:
    """The demo server's answer to ``GET /sensor`` at ``answered``: ``value`` at time
    ``reading``; then the server closes the connection."""
    body = json.dumps(sensor_data(value, reading)).encode()
    response = respond(http.HTTPStatus.OK, body, JSON, "no-store")
    del response.headers["Date"]  # now: the sample's time instead
    response.headers.update(Date=formatdate(answered, usegmt=True), Server=AGENT)
    flow.send(Direction.S2C, response.serialize(), answered)
    flow.close(Direction.S2C, answered + 0.0002)


def _sensor_events(sensor: Sensor, start: float, end: float) -> list[tuple[float, str]]:
    """``(sent, sensor event)``: the reading at ``start``, then each change 2 ms late."""
    events = [(start + 0.0012, sensor.value_at(start + 0.0012))]  # the reading at once
    for when, value in sensor.changes(start):
        if when >= end - 0.002:
            break
        events.append((when, value))
    messages = []
    for when, value in events:
        sent = when + 0.002 if when > start + 0.0012 else when
        messages.append((sent, encode(Event.SENSOR, {**sensor_data(value, when),
                                                     "sent": round(sent, 6)})))
    return messages


def _push(flow: TcpFlow, sensor: Sensor, start: float, end: float) -> None:
    """``/ws/sensor`` from ``start`` to ``end``: each change 2 ms late, then the close."""
    key, accept = "x3JJHMbDL1EzLkh9GBhXDw==", accept_key("x3JJHMbDL1EzLkh9GBhXDw==")
    request = Request(SENSOR_WS_PATH, Headers([
        ("Host", f"{SERVER[0]}:{SERVER[1]}"), ("Upgrade", "websocket"),
        ("Connection", "Upgrade"), ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Extensions", OFFER), ("User-Agent", AGENT)]))
    response = Response(101, "Switching Protocols", Headers([
        ("Date", formatdate(start, usegmt=True)), ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept), ("Server", AGENT)]))
    flow.open(start)
    flow.send(Direction.C2S, request.serialize(), start + 0.0003)
    flow.send(Direction.S2C, response.serialize(), start + 0.0011)
    for sent, message in _sensor_events(sensor, start, end):
        flow.send(Direction.S2C, encode_frame(Opcode.TEXT, message.encode()), sent)
    close = (1000).to_bytes(2, "big")
    flow.send(Direction.C2S, encode_frame(Opcode.CLOSE, close, key=KEYS[2]), end)
    flow.send(Direction.S2C, encode_frame(Opcode.CLOSE, close), end + 0.00015)
    flow.close(Direction.S2C, end + 0.0003)


def _event_stream(flow: TcpFlow, sensor: Sensor, start: float, end: float) -> None:
    """``GET /sensor/events`` from ``start`` to ``end``, as ``polling.listen_sse`` asks."""
    host = f"{SSE_SERVER[0]}:{SSE_SERVER[1]}"
    request = (f"GET {SSE_PATH} HTTP/1.1\r\nHost: {host}\r\nAccept: {CONTENT_TYPE}\r\n"
               "Cache-Control: no-cache\r\n\r\n")
    head = ("HTTP/1.1 200 OK\r\n"
            f"Date: {formatdate(start, usegmt=True)}\r\nConnection: close\r\n"
            f"Content-Type: {CONTENT_TYPE}\r\nCache-Control: no-store\r\n\r\n")
    flow.open(start)
    flow.send(Direction.C2S, request.encode(), start + 0.0003)
    (first_sent, first), *changes = _sensor_events(sensor, start, end)
    flow.send(Direction.S2C, head.encode() + format_event(first, retry_ms=2000), first_sent)
    for sent, message in changes:
        flow.send(Direction.S2C, format_event(message), sent)
    flow.close(Direction.C2S, end)


def _long_polls(sensor: Sensor, start: float, end: float) -> list[Packet]:
    """Long-polling from ``start`` to ``end``, as this module's docstring says."""
    path = "/sensor?client=long-poll"
    flows: list[TcpFlow] = []
    at, last = start, None  # when the next request goes out; the t of the last answer
    while True:
        flow = TcpFlow((CLIENT[0], 44000 + len(flows)), timestamps=True)
        flows.append(flow)
        if last is None:  # the first request: the reading now
            target, reading = path, at + 0.0004
            value, answered = sensor.value_at(reading), at + 0.0006
        else:  # held until the next change
            target = f"{path}&after={last:.6f}"
            reading, value = next_change(sensor, last)
            answered = reading + 0.001
        _ask(flow, target, at)
        if answered >= end:  # still held at the end: the client gives up
            flow.close(Direction.C2S, end)
            return [packet for flow in flows for packet in flow.packets]
        _answer(flow, answered, reading, value)
        at, last = answered + 0.001, round(reading, 6)


def observers_packets() -> list[Packet]:
    """Notebook 07's five observers at once, as this module's docstring says."""
    sensor = Sensor()
    start, end = RUN_START, RUN_START + RUN_SECONDS
    packets = []
    for name, rate, first_port in (("poll-1hz", 1, 42000), ("poll-10hz", 10, 43000)):
        for i in range(RUN_SECONDS * rate):
            flow = TcpFlow((CLIENT[0], first_port + i), timestamps=True)
            at = start + i / rate
            _ask(flow, f"/sensor?client={name}", at)
            _answer(flow, at + 0.0006, at + 0.0004, sensor.value_at(at + 0.0004))
            packets += flow.packets
    packets += _long_polls(sensor, start, end)
    push = TcpFlow((CLIENT[0], 41000), timestamps=True)
    _push(push, sensor, start, end)
    stream = TcpFlow((CLIENT[0], 45000), SSE_SERVER, timestamps=True)
    _event_stream(stream, sensor, start, end)
    packets += push.packets + stream.packets
    return sorted(packets, key=lambda packet: packet.time)  # as a capture of both ports


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=DATA, help=f"default: {DATA}")
    out_dir = parser.parse_args(argv).out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {"sample.pcap": sample_packets(False), "sample-deflate.pcap": sample_packets(True)}
    files["sample-observers.pcap"] = observers_packets()
    files["sample-frames.pcap"] = frames_packets()
    for name, packets in files.items():
        wrpcap(str(out_dir / name), packets, snaplen=SNAPLEN)
        print(out_dir / name)


if __name__ == "__main__":
    main()
