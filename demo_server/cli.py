"""``demo-server``: run the demo server in the foreground, like ``node index.js``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import logging.handlers
import math
import os
import queue
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .loop import LOOPS, loop_name, run
from .record import ReceivedLog
from .routes import is_loopback
from .server import DemoServer, RateLimit, ServerStartError, frame_logger
from .tls import server_context
from .workers import READY, run_workers, supervisor_gone

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
                        help="address to listen on (default: 127.0.0.1, this machine only; "
                        "0.0.0.0: also your network, and the page's URL and QR code for "
                        "phones are printed)")
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
    parser.add_argument("--tls", action="store_true",
                        help="serve https:// and wss:// with a throwaway certificate made on "
                        "the fly (browsers warn: it is for this machine's lessons)")
    parser.add_argument("--certfile", help="serve https:// and wss:// with this certificate "
                        "(PEM; implies --tls)")
    parser.add_argument("--keyfile", help="the certificate's private key (PEM), when not in "
                        "--certfile")
    parser.add_argument("--keylog", metavar="FILE",
                        help="append the TLS secrets to FILE, for Wireshark or dissect "
                        "--keylog (default: $SSLKEYLOGFILE)")
    parser.add_argument("--workers", type=_workers, default=1, metavar="N",
                        help="run N server processes on one port (SO_REUSEPORT); needs "
                        "--redis (default: 1)")
    parser.add_argument("--redis", metavar="URL",
                        help="join other demo-servers (--workers, other machines) through "
                        "Redis pub/sub at URL, e.g. redis://127.0.0.1:6379/0: each one's "
                        "record holds every client_data of all")
    parser.add_argument("--loop", choices=LOOPS, default="asyncio",
                        help="event loop: asyncio (default), uvloop (pip install "
                        "'websocket-intro[fast]'; out of file descriptors it drops waiting "
                        "connections silently), or auto: uvloop if installed")
    parser.add_argument("--worker-name", help=argparse.SUPPRESS)  # set by --workers
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log every frame (socket.io: every packet), not just "
                        "connections and client_data")
    args = parser.parse_args(argv)
    if args.socketio and (args.tls or args.certfile):
        parser.error("--tls is for the plain WebSocket server, not --socketio")
    if not (args.tls or args.certfile) and (args.keyfile or args.keylog):
        parser.error("--keyfile and --keylog need --tls or --certfile")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.workers > 1:
        return run_workers(args, sys.argv[1:] if argv is None else argv)
    if args.redis is not None and args.socketio:
        print("demo-server: error: --redis joins WebSocket servers: drop --socketio",
              file=sys.stderr)
        return 2
    with _log_from_a_thread(logging.DEBUG if args.verbose else logging.INFO,
                            f"[{args.worker_name.partition('@')[0]}] "
                            if args.worker_name else ""):
        return _run(args)


@contextmanager
def _log_from_a_thread(level: int, prefix: str = "", backlog: int = 1000) -> Iterator[None]:
    """Log to stderr from a thread of its own, so a slow terminal never stalls the loop.

    The loop only puts records in a queue of ``backlog`` lines; when stderr cannot keep up
    (a slow SSH session, a pipe nobody reads) further lines are dropped and counted, and the
    count is said at exit, instead of ticks waiting on ``write``. ``prefix`` starts each
    line (a worker's name).
    """
    lines: queue.Queue[logging.LogRecord | None] = queue.Queue(backlog)
    dropped = 0

    class Enqueue(logging.handlers.QueueHandler):
        def enqueue(self, record: logging.LogRecord) -> None:
            nonlocal dropped
            try:
                lines.put_nowait(record)
            except queue.Full:
                dropped += 1

    writer = logging.StreamHandler(sys.stderr)
    writer.setFormatter(logging.Formatter(f"%(asctime)s {prefix}%(message)s", datefmt="%H:%M:%S"))

    def write() -> None:
        while (record := lines.get()) is not None:
            writer.handle(record)

    thread = threading.Thread(target=write, name="demo-server-log", daemon=True)
    thread.start()
    logging.basicConfig(level=level, format="%(message)s", handlers=[Enqueue(lines)],
                        force=True)
    try:
        yield
    finally:
        with contextlib.suppress(queue.Full):
            lines.put_nowait(None)
        thread.join(2.0)  # a blocked stderr must not keep the process from exiting
        if dropped:
            print(f"demo-server: {dropped} log lines dropped: stderr did not keep up",
                  file=sys.stderr)


def _run(args: argparse.Namespace) -> int:
    # Every client_data is logged: skip what the log format never shows (the logging
    # HOWTO's "Optimization" section), about a quarter of the cost of a line.
    logging._srcfile = None
    logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
    if not args.verbose:
        frame_logger.setLevel(logging.WARNING)
    # The log shows what clients send; the record a notebook reads is not needed here, so
    # it keeps one message, not the server's default of many (64 KiB each) nothing reads.
    received = ReceivedLog(maxlen=1)
    try:
        server: DemoServer | SocketIOServer
        if args.socketio:
            # Imported here: python-socketio and uvicorn load only for this flavour.
            from .socketio_server import SocketIOServer, packet_logger

            if not args.verbose:
                packet_logger.setLevel(logging.WARNING)
            server = SocketIOServer(args.host, args.port, compression=args.compression,
                                    allow_origins=args.allow_origin, received=received)
        else:
            tls = (server_context(args.host, certfile=args.certfile, keyfile=args.keyfile,
                                  keylog=args.keylog)
                   if args.tls or args.certfile else None)
            server = DemoServer(args.host, args.port, compression=args.compression,
                                allow_origins=args.allow_origin, rate_limit=args.rate_limit,
                                received=received, gc_after_tick=True, ssl=tls,
                                process=args.worker_name, redis_url=args.redis,
                                reuse_port=args.worker_name is not None)
        return run(_serve(server, args.worker_name), args.loop)
    except (ServerStartError, ValueError) as exc:
        print(f"demo-server: error: {exc}", file=sys.stderr)
        return 2


@contextmanager
def _on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT (Ctrl-C) or SIGTERM while the block runs.

    Windows' event loops have no ``add_signal_handler`` (NotImplementedError): there a
    plain signal handler hands the signal to the loop, which ``call_soon_threadsafe`` wakes.
    """
    loop = asyncio.get_running_loop()
    previous = {}  # the handlers replaced on Windows, put back after
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop.set)  # removed when asyncio.run closes the loop
        except NotImplementedError:
            previous[sig] = signal.signal(sig, lambda *_: loop.call_soon_threadsafe(stop.set))
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


async def _serve(server: DemoServer | SocketIOServer, worker: str | None = None) -> int:
    stop = asyncio.Event()
    with _on_signals(stop):
        async with server:
            if worker is not None:  # the supervisor (workers.py) prints the banner
                print(f"{READY} {worker} {os.getpid()} {server.port}", flush=True)
                ends = [asyncio.create_task(stop.wait()), asyncio.create_task(supervisor_gone())]
                await asyncio.wait(ends, return_when=asyncio.FIRST_COMPLETED)
                for end in ends:
                    end.cancel()
                return 0
            endpoint = (f"WebSocket       {server.ws_url}\n"
                        f"  sensor events   {server.sse_url} (Server-Sent Events)"
                        if isinstance(server, DemoServer)
                        else f"Socket.IO       {server.url}socket.io/")
            print(f"demo-server listening on {server.host} port {server.port}\n"
                  f"  Hello, World.   {server.url}\n"
                  f"  browser page    {server.page_url}\n"
                  f"  {endpoint}\n"
                  f"  event loop      {loop_name(asyncio.get_running_loop())}\n"
                  + (f"  joined by Redis {server.bus.url} as {server.process}\n"
                     if isinstance(server, DemoServer) and server.bus is not None else "")
                  + "Press Ctrl-C to stop.", flush=True)
            if not is_loopback(server.host):
                print("Note: other machines on your network can reach this server; browsers "
                      "on other origins are refused unless listed with --allow-origin.",
                      flush=True)
                _print_join(server.host, server.port, server.url.partition(":")[0])
            await stop.wait()
            print("demo-server: stopping", flush=True)
        return 0


def _print_join(host: str, port: int, scheme: str) -> None:
    """The page's URL on this machine's network, and its QR code for phones."""
    # Imported here: segno loads only for a server on the network.
    from .lan import join_text

    print(join_text(host, port, scheme), flush=True)
def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 64:
        raise argparse.ArgumentTypeError(f"expected a number of processes from 1 to 64, "
                                         f"got {text!r}")
    return count


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
