"""A throwaway ``redis-server`` on a free loopback port, for notebooks and tests.

Nothing is saved (``--save "" --appendonly no``); :meth:`RedisServer.stop` ends it and
:meth:`RedisServer.start` brings it back on the same port, as a restarted Redis would be.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time

__all__ = ["REDIS_SERVER", "RedisServer", "RedisUnavailable"]

REDIS_SERVER = "redis-server"
INSTALL_HINT = ("install it: sudo apt-get install redis-server (Debian, Ubuntu), "
                "brew install redis (macOS), or run Redis in Docker: "
                "docker run -p 6379:6379 redis")


class RedisUnavailable(RuntimeError):
    """``redis-server`` is not installed or did not start; the message says how to get it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``with RedisServer() as redis:`` a Redis at ``redis.url``, stopped at the end."""

    def __init__(self, port: int | None = None, executable: str = REDIS_SERVER) -> None:
        found = shutil.which(executable)
        if found is None:
            raise RedisUnavailable(f"{executable} is not installed: {INSTALL_HINT}")
        self.executable = found
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start it (again, on the same port) and return once it answers."""
        if self.process is not None:
            return self
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                self.process = None
                raise RedisUnavailable(f"redis-server exited at start: {error.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RedisUnavailable(f"redis-server did not answer on port {self.port} within "
                               f"{timeout:g} s")

    def stop(self) -> None:
        """End it (SIGKILL: like a crash, nothing is said to the clients) and wait."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            if self.process.stderr:
                self.process.stderr.close()
            self.process = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
