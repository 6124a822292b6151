"""A capture's connections to a port, each dissected by the layers in turn."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from scapy.error import Scapy_Exception
from scapy.packet import Packet
from scapy.utils import PcapReader

from ..text import host_port
from .application import decode_exchanges, decode_messages, engineio_query
from .engineio import EngineIOQuery
from .frames import Frame, read_frames
from .handshake import Handshake, asks_upgrade, not_an_upgrade, parse_handshake
from .http import HttpExchange, parse_exchanges
from .messages import WebSocketMessage, assemble
from .render import conversation_dict, table
from .tcp import Address, Direction, Segment, Stream, reassemble, split_connections
from .tls import KeyLog, KeyLogError, TlsInfo, decrypt, load_keylog, looks_like_tls

__all__ = ["Conversation", "DissectError", "Limits", "conversations", "dissect"]

Source = str | os.PathLike[str] | Iterable[Packet]  # a pcap or pcapng file, or its packets
KeyLogSource = str | os.PathLike[str] | KeyLog | None  # an NSS key log file, or its secrets


class DissectError(ValueError):
    """Nothing could be dissected (not a capture, no TCP traffic on the port)."""


@dataclass(frozen=True)
class Limits:
    """How much the dissector reads, inflates and shows: a hostile capture stays bounded.

    ``max_packets`` packets are read from a file (a gzipped pcap of 400 000 packets would
    take minutes and gigabytes); at most ``max_inflated`` bytes are inflated per connection
    (permessage-deflate bombs); each payload, text or body in the JSON shows at most
    ``max_shown`` bytes. Past a limit the rest is left out, and a warning says which limit.
    """

    max_packets: int = 100_000
    max_inflated: int = 64 * 1024 * 1024
    max_shown: int = 1024 * 1024

    def __post_init__(self) -> None:
        for name in ("max_packets", "max_inflated", "max_shown"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive whole number, got {value!r}")


@dataclass
class Conversation:
    """One TCP connection to the port, dissected."""

    client: Address
    server: Address
    segments: list[Segment]
    streams: dict[Direction, Stream]
    handshake: Handshake | None = None
    frames: list[Frame] = field(default_factory=list)
    messages: list[WebSocketMessage] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    http: list[HttpExchange] = field(default_factory=list)  # when it did not upgrade
    engineio: EngineIOQuery | None = None  # socket.io's query: the first Engine.IO request's
    tls: TlsInfo | None = None  # wss://: the TLS layer under the HTTP one
    limits: Limits = field(default_factory=Limits, repr=False)

    def __repr__(self) -> str:
        return (f"<Conversation {host_port(*self.client)} -> {host_port(*self.server)}: "
                f"{len(self.frames)} frames, {len(self.messages)} messages, "
                f"{len(self.warnings)} warnings>")

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form printed by ``--json``."""
        return conversation_dict(self)

    def to_json(self, indent: int | None = None) -> str:
        """The JSON text printed by ``--json``: one object."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    def to_table(self) -> str:
        """A readable report: connection, handshake, frames, messages, warnings."""
        return table(self)


@contextlib.contextmanager
def _scapy_warnings() -> Iterator[list[str]]:
    """What scapy's reader warns about meanwhile (a record cut short), kept, not printed."""
    said: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: said.append(record.getMessage())  # type: ignore[method-assign]
    log = logging.getLogger("scapy.runtime")
    level, propagate = log.level, log.propagate
    log.setLevel(logging.WARNING)
    log.addHandler(handler)
    log.propagate = False
    try:
        yield said
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def _take(packets: Iterable[Packet], limits: Limits, warnings: list[str],
          ends: Callable[[], int] | None = None) -> tuple[list[Packet], int]:
    """Up to ``max_packets`` packets; with ``ends``, also where the last one ended."""
    taken: list[Packet] = []
    end = ends() if ends else 0
    for packet in packets:
        if len(taken) == limits.max_packets:
            warnings.append(f"read only the first {limits.max_packets:,} packets "
                            "(the max_packets limit; --max-packets raises it)")
            return taken, -1
        taken.append(packet)
        end = ends() if ends else 0
    return taken, end


def _read(source: Source, limits: Limits, warnings: list[str]) -> list[Packet]:
    """The packets of a file (pcap or pcapng, gzipped or not) or an iterable, up to the limit."""
    if not isinstance(source, (str, os.PathLike)):
        return _take(source, limits, warnings)[0]
    name = os.fspath(source)
    try:
        with _scapy_warnings() as said, PcapReader(name) as reader:
            # a classic pcap file, not gzipped: the offset of the last whole record tells
            # whether the file goes on past it, cut inside a record header
            plain = type(reader) is PcapReader and isinstance(reader.f, io.BufferedReader)
            packets, end = _take(reader, limits, warnings, reader.f.tell if plain else None)
    except OSError as exc:
        raise DissectError(f"cannot read {name}: {exc.strerror or exc}") from exc
    except (Scapy_Exception, EOFError, ValueError, struct.error, MemoryError) as exc:
        raise DissectError(f"{name} is not a pcap or pcapng file ({exc})") from exc
    if plain and end >= 0 and (left := os.path.getsize(name) - end) > 0:
        warnings.append(f"the capture file is cut short inside a record ({left} bytes left "
                        "unread)")
    warnings.extend(f"the capture file is cut short or damaged (scapy: {text})"
                    for text in dict.fromkeys(said))
    return packets


def _dissect_connection(client: Address, server: Address, segments: list[Segment],
                        limits: Limits, keylog: KeyLog | None = None) -> Conversation:
    """Run the layers in order, each on what the one before found; stop where one finds none."""
    # TCP: each direction's byte stream
    streams = {way: reassemble(s for s in segments if s.direction is way) for way in Direction}
    conv = Conversation(client, server, segments, streams, limits=limits)
    if not any("S" in s.flags for s in segments):
        conv.warnings.append("the capture starts after the TCP connection was opened")
    for way, stream in streams.items():
        if stream.hole:
            conv.warnings.append(f"{way}: {stream.hole}")
    # TLS (wss://): the records, and the streams they carry once decrypted with the key log
    if looks_like_tls(streams[Direction.C2S].data):
        with _scapy_warnings():  # scapy's own about each record: what matters is in warnings
            conv.tls, plain = decrypt(streams, keylog, conv.warnings)
        if plain is None:
            return conv
        streams = plain
    # HTTP: the Upgrade request and its answer, at the start of the streams; or, when the
    # client does not ask for a WebSocket, every request and response (long-polling)
    c2s, s2c = streams[Direction.C2S].data, streams[Direction.S2C].data
    said: list[str] = []
    shake = conv.handshake = parse_handshake(c2s, s2c, said)
    if shake is None or not (asks_upgrade(shake.request) or shake.upgraded):
        http_said: list[str] = []
        conv.http = parse_exchanges(c2s, s2c, http_said)
        conv.warnings += http_said if conv.http else said
        if shake is None and conv.http:  # a POST first: websockets' parser refuses bodies
            first = conv.http[0]
            conv.handshake = Handshake(first.request, c2s[:first.request_end], first.response,
                                       s2c[:first.response_end])
        conv.http = decode_exchanges(conv.http, conv.warnings)
        conv.engineio = next((e.engineio for e in conv.http if e.engineio), None)
        return conv
    conv.warnings += said
    conv.engineio = engineio_query(shake.request.path)
    if not shake.upgraded:
        return conv
    # WebSocket frames: the rest of each stream
    starts = {Direction.C2S: len(shake.request_bytes), Direction.S2C: len(shake.response_bytes)}
    frames = [f for way in Direction for f in read_frames(way, streams[way], starts[way],
                                                          conv.warnings)]
    # In capture order (each direction's stays in stream order); client first on a tie.
    conv.frames = sorted(frames, key=lambda f: (f.packet, f.direction is Direction.S2C,
                                                f.offset))
    # WebSocket messages; then socket.io's packets in them, when the path is Engine.IO's
    conv.messages = assemble(conv.frames, shake.deflate, conv.warnings, limits.max_inflated)
    if conv.engineio is not None:
        conv.messages = decode_messages(conv.messages, conv.warnings)
    return conv


def dissect(source: Source, port: int, *, client_port: int | None = None,
            limits: Limits = Limits(), keylog: KeyLogSource = None) -> Conversation:
    """Dissect the WebSocket connection to TCP ``port`` in a pcap file or a list of packets.

    A ``wss://`` connection is decrypted with ``keylog``, the NSS key log its client or
    server wrote (``SSLKEYLOGFILE``), as Wireshark does; without it, only the TLS layer is
    shown and a warning says so.

    With several connections on the port, the first that upgraded to WebSocket is taken
    (else the first TLS one; or the one from ``client_port``). Raises :class:`DissectError`
    when nothing can be dissected; anything else that goes wrong is in the result's ``warnings``.
    """
    found = conversations(source, port, limits=limits, keylog=keylog)
    if client_port is not None:
        found = [conv for conv in found if conv.client[1] == client_port]
    if not found:
        which = f" from client port {client_port}" if client_port is not None else ""
        raise DissectError(f"no TCP packets to or from port {port}{which}")
    chosen = next((conv for conv in found if conv.handshake and conv.handshake.upgraded),
                  None) or next((conv for conv in found if conv.tls), None)  # not decrypted
    if chosen is not None:
        return chosen
    chosen = found[0]
    first = chosen.http[0].request if chosen.http else None
    if first is not None:  # plain HTTP: that it is not a WebSocket is the news here
        chosen.warnings.insert(0, not_an_upgrade(first))
    return chosen


def conversations(source: Source, port: int, *, limits: Limits = Limits(),
                  keylog: KeyLogSource = None) -> list[Conversation]:
    """Every TCP connection to ``port`` in the capture, dissected, in order of first packet.

    Connections that never upgrade (plain HTTP requests) keep their reassembled
    ``streams``, their requests and responses in ``http`` and the first of them in
    ``handshake``. What the file itself got wrong (cut short, over ``limits``) is in the
    ``warnings`` of every connection. ``keylog`` (a file, or :func:`~.tls.load_keylog`'s
    secrets) decrypts ``wss://`` connections; one that cannot be read is a
    :class:`DissectError`.
    """
    try:
        keys = load_keylog(keylog) if isinstance(keylog, (str, os.PathLike)) else keylog
    except KeyLogError as exc:
        raise DissectError(str(exc)) from exc
    said: list[str] = []
    packets = _read(source, limits, said)
    found = [_dissect_connection(client, server, segments, limits, keys)
             for client, server, segments in split_connections(packets, port)]
    for conv in found:
        conv.warnings[:0] = said
    return found
