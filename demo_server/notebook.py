"""Notebook plumbing, kept out of the reader's cells: re-runnable cells, a clean last cell,
and the browser page shown in a cell.

``keep(name, thing)`` stops what an earlier run of a cell kept under ``name`` and keeps
``thing`` in its place, so a cell that starts a server or a client can be re-run without
leaving the old one running. ``stop_all()`` stops everything kept, newest first.
``demo_threads()`` names the demo's threads still alive (``demo-server``, ``demo-client``...).
"""

from __future__ import annotations

import html
import threading
from typing import Any, TypeVar

from .proxy import proxied_path, proxy_prefix
from .thread import ServerThread

__all__ = ["keep", "stop_all", "demo_threads", "PageFrame", "reader_url"]

T = TypeVar("T")

# What stops a thing: ServerThread, ClientThread and the widgets have stop(); a websockets
# server has close(); an asyncio task has cancel(). The first one found is called.
STOP_METHODS = ("stop", "close", "cancel")

_kept: dict[str, Any] = {}
_lock = threading.Lock()


def keep(name: str, thing: T) -> T:
    """Stop what was kept under ``name`` (if anything), keep ``thing`` there, return it."""
    if _stop_method(thing) is None:
        raise TypeError(f"keep() needs something with stop(), close() or cancel(), "
                        f"got {type(thing).__name__}")
    with _lock:
        previous = _kept.pop(name, None)
        _kept[name] = thing
    if previous is not None and previous is not thing:
        _stop(previous)
    return thing


def stop_all() -> None:
    """Stop everything kept, newest first (clients before the server they talk to)."""
    with _lock:
        things = list(_kept.values())
        _kept.clear()
    for thing in reversed(things):
        _stop(thing)


def demo_threads() -> list[str]:
    """Names of the demo's server and client threads that are still running."""
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("demo-"))


def reader_url(server: ServerThread, path: str = "socket.html",
               proxy: bool | str | None = None) -> str:
    """Where the reader's browser finds ``path`` of ``server``: ``http://127.0.0.1:PORT/...``
    when the kernel runs on the reader's machine, ``{prefix}proxy/PORT/...`` (a path on the
    Jupyter server) behind JupyterHub or Binder. ``proxy`` forces a mode, as
    :func:`~demo_server.proxy.proxy_prefix` describes (None: ``DEMO_SERVER_PROXY``, else auto).
    """
    prefix = proxy_prefix(proxy)
    if prefix is None:
        return server.url + path.lstrip("/")
    return proxied_path(prefix, server.port, path)


def _stop_method(thing: object) -> Any:
    for name in STOP_METHODS:
        method = getattr(thing, name, None)
        if callable(method):
            return method
    return None


def _stop(thing: object) -> None:
    _stop_method(thing)()


class PageFrame:
    """The demo's browser page, live in a cell, with a static picture for readers who
    only read the notebook (GitHub, nbviewer, nbconvert's HTML).

    The page's URL is :func:`reader_url`'s: direct, or through Jupyter's proxy on a hub.
    The cell's HTML is an ``<object>``: while the server runs it shows the real page; when
    the page cannot load (the server is gone, the port is closed), a browser shows the
    object's content instead: a sketch of the page as it was when the cell ran, with the
    second it showed.
    """

    def __init__(self, server: ServerThread, height: int = 360,
                 proxy: bool | str | None = None) -> None:
        self.url = reader_url(server, "socket.html", proxy)  # through Jupyter on a hub
        self.height = height
        tick = server.server.last_tick if server.server is not None else None
        self.second = None if tick is None else tick % 60  # what the page showed

    def _repr_html_(self) -> str:
        url = html.escape(self.url)
        second = "–" if self.second is None else str(self.second)
        return (
            f'<object data="{url}" type="text/html" width="100%" height="{self.height}">'
            '<div class="demo-snapshot demo-page-snapshot" style="border:1px solid #ccc;'
            'border-radius:4px;padding:.6em 1em;font-family:system-ui,sans-serif">'
            f'<div style="color:#666;font-size:.85em">{url}, as it was when this cell ran '
            "(the live page needs the notebook's server running)</div>"
            '<div style="font-weight:600;margin-top:.5em">'
            "The server pushes the current second over a WebSocket</div>"
            '<span style="display:inline-block;padding:.1em .6em;border-radius:1em;'
            'background:#d6f5d6;color:#145214;font-size:.9em">connected</span>'
            '<div class="demo-snapshot-second" style="font-size:5em;line-height:1.1;'
            f'font-variant-numeric:tabular-nums">{second}</div>'
            '<div style="font-weight:600">Type here: every key is sent to the server as '
            "<code>client_data</code></div>"
            '<div style="border:1px solid #999;height:3em;margin-top:.3em"></div>'
            "</div></object>"
        )

    def __repr__(self) -> str:
        return f"PageFrame({self.url!r})"
