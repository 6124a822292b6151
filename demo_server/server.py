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
import contextlib
import errno
import gc
import itertools
import logging
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable
from dataclasses import dataclass
from ssl import SSLContext
from typing import Protocol

from websockets.asyncio.server import Server, ServerConnection, broadcast, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State

from .bus import Bus, BusError, process_name
from .events import Event, EventError, announce_data, decode, encode, sensor_data, tick_data
from .proxy import proxy_prefix
from .record import ReceivedLog
from .roster import Roster
from .routes import SENSOR_WS_PATH, WS_PATH, Router, is_loopback
from .sensor import Sensor
from .sharing import LEAVE, publish_join, share
from .sse import EventStream
from .text import clip, host_port, local_url

__all__ = ["FAST_PATH_RELIES_ON", "SYSTEM_CLOCK", "Clock", "DemoServer", "RateLimit", "Sender",
           "ServerStartError", "SystemClock", "broadcast_serialized", "check_address",
           "tick_message", "wall_clock_seconds"]

logger = logging.getLogger("demo_server")
frame_logger = logging.getLogger("demo_server.websockets")  # websockets' own log, -v: frames

CLIENT_EVENTS = frozenset({Event.CLIENT_DATA})
# Messages already queued come out of ``async for`` without a pause: after this many in a
# row (about a millisecond of work), a handler lets the ticker and other clients run.
YIELD_EVERY = 64
WAKE_EARLY = 0.002  # seconds before a tick's boundary the ticker's timer is set for
# websockets answers every ping as it reads it, without waiting for the client to read: a
# client that sends pings and never reads would make the server buffer every pong.
MAX_UNSENT = 1024 * 1024  # bytes waiting for a client over which it is cut off at once
# Over websockets' write_limit (32 KiB) for this long, a client is taken as not reading.
NOT_READING_GRACE = 10.0
SHUTDOWN_GRACE = 1.0  # seconds clients get to answer the 1001 close before they are cut off
LOG_CLIP = 200  # characters of a client_data shown in the log
# What asyncio's accept() reports with 'out of system resource', then retries after 1 s.
ACCEPT_RESOURCE_ERRORS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


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

    async def take(self, stopping: asyncio.Event) -> None:
        """Take a token, waiting for one if needed; return at once when ``stopping`` is set."""
        now = time.monotonic()
        self.tokens = min(self.limit.burst, self.tokens + (now - self.stamp) * self.limit.rate)
        self.stamp = now
        if self.tokens < 1:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout((1 - self.tokens) / self.limit.rate):
                    await stopping.wait()
            self.tokens = 1.0
            self.stamp = time.monotonic()
        self.tokens -= 1


class _GuardedConnection(ServerConnection):
    """websockets' connection, cutting off a client that does not read.

    A client whose unsent bytes stay over websockets' ``write_limit`` for
    :data:`NOT_READING_GRACE` seconds, or pass :data:`MAX_UNSENT` (pongs to a ping flood),
    is closed with 1008 at once: the close frame would wait behind what it has not read.
    Its server (``owner``, set by :meth:`DemoServer._connection_class`) knows each
    connection from its first byte, so it can cut off any of them at shutdown.

    Bytes after the request's head, before the response, are dropped: a WebSocket client
    must wait for the 101 (RFC 6455 4.1), and a plain request is answered, then closed.
    websockets would parse them as frames of a connection not yet open, and fail it
    without answering the request.
    """

    owner: DemoServer
    _not_reading: asyncio.TimerHandle | None = None
    _head_end: bytes | None = b""  # the head's last bytes read so far; None once complete

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.owner._connection_made(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.live.discard(self)
        if self._not_reading is not None:
            self._not_reading.cancel()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.protocol.state is State.CONNECTING:
            data = self._up_to_head_end(data)
        if data:
            super().data_received(data)
        unsent = self.transport.get_write_buffer_size()
        if unsent > MAX_UNSENT:
            self.cut_off(f"not reading: {unsent} bytes unsent")

    def _up_to_head_end(self, data: bytes) -> bytes:
        """The part of ``data`` that belongs to the request's head, up to its empty line."""
        if self._head_end is None:
            return b""
        seen = self._head_end + data
        end = seen.find(b"\r\n\r\n")
        if end < 0:
            self._head_end = seen[-3:]
            return data
        self._head_end = None
        return data[:end + 4 - (len(seen) - len(data))]

    def pause_writing(self) -> None:
        super().pause_writing()
        self._not_reading = self.loop.call_later(
            NOT_READING_GRACE, self.cut_off, f"not reading for {NOT_READING_GRACE:g} s")

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._not_reading is not None:
            self._not_reading.cancel()
            self._not_reading = None

    def cut_off(self, reason: str) -> None:
        """Close with 1008 (policy violation) and ``reason``, without waiting."""
        if self.protocol.state is State.OPEN:
            self.protocol.fail(CloseCode.POLICY_VIOLATION, reason)
        self.transport.abort()


class Clock(Protocol):
    """What the ticker reads and waits on; tests pass a fake one to skip the real seconds."""

    def time(self) -> float:
        """The wall clock: Unix time in seconds, which may be stepped."""
        ...

    def monotonic(self) -> float:
        """A clock that never goes back, in seconds, for deadlines."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once :meth:`monotonic` has reached ``deadline``, not before."""
        ...


class SystemClock:
    """The real clocks: :func:`time.time` and the running event loop's monotonic time."""

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep to just before ``deadline``, then yield to the loop until it has passed.

        Timers fire up to a couple of milliseconds late (the selector rounds up to whole
        milliseconds): the timer is set :data:`WAKE_EARLY` seconds early instead.
        """
        loop = asyncio.get_running_loop()
        await asyncio.sleep(max(0.0, deadline - loop.time() - WAKE_EARLY))
        while loop.time() < deadline:
            await asyncio.sleep(0)


SYSTEM_CLOCK = SystemClock()


async def wall_clock_seconds(clock: Clock = SYSTEM_CLOCK) -> AsyncGenerator[int, None]:
    """Yield each wall-clock second (Unix time) just after it starts, each one once.

    After a stall only the current second comes, never a burst of stale ones. If the
    caller's work on a second runs past the next boundary, that second comes at once,
    late, rather than not at all. If the wall clock is stepped back, the next second
    comes once the clock passes the last one.
    """
    last: int | None = None
    while True:
        now = clock.time()
        if last is not None and int(now) > last:
            await asyncio.sleep(0)  # late: nothing yielded for this second yet, yield it now
        else:
            await clock.sleep_until(clock.monotonic() + int(now) + 1 - now)
        second = int(clock.time())
        if second <= (int(now) if last is None else last):
            # Not past the boundary waited for: the wall clock was stepped back, or runs
            # slower than the monotonic one (NTP slewing). Wait for a new second.
            continue
        last = second
        yield second


def tick_message(epoch_second: int, sent: float) -> str:
    """The ``second`` event for one wall-clock second, stamped with ``sent``, the send time."""
    return encode(Event.SECOND, tick_data(epoch_second, sent))


Sender = Callable[[Iterable[ServerConnection], str], None]
"""Sends one text message to each open connection given, like :func:`broadcast`."""

# What broadcast_serialized relies on in websockets' asyncio ServerConnection beyond its
# documented API, as of websockets 17. tests/test_fast_path.py checks each one and fails
# naming it when a websockets release changes it.
FAST_PATH_RELIES_ON = {
    "transport": "the connection's asyncio.Transport (undocumented attribute): bytes written "
                 "to it go out after everything websockets has written",
    "send_in_progress": "None, except a Future while a fragmented message is being sent "
                        "(undocumented attribute): a frame written then would land inside it",
    "state": "OPEN until websockets queues a Close frame, and websockets writes what it "
             "queues to the transport in the same step: no frame of websockets' is ever "
             "waiting behind a tick, and none follows a Close frame",
}


def broadcast_serialized(connections: Iterable[ServerConnection], message: str) -> None:
    """:func:`broadcast` without compression, building the frame once for everyone.

    Server frames are not masked, so without compression a message is the same bytes for
    every client: serialize the frame once and write those bytes to each connection's
    transport, skipping (like broadcast()) connections that are closing or in the middle of
    a fragmented message. Frames sent this way are not logged. It relies on the websockets
    internals listed in :data:`FAST_PATH_RELIES_ON`.
    """
    frame = Frame(Opcode.TEXT, message.encode()).serialize(mask=False)
    for connection in connections:
        if connection.state is not State.OPEN or connection.send_in_progress is not None:
            continue
        try:
            connection.transport.write(frame)
        except Exception as exc:  # like broadcast(): one bad connection stops no one
            connection.logger.warning("skipped broadcast: %s", exc)


def check_address(host: str, port: int) -> None:
    """Raise :class:`ValueError` unless ``host`` and ``port`` can name a listening address."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an integer from 0 to 65535, got {port!r}")
    if not isinstance(host, str) or not host:
        raise ValueError(f"host must be a non-empty string, got {host!r}")


class DemoServer:
    """The asyncio server; run it with ``async with DemoServer(...) as server``.

    ``port=0`` picks a free port (read it back from :attr:`port`). ``compression=True``
    negotiates permessage-deflate. ``allow_origins`` lists browser origins allowed to open
    ``/ws`` besides the server's own. ``rate_limit=None`` turns rate limiting off.
    ``gc_after_tick=True`` moves the garbage collector's long pauses to just after a tick,
    for the whole process (see :meth:`_collect_garbage`); the ``demo-server`` command,
    which owns its process, turns it on. ``clock`` is what the ticker reads and waits on.
    ``behind_proxy`` accepts pages served through a proxy on this machine (Jupyter's, see
    :class:`~demo_server.routes.Router`); None: when :func:`~demo_server.proxy.proxy_prefix`
    says the reader's browser reaches the server that way.
    ``sender`` sends each tick; by default :func:`broadcast_serialized`, or :func:`broadcast`
    with compression on (each connection has its own deflate state) or frames logged (-v).
    ``ssl`` serves HTTPS and ``wss://`` instead (:func:`demo_server.tls.server_context`).
    ``process`` names this server (default ``host/pid``; each record carries it, and with
    ``redis_url`` or ``reuse_port`` each handshake's ``X-Demo-Process`` header);
    ``redis_url`` joins the servers on that Redis (:mod:`demo_server.bus`): each records
    every client_data of every server.
    ``reuse_port=True`` lets several processes listen on one port (``SO_REUSEPORT``).
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
        gc_after_tick: bool = False,
        sensor: Sensor | None = None,
        clock: Clock = SYSTEM_CLOCK,
        sender: Sender | None = None,
        behind_proxy: bool | None = None,
        ssl: SSLContext | None = None,
        process: str | None = None,
        redis_url: str | None = None,
        reuse_port: bool = False,
    ) -> None:
        check_address(host, port)
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1 byte, got {max_size!r}")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError("rate_limit must be a RateLimit (e.g. RateLimit(rate=10)) or None, "
                            f"got {rate_limit!r}")
        self.host = host
        self.requested_port = port
        self.compression = compression
        self.max_size = max_size
        self.rate_limit = rate_limit
        self.sensor = sensor if sensor is not None else Sensor()
        self._next_change: float | None = None  # when the pusher sends the next change
        if behind_proxy is None:
            behind_proxy = proxy_prefix() is not None
        self.router = Router(allow_origins, self.sensor, loopback_only=is_loopback(host),
                             behind_proxy=behind_proxy)
        self.roster = Roster()  # who is connected and what each one types, for the teacher
        self.announcement: str | None = None  # the last announce message, for new pages
        # Nothing reads the record of a server made without one (demo-server): keep it small.
        self.received = received if received is not None else ReceivedLog(maxlen=100)
        self.gc_after_tick = gc_after_tick
        self.clock = clock
        self.sender = sender
        self.ssl = ssl  # HTTPS and wss:// on the same port (demo_server.tls makes one)
        self.process = process or process_name()
        self.reuse_port = reuse_port
        self.bus = None if redis_url is None else Bus(
            redis_url, self.process, beat=lambda: {"clients": len(self.clients), "port": self.port})
        if self.bus is not None:
            share(self, self.bus)
        self._connections_changed = 0  # opened or closed since the last full collection
        self.clients: set[ServerConnection] = set()
        self.sensor_clients: set[ServerConnection] = set()  # on /ws/sensor
        self.last_tick: int | None = None  # epoch second of the last tick sent
        self._ids = itertools.count(1)
        self._server: Server | None = None
        self._tasks: list[asyncio.Task[None]] = []  # the ticker and the sensor's pusher
        self.live: set[ServerConnection] = set()  # every connection, handshake included
        self._stopping = asyncio.Event()  # set by aclose(): handlers take no more messages
        self._accept_failed = False  # out of file descriptors (or memory) at the last accept
        self._loop_exception_handler: Callable[..., object] | None = None
        # Server-Sent Events need a response that never ends: on a port of their own.
        self.sse = EventStream(host, first=self._sensor_now)

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the server is not listening")
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        """``http://host:port/``; a wildcard host is shown as loopback, which reaches it."""
        return local_url(self.host, self.port, "https" if self.ssl else "http")

    @property
    def ws_url(self) -> str:
        return self._ws_url(WS_PATH)

    @property
    def page_url(self) -> str:
        return self.url + "socket.html"

    @property
    def sensor_url(self) -> str:
        """``ws://host:port/ws/sensor``: pushes each change of the sensor's reading."""
        return self._ws_url(SENSOR_WS_PATH)

    @property
    def sse_url(self) -> str:
        """``http://host:other-port/sensor/events``: the sensor's changes as Server-Sent Events."""
        return self.sse.url

    def _ws_url(self, path: str) -> str:
        return "ws" + self.url[4:] + path.lstrip("/")

    async def __aenter__(self) -> DemoServer:
        try:
            self._server = await self._listen()
        except (OSError, OverflowError, TypeError, ValueError) as exc:
            raise ServerStartError(_explain(exc, self.host, self.requested_port)) from exc
        loop = asyncio.get_running_loop()
        self._loop_exception_handler = loop.get_exception_handler()
        loop.set_exception_handler(self._on_loop_exception)
        try:
            await self.sse.start()
        except OSError as exc:
            await self.aclose()
            raise ServerStartError(f"cannot listen for Server-Sent Events on {self.host}: "
                                   f"{exc.strerror or exc}") from exc
        if self.bus is not None:
            try:
                await self.bus.start()
            except BusError as exc:
                await self.aclose()
                raise ServerStartError(str(exc)) from exc
        self._tasks = [
            asyncio.create_task(self._tick_forever(), name="demo_server ticker"),
            asyncio.create_task(self._push_sensor_forever(), name="demo_server sensor"),
        ]
        return self

    async def _listen(self) -> Server:
        """``serve()`` on every address of :attr:`host`, all on one port.

        With port 0, asyncio lets the kernel pick a port per address (``localhost`` is
        ``::1`` and ``127.0.0.1``): then the port the first one got is asked for on all.
        """
        port = self.requested_port
        for _ in range(5):  # another process may take the port between two attempts
            try:
                server = await serve(
                    self._handle, self.host, port,
                    process_request=self.router,
                    compression="deflate" if self.compression else None,
                    max_size=self.max_size,
                    logger=frame_logger,
                    create_connection=self._connection_class(),
                    ssl=self.ssl,
                    # Only where there are several processes: the handshake of a lone
                    # server is what notebooks capture and show, header by header.
                    process_response=self._name_process if self.bus or self.reuse_port
                    else None,
                    reuse_port=self.reuse_port,
                )
            except OSError as exc:
                if port == self.requested_port or exc.errno != errno.EADDRINUSE:
                    raise
                port = self.requested_port
                continue
            ports = [sock.getsockname()[1] for sock in server.sockets]
            if len(set(ports)) == 1:
                return server
            server.close()
            await server.wait_closed()
            port = ports[0]
        raise OSError(errno.EADDRINUSE, "no port is free on every address of the host")

    def _connection_class(self) -> type[ServerConnection]:
        """:class:`_GuardedConnection` for this server's connections."""
        server = self

        class Connection(_GuardedConnection):
            owner = server

        return Connection

    def _name_process(self, connection: ServerConnection, request: Request,
                      response: Response) -> None:
        """Say in each handshake's response which process answered it."""
        response.headers["X-Demo-Process"] = self.process

    def _connection_made(self, connection: ServerConnection) -> None:
        self.live.add(connection)
        if self._accept_failed:
            self._accept_failed = False
            logger.warning("accepting connections again")

    def _on_loop_exception(self, loop: asyncio.AbstractEventLoop,
                           context: dict[str, object]) -> None:
        """One line when accepting fails for want of descriptors, not a traceback a try.

        asyncio then stops accepting for a second, and tries again (a back-off);
        :meth:`_connection_made` says when it works again. Other errors go on as before.
        """
        exc = context.get("exception")
        if isinstance(exc, OSError) and exc.errno in ACCEPT_RESOURCE_ERRORS:
            if not self._accept_failed:
                self._accept_failed = True
                logger.error("cannot accept connections: %s; trying again every second",
                             exc.strerror)
            return
        if self._loop_exception_handler is not None:
            self._loop_exception_handler(loop, context)
        else:
            loop.default_exception_handler(context)

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every client with 1001 (going away), stop the ticker and the listener.

        Within :data:`SHUTDOWN_GRACE` seconds, whatever clients have sent: handlers take no
        more messages, and a client that has not answered the close by then is cut off.
        """
        self.router.close()  # answer held long-polls now, not at their cap
        await self.sse.aclose()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self._server is not None:
            self._stopping.set()
            self._server.close()
            try:
                async with asyncio.timeout(SHUTDOWN_GRACE):
                    await self._server.wait_closed()
            except TimeoutError:
                for connection in list(self.live):
                    connection.transport.abort()
                await self._server.wait_closed()
            asyncio.get_running_loop().set_exception_handler(self._loop_exception_handler)
        if self.bus is not None:  # after the clients: their leaves are published
            await self.bus.aclose()

    def announce(self, text: str) -> None:
        """Show ``text`` in a banner on every page on ``/ws``, and on every page that
        connects later, until the next announcement; ``""`` takes the banner down.

        Call it in the server's loop (:meth:`ServerThread.announce` does, from any thread).
        Raises TypeError or ValueError (see :func:`~demo_server.events.announce_data`).
        Servers joined by Redis show it on their pages too.
        """
        self.show_announcement(text)
        if self.bus is not None:
            self.bus.publish(Event.ANNOUNCE, {"text": text})

    @property
    def announcement_text(self) -> str:
        """The text of :attr:`announcement`; ``""`` when there is none."""
        return "" if self.announcement is None else decode(self.announcement).data["text"]

    def show_announcement(self, text: str) -> None:
        """:meth:`announce` on this server's pages only (what another server announced)."""
        message = encode(Event.ANNOUNCE, announce_data(text, self.clock.time()))
        self.announcement = message if text else None
        broadcast(self.clients, message)
        logger.info("announced to %d clients: %s", len(self.clients), _loggable(text))

    async def _tick_forever(self) -> None:
        """Send one ``second`` event for each second of :func:`wall_clock_seconds`."""
        async for second in wall_clock_seconds(self.clock):
            self.last_tick = second
            self._send_tick(tick_message(second, self.clock.time()))
            if self.gc_after_tick:
                self._collect_garbage()

    def _send_tick(self, message: str) -> None:
        """Send one tick to every open connection on ``/ws``, with :attr:`sender`."""
        send = self.sender
        if send is None:
            plain = not self.compression and not frame_logger.isEnabledFor(logging.DEBUG)
            send = broadcast_serialized if plain else broadcast
        send(self.clients, message)

    def _collect_garbage(self) -> None:
        """Run full garbage collections just after a tick, not across a tick's time.

        A full collection walks every live object: with thousands of connections it stops
        the server for hundreds of milliseconds, at a moment CPython chooses, often on a
        tick's boundary. Here, once the set of connections has changed by a quarter since
        the last full collection (about the growth at which CPython would run one), it
        runs right after a tick, and what survives is frozen (``gc.freeze``): automatic
        collections then walk only what is newer, a fraction of the objects.
        """
        if self._connections_changed > max(len(self.clients), 100) / 4:  # 25 at least
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self._connections_changed = 0

    async def _push_sensor_forever(self) -> None:
        """Broadcast a ``sensor`` event to ``/ws/sensor`` at each change of the reading."""
        for when, value in self.sensor.changes(time.time()):
            self._next_change = when
            await asyncio.sleep(max(0.0, when - time.time()))
            message = _sensor_message(value, when)
            broadcast(self.sensor_clients, message)
            self.sse.publish(message)

    async def _stream_sensor(self, connection: ServerConnection) -> None:
        """``/ws/sensor``: the reading now, then every change; the client has nothing to say."""
        self.sensor_clients.add(connection)
        try:
            await connection.send(self._sensor_now())
            async for _ in self._messages(connection):
                await connection.send(encode(Event.ERROR, {
                    "message": f"{SENSOR_WS_PATH} only pushes readings: send nothing"}))
        except ConnectionClosed:
            pass
        finally:
            self.sensor_clients.discard(connection)

    async def _handle(self, connection: ServerConnection) -> None:
        assert connection.request is not None  # handlers run after the opening handshake
        if connection.request.path.partition("?")[0] == SENSOR_WS_PATH:
            return await self._stream_sensor(connection)
        client = next(self._ids)
        address = host_port(*connection.remote_address[:2])
        logger.info("client %d connected from %s", client, address)
        self.clients.add(connection)
        self._connections_changed += 1
        student = self.roster.join(client, address, connection.request.headers.get("User-Agent"),
                                   process=self.process)
        if self.bus is not None:
            publish_join(self.bus, student)
        try:
            if self.announcement is not None:
                await connection.send(self.announcement)
            async for raw in self._messages(connection):
                try:
                    message = decode(raw, expect=CLIENT_EVENTS)
                except EventError as exc:
                    await connection.send(encode(Event.ERROR, {"message": str(exc)}))
                    continue
                logger.info("client_data from %s: %s", address, _loggable(message.data))
                item = self.received.append(client, address, message.data, process=self.process)
                self.roster.typed(client, message.data, process=self.process)
                if self.bus is not None:
                    self.bus.publish(Event.CLIENT_DATA, item.__dict__)
        except ConnectionClosed:
            pass  # the close code is logged below; nothing else to clean up
        finally:
            self.clients.discard(connection)
            self._connections_changed += 1
            self.roster.leave(client, process=self.process)
            if self.bus is not None:
                self.bus.publish(LEAVE, {"client": client})
            logger.info("client %d (%s) left: %s", client, address, _close_text(connection))

    async def _messages(self, connection: ServerConnection) -> AsyncIterator[str | bytes]:
        """What a client sends, at most at :attr:`rate_limit`, letting the ticker and other
        clients run every :data:`YIELD_EVERY` messages; nothing more once :meth:`aclose`
        has begun, however much the client has sent."""
        bucket = _TokenBucket(self.rate_limit) if self.rate_limit else None
        handled = 0
        async for raw in connection:
            if bucket is not None:
                await bucket.take(self._stopping)
            if self._stopping.is_set():
                await connection.wait_closed()  # aclose() is closing it with 1001
                return
            handled += 1
            if handled % YIELD_EVERY == 0:
                await asyncio.sleep(0)
            yield raw

    def _sensor_now(self) -> str:
        """The ``sensor`` event of the reading now: what a new stream gets first.

        When the pusher is late with a change (due, not sent yet: timers fire late), the
        reading just before that change instead (2 µs: ``t`` is rounded to the
        microsecond), so the change that follows on the stream is newer, not older.
        """
        now = time.time()
        if self._next_change is not None:
            now = min(now, self._next_change - 2e-6)
        return _sensor_message(self.sensor.value_at(now), now)


def _sensor_message(value: float, when: float) -> str:
    """A ``sensor`` event: the reading, when it took that value, and when it is sent."""
    return encode(Event.SENSOR, {**sensor_data(value, when), "sent": round(time.time(), 6)})


def _loggable(data: str) -> str:
    """``data`` quoted, clipped to :data:`LOG_CLIP` characters with its length when longer."""
    shown = repr(clip(data, LOG_CLIP))
    return shown if len(data) <= LOG_CLIP else f"{shown} ({len(data)} characters)"


def _close_text(connection: ServerConnection) -> str:
    """How a connection ended: the code the server sent and why, when it closed first (a
    protocol error, a client not reading, shutdown); else the client's code."""
    protocol = connection.protocol
    if protocol.close_sent is not None and not protocol.close_rcvd_then_sent:
        return f"closed by the server: {protocol.close_sent}"
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
