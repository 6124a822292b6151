"""``demo-server``: run the demo server in the foreground, like ``node index.js``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import signal
import sys
from typing import TYPE_CHECKING

from .routes import is_loopback
from .server import DemoServer, RateLimit, ServerStartError, frame_logger

if TYPE_CHECKING:
    from .socketio_server import SocketIOServer

__all__ = ["main", "parse_args"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="demo-server",
        description="Serve Hello, World., the live-seconds page and the /ws WebSocket "
        "on one port (with --socketio: socket.io at /socket.io/, as in the article).",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=8001, help="port (default: 8001; 0: any)")
    parser.add_argument("--compression", action="store_true",
                        help="negotiate permessage-deflate (off by default, so captures "
                        "show readable payloads)")
    parser.add_argument("--allow-origin", action="append", default=[], metavar="ORIGIN",
                        help="a browser origin, e.g. http://teacher.local:8001, allowed to "
                        "open /ws (or socket.io) besides the server's own (repeatable)")
    flavour = parser.add_mutually_exclusive_group()
    flavour.add_argument("--socketio", action="store_true",
                         help="serve socket.io (python-socketio) instead of /ws: the "
                         "article's protocol, long-polling first, then WebSocket")
    flavour.add_argument("--rate-limit", type=_rate_limit, default=RateLimit(),
                         metavar="RATE[,BURST]|off",
                         help="messages a /ws client may send per second, after a burst of "
                         f"BURST (default: {RateLimit.rate:g},{RateLimit.burst}); off: no "
                         "limit")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every frame (socket.io: every packet), not just "
                        "connections and client_data")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    # Every client_data is logged: skip what the format above never shows (the logging
    # HOWTO's "Optimization" section), about a quarter of the cost of a line.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if not args.verbose:
        frame_logger.setLevel(logging.WARNING)
    try:
        server: DemoServer | SocketIOServer
        if args.socketio:
            # Imported here: python-socketio and uvicorn load only for this flavour.
            from .socketio_server import SocketIOServer, packet_logger

            if not args.verbose:
                packet_logger.setLevel(logging.WARNING)
            server = SocketIOServer(args.host, args.port, compression=args.compression,
                                    allow_origins=args.allow_origin)
        else:
            server = DemoServer(args.host, args.port, compression=args.compression,
                                allow_origins=args.allow_origin, rate_limit=args.rate_limit,
                                gc_after_tick=True)
        return asyncio.run(_serve(server))
    except (ServerStartError, ValueError) as exc:
        print(f"demo-server: error: {exc}", file=sys.stderr)
        return 2


async def _serve(server: DemoServer | SocketIOServer) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        endpoint = (f"WebSocket       {server.ws_url}" if isinstance(server, DemoServer)
                    else f"Socket.IO       {server.url}socket.io/")
        print(f"demo-server listening on {server.host} port {server.port}\n"
              f"  Hello, World.   {server.url}\n"
              f"  browser page    {server.page_url}\n"
              f"  {endpoint}\n"
              "Press Ctrl-C to stop.", flush=True)
        if not is_loopback(server.host):
            print("Note: other machines on your network can reach this server; browsers "
                  "on other origins are refused unless listed with --allow-origin.",
                  flush=True)
        await stop.wait()
        print("demo-server: stopping", flush=True)
    return 0


def _rate_limit(text: str) -> RateLimit | None:
    if text == "off":
        return None
    rate, _, burst = text.partition(",")
    try:
        if not math.isfinite(float(rate)):
            raise ValueError(rate)
        return RateLimit(float(rate), int(burst) if burst else RateLimit.burst)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected RATE[,BURST] (e.g. 50,100: rate > 0, burst >= 1) or off, got {text!r}"
        ) from None
