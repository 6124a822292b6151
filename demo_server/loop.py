"""Which event loop runs the server: asyncio's own (the default), or uvloop (libuv).

uvloop's transports write to a socket from C, with less Python around each ``send``
(``pip install 'websocket-intro[fast]'``). It is opt-in (``--loop uvloop``, ``auto``: uvloop
if installed) because it changes two things the server relies on: out of file
descriptors, libuv accepts each waiting connection and closes it at once (its "EMFILE
trick"), silently, where asyncio leaves it in the backlog and the server logs the
shortage and recovers; and it resolves host names in libuv, not through
``socket.getaddrinfo``. On loopback the kernel's part of each ``send`` dominates the
fan-out's cost anyway (see ``benchmarks/README.md``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LOOPS", "loop_factory", "loop_name", "run"]

LOOPS = ("asyncio", "uvloop", "auto")  # auto: uvloop if installed, else asyncio
T = TypeVar("T")


def loop_factory(loop: str = "asyncio") -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The factory of the ``loop`` chosen (None: asyncio's default)."""
    if loop not in LOOPS:
        raise ValueError(f"loop must be one of {', '.join(LOOPS)}, got {loop!r}")
    if loop == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if loop == "uvloop":
            raise ValueError("uvloop is not installed: pip install 'websocket-intro[fast]' "
                             "(or uvloop)") from None
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    """``uvloop 0.21.0`` or ``asyncio``: what a banner says is running."""
    module = type(loop).__module__.partition(".")[0]
    if module == "uvloop":
        import uvloop

        return f"uvloop {uvloop.__version__}"
    return "asyncio"


def run(main: Coroutine[Any, Any, T], loop: str = "asyncio") -> T:
    """``asyncio.run(main)`` on the ``loop`` chosen."""
    with asyncio.Runner(loop_factory=loop_factory(loop)) as runner:
        return runner.run(main)
