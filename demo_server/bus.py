"""The bus: demo servers (processes, on one machine or several) joined by Redis pub/sub.

Every process publishes typed messages (:class:`Message`: kind, origin process, sequence
number, payload) on one Redis channel and hands each message of another process to the
handler registered for its kind. Redis pub/sub delivers at most once and keeps nothing
for a subscriber that is away, so nothing here is silently lost:

- a publisher numbers its messages 1, 2, 3, ...; a receiver that sees a number jump counts
  (and logs) the messages it missed, and drops one it has already seen; a publisher that
  starts again under the same name (a notebook's server restarted) counts from 1 in a new
  ``run``, which receivers take as a new sequence, not as duplicates;
- while the link is down, messages wait in a bounded outbox, sent in order once it is back
  (past the bound the oldest are dropped, and counted);
- every second each process publishes a ``beat`` (its client count), so a gap shows within
  a second even when nobody sends anything, and a process not heard for :data:`SILENT`
  seconds (stopped, crashed, or cut from Redis) is taken as gone until it is heard again.

The link is lost once (one log line), then tried again every :data:`RETRY` seconds until
it comes back (one log line, saying what was queued and dropped meanwhile).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import json
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from redis.asyncio.client import PubSub

__all__ = ["BEAT", "CHANNEL", "Bus", "BusError", "Message", "process_name"]

logger = logging.getLogger("demo_server.bus")

CHANNEL = "demo_server"  # the Redis channel every process publishes on and listens to
BEAT = "beat"  # the kind each process publishes once a second
RETRY = 0.5  # seconds between attempts to get the link back
OUTBOX = 100_000  # messages kept while the link is down; past that the oldest are dropped
BATCH = 512  # messages sent in one pipeline (one round trip)
CONNECT_TIMEOUT = 2.0  # seconds to open a connection to Redis
SILENT = 3.0  # seconds without a message from a process (it beats every second): gone


class BusError(RuntimeError):
    """Redis cannot be reached at start; the message says where and why in one sentence."""


def process_name() -> str:
    """This process's default name on the bus: ``host/pid``."""
    return f"{socket.gethostname()}/{os.getpid()}"


@dataclass(frozen=True)
class Message:
    """One message on the bus: ``seq`` counts from 1 per ``origin`` (a process name) and
    ``run`` (that process's bus, from its start)."""

    kind: str
    origin: str
    seq: int
    payload: dict[str, Any] = field(default_factory=dict)
    run: str = ""

    def encode(self) -> str:
        return json.dumps([self.kind, self.origin, self.seq, self.payload, self.run],
                          separators=(",", ":"))

    @classmethod
    def decode(cls, raw: bytes | str) -> Message:
        try:
            kind, origin, seq, payload, run = json.loads(raw)
        except (ValueError, TypeError):  # not JSON, or not a list of five
            kind = None
        if not (isinstance(kind, str) and isinstance(origin, str) and isinstance(seq, int)
                and isinstance(payload, dict) and isinstance(run, str)):
            raise ValueError(f"not a bus message: {raw!r:.100}")
        return cls(kind, origin, seq, payload, run)


Handler = Callable[[Message], object]


class Bus:
    """One process's link to the others through ``url`` (``redis://host:port/db``).

    Register a handler per kind with :meth:`on`, ``await start()`` (raises
    :class:`BusError` if Redis cannot be reached), :meth:`publish` from the event loop's
    thread, ``await aclose()``. ``beat()`` gives the payload of each second's ``beat``.
    A process does not receive its own messages. ``on_peer(origin)`` is called before the
    first message of each process heard (and of one that started again, or came back after
    being silent), for instance to tell a newcomer what it missed; ``on_silent(origin)``
    when a process has not been heard for :data:`SILENT` seconds.
    """

    def __init__(self, url: str, origin: str | None = None, *, channel: str = CHANNEL,
                 outbox: int = OUTBOX, beat: Callable[[], dict[str, Any]] = dict) -> None:
        if not isinstance(url, str) or not url:
            raise ValueError(f"redis URL must be a non-empty string, got {url!r}")
        self.origin = origin or process_name()
        # Imported here: a server without a bus needs only websockets.
        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import RedisError

        self._lost = (RedisError, OSError)  # what a broken or refused link raises
        try:
            # No retries inside redis-py: a lost link must surface here, once. The name
            # shows in Redis' CLIENT LIST.
            self._redis = aioredis.from_url(url, socket_connect_timeout=CONNECT_TIMEOUT,
                                            retry=Retry(NoBackoff(), 0),
                                            client_name=f"demo_server:{self.origin}")
        except ValueError as exc:
            raise ValueError(f"bad Redis URL {url!r}: {exc} (expected e.g. "
                             "redis://127.0.0.1:6379/0)") from None
        self.url = url
        self.channel = channel
        self._beat = beat
        self._handlers: dict[str, Handler] = {BEAT: self._on_beat}
        self._outbox: collections.deque[str] = collections.deque()
        self._outbox_size = outbox
        self._wake = asyncio.Event()
        self._seq = 0
        self.run = secrets.token_hex(4)  # tells this bus's numbers from an earlier one's
        self.on_peer: Callable[[str], object] | None = None
        self.on_silent: Callable[[str], object] | None = None
        self.silent: set[str] = set()  # processes not heard for SILENT seconds
        self.last_seq: dict[str, int] = {}  # origin -> the last number received from it
        self._runs: dict[str, str] = {}  # origin -> the run its last message came from
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.peers: dict[str, dict[str, Any]] = {}  # origin -> payload of its last beat
        self.heard: dict[str, float] = {}  # origin -> when (loop time) its last message came
        self.sent = 0  # messages handed to Redis
        # origin -> its messages handled (duplicates not counted), and those never seen
        self.received_from: collections.Counter[str] = collections.Counter()
        self.missed: collections.Counter[str] = collections.Counter()
        self.dropped = 0  # messages of ours dropped from a full outbox
        self.losses = 0  # times the link was lost

    def on(self, kind: str, handler: Handler) -> None:
        """Call ``handler(message)`` for each message of ``kind`` from another process."""
        if kind == BEAT:
            raise ValueError(f"{BEAT!r} is the bus's own kind")
        self._handlers[kind] = handler

    def publish(self, kind: str, payload: dict[str, Any]) -> Message:
        """Number ``payload`` as the next message of this process and queue it to send."""
        self._seq += 1
        message = Message(kind, self.origin, self._seq, payload, self.run)
        if len(self._outbox) >= self._outbox_size:
            self._outbox.popleft()
            self.dropped += 1
        self._outbox.append(message.encode())
        self._wake.set()
        return message

    @property
    def published(self) -> int:
        """Messages this process has published so far (its last sequence number)."""
        return self._seq

    @property
    def queued(self) -> int:
        """Messages waiting to be sent (the link is down, or busy)."""
        return len(self._outbox)

    async def start(self) -> None:
        """Connect and subscribe, then keep the link up in the background."""
        try:
            pubsub = await self._connect()
        except self._lost as exc:
            await self._redis.aclose()
            raise BusError(f"cannot reach Redis at {self.url}: {_reason(exc)} "
                           "(is redis-server running?)") from exc
        self._task = asyncio.create_task(self._keep_linked(pubsub), name="demo_server bus")

    async def aclose(self) -> None:
        """Stop the link; what is still queued is sent if the link is up, within a second."""
        if self._task is not None:
            if self.connected and self._outbox:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(1.0):
                        while self._outbox and self.connected:
                            await asyncio.sleep(0.01)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            if self._outbox:
                logger.warning("stopping with %d messages not sent to Redis at %s",
                               len(self._outbox), self.url)
        await self._redis.aclose()

    async def _connect(self) -> PubSub:
        await self._redis.ping()
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)
        self.connected = True
        return pubsub

    async def _keep_linked(self, pubsub: PubSub) -> None:
        loop = asyncio.get_running_loop()
        while True:
            parts = [asyncio.create_task(self._listen(pubsub)),
                     asyncio.create_task(self._send()),
                     asyncio.create_task(self._beat_every_second())]
            try:
                done, _ = await asyncio.wait(parts, return_when=asyncio.FIRST_EXCEPTION)
            finally:
                for part in parts:
                    part.cancel()
                await asyncio.gather(*parts, return_exceptions=True)
                self.connected = False
                with contextlib.suppress(*self._lost):
                    await pubsub.aclose()
            exc = next(task.exception() for task in done)
            self.losses += 1
            lost_at, dropped = loop.time(), self.dropped
            logger.error("lost the link to Redis at %s: %s; ticks go on here, messages "
                         "wait in the outbox (%d now), trying again every %g s",
                         self.url, _reason(exc), len(self._outbox), RETRY)
            while True:
                await asyncio.sleep(RETRY)
                try:
                    pubsub = await self._connect()
                    break
                except self._lost:
                    await self._redis.connection_pool.disconnect()
            logger.warning("the link to Redis is back after %.1f s: %d messages waited in the "
                           "outbox, sent now; %d dropped (outbox full)", loop.time() - lost_at,
                           len(self._outbox), self.dropped - dropped)

    async def _listen(self, pubsub: PubSub) -> None:
        while True:
            raw = await pubsub.get_message(timeout=None)
            if raw is None or raw.get("type") != "message":
                continue
            try:
                message = Message.decode(raw["data"])
            except (ValueError, TypeError) as exc:
                logger.warning("ignored a message on %s: %s", self.channel, exc)
                continue
            if message.origin != self.origin:
                self._deliver(message)

    def _deliver(self, message: Message) -> None:
        """Check ``message``'s number against the last one from its origin, then handle it."""
        last = self.last_seq.get(message.origin)
        restarted = self._runs.get(message.origin) != message.run
        if restarted:  # a process new to us, or started again: its numbers count from 1
            if last is not None:
                logger.info("%s started again: its messages count from 1", message.origin)
            last = None
            self._runs[message.origin] = message.run
        if message.origin in self.silent:
            self.silent.discard(message.origin)
            logger.warning("%s is heard again", message.origin)
            restarted = True
        if restarted and self.on_peer is not None:
            self._call(self.on_peer, message.origin)
        if last is not None and message.seq <= last:
            return  # sent again after a link lost mid-batch: already handled
        if last is not None and message.seq > last + 1:
            gap = message.seq - last - 1
            self.missed[message.origin] += gap
            logger.warning("missed %d messages from %s (messages %d-%d) while the link to "
                           "Redis was down", gap, message.origin, last + 1, message.seq - 1)
        self.last_seq[message.origin] = message.seq
        self.heard[message.origin] = asyncio.get_running_loop().time()
        self.received_from[message.origin] += 1
        handler = self._handlers.get(message.kind)
        if handler is None:
            return  # a kind this version does not know: counted, not handled
        try:
            handler(message)
        except Exception:
            logger.exception("handling %s from %s failed", message.kind, message.origin)

    async def _send(self) -> None:
        """Send the outbox in order, a batch per round trip; each message leaves it once
        Redis has taken it (one lost mid-batch is sent again, and dropped by receivers)."""
        while True:
            self._wake.clear()
            while self._outbox:
                batch = list(itertools.islice(self._outbox, BATCH))
                dropped = self.dropped
                async with self._redis.pipeline(transaction=False) as pipe:
                    for raw in batch:
                        pipe.publish(self.channel, raw)
                    await pipe.execute()
                # A full outbox drops from its head, which is this batch's first messages.
                for _ in range(max(0, len(batch) - (self.dropped - dropped))):
                    self._outbox.popleft()
                self.sent += len(batch)
            await self._wake.wait()

    async def _beat_every_second(self) -> None:
        while True:
            self.publish(BEAT, self._beat())
            self._find_silent()
            await asyncio.sleep(1.0)

    def _find_silent(self) -> None:
        """Take as gone each process not heard for :data:`SILENT` seconds, once."""
        now = asyncio.get_running_loop().time()
        for origin, when in self.heard.items():
            if origin not in self.silent and now - when > SILENT:
                self.silent.add(origin)
                logger.warning("%s not heard for %g s: taken as gone", origin, SILENT)
                if self.on_silent is not None:
                    self._call(self.on_silent, origin)

    @staticmethod
    def _call(hook: Callable[[str], object], origin: str) -> None:
        try:
            hook(origin)
        except Exception:
            logger.exception("%s for %s failed", getattr(hook, "__name__", hook), origin)

    def _on_beat(self, message: Message) -> None:
        self.peers[message.origin] = message.payload


def _reason(exc: BaseException | None) -> str:
    return "connection closed" if exc is None else str(exc) or type(exc).__name__
