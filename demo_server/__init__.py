"""websocket-intro's demo server: the article's Express + socket.io app, rebuilt in Python.

One port serves ``GET /`` (hello text), the browser page, and the ``/ws`` WebSocket that
pushes the current second to every client and records what clients type.
:class:`SocketIOServer` (``ServerThread(flavour="socketio")``) serves the same over
socket.io, the article's own protocol.
"""

from typing import TYPE_CHECKING, Any

from .client import ClientThread
from .events import Event, EventError, Message, decode, encode
from .record import Received, ReceivedLog
from .server import DemoServer, RateLimit, ServerStartError
from .thread import ServerThread

if TYPE_CHECKING:
    from .socketio_server import SocketIOServer

__all__ = [
    "ClientThread",
    "DemoServer",
    "Event",
    "EventError",
    "Message",
    "RateLimit",
    "Received",
    "ReceivedLog",
    "ServerStartError",
    "ServerThread",
    "SocketIOServer",
    "decode",
    "encode",
]


def __getattr__(name: str) -> Any:
    """Import :class:`SocketIOServer` on first use: only it needs python-socketio and uvicorn."""
    if name == "SocketIOServer":
        from .socketio_server import SocketIOServer

        return SocketIOServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
