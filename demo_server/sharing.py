"""What demo servers joined by Redis share: the record, the roster and the announcement.

Each server publishes on its bus (:mod:`demo_server.bus`) what happens to its own clients,
and applies what the others publish, so the record and the teacher's view of any server
show every client of every server, and an announcement reaches every page:

- ``client_data``: a :class:`~demo_server.record.Received`'s fields: recorded, and typed
  into the roster under the sender's process;
- ``join``: a :class:`~demo_server.roster.Student`'s fields; ``leave``: its ``client``;
- ``announce``: ``{"text": ...}``, shown on this server's pages and kept for later ones.

Redis pub/sub keeps no history: a server that starts late hears nothing of what came
before. So each server, on hearing a process for the first time (or one that started
again, or came back from silence), publishes its connected students and its announcement
once more. A server not heard for a few seconds (:data:`~demo_server.bus.SILENT`) is taken
as gone: its students are shown as left until it is heard again.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from .bus import Bus, Message
from .events import Event
from .roster import Student

if TYPE_CHECKING:
    from .server import DemoServer

__all__ = ["JOIN", "LEAVE", "publish_join", "share"]

JOIN = "join"
LEAVE = "leave"


def share(server: DemoServer, bus: Bus) -> None:
    """Apply to ``server`` what the other servers on ``bus`` publish, and greet newcomers."""

    def client_data(message: Message) -> None:
        item = message.payload
        server.received.append(item["client"], item["address"], item["data"],
                               process=message.origin, when=item["time"])
        server.roster.typed(item["client"], item["data"], process=message.origin)

    def join(message: Message) -> None:
        server.roster.put(Student(**{**message.payload, "process": message.origin}))

    def leave(message: Message) -> None:
        server.roster.leave(message.payload["client"], process=message.origin)

    def announce(message: Message) -> None:
        server.show_announcement(message.payload["text"])

    def greet(origin: str) -> None:
        for student in server.roster.connected():
            if student.process == server.process:
                publish_join(bus, student)
        if server.announcement_text:
            bus.publish(Event.ANNOUNCE, {"text": server.announcement_text})

    bus.on(Event.CLIENT_DATA, client_data)
    bus.on(JOIN, join)
    bus.on(LEAVE, leave)
    bus.on(Event.ANNOUNCE, announce)
    bus.on_peer = greet
    bus.on_silent = server.roster.leave_process


def publish_join(bus: Bus, student: Student) -> None:
    """Tell the other servers that ``student`` is connected here (its process is ours)."""
    fields = dataclasses.asdict(student)
    del fields["process"]  # the message's origin says it
    bus.publish(JOIN, fields)
