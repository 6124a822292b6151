"""ServerThread: the demo server on its own event loop in its own thread.

A notebook kernel already runs an event loop, so ``asyncio.run()`` in a cell fails, and a
task on the kernel's loop freezes while another cell blocks. A thread with its own loop has
neither problem; the only bridge between the threads is ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from typing import TYPE_CHECKING, Any

from .events import announce_data
from .loop import loop_factory, run
from .record import ReceivedLog
from .roster import Roster
from .server import DemoServer, RateLimit, ServerStartError
from .tls import server_context

if TYPE_CHECKING:
    from .socketio_server import SocketIOServer

__all__ = ["FLAVOURS", "ServerThread", "ServerStartError"]

FLAVOURS = ("websocket", "socketio")  # DemoServer (/ws), SocketIOServer (/socket.io/)
_HALT_TIMEOUT = 10.0  # seconds for a server that did not start in time to stop


class ServerThread:
    """Run the demo server in a background thread.

    ``flavour="websocket"`` (the default) runs :class:`~demo_server.server.DemoServer`,
    plain WebSocket on ``/ws``; ``flavour="socketio"`` runs
    :class:`~demo_server.socketio_server.SocketIOServer`, the article's socket.io.
    ``start()`` returns once the server listens and raises :class:`ServerStartError` in the
    caller's thread if it cannot. ``stop()`` closes every client (``/ws``: 1001 going
    away; socket.io: Engine.IO's close packet) and joins the thread. Other keyword
    arguments go to the server class (checked here, as far as a wrong one would only fail
    later, in each connection), e.g. ``redis_url="redis://127.0.0.1:6379/0"`` to join
    other servers through Redis (:mod:`demo_server.bus`). ``loop`` is the event loop:
    ``"asyncio"``, ``"uvloop"`` or ``"auto"`` (uvloop where installed); see
    :mod:`demo_server.loop`. Also a context manager.

    ``tls=True`` serves HTTPS and ``wss://`` with a certificate from this process's
    throwaway authority, or from ``certfile`` / ``keyfile``; ``keylog`` names the file the
    server appends its TLS secrets to (default: ``SSLKEYLOGFILE``). See :mod:`~.tls`.
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 0, *, flavour: str = "websocket",
        loop: str = "asyncio", **options: Any,
    ) -> None:
        loop_factory(loop)  # a bad or missing loop fails here, not in the thread
        if flavour not in FLAVOURS:
            raise ValueError(f"flavour must be one of {', '.join(FLAVOURS)}, got {flavour!r}")
        self.host = host
        self.requested_port = port
        self.flavour = flavour
        self.loop = loop
        rate_limit = options.get("rate_limit")
        if rate_limit is not None and not isinstance(rate_limit, RateLimit):
            raise TypeError("rate_limit must be a RateLimit (e.g. RateLimit(rate=10)) or None, "
                            f"got {rate_limit!r}")
        self.options = options
        tls = {name: options.pop(name, None) for name in ("certfile", "keyfile", "keylog")}
        if options.pop("tls", False) or tls["certfile"] is not None:
            if flavour != "websocket":
                raise ValueError("tls is for the websocket flavour; the socketio flavour "
                                 "serves plain http:// only")
            options["ssl"] = server_context(host, **tls)
        elif any(tls.values()):
            raise ValueError("keyfile and keylog need tls=True (or a certfile)")
        received = options.pop("received", None)  # an empty log is falsy: test for None
        self.received = received if received is not None else ReceivedLog()
        self.server: DemoServer | SocketIOServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = threading.Event()  # seen by a server still starting, too
        self._lock = threading.Lock()
        self.announcement = ""  # the last announce() text: a restarted server shows it again

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Start listening; a no-op while already running. Returns ``self``.

        Raises :class:`ServerStartError` if the server cannot listen, or does not within
        ``timeout`` seconds (then what did start is stopped).
        """
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not (
            math.isfinite(timeout) and timeout > 0
        ):
            raise ValueError(f"timeout must be a positive, finite number of seconds, got "
                             f"{timeout!r}")
        with self._lock:
            if self.running:
                return self
            server = self._make_server()
            self._stop_requested.clear()
            ready = threading.Event()
            failure: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._run, args=(server, ready, failure), name="demo-server", daemon=True
            )
            self._thread.start()
            if not ready.wait(timeout):
                self._halt(self._thread, _HALT_TIMEOUT)
                raise ServerStartError(f"the server did not start within {timeout} s")
            if failure:
                self._thread.join()
                self._thread = None
                raise failure[0]
            return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every client with 1001 (going away), stop listening, join the thread."""
        with self._lock:
            if self._thread is not None:
                self._halt(self._thread, timeout)

    def _halt(self, thread: threading.Thread, timeout: float) -> None:
        """Ask the server to stop, whether it runs or is still starting; join its thread."""
        self._stop_requested.set()  # before reading _loop: _run sets _loop before checking
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop.set)
        thread.join(timeout)
        if thread.is_alive():
            raise RuntimeError(f"the server thread did not stop within {timeout} s")
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _make_server(self) -> DemoServer | SocketIOServer:
        if self.flavour == "socketio":
            # Imported here: python-socketio and uvicorn load only for this flavour.
            from .socketio_server import SocketIOServer

            return SocketIOServer(
                self.host, self.requested_port, received=self.received, **self.options
            )
        return DemoServer(self.host, self.requested_port, received=self.received, **self.options)

    def _run(
        self,
        server: DemoServer | SocketIOServer,
        ready: threading.Event,
        failure: list[BaseException],
    ) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            try:
                await server.__aenter__()
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            self.server = server
            if self.announcement and isinstance(server, DemoServer):
                server.announce(self.announcement)
            ready.set()
            try:
                if not self._stop_requested.is_set():  # stop() came while starting
                    await self._stop.wait()
            finally:
                await server.aclose()

        try:
            run(main(), self.loop)
        finally:
            self._loop = None
            ready.set()

    # -- where to connect ------------------------------------------------------------------

    @property
    def _live(self) -> DemoServer | SocketIOServer:
        if not self.running or self.server is None:
            raise RuntimeError("the server is not running: call start() first")
        return self.server

    @property
    def _websocket_flavour(self) -> DemoServer:
        server = self._live
        if not isinstance(server, DemoServer):
            raise RuntimeError("the socketio flavour has no /ws: a socket.io client connects "
                               "to url")
        return server

    @property
    def port(self) -> int:
        return self._live.port

    @property
    def url(self) -> str:
        """``http://host:port/`` (``https:`` with TLS), the hello page; for the socketio
        flavour, also what ``socketio.Client().connect()`` takes."""
        return self._live.url

    @property
    def ws_url(self) -> str:
        """``ws://host:port/ws`` (``wss:`` with TLS), the WebSocket endpoint (websocket
        flavour)."""
        return self._websocket_flavour.ws_url

    @property
    def page_url(self) -> str:
        """``http://host:port/socket.html``, the browser page."""
        return self._live.page_url

    @property
    def sensor_url(self) -> str:
        """``ws://host:port/ws/sensor``, the sensor's push stream (websocket flavour)."""
        return self._websocket_flavour.sensor_url

    @property
    def sse_url(self) -> str:
        """``http://host:another-port/sensor/events``, the same changes as Server-Sent Events
        (websocket flavour)."""
        return self._websocket_flavour.sse_url

    @property
    def roster(self) -> Roster:
        """Who is connected and what each one types (websocket flavour)."""
        return self._websocket_flavour.roster

    def announce(self, text: str, timeout: float = 5.0) -> None:
        """:meth:`DemoServer.announce` in the server's thread: a banner on every page, and
        on pages that connect later (also after a restart: :meth:`stop` then
        :meth:`start`); ``""`` takes it down. Returns once it is sent.

        Bad text raises here (TypeError, ValueError). The socketio flavour has no banner:
        RuntimeError.
        """
        if self.flavour != "websocket":
            raise RuntimeError("announce() needs the websocket flavour: the socketio page "
                               "has no banner")
        announce_data(text, 0.0)  # bad text fails here, in the caller's thread
        server = self._websocket_flavour
        loop = self._loop
        if loop is None:
            raise RuntimeError("the server is not running: call start() first")

        async def announce() -> None:
            server.announce(text)

        asyncio.run_coroutine_threadsafe(announce(), loop).result(timeout)
        self.announcement = text

    @property
    def clients(self) -> int:
        """How many clients are connected now (on ``/ws``, or to socket.io)."""
        return len(self.server.clients) if self.running and self.server else 0

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        flavour = "" if self.flavour == "websocket" else f"{self.flavour} "
        return f"<ServerThread {flavour}{where}>"

