"""Layer 1, TCP: split a capture into connections, reassemble each direction's byte stream."""

from __future__ import annotations

import bisect
import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from scapy.layers.inet import IP, TCP
from scapy.layers.inet6 import IPv6
from scapy.packet import Packet

__all__ = ["Address", "Direction", "Segment", "Stream", "reassemble", "split_connections"]

Address = tuple[str, int]


class Direction(enum.StrEnum):
    """Which way a segment, frame or message travels; ``str()`` gives ``c2s`` or ``s2c``."""

    C2S = "c2s"  # client to server
    S2C = "s2c"  # server to client


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


def _layers(pkt: Packet) -> tuple[IP | IPv6, TCP] | None:
    """The IP and TCP layers; lengths are filled in when the packet was built, not captured."""
    ip, tcp = pkt.getlayer(IP) or pkt.getlayer(IPv6), pkt.getlayer(TCP)
    if not isinstance(ip, (IP, IPv6)) or not isinstance(tcp, TCP):
        return None
    lengths = (ip.len, ip.ihl) if isinstance(ip, IP) else (ip.plen,)
    if None in (*lengths, tcp.dataofs):
        return _layers(pkt.__class__(bytes(pkt)))
    return ip, tcp


def split_connections(packets: list[Packet], port: int
                      ) -> list[tuple[Address, Address, list[Segment]]]:
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
