"""Where students find the page: this machine's address on its network, and a QR code of it.

A class joins from phones on the room's network: the server must listen on a non-loopback
address (``--host 0.0.0.0``, an explicit choice), and the page's URL must name this
machine's own address, not ``0.0.0.0``. The page is then same-origin with the server (its
``Origin`` is ``http://LAN-IP:PORT``, the address the phone connected to), so no
``--allow-origin`` is needed. QR codes are drawn by `segno <https://segno.readthedocs.io>`_.
"""

from __future__ import annotations

import base64
import io
import ipaddress
import socket
from typing import Any

import segno

from .routes import is_loopback
from .text import host_port

__all__ = ["JoinCode", "join_text", "lan_address", "lan_url", "qr_text"]

# Where a UDP socket is "connected" to learn which local address the default route uses:
# connect() on UDP sends nothing, it only picks the route (TEST-NET-2, RFC 5737).
_PROBE = ("198.51.100.1", 9)
WILDCARDS = ("", "0.0.0.0", "::")


def lan_address() -> str | None:
    """This machine's IPv4 address on its network (the default route's), or None."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(_PROBE)
            address: str = probe.getsockname()[0]
        except OSError:  # no route at all: no network
            return None
    return None if ipaddress.ip_address(address).is_loopback else address


def lan_url(host: str, port: int, path: str = "socket.html", scheme: str = "http"
            ) -> str | None:
    """The URL other machines open to reach ``path`` on a server listening on ``host``
    (``scheme``: ``https`` for a server with TLS).

    None when ``host`` is loopback (only this machine can connect) or a wildcard on a
    machine without a network address; the wildcard is replaced by :func:`lan_address`.
    """
    if is_loopback(host):
        return None
    address = lan_address() if host in WILDCARDS else host
    return None if address is None else f"{scheme}://{host_port(address, port)}/{path}"


def join_text(host: str, port: int, scheme: str = "http") -> str:
    """What a terminal shows a class: the page's URL on this machine's network, and its QR
    code for phones."""
    url = lan_url(host, port, scheme=scheme)
    if url is None:
        return "This machine has no network address: phones cannot join."
    return f"Students open {url}\nor scan:\n{qr_text(url)}"


def _qr(url: str) -> segno.QRCode:
    if not isinstance(url, str) or not url:
        raise ValueError(f"a QR code needs a non-empty URL, got {url!r}")
    return segno.make(url, error="m", micro=False)


def qr_text(url: str) -> str:
    """``url`` as a QR code drawn with block characters, for a terminal (two rows a line)."""
    out = io.StringIO()
    _qr(url).terminal(out=out, compact=True)
    return out.getvalue()


class JoinCode:
    """The page's URL and its QR code, for a notebook cell: a PNG (what GitHub shows, too)
    with the URL as its text."""

    def __init__(self, url: str, scale: int = 6) -> None:
        self.qr = _qr(url)
        self.url = url
        self.scale = scale

    def png(self) -> bytes:
        out = io.BytesIO()
        self.qr.save(out, kind="png", scale=self.scale, border=2)
        return out.getvalue()

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        return {"image/png": base64.b64encode(self.png()).decode(),
                "text/plain": f"Scan to open {self.url}"}

    def __repr__(self) -> str:
        return f"JoinCode({self.url!r})"
