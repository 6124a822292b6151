"""The demo server: HTTP routes and the ``/ws`` WebSocket endpoint on one port.

The Python counterpart of the article's ``index.js``::

    servIo.on('connection', function (socket) {
        setInterval(function () {
            socket.emit('second', { 'second': new Date().getSeconds() });
        }, 1000);
        socket.on('client_data', function (data) { console.log(data); });
    });

with two changes: one ticker serves every connection (instead of a timer per socket), and
it fires on the wall-clock second boundary (instead of drifting from a random phase).
"""

from __future__ import annotations

import asyncio
import errno
import itertools
import logging
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed

from .events import Event, EventError, decode, encode
from .record import ReceivedLog
from .routes import WS_PATH, Router

__all__ = ["RateLimit", "DemoServer", "ServerStartError", "tick_message"]

logger = logging.getLogger("demo_server")

CLIENT_EVENTS = frozenset({Event.CLIENT_DATA})


class ServerStartError(RuntimeError):
    """The server could not start listening; the message says why in one sentence."""


@dataclass(frozen=True)
class RateLimit:
    """A token bucket per connection: ``burst`` messages at once, then ``rate`` per second.

    Over the limit the server does not drop anything: it stops reading from that connection
    until tokens come back, so TCP backpressure slows the sender down.
    """

    rate: float = 50.0
    burst: int = 100

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got {self.rate!r}, {self.burst!r}")


class _TokenBucket:
    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.stamp = time.monotonic()

    async def take(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.limit.burst, self.tokens + (now - self.stamp) * self.limit.rate)
        self.stamp = now
        if self.tokens < 1:
            await asyncio.sleep((1 - self.tokens) / self.limit.rate)
            self.tokens = 1.0
            self.stamp = time.monotonic()
        self.tokens -= 1


def tick_message(epoch_second: int) -> str:
    """The ``second`` event for one wall-clock second, stamped with the time it is sent."""
    return encode(
        Event.SECOND,
        {"second": epoch_second % 60, "epoch": epoch_second, "sent": round(time.time(), 6)},
    )


class DemoServer:
    """The asyncio server; run it with ``async with DemoServer(...) as server``.

    ``port=0`` picks a free port (read it back from :attr:`port`). ``compression=True``
    negotiates permessage-deflate. ``allow_origins`` lists browser origins allowed to open
    ``/ws`` besides the server's own. ``rate_limit=None`` turns rate limiting off.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 8001,
        *,
        compression: bool = False,
        allow_origins: Iterable[str] = (),
        max_size: int = 64 * 1024,
        rate_limit: RateLimit | None = RateLimit(),
        received: ReceivedLog | None = None,
    ) -> None:
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
        if not isinstance(host, str) or not host:
            raise ValueError(f"host must be a non-empty string, got {host!r}")
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1 byte, got {max_size!r}")
        self.host = host
        self.requested_port = port
        self.compression = compression
        self.max_size = max_size
        self.rate_limit = rate_limit
        self.router = Router(allow_origins)
        self.received = received if received is not None else ReceivedLog()
        self.clients: set[ServerConnection] = set()
        self.last_tick: int | None = None  # epoch second of the last tick sent
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._ticker: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not listening")
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """``http://host:port/``; a wildcard host is shown as loopback, which reaches it."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.host, self.host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/"

    @property
    def ws_url(self) -> str:
        return "ws" + self.url[4:] + WS_PATH.lstrip("/")

    @property
    def page_url(self) -> str:
        return self.url + "socket.html"

    async def __aenter__(self) -> DemoServer:
        try:
            self._server = await serve(
                self._handle,
                self.host,
                self.requested_port,
                process_request=self.router,
                compression="deflate" if self.compression else None,
                max_size=self.max_size,
                logger=logging.getLogger("demo_server.websockets"),
            )
        except (OSError, OverflowError, TypeError, ValueError) as exc:
            raise ServerStartError(_explain(exc, self.host, self.requested_port)) from exc
        self._ticker = asyncio.create_task(self._tick_forever(), name="demo_server ticker")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every client with 1001 (going away), stop the ticker and the listener."""
        if self._ticker is not None:
            self._ticker.cancel()
            await asyncio.gather(self._ticker, return_exceptions=True)
            self._ticker = None
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _tick_forever(self) -> None:
        """Broadcast one ``second`` event just after each wall-clock second boundary.

        Each tick names the second it was sent in, so a tick is never sent twice; after a
        stall the ticker sends only the current second, never a burst of stale ones.
        """
        while True:
            now = time.time()
            await asyncio.sleep(int(now) + 1 - now)
            second = int(time.time())
            if self.last_tick is not None and second <= self.last_tick:
                continue  # woke a hair early: sleep to the boundary again
            self.last_tick = second
            broadcast(self.clients, tick_message(second))

    async def _handle(self, connection: ServerConnection) -> None:
        client = next(self._ids)
        host, port = connection.remote_address[:2]
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        bucket = _TokenBucket(self.rate_limit) if self.rate_limit else None
        logger.info("client %d connected from %s", client, address)
        self.clients.add(connection)
        try:
            async for raw in connection:
                if bucket is not None:
                    await bucket.take()
                try:
                    message = decode(raw, expect=CLIENT_EVENTS)
                except EventError as exc:
                    await connection.send(encode(Event.ERROR, {"message": str(exc)}))
                    continue
                logger.info("client_data from %s: %r", address, message.data)
                self.received.append(client, address, message.data)
        except ConnectionClosed:
            pass  # the close code is logged below; nothing else to clean up
        finally:
            self.clients.discard(connection)
            logger.info("client %d (%s) left: %s", client, address, _close_text(connection))


def _close_text(connection: ServerConnection) -> str:
    code, reason = connection.close_code, connection.close_reason
    return f"close {code} {reason!r}" if reason else f"close {code}"


def _explain(exc: Exception, host: str, port: int) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        return (f"port {port} on {host} is already in use (another demo-server?): "
                "stop it, or choose another port (0 picks a free one)")
    if isinstance(exc, socket.gaierror) or (
        isinstance(exc, OSError) and exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT)
    ):
        return f"cannot listen on host {host!r}: {exc.strerror or exc}"
    if isinstance(exc, OSError):
        return f"cannot listen on {host}:{port}: {exc.strerror or exc}"
    return f"bad port or option ({host!r}, {port!r}): {exc}"
