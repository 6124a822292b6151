"""``demo-server --workers N``: N server processes on one port, joined by Redis.

Each worker is a ``demo-server`` process of its own (its own interpreter, GIL and core)
listening with ``SO_REUSEPORT``: the kernel spreads new connections over the listening
sockets of one port. Each worker ticks on the wall-clock second, so every client still
gets the same second at the same instant, and publishes what its clients send on Redis
(:mod:`demo_server.bus`), so each worker's record holds every client's messages.

This process only supervises: it starts the workers, waits until each listens, prints one
banner, and stops them all on Ctrl-C or SIGTERM, or when one of them exits.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from .routes import is_loopback
from .text import host_port, local_url

__all__ = ["READY", "Worker", "run_workers", "supervisor_gone"]

READY = "demo-server worker ready:"  # a worker's first line on stdout: READY name pid port
START_TIMEOUT = 30.0  # seconds each worker has to listen
STOP_TIMEOUT = 5.0  # seconds each worker has to stop after SIGTERM before it is killed


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[str]


def run_workers(args: argparse.Namespace, argv: list[str]) -> int:
    """Run ``args.workers`` workers with the options of ``argv``; the exit status."""
    if args.socketio:
        return _error("--workers runs the WebSocket flavour: drop --socketio")
    if args.tls and not args.certfile:
        return _error("--workers with --tls needs --certfile: each worker would make a "
                      "throwaway certificate of its own, which no client trusts as one")
    if not hasattr(socket, "SO_REUSEPORT"):
        return _error("--workers needs SO_REUSEPORT, which this system lacks (Windows): run "
                      "one demo-server per port, each with --redis")
    if args.redis is None:
        return _error(f"--workers {args.workers} needs --redis URL: each process has its own "
                      "clients, and only a shared Redis lets every process see every "
                      "client's messages (e.g. start redis-server, then add --redis "
                      "redis://127.0.0.1:6379/0)")
    problem = redis_problem(args.redis)
    if problem:
        return _error(problem)
    try:
        reserved = _reserve_port(args.host, args.port)
    except OSError as exc:
        return _error(f"cannot listen on {args.host} port {args.port}: {exc.strerror or exc}")
    stop = threading.Event()
    with reserved, _on_signals(stop):
        port = reserved.getsockname()[1]
        # Unique on a Redis that several machines share: the bus tells processes by name.
        where = host_port(socket.gethostname(), port)
        workers = [_start(argv, port, f"w{i}@{where}") for i in range(1, args.workers + 1)]
        scheme = "https" if args.certfile else "http"
        url = local_url(args.host, port, scheme)
        try:
            failed = _wait_ready(workers)
            if failed:
                return _error(failed)
            print(f"demo-server: {len(workers)} workers listening on {args.host} port {port} "
                  f"(SO_REUSEPORT), joined by Redis at {args.redis}\n"
                  + "".join(f"  {w.name}  pid {w.process.pid}\n" for w in workers)
                  + f"  Hello, World.   {url}\n"
                  f"  browser page    {url}socket.html\n"
                  f"  WebSocket       ws{url[4:]}ws\n"
                  "Press Ctrl-C to stop.", flush=True)
            if not is_loopback(args.host):
                from .lan import join_text  # here: segno loads only for a server on the network

                print(join_text(args.host, port, scheme), flush=True)
            gone = _supervise(workers, stop)
            if gone is not None:
                print(f"demo-server: worker {gone.name} (pid {gone.process.pid}) exited with "
                      f"code {gone.process.returncode}; stopping the others", file=sys.stderr,
                      flush=True)
                return 1
            print("demo-server: stopping", flush=True)
            return 0
        finally:
            _stop_all(workers)


def redis_problem(url: str) -> str | None:
    """Why Redis at ``url`` cannot be used (one sentence), or None if it answers."""
    import redis  # here: a lone server needs only websockets
    from redis.exceptions import RedisError

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=2.0, socket_timeout=2.0)
    except ValueError as exc:
        return f"bad Redis URL {url!r}: {exc} (expected e.g. redis://127.0.0.1:6379/0)"
    try:
        client.ping()
    except (RedisError, OSError) as exc:
        return f"cannot reach Redis at {url}: {exc} (is redis-server running?)"
    finally:
        client.close()
    return None


def _error(message: str) -> int:
    print(f"demo-server: error: {message}", file=sys.stderr, flush=True)
    return 2


def _reserve_port(host: str, port: int) -> socket.socket:
    """A bound, not listening ``SO_REUSEPORT`` socket: holds the port (0: a free one) for
    the workers, who bind it too; it takes no connections (only listening sockets do)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise OSError(exc.errno, "the port is in use (another demo-server?): stop it, or "
                          "choose another port (0 picks a free one)") from None
        raise
    return sock


def _start(argv: list[str], port: int, name: str) -> Worker:
    """A ``demo-server`` with ``argv``'s options, on ``port``, as worker ``name``
    (``w1@host:port``: its name on the bus too)."""
    command = [sys.executable, "-m", "demo_server", *argv,
               "--port", str(port), "--workers", "1", "--worker-name", name]
    # Ctrl-C reaches them through us (a session of their own); their stdin is a pipe from
    # us, which ends if we die, even by SIGKILL: then they stop (supervisor_gone).
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               text=True, start_new_session=True)
    return Worker(name, process)


def _wait_ready(workers: list[Worker]) -> str | None:
    """Read each worker's first line; a message if one did not start, else None."""
    deadline = time.monotonic() + START_TIMEOUT
    for worker in workers:
        assert worker.process.stdout is not None
        timer = threading.Timer(max(0.0, deadline - time.monotonic()), worker.process.kill)
        timer.start()
        try:
            line = worker.process.stdout.readline()
        finally:
            timer.cancel()
        if not line.startswith(READY):
            worker.process.wait()
            return (f"worker {worker.name} did not start (exit code "
                    f"{worker.process.returncode}): see its message above")
        threading.Thread(target=_relay, args=(worker,), daemon=True,
                         name=f"demo-server-{worker.name}-stdout").start()
    return None


async def supervisor_gone() -> None:
    """Return once the supervisor is gone: a worker's stdin, its pipe, is at end of file."""
    reader = asyncio.StreamReader()
    await asyncio.get_running_loop().connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.read(4096):
        pass


def _relay(worker: Worker) -> None:
    """Copy what a worker prints (after its first line) to our stdout."""
    assert worker.process.stdout is not None
    for line in worker.process.stdout:
        print(f"[{worker.name}] {line}", end="", flush=True)


def _supervise(workers: list[Worker], stop: threading.Event) -> Worker | None:
    """Wait for ``stop`` or a worker's exit; the worker that exited, if one did."""
    while not stop.wait(0.2):
        for worker in workers:
            if worker.process.poll() is not None:
                return worker
    return None


def _stop_all(workers: list[Worker]) -> None:
    for worker in workers:
        if worker.process.poll() is None:
            worker.process.terminate()
    deadline = time.monotonic() + STOP_TIMEOUT
    for worker in workers:
        try:
            worker.process.wait(max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"demo-server: worker {worker.name} did not stop within {STOP_TIMEOUT:g} s: "
                  "killed", file=sys.stderr, flush=True)
            worker.process.kill()
            worker.process.wait()
        for pipe in (worker.process.stdin, worker.process.stdout):
            if pipe is not None:
                pipe.close()


@contextlib.contextmanager
def _on_signals(stop: threading.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT or SIGTERM while the block runs (and SIGHUP on POSIX)."""
    signals = [signal.SIGINT, signal.SIGTERM] + ([signal.SIGHUP] if os.name == "posix" else [])
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
