"""A capture's connections to a port, each dissected by the layers in turn."""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from scapy.error import Scapy_Exception
from scapy.packet import Packet
from scapy.utils import rdpcap

from ..text import host_port
from .application import decode_exchanges, decode_messages, engineio_query
from .engineio import EngineIOQuery
from .frames import Frame, read_frames
from .handshake import Handshake, asks_upgrade, not_an_upgrade, parse_handshake
from .http import HttpExchange, parse_exchanges
from .messages import WebSocketMessage, assemble
from .render import conversation_dict, table
from .tcp import Address, Direction, Segment, Stream, reassemble, split_connections

__all__ = ["Conversation", "DissectError", "conversations", "dissect"]

Source = str | os.PathLike[str] | Iterable[Packet]  # a pcap or pcapng file, or its packets


class DissectError(ValueError):
    """Nothing could be dissected (not a capture, no TCP traffic on the port)."""


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
    engineio: EngineIOQuery | None = None  # socket.io's query, when the path is Engine.IO's

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


def _read(source: Source) -> list[Packet]:
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
    """Run the layers in order, each on what the one before found; stop where one finds none."""
    # TCP: each direction's byte stream
    streams = {way: reassemble(s for s in segments if s.direction is way) for way in Direction}
    conv = Conversation(client, server, segments, streams)
    if not any("S" in s.flags for s in segments):
        conv.warnings.append("the capture starts after the TCP connection was opened")
    for way, stream in streams.items():
        if stream.hole:
            conv.warnings.append(f"{way}: {stream.hole}")
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
        conv.engineio = engineio_query(conv.http[0].request.path if conv.http else None)
        if conv.engineio is not None:
            conv.http = decode_exchanges(conv.http, conv.warnings)
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
    conv.messages = assemble(conv.frames, shake.deflate, conv.warnings)
    if conv.engineio is not None:
        conv.messages = decode_messages(conv.messages, conv.warnings)
    return conv


def dissect(source: Source, port: int, *, client_port: int | None = None) -> Conversation:
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
    chosen = next((conv for conv in found if conv.handshake and conv.handshake.upgraded), None)
    if chosen is not None:
        return chosen
    chosen = found[0]
    first = chosen.http[0].request if chosen.http else None
    if first is not None:  # plain HTTP: that it is not a WebSocket is the news here
        chosen.warnings.insert(0, not_an_upgrade(first))
    return chosen


def conversations(source: Source, port: int) -> list[Conversation]:
    """Every TCP connection to ``port`` in the capture, dissected, in order of first packet.

    Connections that never upgrade (plain HTTP requests) keep their reassembled
    ``streams`` and, when it parses, their request and response in ``handshake``.
    """
    return [_dissect_connection(client, server, segments)
            for client, server, segments in split_connections(_read(source), port)]
