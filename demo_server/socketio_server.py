"""The socket.io flavour: the article's ``index.js`` on the protocol it really spoke.

The article's server was socket.io: Socket.IO events (``42["second",{"second":16}]``) in
Engine.IO packets, over HTTP long-polling first, then upgraded to a WebSocket. Here
python-socketio's ``AsyncServer`` runs as an ASGI app under uvicorn on the caller's event
loop (python-socketio has no plain-asyncio server). One port serves ``GET /`` (hello text),
the page at ``/socket.html``, the official socket.io browser client at
``/socket.io/socket.io.js`` (as Node's socket.io serves its own), and Engine.IO at
``/socket.io/``. A python-socketio client connects to :attr:`SocketIOServer.url`.

As with ``/ws``: one ticker on the wall-clock second emits ``second`` to every client,
``client_data`` strings land in a :class:`~demo_server.record.ReceivedLog`, anything else
is answered with an ``error`` event, and browsers are held to the same origin rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import socket
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import parse_qs

import engineio.packet
import socketio
import uvicorn
from websockets.datastructures import Headers
from websockets.http11 import Request

from .events import Event, _clip, _json_type
from .record import ReceivedLog
from .routes import HELLO, TEXT, Router, is_loopback
from .server import ServerStartError, _explain, check_address, logger, wall_clock_seconds
from .text import host_port, local_url

__all__ = ["SocketIOServer", "packet_logger"]

# python-socketio's and python-engineio's log: every packet at INFO (the CLI's -v).
packet_logger = logging.getLogger("demo_server.socketio")

SOCKETIO_PATH = "/socket.io/"
CLIENT_SCRIPT_PATH = "/socket.io/socket.io.js"
# URL path -> file in demo_server/static
STATIC_PATHS = {
    "/socket.html": "/socketio.html",
    "/socketio-client.js": "/socketio-client.js",
    CLIENT_SCRIPT_PATH: "/socket.io.min.js",
}
MAX_PAYLOAD = 1_000_000  # bytes in one HTTP body or WebSocket message: Engine.IO's maxPayload
CLOSE_TIMEOUT = 0.5  # seconds stop() waits for each client to take its Engine.IO close packet
GRACEFUL_SHUTDOWN = 1  # seconds uvicorn then waits for open requests, before cancelling them

Scope = Mapping[str, Any]


@dataclass(frozen=True)
class _Client:
    number: int  # the server's number for the client, from 1, as on /ws
    address: str  # "host:port" of the request that opened the Engine.IO session


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal handlers: whoever owns the event loop handles signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class SocketIOServer:
    """The socket.io flavour; run it with ``async with SocketIOServer(...) as server``.

    ``port=0`` picks a free port (read it back from :attr:`port`). ``compression=True``
    negotiates permessage-deflate and gzips long polling bodies. ``allow_origins`` lists
    browser origins allowed besides the server's own. ``ping_interval`` and
    ``ping_timeout`` (seconds) set Engine.IO's heartbeat: every ``ping_interval`` the
    server sends a ``2`` (ping) and the client answers ``3`` (pong).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8001,
        *,
        compression: bool = False,
        allow_origins: Iterable[str] = (),
        received: ReceivedLog | None = None,
        ping_interval: float = 25,
        ping_timeout: float = 20,
    ) -> None:
        check_address(host, port)
        for name, seconds in (("ping_interval", ping_interval), ("ping_timeout", ping_timeout)):
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not (
                math.isfinite(seconds) and seconds > 0
            ):
                raise ValueError(f"{name} must be a number of seconds above 0, got {seconds!r}")
        self.host = host
        self.requested_port = port
        self.compression = compression
        self.router = Router(allow_origins, loopback_only=is_loopback(host))
        self.received = received if received is not None else ReceivedLog()
        self.clients: dict[str, _Client] = {}  # by Socket.IO session id
        self.last_tick: int | None = None  # epoch second of the last tick sent
        self._ids = itertools.count(1)
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            cors_allowed_origins=self._origin_allowed,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_http_buffer_size=MAX_PAYLOAD,
            http_compression=compression,
            async_handlers=False,  # one client's events are handled in the order sent
            logger=packet_logger,
            engineio_logger=packet_logger,
        )
        self.sio.on("connect", self._on_connect)
        self.sio.on("disconnect", self._on_disconnect)
        self.sio.on(Event.CLIENT_DATA.value, self._on_client_data)
        self.sio.on("*", self._on_other_event)
        self._listener: socket.socket | None = None
        self._uvicorn: _Uvicorn | None = None
        self._serving: asyncio.Task[None] | None = None  # uvicorn's serve()
        self._ticker: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        if self._listener is None:
            raise RuntimeError("the server is not listening")
        return cast(int, self._listener.getsockname()[1])

    @property
    def url(self) -> str:
        """``http://host:port/``: the hello page, and what ``socketio.Client().connect()``
        takes (the client adds ``/socket.io/``)."""
        return local_url(self.host, self.port)

    @property
    def page_url(self) -> str:
        """``http://host:port/socket.html``: the page on the official socket.io client."""
        return self.url + "socket.html"

    async def __aenter__(self) -> SocketIOServer:
        try:
            # The socket is made here, not by uvicorn, so that port 0, IPv6 and a port in
            # use behave as with DemoServer, and the port is known before uvicorn starts.
            family, _, _, _, address = socket.getaddrinfo(
                self.host, self.requested_port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
            )[0]
            self._listener = socket.create_server(address, family=family)
        except OSError as exc:
            raise ServerStartError(_explain(exc, self.host, self.requested_port)) from exc
        config = uvicorn.Config(
            self._app,
            interface="asgi3",
            http="h11",
            ws="websockets-sansio",  # websockets' Sans-I/O core: no legacy-API warnings
            ws_max_size=MAX_PAYLOAD,
            ws_per_message_deflate=self.compression,
            ws_ping_interval=None,  # Engine.IO has its own heartbeat, in text frames
            lifespan="off",
            log_config=None,  # leave the process's logging alone
            log_level=logging.WARNING,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN,
        )
        self._uvicorn = _Uvicorn(config)
        serving = asyncio.create_task(
            self._uvicorn.serve(sockets=[self._listener]), name="demo_server uvicorn"
        )
        while not self._uvicorn.started:  # set as soon as uvicorn accepts connections
            await asyncio.wait({serving}, timeout=0.005)
            if serving.done():
                self._listener.close()
                raise ServerStartError(f"uvicorn did not start: {serving.exception()!r}")
        self._serving = serving
        self._ticker = asyncio.create_task(self._tick_forever(), name="demo_server ticker")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Send every client Engine.IO's close packet, stop the ticker and the listener."""
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        # A polling client takes its close packet with its next GET; one that never comes
        # back does not hold the server up.
        closing = [asyncio.create_task(self._close_client(sid))
                   for sid in list(self.sio.eio.sockets)]
        if closing:
            _, late = await asyncio.wait(closing, timeout=CLOSE_TIMEOUT)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self.sio.shutdown()  # stops Engine.IO's heartbeat watchdog
        if self._serving is not None and self._uvicorn is not None:
            self._uvicorn.should_exit = True
            await self._serving  # uvicorn closes the listening socket
            self._serving = None

    async def _close_client(self, sid: str) -> None:
        """Engine.IO's close packet ("1") to one client, then its session ends.

        python-engineio's ``disconnect`` marks the session closed as soon as the packet is
        queued, so a polling client whose next GET comes a moment later gets "400 Invalid
        session" instead of the packet: it would see a transport error. So a polling client
        is handed the packet first, and the session ends once its GET took it.
        """
        session = self.sio.eio.sockets.get(sid)
        if session is not None and not session.upgraded:
            await session.send(engineio.packet.Packet(engineio.packet.CLOSE))
            await session.queue.join()
        await self.sio.eio.disconnect(sid)

    async def _tick_forever(self) -> None:
        """Emit the article's ``second`` event, ``{"second": N}``, on each wall-clock second."""
        async for second in wall_clock_seconds():
            self.last_tick = second
            await self.sio.emit(Event.SECOND.value, {"second": second % 60})

    # -- HTTP and routing ------------------------------------------------------------------

    async def _app(self, scope: Scope, receive: Any, send: Any) -> None:
        """The ASGI app: Engine.IO under ``/socket.io/``, a few plain pages elsewhere."""
        path = scope["path"]
        if path != CLIENT_SCRIPT_PATH and (path + "/").startswith(SOCKETIO_PATH):
            await self._engineio(scope, receive, send)
        elif scope["type"] == "http":
            await self._serve_page(scope, send)
        else:  # a WebSocket anywhere else, e.g. /ws: refused with 403
            await send({"type": "websocket.close"})

    async def _engineio(self, scope: Scope, receive: Any, send: Any) -> None:
        """python-socketio's Engine.IO, and a polling client's goodbye answered at once.

        When a polling client POSTs its close packet, python-engineio leaves the client's
        pending GET waiting until the ping timeout (its ``disconnect()`` blocks that long);
        Node's server answers it at once, and so does this: with a noop.
        """
        session = None
        if scope["type"] == "http" and scope["method"] == "POST":
            sid = parse_qs(scope["query_string"].decode("latin-1")).get("sid", [""])[0]
            session = self.sio.eio.sockets.get(sid)
        await self.sio.handle_request(scope, receive, send)
        if session is not None and session.closed and not session.upgraded:
            session.queue.put_nowait(engineio.packet.Packet(engineio.packet.NOOP))

    async def _serve_page(self, scope: Scope, send: Any) -> None:
        path = scope["path"]
        headers: list[tuple[bytes, bytes]] = []
        if scope["method"] != "GET":
            status, body, content_type = 405, b"Method Not Allowed: only GET\n", TEXT
            headers.append((b"allow", b"GET"))
        elif path == "/":
            status, body, content_type = 200, HELLO.encode(), TEXT
        elif path in STATIC_PATHS:
            status = 200
            body, content_type = self.router.static.files[STATIC_PATHS[path]]
        else:
            status, body, content_type = 404, b"Not Found\n", TEXT
        headers += [(b"content-type", content_type.encode()),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-cache")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _origin_allowed(self, origin: str | None, environ: dict[str, Any]) -> bool:
        """python-engineio's origin check, on both transports: /ws's rules."""
        if origin is None:
            return True  # not a browser
        headers = Headers(Origin=origin)
        if "HTTP_HOST" in environ:
            headers["Host"] = environ["HTTP_HOST"]
        local = environ["asgi.scope"]["server"][0]  # the address the client connected to
        return self.router._check_origin(Request(environ["PATH_INFO"], headers), local) is None

    # -- Socket.IO events ------------------------------------------------------------------

    async def _on_connect(self, sid: str, environ: dict[str, Any], auth: object = None) -> None:
        client = _Client(next(self._ids), host_port(*environ["asgi.scope"]["client"][:2]))
        self.clients[sid] = client
        transport = "websocket" if environ["asgi.scope"]["type"] == "websocket" else "polling"
        logger.info("client %d connected from %s (socket.io, %s)",
                    client.number, client.address, transport)

    async def _on_disconnect(self, sid: str, reason: str) -> None:
        client = self.clients.pop(sid, None)
        if client is not None:
            logger.info("client %d (%s) left: %s", client.number, client.address, reason)

    async def _on_client_data(self, sid: str, *args: Any) -> None:
        client = self.clients[sid]  # events come only between connect and disconnect
        if len(args) != 1 or not isinstance(args[0], str):
            await self._send_error(sid, f"client_data takes one string, got {_describe(args)}")
            return
        logger.info("client_data from %s: %r", client.address, args[0])
        self.received.append(client.number, client.address, args[0])

    async def _on_other_event(self, event: str, sid: str, *args: Any) -> None:
        await self._send_error(sid, f"unknown event {_clip(event)!r}")

    async def _send_error(self, sid: str, message: str) -> None:
        """An ``error`` event, ``{"message": ...}``, to one client, as /ws answers."""
        await self.sio.emit(Event.ERROR.value, {"message": message}, to=sid)


def _describe(args: tuple[Any, ...]) -> str:
    if len(args) != 1:
        return f"{len(args)} arguments"
    return "binary data" if isinstance(args[0], bytes) else _json_type(args[0])
