"""The teacher's side of a class: the URL students open (:mod:`demo_server.lan`: the LAN
address and its QR code), and a live view of every student with a box to announce to
every page. Behind JupyterHub students open the hub's proxied page instead
(:func:`demo_server.notebook.reader_url`), after logging in to the hub.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

import ipywidgets as widgets

from .lan import JoinCode, lan_address, lan_url, qr_text
from .roster import Roster, Student
from .server import DemoServer
from .text import clip
from .thread import ServerThread
from .widgets import _count, _Snapshot

__all__ = ["ClassroomView", "JoinCode", "lan_address", "lan_url", "qr_text"]

SHOWN_TYPING = 60  # characters of what each student types shown in the view
REDRAW_EVERY = 0.5  # seconds between two redraws of the view, at most
TABLE_CSS = (".demo-classroom-students td,.demo-classroom-students th{padding:.15em .6em;"
             "text-align:left;vertical-align:top}"
             ".demo-classroom-students code{white-space:pre-wrap}")


class ClassroomView(_Snapshot):
    """The teacher's view of ``server``: every student on ``/ws`` (number, address, browser,
    connected since, messages, what they are typing now), live; and a box whose text
    :meth:`announce` shows in a banner on every page.

    It reads the server's :class:`~demo_server.roster.Roster` (the new one after
    ``server.stop()`` and ``start()``) from a thread of its own and
    redraws at most every ``redraw_every`` seconds, whatever the class types: at most
    (connected students + the roster's ``keep_left``) rows, :data:`SHOWN_TYPING`
    characters each. ``stop()`` ends the thread; what is shown stays.
    """

    def __init__(self, server: ServerThread, redraw_every: float = REDRAW_EVERY,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.server = server
        self.roster: Roster = server.roster
        self.redraw_every = redraw_every
        self.summary = widgets.HTML()
        self.table = widgets.HTML()
        self.text = widgets.Text(placeholder="a message for every page, e.g. Open exercise 3",
                                 layout=widgets.Layout(width="60%"))
        self.button = widgets.Button(description="Announce", button_style="warning")
        self.clear = widgets.Button(description="Take down")
        self.status = widgets.Label("no announcement yet")
        self.button.on_click(lambda _: self.announce(self.text.value))
        self.clear.on_click(lambda _: self.announce(""))
        self.children = (self.summary, widgets.HBox([self.text, self.button, self.clear]),
                         self.status, self.table)
        self.add_class("demo-classroom")
        self.table.add_class("demo-classroom-table")
        self.shown: list[Student] = []  # the students drawn last
        self._drawn = threading.Condition()
        self._stopping = threading.Event()
        self._redraw(self.roster.version, self.roster.snapshot())
        self._thread = threading.Thread(target=self._follow, name="demo-classroom",
                                        daemon=True)
        self._thread.start()

    def announce(self, text: str) -> None:
        """Send ``text`` as the banner of every page (``""`` takes it down); a failure is
        said in the status line, and raised."""
        try:
            self.server.announce(text)
        except (TypeError, ValueError, RuntimeError) as exc:
            self.status.value = f"not announced: {exc}"
            raise
        self.status.value = (f"announced at {time.strftime('%H:%M:%S')}: {clip(text, 80)!r}"
                             if text else "announcement taken down")

    def stop(self, timeout: float = 5.0) -> None:
        """Stop following the roster; a no-op when stopped."""
        self._stopping.set()
        self._thread.join(timeout)

    def wait_until(self, check: Any, timeout: float = 5.0) -> bool:
        """Block until ``check(students shown)`` is true; False if ``timeout`` passes."""
        with self._drawn:
            return self._drawn.wait_for(lambda: check(self.shown), timeout)

    def _follow(self) -> None:  # runs in the "demo-classroom" thread
        version = self.roster.version
        while not self._stopping.is_set():
            current = self.server.server
            if isinstance(current, DemoServer) and current.roster is not self.roster:
                self.roster, version = current.roster, -1  # restarted: a new class list
            seen = self.roster.wait_changed(version, timeout=0.5)
            if seen != version:
                version = seen
                self._redraw(seen, self.roster.snapshot())
                self._stopping.wait(self.redraw_every)

    def _redraw(self, version: int, students: list[Student]) -> None:
        connected = sum(s.left is None for s in students)
        left = len(students) - connected
        self.summary.value = (f"<b>{_count(connected, 'student')} connected</b>"
                              + (f", {left} left" if left else ""))
        self.table.value = _table_html(students)
        with self._drawn:
            self.shown = students
            self._drawn.notify_all()

    def _snapshot_html(self) -> str:
        return (self.summary.value + f"<div>{html.escape(self.status.value)}</div>"
                + self.table.value)

    def __repr__(self) -> str:
        return "ClassroomView()"


def _table_html(students: list[Student]) -> str:
    if not students:
        return "<div><i>no student yet: they appear here as they open the page</i></div>"
    # Servers joined by Redis: a client's number is its server's, so name the server too.
    several = len({s.process for s in students}) > 1
    head = "".join(f"<th>{h}</th>" for h in (
        *(["server"] if several else []),
        "client", "address", "browser", "connected since", "messages", "typing now"))
    rows = []
    for s in students:
        since = time.strftime("%H:%M:%S", time.localtime(s.since))
        if s.left is not None:
            since += time.strftime(" (left %H:%M:%S)", time.localtime(s.left))
        typing = s.typing[-SHOWN_TYPING:]
        style = ' style="color:#888"' if s.left is not None else ""
        rows.append(
            f'<tr class="demo-classroom-client" data-client="{s.client}"{style}>'
            + (f"<td>{html.escape(s.process)}</td>" if several else "")
            + f"<td>{s.client}</td><td><code>{html.escape(s.address)}</code></td>"
            f"<td>{html.escape(s.agent)}</td><td>{since}</td><td>{s.messages}</td>"
            f"<td><code>{html.escape(typing)}</code></td></tr>")
    return (f"<style>{TABLE_CSS}</style><table class=\"demo-classroom-students\"><thead><tr>"
            f"{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")

