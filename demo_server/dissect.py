"""Take a captured WebSocket conversation apart, like Wireshark does.

scapy has no WebSocket layer (and its HTTP layer mistakes the Upgrade for HTTP/2), so:

1. each direction of the TCP connection is reassembled into one byte stream (segments put
   in sequence order; retransmitted bytes kept once; a hole stops the stream);
2. the handshake is parsed by ``websockets``' sans-I/O HTTP parser and
   ``Sec-WebSocket-Accept`` is recomputed from ``Sec-WebSocket-Key``;
3. the frames after it are parsed bit by bit by :func:`parse_header` (the lesson; the tests
   check it against ``websockets.frames.Frame.parse``) and unmasked by :func:`unmask`;
4. frames are joined into messages and inflated by ``websockets``' permessage-deflate
   decoder, configured from the negotiated parameters, one per direction.

``dissect(pcap_or_packets, port)`` returns a :class:`Conversation`; whatever could not be
dissected is said in ``Conversation.warnings``. CLI:
``python -m demo_server.dissect CAPTURE.pcap --port PORT [--json]``.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import dataclasses
import enum
import hashlib
import itertools
import json
import logging
import os
import struct
import sys
from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import scapy.layers.inet6  # noqa: F401  (so [::1] traffic dissects too)
from scapy.error import Scapy_Exception
from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet
from scapy.utils import rdpcap
from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader, PayloadTooBig, ProtocolError, WebSocketException
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.frames import Close, CloseCode, Opcode
from websockets.frames import Frame as WsFrame
from websockets.headers import parse_extension
from websockets.http11 import Request, Response
from websockets.streams import StreamReader

__all__ = [
    "GUID",
    "Conversation",
    "Deflate",
    "Direction",
    "DissectError",
    "Frame",
    "FrameHeader",
    "Handshake",
    "Message",
    "Segment",
    "Stream",
    "accept_key",
    "conversations",
    "dissect",
    "main",
    "parse_header",
    "reassemble",
    "unmask",
]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
_MAX_MESSAGE = 64 * 1024 * 1024  # inflate no message beyond this (zip bombs)
T = TypeVar("T")
_HTTP_ERRORS = (EOFError, LookupError, ValueError, NotImplementedError, WebSocketException)


class DissectError(ValueError):
    """Nothing could be dissected (not a capture, no TCP traffic on the port)."""


class Direction(str, enum.Enum):
    """Which way a segment, frame or message travels."""

    C2S = "c2s"  # client to server
    S2C = "s2c"  # server to client

    def __str__(self) -> str:
        return self.value


# -- step 1: TCP reassembly -------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """One TCP packet of the connection, with sequence numbers relative to the stream start."""

    packet: int  # index in the capture
    time: float
    direction: Direction
    flags: str  # scapy's letters: S, A, F, P, R...
    seq: int  # offset of the first payload byte in the direction's stream
    ack: int  # next offset expected from the other direction (0 without ACK)
    data: bytes
    missing: int = 0  # payload bytes the IP header announces but the capture lacks
    wire_length: int = 0  # the IP packet's length: IP and TCP headers plus payload


@dataclass
class Stream:
    """One direction of the connection, reassembled."""

    data: bytes = field(repr=False)
    # (end offset, packet, time): bytes [0, end) were all captured once that packet was
    arrivals: list[tuple[int, int, float]] = field(repr=False)
    hole: str | None = None  # why the stream stops before its last captured byte

    def delivered_by(self, end: int) -> tuple[int, float]:
        """The capture index and time of the packet after which bytes [0, end) were in."""
        _, packet, when = self.arrivals[bisect.bisect_left(self.arrivals, end,
                                                           key=lambda item: item[0])]
        return packet, when


def reassemble(segments: Iterable[Segment]) -> Stream:
    """Join the payloads of one direction in sequence order, whatever order they came in.

    Bytes seen twice (retransmissions, overlaps, duplicate copies) are kept once, from the
    segment that starts lowest (then the earliest); the stream stops at the first hole.
    """
    data = bytearray()
    arrivals: list[tuple[int, int, float]] = []
    latest = (-1, 0.0)
    for seg in sorted(segments, key=lambda s: (s.seq, s.packet)):
        if not seg.data and not seg.missing:
            continue  # SYN, FIN or a bare ACK: no bytes
        if seg.seq > len(data):
            return Stream(bytes(data), arrivals, f"{seg.seq - len(data)} bytes never captured "
                                                 f"at stream offset {len(data)}")
        new = seg.data[len(data) - seg.seq :]
        if new:
            data += new
            latest = max(latest, (seg.packet, seg.time))
            arrivals.append((len(data), *latest))
        if seg.missing:
            return Stream(bytes(data), arrivals, f"packet #{seg.packet + 1} was cut short, "
                                                 f"{seg.missing} bytes not captured")
    return Stream(bytes(data), arrivals)


Address = tuple[str, int]


def _layers(pkt: Packet) -> tuple[IP | IPv6, TCP] | None:
    """The IP and TCP layers; lengths are filled in when the packet was built, not captured."""
    ip, tcp = pkt.getlayer(IP) or pkt.getlayer(IPv6), pkt.getlayer(TCP)
    if ip is None or tcp is None:
        return None
    lengths = (ip.len, ip.ihl) if isinstance(ip, IP) else (ip.plen,)
    if None in (*lengths, tcp.dataofs):
        return _layers(pkt.__class__(bytes(pkt)))
    return ip, tcp


def _segments(packets: list[Packet], port: int) -> list[tuple[Address, Address, list[Segment]]]:
    """TCP segments to or from ``port``, per connection: ``(client, server, segments)``.

    A client's SYN on addresses already seen starts a new connection: a client that opens a
    connection per request reuses ports within seconds on loopback.
    """
    groups: list[tuple[Address, Address, list[tuple[int, float, IP | IPv6, TCP]]]] = []
    current: dict[tuple[Address, Address], list[tuple[int, float, IP | IPv6, TCP]]] = {}
    for index, pkt in enumerate(packets):
        layers = _layers(pkt)
        if layers is None:
            continue
        ip, tcp = layers
        if tcp.dport == port:
            key = ((ip.src, tcp.sport), (ip.dst, tcp.dport))
        elif tcp.sport == port:
            key = ((ip.dst, tcp.dport), (ip.src, tcp.sport))
        else:
            continue
        reopened = tcp.dport == port and tcp.flags.S and not tcp.flags.A
        if key not in current or (reopened and current[key]):
            current[key] = []
            groups.append((*key, current[key]))
        current[key].append((index, float(pkt.time), ip, tcp))
    return [(client, server, _relative(port, rows)) for client, server, rows in groups]


def _relative(port: int, rows: list[tuple[int, float, IP | IPv6, TCP]]) -> list[Segment]:
    """Number each direction's bytes from 0: the byte after the SYN, else the lowest seen."""
    def direction(tcp: TCP) -> Direction:
        return Direction.C2S if tcp.dport == port else Direction.S2C

    starts: dict[Direction, int] = {}
    for *_, tcp in rows:
        if "S" in tcp.flags:
            starts[direction(tcp)] = tcp.seq + 1
    for way in Direction:
        seqs = [tcp.seq for *_, tcp in rows if direction(tcp) is way]
        if way not in starts and seqs:  # lowest modulo 2**32, around the first one seen
            starts[way] = min(seqs, key=lambda seq: (seq - seqs[0] + 2**31) % 2**32)
    segments = []
    for index, when, ip, tcp in rows:
        way = direction(tcp)
        other = Direction.S2C if way is Direction.C2S else Direction.C2S
        data = bytes(tcp.payload)
        announced = (ip.len - 4 * ip.ihl if isinstance(ip, IP) else ip.plen) - 4 * tcp.dataofs
        seq = _offset(tcp.seq + ("S" in tcp.flags), starts[way])
        ack = _offset(tcp.ack, starts[other]) if "A" in tcp.flags and other in starts else 0
        wire_length = ip.len if isinstance(ip, IP) else ip.plen + 40
        segments.append(Segment(index, when, way, str(tcp.flags), seq, ack, data,
                                max(0, announced - len(data)), wire_length))
    return segments


def _offset(seq: int, start: int) -> int:
    """``seq - start`` modulo 2**32, negative just before ``start`` (a keep-alive probe)."""
    offset = (seq - start) % 2**32
    return offset - 2**32 if offset >= 2**31 else offset


# -- step 2: the opening handshake ------------------------------------------------------------


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``: base64(SHA-1(key + GUID))."""
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


@dataclass(frozen=True)
class Deflate:
    """Negotiated permessage-deflate parameters (RFC 7692), from the 101 response."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15

    @classmethod
    def from_params(cls, params: list[tuple[str, str | None]]) -> Deflate:
        """Read the response's parameters; raise ValueError on an unknown or bad one."""
        names = {name: value for name, value in params}
        unknown = set(names) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ValueError(f"unknown permessage-deflate parameter {sorted(unknown)[0]}")
        bits = {}
        for side in ("server", "client"):
            value = names.get(f"{side}_max_window_bits") or "15"
            if value not in {str(n) for n in range(8, 16)}:
                raise ValueError(f"bad {side}_max_window_bits={value}")
            bits[side] = int(value)
        return cls(
            "server_no_context_takeover" in names,
            "client_no_context_takeover" in names,
            bits["server"],
            bits["client"],
        )

    def __str__(self) -> str:
        return "; ".join(
            f"{side} {getattr(self, f'{side}_max_window_bits')}-bit window, "
            f"{'no ' if getattr(self, f'{side}_no_context_takeover') else ''}context takeover"
            for side in ("server", "client"))

    def decoder(self, direction: Direction) -> PerMessageDeflate:
        """websockets' decoder for the frames going ``direction``."""
        sender = "client" if direction is Direction.C2S else "server"
        return PerMessageDeflate(
            remote_no_context_takeover=getattr(self, f"{sender}_no_context_takeover"),
            local_no_context_takeover=True,  # we never compress
            remote_max_window_bits=getattr(self, f"{sender}_max_window_bits"),
            local_max_window_bits=15,
        )


@dataclass
class Handshake:
    """The HTTP Upgrade request and the server's answer."""

    request: Request
    request_bytes: bytes
    response: Response | None = None
    response_bytes: bytes = b""
    accept_expected: str | None = None  # computed from the request's key
    deflate: Deflate | None = None  # permessage-deflate, when negotiated

    @property
    def accept_ok(self) -> bool:
        """True when the response carries exactly the expected ``Sec-WebSocket-Accept``."""
        got = self.response and _header(self.response.headers, "Sec-WebSocket-Accept")
        return got is not None and got == self.accept_expected

    @property
    def upgraded(self) -> bool:
        return self.response is not None and self.response.status_code == 101


def _header(headers: Headers, name: str) -> str | None:
    """All values of ``name`` joined by ", " (HTTP's rule), None when absent."""
    return ", ".join(headers.get_all(name)) or None


def _parse_http(parser: Callable[[StreamReader], Generator[None, None, T]], data: bytes
                ) -> tuple[T, int]:
    """Run a websockets sans-I/O HTTP parser on ``data``; return (result, bytes used)."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()  # all data is here: the parser never waits, it returns or raises
    running = parser(reader)
    try:
        next(running)
    except StopIteration as done:
        return done.value, len(data) - len(reader.buffer)
    raise AssertionError("unreachable: the reader is at EOF")


def _handshake(c2s: bytes, s2c: bytes, warnings: list[str]) -> Handshake | None:
    try:
        request, used = _parse_http(lambda r: Request.parse(r.read_line), c2s)
    except _HTTP_ERRORS as exc:
        warnings.append(f"no WebSocket handshake: the client did not send an HTTP request ({exc})")
        return None
    key = _header(request.headers, "Sec-WebSocket-Key")
    shake = Handshake(request, c2s[:used], accept_expected=key and accept_key(key))
    if key is None or (_header(request.headers, "Upgrade") or "").lower() != "websocket":
        warnings.append(f"no WebSocket handshake: {request.method} {request.path} "
                        "is not a WebSocket upgrade request")
    try:
        shake.response, used = _parse_http(
            lambda r: Response.parse(r.read_line, r.read_exact, r.read_to_eof), s2c)
    except _HTTP_ERRORS as exc:
        warnings.append(f"no complete HTTP response from the server ({exc})")
        return shake
    shake.response_bytes = s2c[:used]
    if not shake.upgraded:
        warnings.append(f"no WebSocket: the server answered {shake.response.status_code} "
                        f"{shake.response.reason_phrase}")
    elif not shake.accept_ok:
        warnings.append("Sec-WebSocket-Accept does not match the key: "
                        f"expected {shake.accept_expected}")
    if shake.upgraded:
        shake.deflate = _negotiated_deflate(shake.response.headers, warnings)
    return shake


def _negotiated_deflate(headers: Headers, warnings: list[str]) -> Deflate | None:
    value = _header(headers, "Sec-WebSocket-Extensions")
    if value is None:
        return None
    try:
        (name, params), *others = parse_extension(value)
        if name != "permessage-deflate" or others:
            raise ValueError("only permessage-deflate alone is supported")
        return Deflate.from_params(params)
    except (InvalidHeader, ValueError) as exc:
        warnings.append(f"cannot decode extensions {value!r} ({exc}): payloads left as sent")
        return None


# -- step 3: frames, bit by bit ----------------------------------------------------------------


@dataclass(frozen=True)
class FrameHeader:
    """The fields of a WebSocket frame header (RFC 6455, section 5.2)."""

    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: Opcode | int  # an int only for a reserved opcode
    masked: bool
    payload_length: int
    length_bits: int  # 7, 16 or 64: how the payload length was written
    masking_key: bytes | None
    header_bytes: bytes  # the header as on the wire, 2 to 14 bytes

    @property
    def opcode_name(self) -> str:
        return self.opcode.name if isinstance(self.opcode, Opcode) else f"0x{self.opcode:X}?"


def parse_header(data: bytes) -> FrameHeader | None:
    """Read a frame header from the start of ``data``; None when ``data`` is too short.

    ::

         0                   1                   2                   3
         0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
        +-+-+-+-+-------+-+-------------+-------------------------------+
        |F|R|R|R| opcode|M| Payload len |    Extended payload length    |
        |I|S|S|S|  (4)  |A|     (7)     |             (16/64)           |
        |N|V|V|V|       |S|             |   (if payload len==126/127)   |
        | |1|2|3|       |K|             |                               |
        +-+-+-+-+-------+-+-------------+ - - - - - - - - - - - - - - - +
        |     Extended payload length continued, if payload len == 127  |
        + - - - - - - - - - - - - - - - +-------------------------------+
        |                               |Masking-key, if MASK set to 1  |
        +-------------------------------+-------------------------------+
        | Masking-key (continued)       |          Payload Data         |
        +-------------------------------- - - - - - - - - - - - - - - - +
    """
    if len(data) < 2:
        return None
    first, second = data[0], data[1]
    fin = bool(first & 0b1000_0000)  # the top bit of byte 0 ...
    rsv1 = bool(first & 0b0100_0000)
    rsv2 = bool(first & 0b0010_0000)
    rsv3 = bool(first & 0b0001_0000)
    code = first & 0b0000_1111  # ... and its low nibble
    masked = bool(second & 0b1000_0000)  # the top bit of byte 1 ...
    length = second & 0b0111_1111  # ... and its 7 other bits
    size = 2
    if length == 126:  # the real length follows in 2 bytes
        bits, size = 16, 4
    elif length == 127:  # ... or in 8 bytes
        bits, size = 64, 10
    else:
        bits = 7
    key_size = 4 if masked else 0
    if len(data) < size + key_size:
        return None
    if bits > 7:
        length = int.from_bytes(data[2:size], "big")  # network byte order
    return FrameHeader(
        fin, rsv1, rsv2, rsv3,
        _known(Opcode, code),
        masked, length, bits,
        data[size : size + key_size] if masked else None,
        bytes(data[: size + key_size]),
    )


def _known(kind: type[enum.IntEnum], value: int) -> enum.IntEnum | int:
    """``kind(value)`` when the enum names that value, else the plain int."""
    try:
        return kind(value)
    except ValueError:
        return value


def unmask(payload: bytes, key: bytes) -> bytes:
    """XOR byte ``i`` of the payload with ``key[i % 4]`` (RFC 6455, section 5.3).

    Masking is its own inverse: the same call masks and unmasks.
    """
    return bytes(byte ^ k for byte, k in zip(payload, itertools.cycle(key)))


@dataclass(frozen=True)
class Frame(FrameHeader):
    """One frame as captured: its header, unmasked payload and where it was seen."""

    direction: Direction
    payload: bytes  # unmasked; still compressed when RSV1 is set
    offset: int  # where the frame starts in its direction's stream
    packet: int  # capture index of the packet that completed it
    time: float


def _frames(direction: Direction, stream: Stream, start: int, warnings: list[str]) -> list[Frame]:
    data, pos, frames = stream.data, start, []
    while pos < len(data):
        header = parse_header(data[pos : pos + 14])
        end = pos + len(header.header_bytes) + header.payload_length if header else None
        if header is None or end > len(data):
            whole = f"{end - pos:,} bytes" if header else "a frame header"
            warnings.append(f"{direction}: the stream ends inside a frame at offset {pos:,} "
                            f"({len(data) - pos:,} bytes of {whole})")
            break
        payload = data[end - header.payload_length : end]
        if header.masked:
            payload = unmask(payload, header.masking_key)
        packet, when = stream.delivered_by(end)
        frames.append(Frame(**vars(header), direction=direction, payload=payload, offset=pos,
                            packet=packet, time=when))
        pos = end
    return frames


# -- step 4: messages -------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A whole message: fragments joined and inflated, or one control frame."""

    direction: Direction
    opcode: Opcode
    data: bytes
    compressed: bool
    frames: tuple[int, ...]  # indexes in Conversation.frames
    close_code: CloseCode | int | None = None
    close_reason: str | None = None

    @property
    def text(self) -> str | None:
        """The UTF-8 text of a text message, else None."""
        if self.opcode is not Opcode.TEXT:
            return None
        try:
            return self.data.decode()
        except UnicodeDecodeError:
            return None


@dataclass
class _Assembler:
    """Joins one direction's frames into messages."""

    direction: Direction
    deflate: Deflate | None
    warnings: list[str]
    decoder: PerMessageDeflate | None = None
    opcode: Opcode | None = None  # of the message in progress
    parts: list[bytes] = field(default_factory=list)
    indexes: list[int] = field(default_factory=list)
    compressed: bool = False

    def __post_init__(self) -> None:
        self._new_decoder()

    def _new_decoder(self) -> None:
        self.decoder = self.deflate.decoder(self.direction) if self.deflate else None

    def feed(self, index: int, frame: Frame) -> Message | None:
        """Take the next frame; return the message it completes, if any."""
        where = f"frame #{index + 1} ({self.direction})"
        must_mask = self.direction is Direction.C2S
        if frame.masked != must_mask:
            rule = "clients must mask" if must_mask else "servers must not mask"
            self.warnings.append(f"{where}: {'' if frame.masked else 'not '}masked, but {rule}")
        if not isinstance(frame.opcode, Opcode):
            self.warnings.append(f"{where}: reserved opcode {frame.opcode_name}, skipped")
            return None
        ws_frame = WsFrame(frame.opcode, frame.payload, frame.fin, frame.rsv1, frame.rsv2,
                           frame.rsv3)
        starts = frame.opcode in (Opcode.TEXT, Opcode.BINARY)
        if starts and self.opcode is not None:
            self.warnings.append(f"{where}: a new message starts before the last one ended")
            self._reset()
        if frame.opcode is Opcode.CONT and self.opcode is None:
            self.warnings.append(f"{where}: a continuation frame outside any message, skipped")
            return None
        try:
            if self.decoder is not None:
                ws_frame = self.decoder.decode(ws_frame, max_size=_MAX_MESSAGE)
            ws_frame.check()
        except (ProtocolError, PayloadTooBig) as exc:
            self.warnings.append(f"{where}: {exc}")
            self._new_decoder()
            self._reset()
            return None
        if frame.opcode >= Opcode.CLOSE:  # control frames may come between fragments
            return self._control(frame, ws_frame, index)
        if starts:
            self.opcode, self.compressed = frame.opcode, frame.rsv1
        self.parts.append(bytes(ws_frame.data))
        self.indexes.append(index)
        if not frame.fin:
            return None
        message = Message(self.direction, self.opcode, b"".join(self.parts), self.compressed,
                          tuple(self.indexes))
        self._reset()
        if message.opcode is Opcode.TEXT and message.text is None:
            self.warnings.append(f"{where}: the text message is not valid UTF-8")
        return message

    def _control(self, frame: Frame, ws_frame: WsFrame, index: int) -> Message:
        message = Message(self.direction, frame.opcode, bytes(ws_frame.data), False, (index,))
        if frame.opcode is Opcode.CLOSE:
            try:
                close = Close.parse(message.data)
            except (ProtocolError, UnicodeDecodeError) as exc:
                self.warnings.append(f"frame #{index + 1} ({self.direction}): bad close "
                                     f"({exc})")
            else:
                message = dataclasses.replace(message, close_code=_known(CloseCode, close.code),
                                              close_reason=close.reason)
        return message

    def _reset(self) -> None:
        self.opcode, self.parts, self.indexes, self.compressed = None, [], [], False

    def finish(self) -> None:
        if self.opcode is not None:
            self.warnings.append(f"{self.direction}: the capture ends inside a fragmented "
                                 "message")


# -- the whole conversation ---------------------------------------------------------------------


@dataclass
class Conversation:
    """One TCP connection to the port, dissected."""

    client: Address
    server: Address
    segments: list[Segment]
    streams: dict[Direction, Stream]
    handshake: Handshake | None = None
    frames: list[Frame] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def __repr__(self) -> str:
        (host, port), (server, server_port) = self.client, self.server
        return (f"<Conversation {host}:{port} -> {server}:{server_port}: "
                f"{len(self.frames)} frames, {len(self.messages)} messages, "
                f"{len(self.warnings)} warnings>")

    def to_dict(self) -> dict:
        """The JSON-ready form printed by ``--json``."""
        return {
            "handshake": _handshake_dict(self.handshake),
            "frames": [_frame_dict(frame) for frame in self.frames],
            "messages": [_message_dict(message) for message in self.messages],
            "warnings": self.warnings,
        }

    def to_json(self, indent: int | None = None) -> str:
        """The JSON text printed by ``--json``: one object."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_table(self) -> str:
        """A readable report: connection, handshake, frames, messages, warnings."""
        return "\n".join(_table_lines(self))


def _handshake_dict(shake: Handshake | None) -> dict | None:
    if shake is None:
        return None
    response = shake.response
    return {
        "request": {
            "method": shake.request.method,
            "path": shake.request.path,
            "headers": [list(item) for item in shake.request.headers.raw_items()],
        },
        "response": response and {
            "status": response.status_code,
            "reason": response.reason_phrase,
            "headers": [list(item) for item in response.headers.raw_items()],
        },
        "accept_expected": shake.accept_expected,
        "accept_ok": shake.accept_ok,
    }


def _frame_dict(frame: Frame) -> dict:
    return {
        "direction": frame.direction.value,
        "fin": frame.fin,
        "rsv1": frame.rsv1,
        "rsv2": frame.rsv2,
        "rsv3": frame.rsv3,
        "opcode": int(frame.opcode),
        "opcode_name": frame.opcode_name,
        "masked": frame.masked,
        "payload_length": frame.payload_length,
        "length_bits": frame.length_bits,
        "masking_key": frame.masking_key.hex() if frame.masking_key else None,
        "payload_hex": frame.payload.hex(),
    }


def _message_dict(message: Message) -> dict:
    out = {
        "direction": message.direction.value,
        "opcode": int(message.opcode),
        "opcode_name": message.opcode.name,
        "compressed": message.compressed,
    }
    if message.text is not None:
        out["text"] = message.text
    else:
        out["data_hex"] = message.data.hex()
    if message.opcode is Opcode.CLOSE:
        out["close_code"] = None if message.close_code is None else int(message.close_code)
        out["close_reason"] = message.close_reason
    return out


def _preview(data: bytes, width: int = 48) -> str:
    """Printable text as a quoted string, anything else as hex; cut to ``width``."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        text = None
    shown = repr(text) if text is not None and text.isprintable() else data.hex(" ")
    return shown if len(shown) <= width else shown[: width - 1] + "…"


def _table_lines(conv: Conversation) -> Iterable[str]:
    host, port = conv.client
    yield (f"connection {host}:{port} -> {conv.server[0]}:{conv.server[1]}: "
           f"{len(conv.segments)} packets, {len(conv.streams[Direction.C2S].data):,} bytes c2s, "
           f"{len(conv.streams[Direction.S2C].data):,} bytes s2c")
    shake = conv.handshake
    if shake is not None:
        yield ""
        yield f"{shake.request.method} {shake.request.path} {shake.request.protocol}"
        yield from (f"    {name}: {value}" for name, value in shake.request.headers.raw_items())
        if shake.response is not None:
            yield f"HTTP/1.1 {shake.response.status_code} {shake.response.reason_phrase}"
            yield from (f"    {name}: {value}"
                        for name, value in shake.response.headers.raw_items())
        if shake.accept_expected:
            yield (f"Sec-WebSocket-Accept expected {shake.accept_expected}: "
                   f"{'OK' if shake.accept_ok else 'MISMATCH'}")
        if shake.deflate:
            yield f"permessage-deflate: {shake.deflate}"
    if conv.frames:
        yield ""
        yield (f"{'#':>4} {'pkt':>5} dir FIN RSV  {'opcode':<6} MASK {'length':>9} bits "
               f"{'key':<8}  payload")
        for number, frame in enumerate(conv.frames, 1):
            rsv = "".join("1" if bit else "0" for bit in (frame.rsv1, frame.rsv2, frame.rsv3))
            key = frame.masking_key.hex() if frame.masking_key else "-"
            yield (f"{number:>4} {frame.packet + 1:>5} {frame.direction} {frame.fin:d}   "
                   f"{rsv}  {frame.opcode_name:<6} {frame.masked:d}    "
                   f"{frame.payload_length:>9,} {frame.length_bits:>4} {key:<8}  "
                   f"{_preview(frame.payload)}")
    if conv.messages:
        yield ""
        yield "messages"
        for message in conv.messages:
            frames = ",".join(str(index + 1) for index in message.frames)
            what = _preview(message.data, 60)
            if message.opcode is Opcode.CLOSE:
                code = message.close_code
                name = f" {code.name}" if isinstance(code, CloseCode) else ""
                what = f"code {code and int(code)}{name}, reason {message.close_reason!r}"
            deflated = " (inflated)" if message.compressed else ""
            yield (f"  {message.direction} {message.opcode.name:<6} frames {frames}: "
                   f"{what}{deflated}")
    if conv.warnings:
        yield ""
        yield from (f"warning: {warning}" for warning in conv.warnings)


def _read(source: str | os.PathLike[str] | Iterable[Packet]) -> list[Packet]:
    if not isinstance(source, (str, os.PathLike)):
        return list(source)
    try:
        return list(rdpcap(os.fspath(source)))
    except OSError as exc:
        raise DissectError(f"cannot read {os.fspath(source)}: {exc.strerror or exc}") from exc
    except (Scapy_Exception, EOFError, ValueError, struct.error, MemoryError) as exc:
        raise DissectError(f"{os.fspath(source)} is not a pcap or pcapng file ({exc})") from exc


def _dissect_connection(client: Address, server: Address, segments: list[Segment]
                        ) -> Conversation:
    streams = {way: reassemble(s for s in segments if s.direction is way) for way in Direction}
    conv = Conversation(client, server, segments, streams)
    if not any("S" in s.flags for s in segments):
        conv.warnings.append("the capture starts after the TCP connection was opened")
    for way, stream in streams.items():
        if stream.hole:
            conv.warnings.append(f"{way}: {stream.hole}")
    shake = conv.handshake = _handshake(
        streams[Direction.C2S].data, streams[Direction.S2C].data, conv.warnings)
    if shake is None or not shake.upgraded:
        return conv
    starts = {Direction.C2S: len(shake.request_bytes), Direction.S2C: len(shake.response_bytes)}
    frames = [f for way in Direction for f in _frames(way, streams[way], starts[way],
                                                      conv.warnings)]
    # In capture order (each direction's stays in stream order); client first on a tie.
    conv.frames = sorted(frames, key=lambda f: (f.packet, f.direction is Direction.S2C,
                                                f.offset))
    assemblers = {way: _Assembler(way, shake.deflate, conv.warnings) for way in Direction}
    for index, frame in enumerate(conv.frames):
        message = assemblers[frame.direction].feed(index, frame)
        if message is not None:
            conv.messages.append(message)
    for assembler in assemblers.values():
        assembler.finish()
    return conv


def dissect(source: str | os.PathLike[str] | Iterable[Packet], port: int, *,
            client_port: int | None = None) -> Conversation:
    """Dissect the WebSocket connection to TCP ``port`` in a pcap file or a list of packets.

    With several connections on the port, the first that upgraded to WebSocket is taken
    (or the one from ``client_port``). Raises :class:`DissectError` when nothing can be
    dissected; anything else that goes wrong is in the result's ``warnings``.
    """
    found = conversations(source, port)
    if client_port is not None:
        found = [conv for conv in found if conv.client[1] == client_port]
    if not found:
        which = f" from client port {client_port}" if client_port is not None else ""
        raise DissectError(f"no TCP packets to or from port {port}{which}")
    return next((conv for conv in found if conv.handshake and conv.handshake.upgraded), found[0])


def conversations(source: str | os.PathLike[str] | Iterable[Packet], port: int
                  ) -> list[Conversation]:
    """Every TCP connection to ``port`` in the capture, dissected, in order of first packet.

    Connections that never upgrade (plain HTTP requests) keep their reassembled
    ``streams`` and, when it parses, their request and response in ``handshake``.
    """
    return [_dissect_connection(client, server, segments)
            for client, server, segments in _segments(_read(source), port)]


def main(argv: list[str] | None = None) -> int:
    """``python -m demo_server.dissect``: print the handshake, frames and messages."""
    parser = argparse.ArgumentParser(
        prog="python -m demo_server.dissect",
        description="Show the WebSocket handshake, frames and messages of a capture.",
    )
    parser.add_argument("capture", help="a pcap or pcapng file")
    parser.add_argument("--port", type=int, required=True, help="the server's TCP port")
    parser.add_argument("--client-port", type=int, help="pick one of several connections")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # we report truncation once
    try:
        conv = dissect(args.capture, args.port, client_port=args.client_port)
    except DissectError as exc:
        print(f"dissect: {exc}", file=sys.stderr)
        return 2
    print(conv.to_json() if args.json else conv.to_table())
    if conv.warnings:
        more = f" (and {len(conv.warnings) - 1} more)" if len(conv.warnings) > 1 else ""
        print(f"dissect: {conv.warnings[0]}{more}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
