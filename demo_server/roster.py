"""The class as the server sees it: who is connected, since when, and what each one types.

A bounded, thread-safe record the server updates as clients join, type and leave, and a
teacher's view reads from another thread. Bounded whatever the class does: each client
keeps only the last :data:`TAIL` characters it typed and a message count, and at most
:data:`KEEP_LEFT` clients that have left are kept (the oldest departure goes first), so
its size is (connected clients + KEEP_LEFT) x about 1 KB, however long the lesson lasts.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

from .record import whole_characters

__all__ = ["KEEP_LEFT", "TAIL", "Roster", "Student", "agent_family"]

TAIL = 200  # characters of what each client typed last that are kept
KEEP_LEFT = 50  # clients that left kept for the teacher to see
AGENT_CLIP = 300  # characters of a User-Agent header looked at


@dataclass(frozen=True)
class Student:
    """One client on ``/ws`` as the teacher sees it."""

    client: int  # the server's number for the connection, from 1
    address: str  # "host:port" the connection came from (the proxy's, through Jupyter)
    agent: str  # browser family from the User-Agent, e.g. "Chrome on Android"
    since: float  # wall-clock time it connected
    messages: int = 0  # client_data messages received
    typing: str = ""  # the last TAIL characters it typed
    left: float | None = None  # wall-clock time it left; None while connected
    process: str = ""  # the server process it is connected to (several joined by Redis)


class Roster:
    """Who is in the class; :meth:`join`, :meth:`typed` and :meth:`leave` are the writes
    (and :meth:`put`, for a client of another process). A client is known by its process
    and its number there.

    :attr:`version` grows at every change; :meth:`wait_changed` blocks until it passes a
    value, so a view redraws at its own pace instead of at every key typed.
    """

    def __init__(self, tail: int = TAIL, keep_left: int = KEEP_LEFT) -> None:
        if tail < 1 or keep_left < 0:
            raise ValueError(f"tail must be >= 1 and keep_left >= 0, got {tail!r}, {keep_left!r}")
        self.tail = tail
        self.keep_left = keep_left
        self._connected: dict[tuple[str, int], Student] = {}
        self._left: OrderedDict[tuple[str, int], Student] = OrderedDict()
        self._changed = threading.Condition()
        self.version = 0

    def join(self, client: int, address: str, user_agent: str | None,
             process: str = "") -> Student:
        """``client`` connected from ``address`` with this ``User-Agent`` header (or none)."""
        student = Student(client, address, agent_family(user_agent), time.time(),
                          process=process)
        self.put(student)
        return student

    def put(self, student: Student) -> None:
        """Add or replace a connected client as it is: one that another process knows."""
        if not isinstance(student, Student) or student.left is not None:
            raise ValueError(f"put() takes a connected Student, got {student!r}")
        with self._changed:
            self._left.pop((student.process, student.client), None)  # back: not gone
            self._connected[student.process, student.client] = student
            self._bump()

    def typed(self, client: int, data: str, process: str = "") -> None:
        """``client`` sent ``data`` (a ``client_data`` message); unknown clients are ignored."""
        with self._changed:
            student = self._connected.get((process, client))
            if student is None:
                return
            tail = whole_characters((student.typing + data[-self.tail:])[-self.tail:])
            self._connected[process, client] = replace(student, messages=student.messages + 1,
                                                       typing=tail)
            self._bump()

    def leave(self, client: int, process: str = "") -> None:
        """``client`` disconnected: kept among the last :attr:`keep_left` that left."""
        with self._changed:
            student = self._connected.pop((process, client), None)
            if student is None:
                return
            if self.keep_left:
                self._left[process, client] = replace(student, left=time.time())
                while len(self._left) > self.keep_left:
                    self._left.popitem(last=False)
            self._bump()

    def leave_process(self, process: str) -> None:
        """Every client of ``process`` left (that server stopped, or cannot be heard)."""
        with self._changed:
            gone = [key for key in self._connected if key[0] == process]
        for _, client in gone:
            self.leave(client, process)

    def _bump(self) -> None:  # called with self._changed held
        self.version += 1
        self._changed.notify_all()

    def snapshot(self) -> list[Student]:
        """Connected clients by process and number, then those that left, oldest departure
        first."""
        with self._changed:
            return [*sorted(self._connected.values(), key=lambda s: (s.process, s.client)),
                    *self._left.values()]

    def connected(self) -> list[Student]:
        """The clients connected now, by number."""
        return [s for s in self.snapshot() if s.left is None]

    def wait_changed(self, version: int, timeout: float | None) -> int:
        """Block until :attr:`version` is past ``version`` or ``timeout`` passes; return it."""
        with self._changed:
            self._changed.wait_for(lambda: self.version > version, timeout)
            return self.version

    def __len__(self) -> int:
        with self._changed:
            return len(self._connected) + len(self._left)


_BROWSERS = [("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"),
             ("FxiOS/", "Firefox"), ("CriOS/", "Chrome"), ("HeadlessChrome/", "Headless Chrome"),
             ("Chrome/", "Chrome"), ("Safari/", "Safari"), ("websockets/", "Python websockets")]
_SYSTEMS = [("Android", "Android"), ("iPhone", "iPhone"), ("iPad", "iPad"),
            ("Windows", "Windows"), ("Mac OS X", "macOS"), ("CrOS", "ChromeOS"),
            ("Linux", "Linux")]
_TOKEN = re.compile(r"[\w.-]+")


def agent_family(user_agent: str | None) -> str:
    """A browser family and system from a ``User-Agent`` header: ``Chrome on Android``.

    The first match wins, in an order that puts look-alikes first (Edge and Opera say
    ``Chrome/``, Chrome says ``Safari/``); anything else is its first product token.
    """
    if not user_agent:
        return "unknown"
    agent = user_agent[:AGENT_CLIP]
    browser = next((name for token, name in _BROWSERS if token in agent), None)
    if browser is None:
        first = _TOKEN.match(agent)
        return first.group().split("/")[0][:40] if first else "unknown"
    system = next((name for token, name in _SYSTEMS if token in agent), None)
    return f"{browser} on {system}" if system else browser
