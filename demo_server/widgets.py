"""ipywidgets views of the demo: live seconds, a box that sends what you type, and what the
server received from every client.

Each view is a real widget (``display`` it, or put it in a box) updated from a background
thread, so it keeps changing after its cell has ended, even while another cell runs. Views
never print: a ``print`` from a thread lands in whatever cell happens to run. Their
``repr`` (the ``text/plain`` a notebook stores) never changes with live values, and each has
a CSS class for browser tests: ``demo-live-seconds``, ``demo-send-box``, ``demo-received``.

A notebook read without a kernel (GitHub, nbviewer, nbconvert's HTML) cannot show a live
widget: nbconvert skips a widget view whose state the notebook does not store and renders
the next type in the display bundle. So each view's bundle also carries ``text/html``, a
static snapshot of what it showed when displayed (class ``demo-snapshot``); JupyterLab
renders the live widget instead.
"""

from __future__ import annotations

import html
import threading
from typing import Any

import ipywidgets as widgets

from .client import ClientThread
from .events import Event
from .record import Received, ReceivedLog

__all__ = ["LiveSeconds", "SendBox", "ReceivedView"]

WAITING = "–"  # what the seconds show before the first tick, like the page's empty #second


class _Snapshot(widgets.VBox):
    """A view whose display bundle also holds a static HTML snapshot of itself."""

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any] | None:
        bundle = super()._repr_mimebundle_(**kwargs)
        if bundle is not None:  # None once the widget is closed
            kind = next(c for c in self._dom_classes if c.startswith("demo-"))
            bundle["text/html"] = (
                f'<div class="demo-snapshot {kind}-snapshot" '
                'title="a snapshot: run the notebook to see it live">'
                f"{self._snapshot_html()}</div>"
            )
        return bundle

    def _snapshot_html(self) -> str:
        raise NotImplementedError


class LiveSeconds(_Snapshot):
    """The article's ``#second`` div: a big number set by a client's ``second`` callback.

    ``second`` holds the number shown (None before the first tick); ``number`` is its view.

    ``start()`` connects its own :class:`ClientThread` to ``ws_url``; the callback runs in
    that thread. ``wait(ticks)`` blocks until that many more ticks are shown. ``stop()``
    closes the connection and joins its threads. The status line says when the server goes
    away (close code) or answers with an ``error`` event.
    """

    def __init__(self, ws_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ws_url = ws_url
        self.second: int | None = None  # the second shown, once the first tick arrived
        self.number = widgets.HTML(_number_html(WAITING))  # a Label's fixed line height clips
        self.status = widgets.Label("not connected: call start()")
        self.number.add_class("demo-live-seconds-number")
        self.status.add_class("demo-live-seconds-status")
        self.children = (self.number, self.status)
        self.add_class("demo-live-seconds")
        self.client: ClientThread | None = None
        self.ticks = 0  # ticks shown since the last start()
        self._changed = threading.Condition()
        self._watcher: threading.Thread | None = None

    def start(self) -> None:
        """Connect and start showing ticks; a no-op while running.

        Returns None, so a cell ending in ``live.start()`` does not display the widget again.
        """
        if self.running:
            return
        self.stop()  # a client that was closed by the server: join what is left of it
        client = ClientThread(self.ws_url)
        with self._changed:
            self.ticks = 0
        try:
            client.start()
        except ConnectionError as exc:
            self.status.value = f"cannot connect: {exc}"
            raise
        client.on(Event.SECOND, self._on_second)
        self.client = client
        self.status.value = f"connected to {self.ws_url}, waiting for the next second"
        self._watcher = threading.Thread(
            target=self._watch, args=(client,), name="demo-live-seconds", daemon=True
        )
        self._watcher.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Close the connection and join the threads; a no-op when stopped."""
        client, watcher = self.client, self._watcher
        self.client = self._watcher = None
        if client is not None:
            client.stop(timeout)
            self.status.value = "stopped"
        if watcher is not None:
            watcher.join(timeout)

    @property
    def running(self) -> bool:
        return self.client is not None and self.client.running

    def wait(self, ticks: int = 1, timeout: float = 5.0) -> bool:
        """Block until ``ticks`` more seconds are shown; False if ``timeout`` passes first."""
        with self._changed:
            goal = self.ticks + ticks
            return self._changed.wait_for(lambda: self.ticks >= goal, timeout)

    def _on_second(self, data: Any) -> None:  # runs in the client's thread
        second = data.get("second") if isinstance(data, dict) else None
        self.second = second if isinstance(second, int) else None
        self.number.value = _number_html(str(second) if self.second is not None else "?")
        with self._changed:
            self.ticks += 1
            ticks = self.ticks
            self._changed.notify_all()
        self.status.value = f"connected to {self.ws_url}: {_count(ticks, 'tick')} received"

    def _watch(self, client: ClientThread) -> None:  # runs in the "demo-live-seconds" thread
        """Show ``error`` events, and then why the connection ended."""
        while True:
            try:
                error = client.next(Event.ERROR, timeout=None)
            except ConnectionError:
                break
            message = error.get("message") if isinstance(error, dict) else error
            self.status.value = f"server error: {message}"
        if self.client is client:  # closed by the server, not by stop()
            self.status.value = (
                f"disconnected (close code {client.close_code}): call start() to reconnect"
            )

    def _snapshot_html(self) -> str:
        second = WAITING if self.second is None else str(self.second)
        return (_number_html(second).replace("<div ", '<div class="demo-snapshot-second" ', 1)
                + _line_html(self.status.value))

    def __repr__(self) -> str:
        return f"LiveSeconds({self.ws_url!r})"


class SendBox(_Snapshot):
    """A text area that sends what is typed as ``client_data`` through ``client``.

    ``mode="char"`` sends each insertion as it happens, like the article's ``keypress``
    handler: one message per key, a paste in one message, deletions not sent. ``mode="line"``
    sends each line when Enter is pressed (with its ``"\\n"``) and clears it from the box,
    like a chat input: far fewer messages, but the server sees nothing until Enter.
    ``type(text)`` does what typing ``text`` key by key would, for notebooks and tests.
    """

    MODES = ("char", "line")

    def __init__(self, client: ClientThread, mode: str = "char", **kwargs: Any) -> None:
        if mode not in self.MODES:
            raise ValueError(f"mode must be 'char' or 'line', got {mode!r}")
        super().__init__(**kwargs)
        self.client = client
        self.mode = mode
        hint = "each key is sent" if mode == "char" else "each line is sent on Enter"
        self.text = widgets.Textarea(
            placeholder=f"Type here: {hint} as client_data",
            continuous_update=True,
            layout=widgets.Layout(width="100%", height="5em"),
        )
        self.status = widgets.Label("nothing sent yet")
        self.children = (self.text, self.status)
        self.add_class("demo-send-box")
        self.sent = 0  # messages sent
        self._resetting = False
        self.text.observe(self._on_value, names="value")

    def type(self, text: str) -> None:
        """Append ``text`` one character at a time, exactly as keystrokes would."""
        for char in text:
            self.text.value += char

    def stop(self) -> None:
        """Stop sending and disable the box (the client is not closed: it is not ours)."""
        if self.text.disabled:
            return
        self.text.unobserve(self._on_value, names="value")
        self.text.disabled = True
        self.status.value = f"stopped after {_count(self.sent, 'message')}"

    def _on_value(self, change: dict[str, Any]) -> None:  # runs in the kernel's thread
        if self._resetting:
            return
        old, new = change["old"], change["new"]
        if self.mode == "char":
            inserted = _inserted(old, new)
            if inserted:
                self._send_data(inserted)
        elif "\n" in new:
            lines, _, rest = new.rpartition("\n")
            for line in lines.split("\n"):
                self._send_data(line + "\n")
            self._resetting = True
            try:
                self.text.value = rest
            finally:
                self._resetting = False

    def _send_data(self, data: str) -> None:
        try:
            self.client.send(Event.CLIENT_DATA, data)
        except Exception as exc:  # shown to the reader here, never raised into the UI
            self.status.value = f"not sent ({type(exc).__name__}: {exc})"
            return
        self.sent += 1
        self.status.value = f"sent {_count(self.sent, 'message')}, the last: {data!r}"

    def _snapshot_html(self) -> str:
        shown = self.text.value or self.text.placeholder
        color = "inherit" if self.text.value else "#888"
        return (
            f'<div style="border:1px solid #999;min-height:5em;padding:.2em .4em;color:{color};'
            f'white-space:pre-wrap">{html.escape(shown)}</div>' + _line_html(self.status.value)
        )

    def __repr__(self) -> str:
        return f"SendBox(mode={self.mode!r})"


class ReceivedView(_Snapshot):
    """What every client sent, one row per client, updated as the server receives it.

    ``source`` is a :class:`~demo_server.thread.ServerThread` (or its ``received`` log).
    Rows show the client's number, address, message count and the last ``tail``
    characters of what it typed. Updates run in the server's thread; ``stop()``
    unsubscribes. ``wait_for(count)`` blocks until ``count`` messages are shown in total.
    """

    def __init__(self, source: Any, tail: int = 400, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        log = source if isinstance(source, ReceivedLog) else source.received
        self.received = log
        self.tail = tail
        self.summary = widgets.Label("nothing received yet")
        self.rows: dict[int, widgets.HTML] = {}
        self.shown = 0  # messages shown, over all clients
        self._clients: dict[int, list[Any]] = {}  # client -> [address, count, text]
        self._changed = threading.Condition()
        self.children: tuple[Any, ...] = (self.summary,)  # a row is added per client
        self.add_class("demo-received")
        with self._changed:
            self._unsubscribe = log.subscribe(self._on_item)
            history = log.snapshot()
            self._history = {id(item): item for item in history}  # callbacks to skip
            for item in history:
                self._add(item)

    def stop(self) -> None:
        """Stop following the server's log; what is shown stays."""
        self._unsubscribe()

    def wait_for(self, count: int, timeout: float = 5.0) -> bool:
        """Block until ``count`` messages are shown; False if ``timeout`` passes first."""
        with self._changed:
            return self._changed.wait_for(lambda: self.shown >= count, timeout)

    def _on_item(self, item: Received) -> None:  # runs in the server's thread
        with self._changed:
            if self._history.pop(id(item), None) is item:
                return  # already shown from the snapshot taken at construction
            self._add(item)

    def _add(self, item: Received) -> None:  # called with self._changed held
        entry = self._clients.setdefault(item.client, [item.address, 0, ""])
        entry[1] += 1
        entry[2] = (entry[2] + item.data)[-self.tail :]
        row = self.rows.get(item.client)
        if row is None:
            row = self.rows[item.client] = widgets.HTML()
            row.add_class("demo-received-client")
            self.children = (*self.children, row)
        row.value = _row_html(item.client, *entry)
        self.shown += 1
        self.summary.value = (
            f"{_count(len(self._clients), 'client')}, {_count(self.shown, 'message')} received"
        )
        self._changed.notify_all()

    def _snapshot_html(self) -> str:
        with self._changed:
            return _line_html(self.summary.value) + "".join(
                row.value for row in self.rows.values())

    def __repr__(self) -> str:
        return "ReceivedView()"


def _inserted(old: str, new: str) -> str:
    """The text inserted by an edit from ``old`` to ``new`` ('' for a pure deletion)."""
    prefix = 0
    limit = min(len(old), len(new))
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    return new[prefix : len(new) - suffix]


def _number_html(text: str) -> str:
    return (
        '<div style="font-size:4.5em;font-weight:bold;line-height:1.15;'
        f'font-variant-numeric:tabular-nums">{html.escape(text)}</div>'
    )


def _line_html(text: str) -> str:
    return f"<div>{html.escape(text)}</div>"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _row_html(client: int, address: str, count: int, text: str) -> str:
    return (
        f'<div style="margin:.3em 0"><b>client {client}</b> '
        f"<code>{html.escape(address)}</code> · {_count(count, 'message')}"
        '<pre style="margin:.2em 0 0;padding:.3em .5em;background:var(--jp-layout-color2,#f3f3f3);'
        f'white-space:pre-wrap;word-break:break-all">{html.escape(text)}</pre></div>'
    )
