"""The plain HTTP side of the one port: hello text, the browser page, and the origin check.

Static files are an allow-list read once from the package's ``static/`` folder: a request
path is looked up as an exact key, so no spelling of ``..``, ``%2e``, ``\\`` or ``//`` can
ever reach a file outside it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import http
import ipaddress
import json
import re
import time
from collections.abc import Awaitable, Iterable
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .events import sensor_data, tick_data
from .sensor import Sensor

__all__ = ["HELLO", "WS_PATH", "SENSOR_WS_PATH", "StaticFiles", "Router", "is_loopback",
           "next_change", "respond", "same_origin"]

HELLO = "Hello, World."
WS_PATH = "/ws"
SENSOR_WS_PATH = "/ws/sensor"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
# GET /sensor?after=T holds the request at most this long: websockets' open_timeout (10 s
# by default) covers the whole of process_request, and a held request is still in it.
LONG_POLL_HOLD = 5.0
_UNIX_TIME = re.compile(r"\d{1,12}(\.\d+)?")  # seconds since the epoch, no sign or exponent
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def respond(status: http.HTTPStatus, body: bytes, content_type: str,
            cache: str = "no-cache") -> Response:
    """A complete HTTP response; the connection closes after it."""
    headers = Headers([
        ("Date", email.utils.formatdate(usegmt=True)),
        ("Connection", "close"),
        ("Content-Length", str(len(body))),
        ("Content-Type", content_type),
        ("Cache-Control", cache),
    ])
    return Response(status.value, status.phrase, headers, body)


class StaticFiles:
    """The files of ``demo_server/static``, keyed by URL path (``/socket.html``)."""

    def __init__(self) -> None:
        folder = resources.files("demo_server") / "static"
        self.files: dict[str, tuple[bytes, str]] = {}
        for entry in folder.iterdir():
            suffix = "." + entry.name.rpartition(".")[2]
            if entry.is_file() and suffix in CONTENT_TYPES:
                self.files["/" + entry.name] = (entry.read_bytes(), CONTENT_TYPES[suffix])


def same_origin(origin: str, host_header: str | None) -> bool:
    """True when a browser's ``Origin`` names the host and port the request was sent to."""
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and host_header is not None and (
        parts.netloc.lower() == host_header.lower()
    )


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and localhost: only this machine can reach them."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower() == "localhost"


class Router:
    """``process_request`` for :func:`websockets.asyncio.server.serve`.

    ``loopback_only``: the server listens on loopback, so a browser page may open the
    WebSocket only under a loopback name. A page on another site whose name was made to
    resolve to 127.0.0.1 (DNS rebinding) is same-origin with itself, not with us.

    ``behind_proxy``: also accept a page served through a proxy on this machine, such as
    Jupyter's (see :meth:`_check_origin`).
    """

    def __init__(self, allow_origins: Iterable[str] = (), sensor: Sensor | None = None,
                 loopback_only: bool = False, behind_proxy: bool = False) -> None:
        self.loopback_only = loopback_only
        self.behind_proxy = behind_proxy
        self.static = StaticFiles()
        self.sensor = sensor if sensor is not None else Sensor()
        self.allow_origins = frozenset(_check_origin_syntax(o) for o in allow_origins)
        self.long_poll_hold = LONG_POLL_HOLD
        self.held = 0  # long-polls waiting for a change now
        self._closing = asyncio.Event()

    def close(self) -> None:
        """Answer every held ``GET /sensor?after=`` at once, with 503: the server stops."""
        self._closing.set()

    def __call__(self, connection: ServerConnection, request: Request
                 ) -> Response | Awaitable[Response] | None:
        for name in ("Host", "Origin"):
            if len(request.headers.get_all(name)) > 1:
                return respond(http.HTTPStatus.BAD_REQUEST,
                               f"Bad Request: more than one {name} header\n".encode(), TEXT)
        if request.method == "HEAD":  # the GET response's head, with its Content-Length
            return _without_body(self._get(connection, request))
        if request.method != "GET":
            response = respond(http.HTTPStatus.METHOD_NOT_ALLOWED,
                               b"Method Not Allowed: only GET and HEAD\n", TEXT)
            response.headers["Allow"] = "GET, HEAD"
            return response
        return self._get(connection, request)

    def _get(self, connection: ServerConnection, request: Request
             ) -> Response | Awaitable[Response] | None:
        path = request.path.partition("?")[0]
        if path in (WS_PATH, SENSOR_WS_PATH):
            local, local_port = connection.local_address[:2]
            return self._check_version(request) or self._check_origin(
                request, local, proxied=(local_port, connection.remote_address[0]))
        if path == "/":
            return respond(http.HTTPStatus.OK, HELLO.encode(), TEXT)
        after = parse_qs(urlsplit(request.path).query, keep_blank_values=True).get("after")
        if path == "/sensor" and after is not None:  # long-polling
            return self._long_poll(after)
        if path in ("/second", "/sensor"):  # for polling: what /ws and /ws/sensor push
            now = time.time()
            data = (tick_data(int(now), now) if path == "/second"
                    else sensor_data(self.sensor.value_at(now), now))
            return respond(http.HTTPStatus.OK, json.dumps(data).encode(), JSON, "no-store")
        if path in self.static.files:
            body, content_type = self.static.files[path]
            return respond(http.HTTPStatus.OK, body, content_type)
        return respond(http.HTTPStatus.NOT_FOUND, b"Not Found\n", TEXT)

    def _long_poll(self, after: list[str]) -> Response | Awaitable[Response]:
        """``after`` must be one Unix time: the ``t`` of the last reading the client has."""
        if len(after) != 1 or not _UNIX_TIME.fullmatch(after[0]):
            got = after[0] if len(after) == 1 else f"{len(after)} values"
            message = ("Bad Request: after must be the t of your last reading, once, in "
                       f"seconds since the epoch (like 1735689610.25), got {got!r}\n")
            return respond(http.HTTPStatus.BAD_REQUEST, message.encode(), TEXT)
        return self._hold(float(after[0]))

    async def _hold(self, after: float) -> Response:
        """The reading at its first change after ``after``: now if that change is past,
        else when it comes; the reading now after :attr:`long_poll_hold` seconds without
        one; 503 if the server stops meanwhile.
        """
        now = time.time()
        when, value = next_change(self.sensor, after)
        if when > now:  # nothing new yet: hold the request until the change
            self.held += 1
            try:
                async with asyncio.timeout(min(when - now, self.long_poll_hold)):
                    await self._closing.wait()
                return respond(http.HTTPStatus.SERVICE_UNAVAILABLE,
                               b"Service Unavailable: the server is shutting down\n", TEXT)
            except TimeoutError:
                pass
            finally:
                self.held -= 1
        if not now < when <= now + self.long_poll_hold:  # the change was past, or too far
            when = time.time()
            value = self.sensor.value_at(when)
        return respond(http.HTTPStatus.OK, json.dumps(sensor_data(value, when)).encode(),
                       JSON, "no-store")

    def _check_version(self, request: Request) -> Response | None:
        """400 naming the version this server speaks (RFC 6455 4.4) for any other."""
        versions = request.headers.get_all("Sec-WebSocket-Version")
        if not versions or versions == ["13"]:
            return None  # none at all: websockets answers 426 Upgrade Required
        response = respond(http.HTTPStatus.BAD_REQUEST, b"Bad Request: this server speaks "
                           b"WebSocket version 13 (RFC 6455) only\n", TEXT)
        response.headers["Sec-WebSocket-Version"] = "13"
        return response

    def _check_origin(self, request: Request, local: str,
                      proxied: tuple[int, str] | None = None) -> Response | None:
        """Refuse browsers on other sites; clients that send no ``Origin`` are not browsers.

        Same-origin counts only under a name of this machine: on loopback, a loopback
        name; elsewhere, the address the client connected to (an IP literal), or a loopback
        name over loopback. Any other name may be a rebound one (DNS rebinding). ``local``
        is the address the client connected to (the server side of its socket).

        With :attr:`behind_proxy` and ``proxied`` (our port, the client's address; /ws
        only), a connection from this machine whose ``Host`` names another port than ours
        also counts when ``Origin`` matches that ``Host``: a browser always sends the host
        and port it connects to, so only a proxy on this machine (jupyter-server-proxy
        copies the browser's headers) sends another port; the page is then same-origin with
        the proxy's site, which has checked the Origin and the login itself (Jupyter does).
        A page of another site sends its own Origin: refused.
        """
        origin = request.headers.get("Origin")
        if origin is None or origin.rstrip("/") in self.allow_origins:
            return None
        hostname = urlsplit(origin).hostname or ""
        host = request.headers.get("Host")
        if same_origin(origin, host) and (
            is_loopback(hostname) if self.loopback_only
            else _names_local_address(hostname, local)
        ):
            return None
        if self.behind_proxy and proxied is not None and same_origin(origin, host) and (
            _port(origin) != proxied[0] and is_loopback(proxied[1])
        ):
            return None
        return respond(http.HTTPStatus.FORBIDDEN, f"Origin not allowed: {origin}\n".encode(), TEXT)


def _names_local_address(hostname: str, local: str) -> bool:
    """True when ``hostname`` is the IP address ``local`` (a socket's own address), or a
    loopback name while ``local`` is a loopback address."""
    address = ipaddress.ip_address(local)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # a dual-stack socket reached over IPv4
    if address.is_loopback and is_loopback(hostname):
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")) == address
    except ValueError:
        return False


def _port(origin: str) -> int | None:
    """The port of an origin, its scheme's default when not written; None if malformed."""
    parts = urlsplit(origin)
    try:
        return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    except ValueError:
        return None


def _without_body(response: Response | Awaitable[Response] | None
                  ) -> Response | Awaitable[Response] | None:
    """``response`` (awaited if need be) with an empty body: the answer to HEAD."""
    if response is None or isinstance(response, Response):
        return response and dataclasses.replace(response, body=b"")

    async def stripped() -> Response:
        return dataclasses.replace(await response, body=b"")

    return stripped()


def next_change(sensor: Sensor, after: float) -> tuple[float, float]:
    """``(time, value)`` of the first change after a reading whose ``t`` is ``after``.

    Answers carry ``t`` rounded to the microsecond: a change whose rounded time is
    ``after`` is the one the client has, even when it came a fraction later.
    """
    return next((w, v) for w, v in sensor.changes(after - 1e-6) if round(w, 6) > after)


def _check_origin_syntax(origin: str) -> str:
    parts = urlsplit(origin) if isinstance(origin, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or (
        parts.path not in ("", "/") or parts.query or parts.fragment
    ):
        raise ValueError(f"an origin looks like http://host:port, got {origin!r}")
    return origin.rstrip("/")
