"""websocket-intro's demo server: the article's Express + socket.io app, rebuilt in Python.

One port serves ``GET /`` (hello text), the browser page, and the ``/ws`` WebSocket that
pushes the current second to every client and records what clients type.
"""

from .client import ClientThread
from .events import Event, EventError, Message, decode, encode
from .record import Received, ReceivedLog
from .server import DemoServer, RateLimit, ServerStartError
from .thread import ServerThread

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
    "decode",
    "encode",
]
