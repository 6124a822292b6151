"""Server-Sent Events: the browser's built-in one-way push (``EventSource``), on a port of its own.

An event stream is one HTTP response that never ends: ``Content-Type: text/event-stream``,
then events as they happen, each a few ``data:`` lines and a blank line (WHATWG HTML,
"Server-sent events"). The HTTP side of ``websockets`` cannot send that: ``process_request``
returns one complete :class:`~websockets.http11.Response` per connection, and the whole of it
runs under the opening handshake's ``open_timeout``. So :class:`EventStream` is a small
asyncio stream server of its own, which :class:`~demo_server.server.DemoServer` starts next
to its port and feeds with every change of the sensor.

Bounded: at most ``max_clients`` streams (the next one gets ``503``), each with a queue of
``queue_size`` events; a reader that falls so far behind that its queue is full is dropped,
not buffered forever. :class:`EventParser` reads a stream as ``EventSource`` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import http
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from .text import local_url

__all__ = ["SSE_PATH", "EventParser", "EventStream", "ServerSentEvent", "format_event"]

logger = logging.getLogger("demo_server.sse")

SSE_PATH = "/sensor/events"
CONTENT_TYPE = "text/event-stream"
REQUEST_TIMEOUT = 10.0  # seconds to send the request head, like websockets' open_timeout
MAX_HEAD = 8 * 1024  # bytes of request line and headers
WRITE_BUFFER = 16 * 1024  # bytes queued in the transport before a write waits for the reader
_LINE_ENDS = re.compile(r"\r\n|\r|\n")


def format_event(data: str, *, retry_ms: int | None = None) -> bytes:
    """One event: a ``data:`` line per line of ``data``, then a blank line (UTF-8).

    ``retry_ms`` adds a ``retry:`` field: how long a client waits before reconnecting.
    """
    fields = [] if retry_ms is None else [f"retry: {retry_ms}"]
    fields += [f"data: {line}" for line in _LINE_ENDS.split(data)]
    return ("\n".join(fields) + "\n\n").encode()


@dataclass
class ServerSentEvent:
    """One dispatched event, as ``EventSource`` hands it to a page."""

    data: str
    type: str = "message"
    last_event_id: str = ""


class EventParser:
    """The WHATWG event stream parser: feed it bytes, get the events they complete.

    Lines end in CRLF, LF or CR; ``:`` starts a comment; a field's value loses one leading
    space; ``data`` lines are joined with LF; a blank line dispatches the event (none when
    no data came); ``retry`` sets :attr:`retry_ms` if it is all ASCII digits.
    """

    def __init__(self) -> None:
        self.retry_ms: int | None = None
        self.last_event_id = ""
        self._text = ""  # the start of a line whose end has not come yet
        self._pending_cr = False  # the last chunk ended in CR: an LF next is the same end
        self._data: list[str] = []
        self._type = ""

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        # UTF-8 split inside a character: a stream decoder would be exact; the events here
        # are ASCII JSON, and errors="replace" is what the spec asks for invalid bytes.
        text = self._text + chunk.decode("utf-8", errors="replace")
        if self._pending_cr and text.startswith("\n"):
            text = text[1:]  # the LF of a CRLF split between two chunks
        *lines, self._text = _LINE_ENDS.split(text)
        self._pending_cr = text.endswith("\r") and not self._text
        events = []
        for line in lines:
            if event := self._line(line):
                events.append(event)
        return events

    def _line(self, line: str) -> ServerSentEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id" and "\0" not in value:
            self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        data, kind = self._data, self._type or "message"
        self._data, self._type = [], ""
        if not data:
            return None
        return ServerSentEvent("\n".join(data), kind, self.last_event_id)


class EventStream:
    """An asyncio server that sends every :meth:`publish`\\ ed text to each client on
    ``GET /sensor/events``, as Server-Sent Events.

    ``first()`` gives the data of the event a new client gets at once (the reading now).
    ``retry_ms`` goes in that first event. Use ``async with`` or :meth:`start` and
    :meth:`aclose`.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *,
                 first: Callable[[], str] | None = None, max_clients: int = 100,
                 queue_size: int = 64, retry_ms: int = 2000) -> None:
        if max_clients < 1 or queue_size < 1 or retry_ms < 0:
            raise ValueError(f"need max_clients >= 1, queue_size >= 1, retry_ms >= 0, got "
                             f"{max_clients!r}, {queue_size!r}, {retry_ms!r}")
        self.host, self.requested_port = host, port
        self.first = first
        self.max_clients, self.queue_size, self.retry_ms = max_clients, queue_size, retry_ms
        self.dropped = 0  # slow readers dropped so far
        self._queues: dict[asyncio.StreamWriter, asyncio.Queue[str]] = {}
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the event stream is not listening")
        return self._server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return local_url(self.host, self.port) + SSE_PATH.lstrip("/")

    @property
    def clients(self) -> int:
        return len(self._queues)

    async def start(self) -> EventStream:
        self._server = await asyncio.start_server(self._serve, self.host, self.requested_port,
                                                  limit=MAX_HEAD)
        return self

    async def __aenter__(self) -> EventStream:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop listening and end every stream (the connection closes)."""
        if self._server is not None:
            self._server.close()
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    def publish(self, data: str) -> None:
        """Queue ``data`` for every client; drop each client whose queue is full."""
        for writer, queue in list(self._queues.items()):
            try:
                queue.put_nowait(data)
            except asyncio.QueueFull:
                logger.info("dropped a slow event stream reader: %d events behind",
                            queue.qsize())
                self.dropped += 1
                del self._queues[writer]
                writer.transport.abort()  # its handler, blocked on the write, ends

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._respond(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError, TimeoutError):
            pass  # the client left, or never sent a whole request head
        except asyncio.CancelledError:
            pass  # aclose(): the stream ends here (asyncio's stream server would log it)
        finally:
            self._queues.pop(writer, None)
            self._handlers.discard(task)
            writer.transport.abort()

    async def _respond(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(REQUEST_TIMEOUT):
                head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.LimitOverrunError:
            return await _refuse(writer, http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                 f"the request head is over {MAX_HEAD} bytes")
        method, _, rest = head.decode("latin-1").partition(" ")
        target = rest.partition(" ")[0]
        if method != "GET":
            return await _refuse(writer, http.HTTPStatus.METHOD_NOT_ALLOWED,
                                 "only GET", ("Allow", "GET"))
        if target.partition("?")[0] != SSE_PATH:
            return await _refuse(writer, http.HTTPStatus.NOT_FOUND,
                                 f"the event stream is at {SSE_PATH}")
        if len(self._queues) >= self.max_clients:
            return await _refuse(writer, http.HTTPStatus.SERVICE_UNAVAILABLE,
                                 f"{self.max_clients} event streams are open already",
                                 ("Retry-After", "10"))
        queue: asyncio.Queue[str] = asyncio.Queue(self.queue_size)
        self._queues[writer] = queue
        writer.transport.set_write_buffer_limits(WRITE_BUFFER)
        writer.write(_head(http.HTTPStatus.OK, CONTENT_TYPE))
        first = self.first() if self.first else None
        writer.write(format_event(first, retry_ms=self.retry_ms) if first is not None
                     else f"retry: {self.retry_ms}\n\n".encode())
        await writer.drain()
        # A client says nothing after its request: a byte or the end of its side ends the
        # stream now, not at the next event, which may be long in coming.
        left = asyncio.ensure_future(reader.read(1))
        try:
            while True:
                event = asyncio.ensure_future(queue.get())
                await asyncio.wait((event, left), return_when=asyncio.FIRST_COMPLETED)
                if not event.done():
                    event.cancel()
                    return
                writer.write(format_event(event.result()))
                await writer.drain()
        finally:
            left.cancel()


def _head(status: http.HTTPStatus, content_type: str, *extra: tuple[str, str]) -> bytes:
    """A response head without a length: the body ends when the connection closes."""
    lines = [f"HTTP/1.1 {status.value} {status.phrase}",
             f"Date: {email.utils.formatdate(usegmt=True)}", "Connection: close",
             f"Content-Type: {content_type}", "Cache-Control: no-store",
             *(f"{name}: {value}" for name, value in extra)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _refuse(writer: asyncio.StreamWriter, status: http.HTTPStatus, why: str,
                  *extra: tuple[str, str]) -> None:
    writer.write(_head(status, "text/plain; charset=utf-8", *extra)
                 + f"{status.phrase}: {why}\n".encode())
    with contextlib.suppress(ConnectionError):
        await writer.drain()
