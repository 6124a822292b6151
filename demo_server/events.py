"""The JSON envelope every application message travels in.

One text frame holds one JSON object ``{"event": <name>, "data": <value>}``: the raw
WebSocket equivalent of socket.io's ``emit(name, data)``.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_ANNOUNCEMENT", "Event", "Message", "EventError", "announce_data", "encode",
           "decode", "sensor_data", "tick_data"]

MAX_ANNOUNCEMENT = 1000  # characters in one announcement: a banner, not a document


class Event(enum.StrEnum):
    """Event names on the wire."""

    SECOND = "second"  # server -> client, once per wall-clock second
    ERROR = "error"  # server -> client, names what was wrong with a message
    CLIENT_DATA = "client_data"  # client -> server, text typed in the page
    SENSOR = "sensor"  # server -> client on /ws/sensor, each time the reading changes
    ANNOUNCE = "announce"  # server -> client, the teacher's banner ("" takes it down)


@dataclass(frozen=True)
class Message:
    """A decoded envelope."""

    event: Event
    data: Any


class EventError(ValueError):
    """A message that is not a valid envelope; ``str()`` is safe to send back."""


def tick_data(epoch_second: int, sent: float) -> dict[str, Any]:
    """The data of a ``second`` event: the second (0-59), its Unix time, and the send time."""
    return {"second": epoch_second % 60, "epoch": epoch_second, "sent": round(sent, 6)}


def sensor_data(value: float, when: float) -> dict[str, Any]:
    """A sensor reading: its value and the time it had that value (``GET /sensor``); the
    ``sensor`` event adds when it was sent."""
    return {"value": value, "t": round(when, 6)}


def announce_data(text: str, sent: float) -> dict[str, Any]:
    """The data of an ``announce`` event: the banner's text and when it was sent.

    Raises :class:`TypeError` for anything but a ``str``, :class:`ValueError` for text over
    :data:`MAX_ANNOUNCEMENT` characters or holding a lone surrogate (half a character,
    which no page could show and UTF-8 cannot encode).
    """
    if not isinstance(text, str):
        raise TypeError(f"an announcement is a str, got {type(text).__name__}")
    if len(text) > MAX_ANNOUNCEMENT:
        raise ValueError(f"an announcement is at most {MAX_ANNOUNCEMENT} characters, got "
                         f"{len(text)}")
    try:
        text.encode()
    except UnicodeEncodeError as exc:
        raise ValueError(f"the announcement has a lone surrogate {text[exc.start]!r} at "
                         f"character {exc.start}: half a character, not text") from None
    return {"text": text, "sent": round(sent, 6)}


def encode(event: Event | str, data: Any) -> str:
    """Return the compact JSON text of one envelope."""
    name = Event(event).value
    return json.dumps({"event": name, "data": data}, separators=(",", ":"), ensure_ascii=False)


def decode(text: str | bytes, *, expect: frozenset[Event] | None = None) -> Message:
    """Parse and validate one envelope received as a text frame.

    ``expect`` restricts which events are accepted (a server only accepts what clients may
    send). Raises :class:`EventError` with a message naming the problem.
    """
    if not isinstance(text, str):
        raise EventError("binary frames are not accepted: send JSON text")
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        raise EventError(f"not JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(obj, dict):
        raise EventError(f"expected a JSON object, got {_json_type(obj)}")
    if "event" not in obj:
        raise EventError('missing "event"')
    name = obj["event"]
    if not isinstance(name, str):
        raise EventError(f'"event" must be a string, got {_json_type(name)}')
    try:
        event = Event(name)
    except ValueError:
        raise EventError(f"unknown event {_clip(name)!r}") from None
    if expect is not None and event not in expect:
        raise EventError(f"unknown event {name!r}")
    data = obj.get("data")
    if event is Event.CLIENT_DATA and not isinstance(data, str):
        raise EventError(f'"data" of client_data must be a string, got {_json_type(data)}')
    return Message(event, data)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean",
             int: "a number", float: "a number", type(None): "null"}
    return names.get(type(value), type(value).__name__)


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
