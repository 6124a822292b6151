"""Layer 5, the application: socket.io's Engine.IO and Socket.IO packets, when it is socket.io.

A connection is socket.io's when its first request's path is Engine.IO's (``/socket.io/``
or an ``EIO=`` query). Then each WebSocket message and each long-polling body is decoded
by :mod:`~.engineio` into :class:`Packet` s: the Engine.IO packet and, inside a ``message``,
the Socket.IO packet. What does not decode is a warning, never an exception.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from websockets.frames import Opcode

from .engineio import (
    EngineIODecodeError,
    EngineIOPacket,
    EngineIOQuery,
    SocketIOPacket,
    SocketIOType,
    decode_engineio,
    decode_polling_payload,
    is_engineio_path,
    is_polling_ack,
    message_label,
    parse_engineio_query,
    socketio_in,
)
from .http import HttpExchange
from .messages import WebSocketMessage
from .tcp import Direction

__all__ = ["Packet", "decode_exchanges", "decode_messages", "engineio_query"]

_BINARY = (SocketIOType.BINARY_EVENT, SocketIOType.BINARY_ACK)


@dataclass(frozen=True)
class Packet:
    """One Engine.IO packet, and the Socket.IO packet it carries (a ``message``'s)."""

    engineio: EngineIOPacket
    socketio: SocketIOPacket | None = None

    @property
    def label(self) -> str:
        """One line: ``42 EVENT second {"second":16}``, ``2 ping probe``, ``0 open sid=...``."""
        return message_label(self.engineio, self.socketio)

    def to_dict(self) -> dict[str, Any]:
        """``{"engineio": {"type", "data"}, "socketio": {...} or None}``, as ``--json`` prints."""
        return {"engineio": self.engineio.to_json(),
                "socketio": None if self.socketio is None else self.socketio.to_json()}


def engineio_query(path: str | None) -> EngineIOQuery | None:
    """The Engine.IO query (``EIO``, ``transport``, ``sid``) of a request path, if it is one."""
    return parse_engineio_query(path) if path is not None and is_engineio_path(path) else None


def _with_socketio(engineio: EngineIOPacket) -> Packet:
    """The Engine.IO packet with the Socket.IO packet a ``message`` carries."""
    return Packet(engineio, socketio_in(engineio))


def _decode(data: str | bytes) -> Packet:
    return _with_socketio(decode_engineio(data))


def decode_messages(messages: Sequence[WebSocketMessage], warnings: list[str]
                    ) -> list[WebSocketMessage]:
    """The messages with ``packet`` set on each text and binary one that decodes.

    Also checks that binary messages are the attachments a BINARY_EVENT or BINARY_ACK
    announced, in each direction.
    """
    announced = dict.fromkeys(Direction, 0)  # attachments still expected, per direction
    out = []
    for number, message in enumerate(messages, 1):
        if message.opcode not in (Opcode.TEXT, Opcode.BINARY):
            out.append(message)
            continue
        data: str | bytes = message.data if message.text is None else message.text
        if isinstance(data, bytes) and message.opcode is Opcode.TEXT:
            warnings.append(f"message {number}: text that is not UTF-8, not Engine.IO")
            out.append(message)
            continue
        try:
            packet = _decode(data)
        except EngineIODecodeError as exc:
            warnings.append(f"message {number}: not Engine.IO/Socket.IO ({exc})")
            out.append(message)
            continue
        if isinstance(data, bytes):
            if announced[message.direction]:
                announced[message.direction] -= 1
            else:
                warnings.append(f"message {number}: a binary message no BINARY_EVENT or "
                                "BINARY_ACK announced")
        elif packet.socketio is not None and packet.socketio.type in _BINARY:
            announced[message.direction] += packet.socketio.attachments or 0
        out.append(dataclasses.replace(message, packet=packet))
    for way, missing in announced.items():
        if missing:
            warnings.append(f"{way}: {missing} binary attachment(s) announced but not captured")
    return out


def _body_packets(body: bytes, what: str, warnings: list[str]) -> tuple[Packet, ...]:
    if not body or is_polling_ack(body):
        return ()
    try:
        return tuple(map(_with_socketio, decode_polling_payload(body)))
    except EngineIODecodeError as exc:
        warnings.append(f"{what}: not an Engine.IO payload ({exc})")
        return ()


def decode_exchanges(exchanges: Sequence[HttpExchange], warnings: list[str]
                     ) -> list[HttpExchange]:
    """The exchanges, those to an Engine.IO path with their bodies decoded: a POST's
    packets, a GET's answer. A browser keeps one connection for the page and the polling."""
    out = []
    for number, exchange in enumerate(exchanges, 1):
        query = engineio_query(exchange.request.path)
        if query is None:
            out.append(exchange)
            continue
        what = f"HTTP exchange {number}"
        sent = _body_packets(exchange.request_body, f"{what}, request body", warnings)
        answer = exchange.response
        got = () if answer is None or answer.status_code != 200 else _body_packets(
            bytes(answer.body), f"{what}, response body", warnings)
        out.append(dataclasses.replace(exchange, engineio=query, request_packets=sent,
                                       response_packets=got))
    return out
