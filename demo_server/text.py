"""Short text for people: clipped strings, previews of bytes, ``host:port`` addresses."""

from __future__ import annotations

__all__ = ["clip", "host_port", "local_url", "preview", "printable_text"]


def clip(text: str, width: int) -> str:
    """``text`` when it fits in ``width`` characters, else its start and "…" in ``width``."""
    return text if len(text) <= width else text[: width - 1] + "…"


def printable_text(data: bytes) -> str | None:
    """``data`` as text when it is UTF-8 and every character is printable, else None."""
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None
    return text if text.isprintable() else None


def preview(data: bytes, width: int, *, quote: bool = True) -> str:
    """Printable text as is (``repr``-quoted with ``quote``), else hex; clipped to ``width``."""
    text = printable_text(data)
    if text is None:
        return clip(data.hex(" "), width)
    return clip(repr(text) if quote else text, width)


def host_port(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets: ``127.0.0.1:8001``, ``[::1]:8001``."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def local_url(host: str, port: int, scheme: str = "http") -> str:
    """``http://host:port/`` (or ``https``); a wildcard host is shown as loopback, which
    reaches it."""
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"{scheme}://{host_port(host, port)}/"
