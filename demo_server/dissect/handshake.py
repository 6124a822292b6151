"""Layer 2, HTTP: the Upgrade request, the 101 answer, the accept key, permessage-deflate."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from websockets.datastructures import Headers
from websockets.exceptions import InvalidHeader, WebSocketException
from websockets.extensions.permessage_deflate import PerMessageDeflate
from websockets.headers import parse_extension
from websockets.http11 import Request, Response
from websockets.streams import StreamReader

from .tcp import Direction

__all__ = ["GUID", "Deflate", "Handshake", "accept_key", "parse_handshake"]

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455, section 1.3
T = TypeVar("T")
HTTP_ERRORS = (EOFError, LookupError, ValueError, NotImplementedError, WebSocketException)


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
    def from_params(cls, params: Sequence[tuple[str, str | None]]) -> Deflate:
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


def parse_http(parser: Callable[[StreamReader], Generator[None, None, T]], data: bytes
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


def asks_upgrade(request: Request) -> bool:
    """True when the request asks for a WebSocket: ``Upgrade: websocket`` and a key."""
    return (_header(request.headers, "Sec-WebSocket-Key") is not None
            and (_header(request.headers, "Upgrade") or "").lower() == "websocket")


def not_an_upgrade(request: Request) -> str:
    """The warning for a request that does not ask for a WebSocket."""
    return (f"no WebSocket handshake: {request.method} {request.path} "
            "is not a WebSocket upgrade request")


def parse_handshake(c2s: bytes, s2c: bytes, warnings: list[str]) -> Handshake | None:
    """The HTTP request at the start of ``c2s`` and the response at the start of ``s2c``.

    None when ``c2s`` does not start with an HTTP request; what else is wrong (not an
    upgrade, no 101, a wrong accept key, undecodable extensions) goes to ``warnings``.
    """
    try:
        request, used = parse_http(lambda r: Request.parse(r.read_line), c2s)
    except HTTP_ERRORS as exc:
        warnings.append(f"no WebSocket handshake: the client did not send an HTTP request ({exc})")
        return None
    key = _header(request.headers, "Sec-WebSocket-Key")
    shake = Handshake(request, c2s[:used], accept_expected=key and accept_key(key))
    if not asks_upgrade(request):
        warnings.append(not_an_upgrade(request))
    try:
        response, used = parse_http(
            lambda r: Response.parse(r.read_line, r.read_exact, r.read_to_eof), s2c)
    except HTTP_ERRORS as exc:
        warnings.append(f"no complete HTTP response from the server ({exc})")
        return shake
    shake.response, shake.response_bytes = response, s2c[:used]
    if not shake.upgraded:
        warnings.append(f"no WebSocket: the server answered {response.status_code} "
                        f"{response.reason_phrase}")
    elif not shake.accept_ok:
        warnings.append("Sec-WebSocket-Accept does not match the key: "
                        f"expected {shake.accept_expected}")
    if shake.upgraded:
        shake.deflate = _negotiated_deflate(response.headers, warnings)
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
