"""Scale-out from Python (notebook 10): ``demo-server --workers N`` as a handle, and a
picture of the running system drawn from what the bus knows.

- :class:`Workers`: ``demo-server --workers N --redis URL --port 0`` in a subprocess;
  ``start()`` returns once every worker listens, ``stop()`` ends them all (SIGTERM).
- :func:`processes`: every server process one server has heard of on the bus (itself and
  each peer's last ``beat``: its name, port and client count).
- :func:`architecture`: those processes, their clients and Redis, as a figure.
- :func:`printed_log`: a logger's lines printed in the cell (stdout), not as errors.
- :func:`start_redis` and :func:`live`: a notebook's Redis, and its cells that need one:
  run live where ``redis-server`` is installed, else replay what they showed when recorded
  (``DEMO_SERVER_RECORD=1`` while the notebook runs saves it, in ``data/``).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TextIO

from IPython.display import Image
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import FancyBboxPatch

from .diagrams import COLORS
from .redis_local import RedisServer, RedisUnavailable
from .server import DemoServer
from .thread import ServerThread
from .workers import STOP_TIMEOUT

__all__ = ["Process", "Workers", "architecture", "live", "printed_log", "processes",
           "start_redis"]

STARTUP = 60.0  # seconds the workers have to listen, on a loaded machine
RECORDING = Path(__file__).with_name("data") / "scale-out-recording.json"
RECORD_ENV = "DEMO_SERVER_RECORD"
_redis: RedisServer | None = None  # the notebook's Redis, once start_redis() found one


class Workers:
    """``demo-server --workers count --redis redis_url`` on a free port, from Python."""

    def __init__(self, count: int, redis_url: str, *extra: str) -> None:
        self.command = [sys.executable, "-m", "demo_server", "--port", "0",
                        "--workers", str(count), "--redis", redis_url, *extra]
        self.process: subprocess.Popen[str] | None = None
        self.port = 0
        self.pids: dict[str, int] = {}  # worker name (w1@host:port) -> process id
        self.banner = ""
        self._log: IO[str] = io.StringIO()  # the supervisor's stderr, once started

    def start(self) -> Workers:
        """Start them; raise RuntimeError with the supervisor's words if they do not."""
        # The log (a line per connection) goes to a file, not to a notebook's cell; it is
        # read back if they do not start.
        self._log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop())
        self.process = subprocess.Popen(self.command, stdout=subprocess.PIPE,
                                        stderr=self._log, text=True)
        assert self.process.stdout is not None
        deadline = time.monotonic() + STARTUP
        while "Ctrl-C" not in self.banner and time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            self.banner += line
        found = re.search(r"port (\d+) \(SO_REUSEPORT\)", self.banner)
        if found is None:
            assert self.process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):  # it refused: it exits
                self.process.wait(STOP_TIMEOUT)
            self._log.seek(0)
            said = (self.banner + self._log.read()).strip()
            self.stop()
            raise RuntimeError(f"demo-server --workers did not start: {said}")
        self.port = int(found.group(1))
        self.pids = {name: int(pid) for name, pid in
                     re.findall(r"^\s+(w\d+@\S+)\s+pid (\d+)$", self.banner, re.MULTILINE)}
        return self

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def stop(self) -> None:
        """SIGTERM to the supervisor, which stops its workers; wait for it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT + 5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self.process = None
        self._log.close()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def __repr__(self) -> str:
        where = f"port {self.port}, {self.pids}" if self.running else "stopped"
        return f"<Workers {where}>"


@dataclass(frozen=True)
class Process:
    """One server process on the bus, as last heard of."""

    name: str
    port: int
    clients: int


def processes(server: ServerThread) -> list[Process]:
    """``server``'s own process, then every peer whose beat it has heard, by name."""
    live = server.server
    if not isinstance(live, DemoServer) or live.bus is None:
        raise RuntimeError("the server is not running with redis_url=...")
    bus = live.bus
    own = Process(live.process, live.port, len(live.clients))
    peers = [Process(name, int(beat.get("port", 0)), int(beat.get("clients", 0)))
             for name, beat in sorted(bus.peers.items())]
    return [own, *peers]


def architecture(nodes: list[Process], redis_url: str, *, title: str | None = None,
                 dots: int = 8) -> Figure:
    """Processes side by side, their clients above, Redis below; processes that share a
    port are bracketed together. At most ``dots`` clients are drawn per process."""
    width = max(8.0, 2.3 * len(nodes) + 1)
    fig = Figure(figsize=(width, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xlim(0, width)
    ax.set_ylim(0, 4.2)
    ax.axis("off")
    xs = [width * (i + 0.5) / len(nodes) for i in range(len(nodes))]
    redis_x, redis_y = width / 2, 0.55
    _box(ax, redis_x, redis_y, 3.2, 0.6, f"Redis  {redis_url}\nchannel demo_server",
         "#fbe3d6", "#d55e00")
    for x, node in zip(xs, nodes, strict=True):
        _box(ax, x, 2.0, 2.0, 0.75, f"{node.name}\nport {node.port} · {node.clients} "
             f"client{'s' if node.clients != 1 else ''}", "#dff0e8", COLORS["s2c"])
        ax.annotate("", xy=(redis_x + (x - redis_x) * 0.25, redis_y + 0.3), xytext=(x, 1.62),
                    arrowprops={"arrowstyle": "<->", "color": "#d55e00", "lw": 1.4})
        shown = min(node.clients, dots)
        for i in range(shown):
            cx = x + (i - (shown - 1) / 2) * 0.22
            ax.plot([cx, x + (cx - x) * 0.3], [3.35, 2.38], color=COLORS["http"], lw=0.8)
            ax.plot(cx, 3.4, "o", color=COLORS["http"], ms=7)
        if node.clients > dots:
            ax.text(x, 3.6, f"+{node.clients - dots} more", ha="center", fontsize=8.5,
                    color="#555555")
    for port in {n.port for n in nodes}:
        group = [x for x, n in zip(xs, nodes, strict=True) if n.port == port]
        if len(group) > 1:
            left, right = min(group) - 1.05, max(group) + 1.05
            ax.plot([left, left, right, right], [2.5, 2.6, 2.6, 2.5], color="#555555", lw=1)
            ax.text((left + right) / 2, 2.66, f"one port, {port}: SO_REUSEPORT", ha="center",
                    va="bottom", fontsize=8.5, color="#555555", zorder=3,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})
    ax.text(0.1, 3.95, "clients (WebSocket)", fontsize=9, color=COLORS["http"])
    ax.text(0.1, 1.05, "publish / subscribe", fontsize=9, color="#d55e00")
    if title:
        ax.set_title(title, fontsize=12, loc="left")
    return fig


def _box(ax: Axes, x: float, y: float, w: float, h: float, text: str, face: str,
         edge: str) -> None:
    ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0.04",
                                facecolor=face, edgecolor=edge, lw=1.4))
    ax.text(x, y, text, ha="center", va="center", fontsize=9, linespacing=1.3)


def start_redis() -> RedisServer | None:
    """A throwaway ``redis-server`` on a free port, or None (saying how to get one)."""
    global _redis
    try:
        _redis = RedisServer().start()
    except RedisUnavailable as exc:
        _redis = None
        print(f"{exc}\nThe cells that need Redis show what they printed when this notebook "
              "was recorded with Redis running; once redis-server is installed, restart the "
              "kernel and run them live.")
        return None
    print(f"redis-server listening at {_redis.url} (nothing is saved to disk)")
    return _redis


class _Tee(io.TextIOBase):
    def __init__(self, *streams: TextIO) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()


def live(name: str, cell: Callable[[], Any]) -> Any:
    """``cell()`` if :func:`start_redis` found Redis, else what it printed (and the picture
    it returned) when recorded under ``name``."""
    recorded: dict[str, dict[str, str]] = (
        json.loads(RECORDING.read_text()) if RECORDING.exists() else {})
    if _redis is None:
        entry = recorded.get(name)
        if entry is None:
            print(f"(no recording of {name!r}: this cell needs redis-server)")
            return None
        print(f"[recorded with Redis running, {entry['date']}]\n{entry['stdout']}", end="")
        return Image(data=base64.b64decode(entry["png"]), format="png") if "png" in entry \
            else None
    printed = io.StringIO()  # what it prints, and the log lines that reach stderr
    with contextlib.redirect_stdout(_Tee(sys.stdout, printed)), \
            contextlib.redirect_stderr(_Tee(sys.stderr, printed)):
        result = cell()
    if os.environ.get(RECORD_ENV):
        entry = {"date": time.strftime("%Y-%m-%d"), "stdout": printed.getvalue()}
        if isinstance(result, Image) and isinstance(result.data, bytes):
            entry["png"] = base64.b64encode(result.data).decode()
        recorded[name] = entry
        RECORDING.write_text(json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    return result


@contextlib.contextmanager
def printed_log(name: str = "demo_server.bus") -> Iterator[None]:
    """Print the log lines of logger ``name`` (INFO and up) on stdout while the block runs:
    a notebook shows stderr as errors, and these are what the lesson is about."""
    log = logging.getLogger(name)
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("log: %(message)s"))
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate
