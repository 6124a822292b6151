"""Layer 2b, plain HTTP: every request and response of a connection that did not upgrade.

socket.io starts with HTTP long-polling: ``GET`` requests the server answers when it has
packets, ``POST`` requests that carry the client's packets, several on one connection when
it is kept alive. The WebSocket handshake (:mod:`~.handshake`) reads only the first request
and refuses a body, so this layer reads them all, bodies included, with the same
``websockets`` sans-I/O parsers (a request's body by ``Content-Length`` or chunked, a
response's by HTTP's rules).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from websockets.datastructures import Headers
from websockets.http11 import Request, Response, parse_headers, parse_line, read_body
from websockets.streams import StreamReader

from .handshake import HTTP_ERRORS, parse_http

if TYPE_CHECKING:  # application.py imports this module
    from .application import Packet
    from .engineio import EngineIOQuery

__all__ = ["HttpExchange", "parse_exchanges"]


@dataclass(frozen=True)
class HttpExchange:
    """One request and its response; ``*_end`` are offsets just past each in its stream."""

    request: Request  # method, path, protocol, headers (websockets' own type)
    request_body: bytes
    request_end: int
    response: Response | None  # body included; None when the capture has no answer
    response_end: int = 0
    # socket.io's query and the packets in each body, for an Engine.IO path (set by the
    # application layer)
    engineio: EngineIOQuery | None = None
    request_packets: tuple[Packet, ...] = ()
    response_packets: tuple[Packet, ...] = ()


def _read_request(reader: StreamReader) -> Generator[None, None, tuple[Request, bytes]]:
    """A request with its body: ``websockets``' ``Request.parse`` refuses bodies."""
    line = yield from parse_line(reader.read_line)
    try:
        method, path, protocol = line.decode("ascii").split(" ", 2)
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"invalid HTTP request line: {line!r}") from None
    headers: Headers = yield from parse_headers(reader.read_line)
    body: bytes = b""
    if "Content-Length" in headers or "Transfer-Encoding" in headers:
        body = bytes((yield from read_body(200, headers, reader.read_line, reader.read_exact,
                                           reader.read_to_eof)))
    return Request(path, headers, method, protocol), body


def _read_response(head_only: bool) -> Callable[[StreamReader], Generator[None, None, Response]]:
    def read(reader: StreamReader) -> Generator[None, None, Response]:
        if not head_only:
            return (yield from Response.parse(reader.read_line, reader.read_exact,
                                              reader.read_to_eof))
        line = yield from parse_line(reader.read_line)
        _, status, reason = line.decode("ascii", "replace").split(" ", 2)
        return Response(int(status), reason, (yield from parse_headers(reader.read_line)))
    return read


def parse_exchanges(c2s: bytes, s2c: bytes, warnings: list[str]) -> list[HttpExchange]:
    """Every request in ``c2s`` paired with its response in ``s2c``, in order.

    Stops at the first thing that is not HTTP, or at a request with no complete answer;
    what stopped it goes to ``warnings`` unless the stream simply ended there.
    """
    exchanges: list[HttpExchange] = []
    sent = received = 0
    while sent < len(c2s):
        try:
            (request, body), used = parse_http(_read_request, c2s[sent:])
        except HTTP_ERRORS as exc:
            warnings.append(f"HTTP request {len(exchanges) + 1} does not parse ({exc})")
            break
        sent += used
        if received >= len(s2c):
            exchanges.append(HttpExchange(request, body, sent, None))
            break
        try:
            response, used = parse_http(_read_response(request.method == "HEAD"), s2c[received:])
        except HTTP_ERRORS as exc:
            warnings.append(f"no complete HTTP response to {request.method} {request.path} "
                            f"({exc})")
            exchanges.append(HttpExchange(request, body, sent, None))
            break
        received += used
        exchanges.append(HttpExchange(request, body, sent, response, received))
    return exchanges
