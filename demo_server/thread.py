"""ServerThread: the demo server on its own event loop in its own thread.

A notebook kernel already runs an event loop, so ``asyncio.run()`` in a cell fails, and a
task on the kernel's loop freezes while another cell blocks. A thread with its own loop has
neither problem; the only bridge between the threads is ``call_soon_threadsafe``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from typing import Any

from .record import ReceivedLog
from .server import DemoServer, ServerStartError

__all__ = ["ServerThread", "ServerStartError"]


class ServerThread:
    """Run :class:`~demo_server.server.DemoServer` in a background thread.

    ``start()`` returns once the server listens and raises :class:`ServerStartError` in the
    caller's thread if it cannot. ``stop()`` closes clients with 1001 and joins the thread.
    Keyword arguments go to :class:`DemoServer`. Also a context manager.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        self.host = host
        self.requested_port = port
        self.options = options
        self.received = options.pop("received", None) or ReceivedLog()
        self.server: DemoServer | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._lock = threading.Lock()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> ServerThread:
        """Start listening; a no-op while already running. Returns ``self``."""
        with self._lock:
            if self.running:
                return self
            server = DemoServer(
                self.host, self.requested_port, received=self.received, **self.options
            )
            ready = threading.Event()
            failure: list[BaseException] = []
            self._thread = threading.Thread(
                target=self._run, args=(server, ready, failure), name="demo-server", daemon=True
            )
            self._thread.start()
            if not ready.wait(timeout):
                raise ServerStartError(f"the server did not start within {timeout} s")
            if failure:
                self._thread.join()
                self._thread = None
                raise failure[0]
            return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close every client with 1001 (going away), stop listening, join the thread."""
        with self._lock:
            thread, loop, stop = self._thread, self._loop, self._stop
            if thread is None:
                return
            if loop is not None and stop is not None and not loop.is_closed():
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

    def _run(
        self, server: DemoServer, ready: threading.Event, failure: list[BaseException]
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
            ready.set()
            try:
                await self._stop.wait()
            finally:
                await server.aclose()

        try:
            asyncio.run(main())
        finally:
            self._loop = None
            ready.set()

    # -- where to connect ------------------------------------------------------------------

    @property
    def _live(self) -> DemoServer:
        if not self.running or self.server is None:
            raise RuntimeError("the server is not running: call start() first")
        return self.server

    @property
    def port(self) -> int:
        return self._live.port

    @property
    def url(self) -> str:
        """``http://host:port/``, the hello page."""
        return self._live.url

    @property
    def ws_url(self) -> str:
        """``ws://host:port/ws``, the WebSocket endpoint."""
        return self._live.ws_url

    @property
    def page_url(self) -> str:
        """``http://host:port/socket.html``, the browser page."""
        return self._live.page_url

    @property
    def sensor_url(self) -> str:
        """``ws://host:port/ws/sensor``, the sensor's push stream."""
        return self._live.sensor_url

    @property
    def clients(self) -> int:
        """How many WebSocket clients are connected now."""
        return len(self.server.clients) if self.running and self.server else 0

    def __repr__(self) -> str:
        where = self.url if self.running else "stopped"
        return f"<ServerThread {where}>"

