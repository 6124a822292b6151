"""A bounded, thread-safe record of what clients sent, that Python code can read and watch."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Received", "ReceivedLog", "whole_characters"]

logger = logging.getLogger(__name__)


def whole_characters(text: str) -> str:
    """``text`` with each lone UTF-16 surrogate replaced by U+FFFD, and a high surrogate
    followed by a low one joined into the character they encode.

    JSON's ``"\\ud83d"`` decodes to a lone surrogate: half of an emoji that a client split
    between two messages. Python keeps it in a ``str``, but nothing can encode it (UTF-8,
    Jupyter's messages), so a record holding one breaks whoever shows it.
    """
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


@dataclass(frozen=True)
class Received:
    """One ``client_data`` message as the server got it."""

    time: float  # wall-clock seconds since the epoch
    client: int  # the server's number for the connection, from 1
    address: str  # "host:port" of the client
    data: str  # always encodable: a lone surrogate (half a character) became U+FFFD
    process: str = ""  # the server process that received it (its bus name), "" if unnamed


class ReceivedLog:
    """The last ``maxlen`` received messages, safe to read from any thread.

    Subscribers are called (in the server's thread) with each new :class:`Received`;
    an exception in a subscriber is logged and never reaches the server. What is recorded
    is valid Unicode whatever arrives (see :func:`whole_characters`), so ``text().encode()``
    and a widget showing it never fail on half a character.
    """

    def __init__(self, maxlen: int = 1000) -> None:
        if maxlen < 1:
            raise ValueError(f"maxlen must be at least 1, got {maxlen!r}")
        self._items: collections.deque[Received] = collections.deque(maxlen=maxlen)
        self._subscribers: list[Callable[[Received], object]] = []
        self._changed = threading.Condition()
        self.total = 0  # every message ever appended, including those since dropped

    def append(self, client: int, address: str, data: str, *, process: str = "",
               when: float | None = None) -> Received:
        """Record one message (received now, unless ``when``) and notify the subscribers."""
        item = Received(time.time() if when is None else when, client, address,
                        whole_characters(data), process)
        with self._changed:
            self._items.append(item)
            self.total += 1
            subscribers = list(self._subscribers)
            self._changed.notify_all()
        for callback in subscribers:
            try:
                callback(item)
            except Exception:
                logger.exception("subscriber %r failed", callback)
        return item

    def subscribe(self, callback: Callable[[Received], object]) -> Callable[[], None]:
        """Call ``callback(item)`` for every new message; returns a function that unsubscribes."""
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {callback!r}")
        with self._changed:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._changed:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def wait_for(self, count: int, timeout: float) -> bool:
        """Block until ``total`` reaches ``count``; False if ``timeout`` seconds pass first."""
        with self._changed:
            return self._changed.wait_for(lambda: self.total >= count, timeout)

    def snapshot(self) -> list[Received]:
        """A copy of the recorded messages, oldest first."""
        with self._changed:
            return list(self._items)

    def text(self, client: int | None = None) -> str:
        """Everything recorded joined into one string, optionally from one client only."""
        return "".join(r.data for r in self.snapshot() if client is None or r.client == client)

    def clear(self) -> None:
        with self._changed:
            self._items.clear()

    def __len__(self) -> int:
        with self._changed:
            return len(self._items)
