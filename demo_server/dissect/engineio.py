"""Decode what socket.io puts on the wire: Engine.IO v4 packets carrying Socket.IO v5 packets.

socket.io 3.x/4.x (the article's app) speaks two layers over HTTP long-polling and WebSocket:

* **Engine.IO v4** (https://socket.io/docs/v4/engine-io-protocol/): one type digit, then
  data. ``0`` open (JSON handshake: ``sid``, ``upgrades``, ``pingInterval``...), ``1`` close,
  ``2`` ping, ``3`` pong (the server pings, the client answers; ``2probe``/``3probe`` test a
  new transport), ``4`` message, ``5`` upgrade, ``6`` noop. A polling body holds several
  packets separated by ``\\x1e`` (record separator), binary ones as ``b`` + base64; a binary
  WebSocket message is a ``message`` as is, with no type byte.
* **Socket.IO v5** (https://socket.io/docs/v4/socket-io-protocol/), inside each Engine.IO
  ``message``: ``<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]``, so
  ``42["second",{"second":16}]`` is an Engine.IO message holding an EVENT. A BINARY_EVENT
  or BINARY_ACK carries ``{"_placeholder":true,"num":N}`` where its binary attachments go;
  they follow as that many binary messages.

Pure functions, standard library only. Anything malformed raises :class:`EngineIODecodeError`
(a ``ValueError``) naming what is wrong; the rules follow the reference parser
(socket.io-parser): unknown types, JSON that ``JSON.parse`` refuses, payloads of the wrong
shape for their type and bad attachment counts are errors. Where it is liberal (any event
name, an ACK without payload, a namespace not closed by ``,`` at the end) so is this module.
"""

from __future__ import annotations

import base64
import binascii
import enum
import json
from dataclasses import dataclass
from typing import TypeAlias
from urllib.parse import parse_qs, urlsplit

__all__ = [
    "EngineIODecodeError",
    "EngineIOPacket",
    "EngineIOQuery",
    "EngineIOType",
    "JSONValue",
    "SocketIOPacket",
    "SocketIOType",
    "decode_engineio",
    "decode_polling_payload",
    "decode_socketio",
    "is_engineio_path",
    "is_polling_ack",
    "message_label",
    "parse_engineio_query",
    "socketio_in",
]

JSONValue: TypeAlias = (
    None | bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"]
)

RECORD_SEPARATOR = "\x1e"  # between the packets of a polling body
BINARY_PREFIX = "b"  # a base64 binary packet in a polling body
SOCKETIO_PATH = "/socket.io"
MAX_SAFE_INTEGER = 2**53 - 1  # JavaScript's: beyond it a JS peer cannot count ack ids exactly
_DIGITS = frozenset("0123456789")
_HEX_PREVIEW = 16  # bytes of a binary message shown in its label


class EngineIODecodeError(ValueError):
    """Text or bytes that are not a valid Engine.IO / Socket.IO packet; says what is wrong."""


class EngineIOType(enum.IntEnum):
    """Engine.IO v4 packet types: the first character of a text packet."""

    OPEN = 0
    CLOSE = 1
    PING = 2
    PONG = 3
    MESSAGE = 4
    UPGRADE = 5
    NOOP = 6


class SocketIOType(enum.IntEnum):
    """Socket.IO v5 packet types: the first character of an Engine.IO message's data."""

    CONNECT = 0
    DISCONNECT = 1
    EVENT = 2
    ACK = 3
    CONNECT_ERROR = 4
    BINARY_EVENT = 5
    BINARY_ACK = 6


_ENGINEIO_BY_DIGIT = {str(int(kind)): kind for kind in EngineIOType}
_SOCKETIO_BY_DIGIT = {str(int(kind)): kind for kind in SocketIOType}
_BINARY_TYPES = (SocketIOType.BINARY_EVENT, SocketIOType.BINARY_ACK)
_NAMED_NAMESPACE_TYPES = (SocketIOType.CONNECT, SocketIOType.DISCONNECT,
                          SocketIOType.CONNECT_ERROR)


@dataclass(frozen=True)
class EngineIOPacket:
    """One Engine.IO packet; ``data`` is the text after the type digit, or a binary message."""

    type: EngineIOType
    data: str | bytes = ""

    def to_json(self) -> dict[str, str]:
        """``{"type": "open"|..., "data": ...}``; binary data is given as lowercase hex."""
        data = self.data.hex() if isinstance(self.data, bytes) else self.data
        return {"type": self.type.name.lower(), "data": data}


@dataclass(frozen=True)
class SocketIOPacket:
    """One Socket.IO packet. ``attachments`` is the binary count (BINARY_* only, else None)."""

    type: SocketIOType
    namespace: str = "/"
    id: int | None = None
    data: JSONValue = None
    attachments: int | None = None

    def to_json(self) -> dict[str, JSONValue]:
        """``{"type": "EVENT", "namespace": "/", "id": null, "data": [...]}``."""
        return {"type": self.type.name, "namespace": self.namespace, "id": self.id,
                "data": self.data}


@dataclass(frozen=True)
class EngineIOQuery:
    """The Engine.IO parameters of a request URL; None for each one that is absent."""

    eio: str | None  # protocol version: "4" for socket.io 3.x and 4.x
    transport: str | None  # "polling" or "websocket"
    sid: str | None  # the session id, from the open packet, on every later request


def _cut(text: str, width: int = 40) -> str:
    """``text`` cut to ``width`` characters for an error message."""
    return text if len(text) <= width else text[:width] + "…"


def _shown(text: str) -> str:
    """Wire text quoted (control characters visible) and cut, for an error message."""
    return repr(_cut(text))


def _reject_constant(name: str) -> float:
    """Refuse NaN and Infinity, as JavaScript's JSON.parse does."""
    raise ValueError(f"{name} is not JSON")


def _parse_json(text: str, what: str) -> JSONValue:
    """Parse JSON as ``JSON.parse`` does (no NaN/Infinity); errors become ours."""
    try:
        value: JSONValue = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise EngineIODecodeError(f"{what} is not valid JSON ({reason}): {_shown(text)}"
                                  ) from None
    return value


def _open_handshake(data: str) -> dict[str, JSONValue]:
    """The JSON object an open packet carries (``sid``, ``upgrades``, ``pingInterval``...)."""
    handshake = _parse_json(data, "open packet data")
    if not isinstance(handshake, dict):
        raise EngineIODecodeError(f"open packet data is not a JSON object: {_shown(data)}")
    return handshake


def decode_engineio(message: str | bytes) -> EngineIOPacket:
    """One Engine.IO packet: a WebSocket message, or one record of a polling body.

    Bytes are a binary ``message`` (EIO 4 sends binary as is); text ``b<base64>`` is a binary
    ``message`` too (polling). ``2probe`` is a ping with data ``"probe"``.
    """
    if isinstance(message, bytes):
        return EngineIOPacket(EngineIOType.MESSAGE, message)
    if not message:
        raise EngineIODecodeError("empty Engine.IO packet (no type digit)")
    head, data = message[0], message[1:]
    if head == BINARY_PREFIX:
        try:
            payload = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise EngineIODecodeError(f"bad base64 in binary packet: {_shown(data)}") from None
        return EngineIOPacket(EngineIOType.MESSAGE, payload)
    kind = _ENGINEIO_BY_DIGIT.get(head)
    if kind is None:
        raise EngineIODecodeError(f"unknown Engine.IO packet type {head!r} (0-6 are defined)"
                                  f" in {_shown(message)}")
    packet = EngineIOPacket(kind, data)
    if packet.type is EngineIOType.OPEN:
        _open_handshake(data)
    return packet


def decode_polling_payload(body: bytes | str) -> list[EngineIOPacket]:
    """The packets of an HTTP long-polling body (UTF-8, records separated by ``\\x1e``).

    An empty body holds no packet. The ``ok`` answering a POST is not a payload: check
    :func:`is_polling_ack` first. An error names the record it is in.
    """
    if isinstance(body, bytes):
        try:
            body = body.decode()
        except UnicodeDecodeError as error:
            raise EngineIODecodeError(f"polling body is not UTF-8 text ({error})") from None
    if not body:
        return []
    records = body.split(RECORD_SEPARATOR)
    packets = []
    for number, record in enumerate(records, 1):
        try:
            packets.append(decode_engineio(record))
        except EngineIODecodeError as error:
            if len(records) == 1:
                raise
            raise EngineIODecodeError(f"packet {number} of {len(records)}: {error}") from None
    return packets


def is_polling_ack(body: bytes | str) -> bool:
    """True for the body a server answers a polling POST with: ``ok`` (Node) or ``OK`` (Python).

    Neither can be mistaken for a payload: no Engine.IO packet starts with ``o``.
    """
    return body in ("ok", "OK", b"ok", b"OK")


def _split_digits(text: str, start: int) -> int:
    """The index after the run of ASCII digits that begins at ``start``."""
    end = start
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    return end


def _compact(value: JSONValue) -> str:
    """JSON as socket.io writes it: no spaces, non-ASCII kept."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _safe_integer(digits: str, what: str) -> int:
    """ASCII ``digits`` as an int no larger than a JavaScript peer can send exactly."""
    if len(digits) > len(str(MAX_SAFE_INTEGER)) or int(digits) > MAX_SAFE_INTEGER:
        raise EngineIODecodeError(f"bad {what} {_shown(digits)}: above {MAX_SAFE_INTEGER}")
    return int(digits)


def _placeholder_numbers(data: JSONValue) -> list[JSONValue]:
    """The ``num`` of every ``{"_placeholder": true, ...}`` object in ``data``, in order."""
    numbers: list[JSONValue] = []
    pending = [data]
    while pending:  # iterative: data may nest as deep as the JSON parser allowed
        value = pending.pop()
        if isinstance(value, dict):
            if value.get("_placeholder") is True:
                numbers.append(value.get("num"))
            else:
                pending.extend(reversed(value.values()))
        elif isinstance(value, list):
            pending.extend(reversed(value))
    return numbers


def _check_payload(kind: SocketIOType, data: JSONValue, present: bool) -> None:
    """Raise unless ``data`` has the shape socket.io-parser accepts for ``kind``."""
    name = kind.name
    shown = _cut(_compact(data)) if present else "nothing"
    if kind is SocketIOType.CONNECT and present and not isinstance(data, dict):
        raise EngineIODecodeError(f"CONNECT payload must be a JSON object, not {shown}")
    if kind is SocketIOType.DISCONNECT and present:
        raise EngineIODecodeError(f"DISCONNECT carries no payload, got {shown}")
    if kind is SocketIOType.CONNECT_ERROR and present and not isinstance(data, (dict, str)):
        raise EngineIODecodeError(f"CONNECT_ERROR payload must be a JSON object or string, "
                                  f"not {shown}")
    if kind in (SocketIOType.EVENT, SocketIOType.BINARY_EVENT):
        if not isinstance(data, list) or not data:
            raise EngineIODecodeError(f"{name} payload must be a non-empty JSON array "
                                      f"[event name, args...], not {shown}")
        if isinstance(data[0], bool) or not isinstance(data[0], (str, int, float)):
            raise EngineIODecodeError(f"{name} name (the array's first item) must be a string"
                                      f" or a number, not {_cut(_compact(data[0]))}")
    if kind in (SocketIOType.ACK, SocketIOType.BINARY_ACK) and present \
            and not isinstance(data, list):
        raise EngineIODecodeError(f"{name} payload must be a JSON array, not {shown}")


def _check_placeholders(kind: SocketIOType, attachments: int, data: JSONValue) -> None:
    """Each attachment 0..n-1 must have exactly one placeholder in ``data``."""
    numbers = _placeholder_numbers(data)
    indexes = [n for n in numbers if isinstance(n, int) and not isinstance(n, bool)]
    if len(indexes) != len(numbers) or len(indexes) != attachments \
            or sorted(indexes) != list(range(attachments)):
        raise EngineIODecodeError(
            f"{kind.name} declares {attachments} attachment(s) but its placeholders "
            f"number {_cut(_compact(numbers))}, expected 0 to {attachments - 1}, once each")


def decode_socketio(text: str) -> SocketIOPacket:
    """One Socket.IO packet: the data of an Engine.IO message (``2["foo"]`` in ``42["foo"]``).

    Binary attachments are the binary messages that follow; this decodes the text part.
    """
    if not text:
        raise EngineIODecodeError("empty Socket.IO packet (no type digit)")
    head = text[0]
    kind = _SOCKETIO_BY_DIGIT.get(head)
    if kind is None:
        raise EngineIODecodeError(f"unknown Socket.IO packet type {head!r} (0-6 are defined)"
                                  f" in {_shown(text)}")
    at = 1
    attachments = None
    if kind in _BINARY_TYPES:
        end = _split_digits(text, at)
        if end == at or text[end:end + 1] != "-":
            raise EngineIODecodeError(f"{kind.name} must start with its attachment count and "
                                      f"'-', as in '51-': {_shown(text)}")
        attachments = _safe_integer(text[at:end], f"{kind.name} attachment count")
        if attachments < 1:
            raise EngineIODecodeError(f"{kind.name} attachment count must be 1 or more, not 0")
        at = end + 1
    namespace = "/"
    if text.startswith("/", at):
        comma = text.find(",", at)
        end = len(text) if comma == -1 else comma
        namespace = text[at:end]
        at = end + 1
    ack_id = None
    end = _split_digits(text, at)
    if end > at:
        ack_id = _safe_integer(text[at:end], "ack id")
        at = end
    if kind in (SocketIOType.ACK, SocketIOType.BINARY_ACK) and ack_id is None:
        raise EngineIODecodeError(f"{kind.name} without an ack id: {_shown(text)}")
    rest = text[at:]
    data = _parse_json(rest, f"{kind.name} payload") if rest else None
    _check_payload(kind, data, present=bool(rest))
    if attachments is not None:
        _check_placeholders(kind, attachments, data)
    return SocketIOPacket(kind, namespace, ack_id, data, attachments)


def socketio_in(packet: EngineIOPacket) -> SocketIOPacket | None:
    """The Socket.IO packet an Engine.IO text ``message`` carries.

    None for every other Engine.IO type and for binary messages (a binary attachment is
    part of the BINARY_EVENT/BINARY_ACK before it, not a packet of its own).
    """
    if packet.type is not EngineIOType.MESSAGE or isinstance(packet.data, bytes):
        return None
    return decode_socketio(packet.data)


def _socketio_label(packet: SocketIOPacket) -> str:
    parts = [f"4{int(packet.type)}", packet.type.name]
    if packet.namespace != "/" or packet.type in _NAMED_NAMESPACE_TYPES:
        parts.append(packet.namespace)
    if packet.id is not None:
        parts.append(f"id={packet.id}")
    if packet.attachments is not None:
        parts.append(f"attachments={packet.attachments}")
    data = packet.data
    if packet.type in (SocketIOType.EVENT, SocketIOType.BINARY_EVENT) and isinstance(data, list):
        event, *args = data
        parts.append(str(event))
        parts.extend(_compact(arg) for arg in args)
    elif data is not None:
        parts.append(_compact(data))
    return " ".join(parts)


def message_label(packet: EngineIOPacket, socketio: SocketIOPacket | None = None) -> str:
    """One line for a table: ``42 EVENT second {"second":16}``, ``2 ping probe``, ``3 pong``.

    Give ``socketio`` (from :func:`socketio_in`) to name a message's Socket.IO packet; an
    open packet shows its handshake as ``key=value``; binary shows its size and first bytes.
    """
    if socketio is not None:
        return _socketio_label(socketio)
    name = packet.type.name.lower()
    if isinstance(packet.data, bytes):
        shown = packet.data[:_HEX_PREVIEW].hex()
        cut = "…" if len(packet.data) > _HEX_PREVIEW else ""
        return f"binary {name} ({len(packet.data)} bytes) {shown}{cut}".rstrip()
    parts = [str(int(packet.type)), name]
    if packet.type is EngineIOType.OPEN:
        for key, value in _open_handshake(packet.data).items():
            shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            parts.append(f"{key}={shown}")
    elif packet.data:
        parts.append(packet.data)
    return " ".join(parts)


def parse_engineio_query(path: str) -> EngineIOQuery:
    """``EIO``, ``transport`` and ``sid`` from a request target (``/socket.io/?EIO=4&...``)."""
    query = parse_qs(urlsplit(path).query, keep_blank_values=True)

    def first(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None

    return EngineIOQuery(eio=first("EIO"), transport=first("transport"), sid=first("sid"))


def is_engineio_path(path: str) -> bool:
    """True for a request to ``/socket.io/`` itself or with an ``EIO=`` query parameter.

    Not for other files under ``/socket.io/``: a socket.io server serves its browser client
    at ``/socket.io/socket.io.js``, an ordinary script.
    """
    on_path = urlsplit(path).path.rstrip("/") == SOCKETIO_PATH
    return on_path or parse_engineio_query(path).eio is not None
