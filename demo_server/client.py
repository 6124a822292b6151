"""ClientThread: a WebSocket client on its own event loop in its own thread.

Notebooks drive widgets from it: callbacks run in the client's thread, which keeps
updating a widget after the cell that started it has ended, even while another cell blocks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from ssl import SSLContext
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .events import Event, EventError, decode, encode
from .tls import client_context

__all__ = ["ClientThread"]

logger = logging.getLogger(__name__)

Callback = Callable[[Any], object]
_CLOSE_SHARE = 0.8  # of stop()'s timeout, for the closing handshake; the rest ends the thread


async def _close_within(connection: ClientConnection, seconds: float) -> None:
    """The closing handshake, or, if the server does not finish it in time, an abort."""
    try:
        async with asyncio.timeout(seconds):
            await connection.close()
    except TimeoutError:
        connection.transport.abort()  # the reader sees the end at once: 1006
        await connection.wait_closed()


class ClientThread:
    """Connect to ``url`` (``ws://host:port/ws``) in a background thread.

    ``on(event, callback)`` calls ``callback(data)`` in the client's thread for each message
    of that event. For ``wss://``, ``ssl`` is the context (default: the system's authorities
    and this process's throwaway one, :func:`demo_server.tls.client_context`, writing the
    TLS secrets to ``keylog`` or ``SSLKEYLOGFILE``). ``send(event, data)`` is safe from
    any thread. ``next(event)`` returns the oldest message of that event not returned yet
    (the last ``backlog`` are kept), or waits for one. ``stop()`` closes with 1000 and joins.
    """

    def __init__(
        self,
        url: str,
        *,
        compression: bool = False,
        open_timeout: float = 10.0,
        backlog: int = 100,
        ssl: SSLContext | None = None,
        keylog: str | os.PathLike[str] | None = None,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://")):
            raise ValueError(f"url must start with ws:// or wss://, got {url!r}")
        self.url = url
        self.compression = compression
        if ssl is not None and keylog is not None:
            raise ValueError("give ssl or keylog, not both: set keylog_filename on the context")
        secure = url.startswith("wss://")
        if not secure and (ssl is not None or keylog is not None):
            raise ValueError(f"ssl and keylog are for wss:// URLs, got {url!r}")
        self.ssl = ssl if ssl is not None or not secure else client_context(keylog=keylog)
        self.open_timeout = open_timeout
        self.counts: collections.Counter[Event] = collections.Counter()
        self.latest: dict[Event, Any] = {}
        self._unread: dict[Event, collections.deque[Any]] = collections.defaultdict(
            lambda: collections.deque(maxlen=backlog)
        )
        self.close_code: int | None = None
        self._callbacks: dict[Event, list[Callback]] = collections.defaultdict(list)
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: ClientConnection | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> ClientThread:
        """Connect; returns once the handshake is done, raises ``ConnectionError`` if not."""
        if self.running:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        self.close_code = None
        self._thread = threading.Thread(
            target=lambda: asyncio.run(self._main(ready, failure)),
            name="demo-client",
            daemon=True,
        )
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise ConnectionError(f"cannot connect to {self.url}: {failure[0]}") from failure[0]
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Close the connection (code 1000) and join the thread, all within ``timeout``
        seconds; a no-op when stopped.

        A server that does not answer the close in time (most of ``timeout``) is cut off:
        the TCP connection is aborted, and ``close_code`` is then 1006.
        """
        thread, loop, connection = self._thread, self._loop, self._connection
        if thread is None:
            return
        deadline = time.monotonic() + timeout
        if loop is not None and connection is not None:
            # Already closing or closed is fine: joining is all that is left then.
            # A callback blocking the client's loop times out here, and the join below.
            with contextlib.suppress(
                RuntimeError, ConnectionClosed, TimeoutError, asyncio.CancelledError
            ):
                asyncio.run_coroutine_threadsafe(
                    _close_within(connection, timeout * _CLOSE_SHARE), loop
                ).result(timeout)
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            raise RuntimeError(f"the client thread did not stop within {timeout} s")
        self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> ClientThread:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _main(self, ready: threading.Event, failure: list[BaseException]) -> None:
        try:
            connection = await connect(
                self.url,
                compression="deflate" if self.compression else None,
                open_timeout=self.open_timeout,
                ssl=self.ssl,
            )
        except Exception as exc:
            failure.append(exc)
            ready.set()
            return
        self._loop, self._connection = asyncio.get_running_loop(), connection
        ready.set()
        try:
            async for raw in connection:
                self._dispatch(raw)
        except ConnectionClosed:
            pass
        finally:
            with self._changed:
                self.close_code = connection.close_code
                self._loop = self._connection = None
                self._changed.notify_all()

    def _dispatch(self, raw: str | bytes) -> None:
        try:
            message = decode(raw)
        except EventError as exc:
            logger.warning("ignoring a message from the server: %s", exc)
            return
        with self._changed:
            self.counts[message.event] += 1
            self.latest[message.event] = message.data
            self._unread[message.event].append(message.data)
            callbacks = list(self._callbacks[message.event])
            self._changed.notify_all()
        for callback in callbacks:
            try:
                callback(message.data)
            except Exception:
                logger.exception("callback %r for %s failed", callback, message.event.value)

    # -- talking ---------------------------------------------------------------------------

    def on(self, event: Event | str, callback: Callback) -> Callable[[], None]:
        """Call ``callback(data)`` for each message of ``event``; returns an unsubscribe."""
        event = Event(event)
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        with self._changed:
            self._callbacks[event].append(callback)

        def unsubscribe() -> None:
            with self._changed:
                if callback in self._callbacks[event]:
                    self._callbacks[event].remove(callback)

        return unsubscribe

    def send(self, event: Event | str, data: Any, timeout: float = 5.0) -> None:
        """Send one ``{"event", "data"}`` message; safe to call from any thread."""
        self.send_raw(encode(event, data), timeout)

    def send_raw(self, message: str | bytes, timeout: float = 5.0) -> None:
        """Send one frame exactly as given (text for ``str``, binary for ``bytes``)."""
        loop, connection = self._loop, self._connection
        if loop is None or connection is None:
            raise ConnectionError("not connected: call start() first")
        asyncio.run_coroutine_threadsafe(connection.send(message), loop).result(timeout)

    def next(self, event: Event | str, timeout: float | None = 5.0) -> Any:
        """Return the oldest unread message of ``event``, waiting up to ``timeout`` seconds
        (None: until one comes or the connection ends)."""
        event = Event(event)
        unread = self._unread[event]
        with self._changed:
            if not self._changed.wait_for(lambda: unread or self._connection is None, timeout):
                raise TimeoutError(f"no {event.value!r} message within {timeout} s")
            if not unread:
                if self.close_code is None:  # never connected, or stopped before it was
                    raise ConnectionError("not connected: call start() first")
                raise ConnectionError(f"connection closed (code {self.close_code})")
            return unread.popleft()

    def clear(self) -> None:
        """Forget unread messages, so ``next`` waits for new ones."""
        with self._changed:
            self._unread.clear()

    def __repr__(self) -> str:
        return f"<ClientThread {self.url} {'open' if self.running else 'closed'}>"

