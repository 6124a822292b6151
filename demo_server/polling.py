"""Polling versus push, measured: clients that record what they saw, and the judge.

The article's motivation, made into numbers: a client that polls ``GET /sensor`` asks again
and again and still misses a short spike that falls between two polls; a client on
``/ws/sensor`` is told of every change as it happens. Between them, long-polling
(``GET /sensor?after=T``, held until the reading changes) and Server-Sent Events (one HTTP
response that never ends). All watch the same :class:`~demo_server.sensor.Sensor`, so what
each saw can be checked against the truth.
"""

from __future__ import annotations

import http.client
import json
import socket
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlencode, urlsplit

from websockets.sync.client import connect

from .dissect import Conversation, Direction
from .events import Event, Message, decode
from .sensor import Sensor, Spike
from .sse import CONTENT_TYPE, EventParser

__all__ = ["Reading", "Outcome", "Traffic", "poll", "long_poll", "listen", "listen_sse",
           "judge", "traffic"]

_ROUNDING = 1e-5  # the server sends its times rounded to the microsecond
_MAX_HEAD = 64 * 1024  # bytes of an event stream's response head


@dataclass(frozen=True)
class Reading:
    """One value as a client got it."""

    seen: float  # the client's wall-clock time when the value arrived
    value: float
    t: float  # the server's time for the value: when it read it (poll) or it changed (push)


def _http_url(url: str) -> SplitResult:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"url must be http://host:port/path, got {url!r}")
    return parts


def _check_seconds(seconds: float) -> None:
    if not 0 < seconds <= 600:
        raise ValueError(f"need 0 < seconds <= 600, got {seconds}")


def _get_json(parts: SplitResult, query: str, timeout: float) -> Any:
    """``GET`` the URL ``parts`` with ``query`` on a new connection; its JSON answer."""
    target = (parts.path or "/") + (f"?{query}" if query else "")
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("GET", target)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise RuntimeError(f"GET {target}: {response.status} {response.reason}: {body!r}")
    return json.loads(body)


def poll(url: str, rate: float, seconds: float) -> list[Reading]:
    """``GET url`` ``rate`` times a second for ``seconds``, on a fixed schedule.

    Each request is on time or skipped (never a burst to catch up), like a browser timer.
    ``url`` answers JSON with a ``value`` (``/sensor``).
    """
    if not 0 < rate <= 100:
        raise ValueError(f"need 0 < rate <= 100, got {rate}")
    _check_seconds(seconds)
    parts = _http_url(url)
    readings = []
    slots = max(1, round(rate * seconds))
    start = time.time()
    for slot in range(slots):
        due = start + slot / rate
        if time.time() <= due + 1 / rate:  # else this slot is already over: skip it
            time.sleep(max(0.0, due - time.time()))
            body = _get_json(parts, parts.query, timeout=5)
            readings.append(Reading(time.time(), float(body["value"]), float(body["t"])))
    # The last slot's answer arrives just after ``start + seconds - 1 / rate``: wait out the
    # last interval, so that every method watches the signal for ``seconds``.
    time.sleep(max(0.0, start + seconds - time.time()))
    return readings


def long_poll(url: str, seconds: float) -> list[Reading]:
    """Long-poll ``url`` (``/sensor``) for ``seconds``: ask, get an answer when the reading
    changes, ask again at once.

    The first request is a plain ``GET`` (the reading now); each next one adds ``after=``
    the ``t`` of the last answer, which the server holds until the next change. A request
    still held when the time is up is given up.
    """
    _check_seconds(seconds)
    parts = _http_url(url)
    readings: list[Reading] = []
    end = time.time() + seconds
    while (left := end - time.time()) > 0:
        after = [("after", f"{readings[-1].t:.6f}")] if readings else []
        query = "&".join(q for q in (parts.query, urlencode(after)) if q)
        try:
            body = _get_json(parts, query, timeout=left)
        except TimeoutError:
            break
        readings.append(Reading(time.time(), float(body["value"]), float(body["t"])))
    return readings


def _sensor_reading(message: Message) -> Reading | None:
    """The reading a ``sensor`` event carries, stamped with when it arrived."""
    if message.event is not Event.SENSOR:
        return None
    return Reading(time.time(), float(message.data["value"]), float(message.data["t"]))


def listen(ws_url: str, seconds: float) -> list[Reading]:
    """Record every ``sensor`` event pushed on ``ws_url`` (``/ws/sensor``) for ``seconds``."""
    _check_seconds(seconds)
    if urlsplit(ws_url).scheme not in ("ws", "wss"):
        raise ValueError(f"ws_url must be ws://host:port/path, got {ws_url!r}")
    readings = []
    end = time.time() + seconds
    with connect(ws_url, open_timeout=5) as ws:
        while (left := end - time.time()) > 0:
            try:
                raw = ws.recv(timeout=min(left, 0.25))
            except TimeoutError:
                pass
            else:
                if reading := _sensor_reading(decode(raw)):
                    readings.append(reading)
    return readings


def listen_sse(url: str, seconds: float) -> list[Reading]:
    """Record every ``sensor`` event on the Server-Sent Events stream ``url`` for ``seconds``.

    It sends what a browser's ``EventSource`` sends and parses the stream as it does
    (:class:`~demo_server.sse.EventParser`), without reconnecting when the stream ends.
    """
    _check_seconds(seconds)
    parts = _http_url(url)
    end = time.time() + seconds
    request = (f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1\r\n"
               f"Host: {parts.netloc}\r\nAccept: {CONTENT_TYPE}\r\nCache-Control: no-cache\r\n\r\n")
    readings = []
    parser = EventParser()
    with socket.create_connection((parts.hostname, parts.port or 80), timeout=5) as sock:
        sock.sendall(request.encode())
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(4096)
            if not chunk or len(received) > _MAX_HEAD:
                raise RuntimeError(f"GET {url}: no event stream, the answer was {received!r}")
            received += chunk
        head, _, chunk = received.partition(b"\r\n\r\n")
        status, _, rest = head.decode("latin-1").partition("\r\n")
        if status.split(" ")[1:2] != ["200"] or f"content-type: {CONTENT_TYPE}" not in rest.lower():
            raise RuntimeError(f"GET {url}: no event stream, the answer was {received!r}")
        while True:
            for event in parser.feed(chunk):
                if reading := _sensor_reading(decode(event.data)):
                    readings.append(reading)
            if (left := end - time.time()) <= 0:
                return readings
            sock.settimeout(min(left, 0.25))
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                chunk = b""
            else:
                if not chunk:  # the server ended the stream
                    return readings


@dataclass
class Outcome:
    """How well one client's readings followed the sensor over ``[start, end)``."""

    method: str
    readings: list[Reading]
    spikes: list[Spike]  # every spike that began and ended inside the window
    seen: list[Spike] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # s from a spike's start to seeing it

    @property
    def missed(self) -> list[Spike]:
        return [spike for spike in self.spikes if spike not in self.seen]

    @property
    def median_latency(self) -> float | None:
        return statistics.median(self.latencies) if self.latencies else None

    def summary(self) -> str:
        latency = self.median_latency
        return (f"{self.method:>12}: {len(self.readings):4d} readings, "
                f"{len(self.seen)}/{len(self.spikes)} spikes seen, median delay "
                + (f"{latency * 1000:6.1f} ms" if latency is not None else "     –"))


def judge(method: str, readings: Iterable[Reading], sensor: Sensor, start: float, end: float
          ) -> Outcome:
    """Which spikes in ``[start, end)`` the readings caught, and how late.

    A reading shows a spike when it carries the peak and the server's time for it lies
    within the spike; the delay is from the spike's start to the client having it.
    """
    if not start < end:
        raise ValueError(f"need start < end, got {start}, {end}")
    readings = sorted(readings, key=lambda r: r.seen)
    spikes = [s for s in sensor.spikes(start, end) if s.end <= end]
    outcome = Outcome(method, readings, spikes)
    for spike in spikes:
        first = next((r for r in readings if r.value == spike.value
                      and spike.start - _ROUNDING <= r.t < spike.end + _ROUNDING), None)
        if first is not None:
            outcome.seen.append(spike)
            outcome.latencies.append(first.seen - spike.start)
    return outcome


@dataclass(frozen=True)
class Traffic:
    """What crossed the wire for one method, added up from a capture."""

    connections: int
    packets: dict[Direction, int]
    wire_bytes: dict[Direction, int]  # IP packets: headers of IP and TCP included
    header_bytes: dict[Direction, int]  # HTTP headers, or WebSocket handshake + frame headers
    payload_bytes: dict[Direction, int]  # HTTP bodies, or WebSocket message payloads
    times: list[float]  # capture time of each packet, in order
    sizes: list[int]  # its IP length
    open_close_packets: int = 0  # TCP's opening handshake and closing: SYN ... ACK, FIN ...
    open_close_bytes: int = 0  # ... what keep-alive or one long connection would save

    @property
    def total(self) -> int:
        return sum(self.wire_bytes.values())


def traffic(conversations: list[Conversation]) -> Traffic:
    """Add up packets and bytes of the given connections (from :func:`dissect.conversations`).

    A WebSocket connection's handshake counts as header bytes, then each frame's header as
    header and its payload as payload. A plain HTTP exchange splits at the blank line.
    """
    packets = dict.fromkeys(Direction, 0)
    wire, header, payload = (dict.fromkeys(Direction, 0) for _ in range(3))
    timeline: list[tuple[float, int]] = []
    open_close = [0, 0]
    for conv in conversations:
        first_data = next((i for i, s in enumerate(conv.segments) if s.data), len(conv.segments))
        first_fin = next((i for i, s in enumerate(conv.segments) if "F" in s.flags),
                         len(conv.segments))
        for i, segment in enumerate(conv.segments):
            size = segment.wire_length
            packets[segment.direction] += 1
            wire[segment.direction] += size
            timeline.append((segment.time, size))
            if i < first_data or (i >= first_fin and not segment.data):
                open_close[0] += 1
                open_close[1] += size
        shake = conv.handshake
        if shake is not None and shake.upgraded:
            header[Direction.C2S] += len(shake.request_bytes)
            header[Direction.S2C] += len(shake.response_bytes)
            for frame in conv.frames:
                header[frame.direction] += len(frame.header_bytes)
                payload[frame.direction] += frame.payload_length
        else:
            for way, stream in conv.streams.items():
                head, blank, body = stream.data.partition(b"\r\n\r\n")
                header[way] += len(head) + len(blank)
                payload[way] += len(body)
    timeline.sort()
    return Traffic(len(conversations), packets, wire, header, payload,
                   [t for t, _ in timeline], [n for _, n in timeline], *open_close)
