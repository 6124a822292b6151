"""A dissected conversation for people and programs: the table, and the JSON of ``--json``."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from websockets.frames import CloseCode, Opcode

from ..text import clip, host_port, preview
from .frames import Frame
from .handshake import Handshake
from .http import HttpExchange
from .messages import WebSocketMessage
from .tcp import Direction
from .tls import TlsInfo

if TYPE_CHECKING:  # conversation.py imports this module
    from .application import Packet
    from .conversation import Conversation

__all__ = ["conversation_dict", "table"]


def conversation_dict(conv: Conversation) -> dict[str, Any]:
    """The JSON-ready form printed by ``--json``: handshake, frames, messages, warnings."""
    limit = conv.limits.max_shown
    out: dict[str, Any] = {"handshake": _handshake_dict(conv.handshake)}
    if conv.tls is not None:
        out["tls"] = _tls_dict(conv.tls)
    if conv.engineio is not None:
        out["engineio"] = dataclasses.asdict(conv.engineio)
    if conv.http:
        out["http"] = [_exchange_dict(exchange, limit) for exchange in conv.http]
    out["frames"] = [_frame_dict(frame, limit) for frame in conv.frames]
    out["messages"] = [_message_dict(message, conv.engineio is not None, limit)
                       for message in conv.messages]
    out["warnings"] = conv.warnings
    return out


def _shown(key: str, value: str | bytes, limit: int) -> dict[str, Any]:
    """``{key: text}``, or ``{key: hex}`` for bytes, of at most ``limit`` characters or
    bytes (the max_shown limit), with ``"truncated": true`` when it was cut."""
    out: dict[str, Any] = {key: value[:limit] if isinstance(value, str) else
                           value[:limit].hex()}
    if len(value) > limit:
        out["truncated"] = True
    return out


def _body(body: bytes, limit: int) -> dict[str, Any]:
    """``{"body": text}`` for UTF-8, else ``{"body_hex": ...}``."""
    try:
        return _shown("body", body.decode(), limit)
    except UnicodeDecodeError:
        return _shown("body_hex", body, limit)


def _exchange_dict(exchange: HttpExchange, limit: int) -> dict[str, Any]:
    request, response = exchange.request, exchange.response
    sent: dict[str, Any] = {"method": request.method, "path": request.path,
                            "headers": [list(item) for item in request.headers.raw_items()],
                            **_body(exchange.request_body, limit)}
    got: dict[str, Any] | None = None
    if response is not None:
        got = {"status": response.status_code, "reason": response.reason_phrase,
               "headers": [list(item) for item in response.headers.raw_items()],
               **_body(bytes(response.body), limit)}
    if exchange.engineio is not None:
        sent["packets"] = [packet.to_dict() for packet in exchange.request_packets]
        if got is not None:
            got["packets"] = [packet.to_dict() for packet in exchange.response_packets]
    return {"request": sent, "response": got}


def _tls_dict(info: TlsInfo) -> dict[str, Any]:
    return {"version": info.version, "cipher_suite": info.cipher_suite, "sni": info.sni,
            "decrypted": info.decrypted,
            "records": [{"direction": str(record.direction), "packet": record.packet + 1,
                         "time": record.time, "content_type": record.content,
                         "length": record.length, "inner": record.inner}
                        for record in info.records]}


def _handshake_dict(shake: Handshake | None) -> dict[str, Any] | None:
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


def _frame_dict(frame: Frame, limit: int) -> dict[str, Any]:
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
        **_shown("payload_hex", frame.payload, limit),
    }


def _message_dict(message: WebSocketMessage, engineio: bool, limit: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        "direction": message.direction.value,
        "opcode": int(message.opcode),
        "opcode_name": message.opcode.name,
        "compressed": message.compressed,
    }
    if message.text is not None:
        out.update(_shown("text", message.text, limit))
    else:
        out.update(_shown("data_hex", message.data, limit))
    if message.opcode is Opcode.CLOSE:
        out["close_code"] = None if message.close_code is None else int(message.close_code)
        out["close_reason"] = message.close_reason
    if engineio:
        packet = message.packet
        out.update(packet.to_dict() if packet else {"engineio": None, "socketio": None})
    return out


def table(conv: Conversation) -> str:
    """A readable report: connection, handshake, frames, messages, warnings."""
    return "\n".join(_table_lines(conv))


def _table_lines(conv: Conversation) -> Iterable[str]:
    yield (f"connection {host_port(*conv.client)} -> {host_port(*conv.server)}: "
           f"{len(conv.segments)} packets, {len(conv.streams[Direction.C2S].data):,} bytes c2s, "
           f"{len(conv.streams[Direction.S2C].data):,} bytes s2c")
    if conv.tls is not None:
        yield from _tls_lines(conv.tls)
    for exchange in conv.http:
        yield ""
        yield from _exchange_lines(exchange)
    shake = None if conv.http else conv.handshake
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
                   f"{preview(frame.payload, 48)}")
    if conv.messages:
        yield ""
        yield "messages"
        for message in conv.messages:
            frames = ",".join(str(index + 1) for index in message.frames)
            what = preview(message.data, 60)
            if message.opcode is Opcode.CLOSE:
                code = message.close_code
                name = f" {code.name}" if isinstance(code, CloseCode) else ""
                what = f"code {code and int(code)}{name}, reason {message.close_reason!r}"
            if message.packet is not None:
                what = message.packet.label
            deflated = " (inflated)" if message.compressed else ""
            yield (f"  {message.direction} {message.opcode.name:<6} frames {frames}: "
                   f"{what}{deflated}")
    if conv.warnings:
        yield ""
        yield from (f"warning: {warning}" for warning in conv.warnings)


def _tls_lines(info: TlsInfo) -> Iterable[str]:
    """The TLS line; its records when they could not be decrypted (all that is left)."""
    yield f"{info.describe()}: {'decrypted with the key log' if info.decrypted else 'encrypted'}"
    if info.decrypted:
        return
    yield ""
    yield f"{'#':>4} {'pkt':>5} dir {'record':<18} {'length':>7}"
    for number, record in enumerate(info.records, 1):
        yield (f"{number:>4} {record.packet + 1:>5} {record.direction} {record.content:<18} "
               f"{record.length:>7,}")


def _exchange_lines(exchange: HttpExchange) -> Iterable[str]:
    """A request and its response: start line, headers, body, and socket.io's packets."""
    request, response = exchange.request, exchange.response
    yield f"{request.method} {request.path} {request.protocol}"
    yield from (f"    {name}: {value}" for name, value in request.headers.raw_items())
    yield from _body_lines(exchange.request_body, exchange.request_packets)
    if response is not None:
        yield f"HTTP/1.1 {response.status_code} {response.reason_phrase}"
        yield from (f"    {name}: {value}" for name, value in response.headers.raw_items())
        yield from _body_lines(bytes(response.body), exchange.response_packets)


def _body_lines(body: bytes, packets: tuple[Packet, ...]) -> Iterable[str]:
    if body:
        try:  # a polling body's \x1e separators make it unprintable, not unreadable
            shown = clip(repr(body.decode()), 60)
        except UnicodeDecodeError:
            shown = preview(body, 60)
        yield f"    body ({len(body):,} bytes): {shown}"
    yield from (f"      {packet.label}" for packet in packets)
