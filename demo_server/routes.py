"""The plain HTTP side of the one port: hello text, the browser page, and the origin check.

Static files are an allow-list read once from the package's ``static/`` folder: a request
path is looked up as an exact key, so no spelling of ``..``, ``%2e``, ``\\`` or ``//`` can
ever reach a file outside it.
"""

from __future__ import annotations

import email.utils
import http
import ipaddress
import json
import time
from collections.abc import Iterable
from importlib import resources
from urllib.parse import urlsplit

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.http11 import Request, Response

from .events import sensor_data, tick_data
from .sensor import Sensor

__all__ = ["HELLO", "WS_PATH", "SENSOR_WS_PATH", "StaticFiles", "Router", "is_loopback",
           "respond", "same_origin"]

HELLO = "Hello, World."
WS_PATH = "/ws"
SENSOR_WS_PATH = "/ws/sensor"
JSON = "application/json"
TEXT = "text/plain; charset=utf-8"
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
    """

    def __init__(self, allow_origins: Iterable[str] = (), sensor: Sensor | None = None,
                 loopback_only: bool = False) -> None:
        self.loopback_only = loopback_only
        self.static = StaticFiles()
        self.sensor = sensor or Sensor()
        self.allow_origins = frozenset(_check_origin_syntax(o) for o in allow_origins)

    def __call__(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.partition("?")[0]
        if request.method != "GET":
            response = respond(http.HTTPStatus.METHOD_NOT_ALLOWED,
                               b"Method Not Allowed: only GET\n", TEXT)
            response.headers["Allow"] = "GET"
            return response
        if path in (WS_PATH, SENSOR_WS_PATH):
            return self._check_origin(request)
        if path == "/":
            return respond(http.HTTPStatus.OK, HELLO.encode(), TEXT)
        if path in ("/second", "/sensor"):  # for polling: what /ws and /ws/sensor push
            now = time.time()
            data = (tick_data(int(now), now) if path == "/second"
                    else sensor_data(self.sensor.value_at(now), now))
            return respond(http.HTTPStatus.OK, json.dumps(data).encode(), JSON, "no-store")
        if path in self.static.files:
            body, content_type = self.static.files[path]
            return respond(http.HTTPStatus.OK, body, content_type)
        return respond(http.HTTPStatus.NOT_FOUND, b"Not Found\n", TEXT)

    def _check_origin(self, request: Request) -> Response | None:
        """Refuse browsers on other sites; clients that send no ``Origin`` are not browsers."""
        origin = request.headers.get("Origin")
        if origin is None or origin.rstrip("/") in self.allow_origins:
            return None
        if same_origin(origin, request.headers.get("Host")) and (
            not self.loopback_only or is_loopback(urlsplit(origin).hostname or "")
        ):
            return None
        return respond(http.HTTPStatus.FORBIDDEN, f"Origin not allowed: {origin}\n".encode(), TEXT)


def _check_origin_syntax(origin: str) -> str:
    parts = urlsplit(origin) if isinstance(origin, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname or (
        parts.path not in ("", "/") or parts.query or parts.fragment
    ):
        raise ValueError(f"an origin looks like http://host:port, got {origin!r}")
    return origin.rstrip("/")
