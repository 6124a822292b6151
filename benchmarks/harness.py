"""Shared pieces of the benchmarks: the server subprocess, /proc readings, raw clients.

The clients are plain non-blocking sockets speaking just enough WebSocket (RFC 6455) to
hold a connection open: a handshake, unmasked server frames parsed by hand, masked pongs
and ``client_data`` frames. They run in worker processes, so the client side has its own
CPU budget, and every socket asks the kernel for receive timestamps (``SO_TIMESTAMPNS``):
a tick's arrival time is when it reached the client's socket, not when a busy client got
round to reading it. How late the client read it is reported separately (``read lag``).
Workers read every few milliseconds instead of blocking, see ``client_worker``.

Everything talks to 127.0.0.1 only, and every loop is bounded in count and time.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import re
import resource
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from array import array
from collections import defaultdict
from pathlib import Path

from websockets.frames import Frame, Opcode

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python 3.11 lacks the name
ANCILLARY = socket.CMSG_SPACE(16)  # one struct timespec
CLK_TCK = os.sysconf("SC_CLK_TCK")  # /proc/stat counts in these
PAGE = os.sysconf("SC_PAGE_SIZE")
POLL_EVERY = 0.005  # seconds a client worker sleeps between reads

# -- the machine and the server process ----------------------------------------------------


def raise_fd_limit(needed: int) -> None:
    """Let this process (and its children) open ``needed`` files, or as many as allowed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, needed), max(hard, needed)))
    except (ValueError, OSError):  # raising the hard limit needs CAP_SYS_RESOURCE
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(needed, hard)), hard))


def cpu_seconds(pid: int) -> float:
    """CPU time a process has used, all threads, to the nanosecond (``schedstat``)."""
    return sum(int((task / "schedstat").read_text().split()[0])
               for task in Path(f"/proc/{pid}/task").iterdir()) / 1e9


def cpu_split(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process, all threads (``stat``, in clock ticks):
    how much of the server's time is Python and how much the kernel's."""
    user = system = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        user, system = user + int(fields[11]), system + int(fields[12])
    return user / CLK_TCK, system / CLK_TCK


def rss_bytes(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def machine_busy_seconds() -> float:
    """CPU time all processes used since boot, summed over cores (``/proc/stat``)."""
    user, nice, system, _idle, _iowait, irq, softirq, steal = (
        int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
    )
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


class Server:
    """``demo-server --port 0 ARGS`` as a subprocess; its log goes to a temporary file.

    ``pids`` are its process and, with ``--workers N``, each worker's (from its banner):
    the server's CPU and memory are theirs summed.

    A negative ``niceness`` (root only) puts the server ahead of other processes, standing
    in for a machine of its own when something else keeps this one busy.
    """

    def __init__(self, args: list[str], fd_limit: int, niceness: int = 0) -> None:
        raise_fd_limit(fd_limit)
        # The log lives as long as the server, so no ``with`` block here.
        self.log = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "demo_server", "--port", "0", *args],
            stdout=subprocess.PIPE, stderr=self.log, text=True, cwd=ROOT,
            preexec_fn=(lambda: os.nice(niceness)) if niceness else None,
        )
        banner = ""
        deadline = time.monotonic() + 20
        while "WebSocket" not in banner and time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            banner += line
        match = re.search(r"WebSocket\s+ws://127\.0\.0\.1:(\d+)/ws", banner)
        if not match:
            self.stop()
            raise RuntimeError(f"the server did not start: {banner!r}")
        self.port = int(match.group(1))
        self.pid = self.proc.pid
        self.pids = [self.pid, *(int(pid) for pid in re.findall(r"w\d+@\S+\s+pid (\d+)", banner))]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def rss_bytes(self) -> int:
        return sum(rss_bytes(pid) for pid in self.pids)

    def cpu_split(self) -> tuple[float, float]:
        splits = [cpu_split(pid) for pid in self.pids]
        return sum(u for u, _ in splits), sum(s for _, s in splits)

    def problems(self) -> list[str]:
        """Log lines about failures: skipped ticks, failed handlers, tracebacks, accepts
        failing, a link to Redis lost."""
        self.log.seek(0)
        return [line.rstrip() for line in self.log
                if re.search(r"Traceback|skipped|failed|cannot|lost", line)]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc.stdout.close()


# -- raw WebSocket client sockets ----------------------------------------------------------


leftover: dict[int, bytes] = {}  # fd -> bytes received after the handshake response


def open_ws(port: int, count: int, timeout: float = 10.0) -> list[socket.socket]:
    """Open ``count`` WebSocket connections at once; return them with handshakes done.

    Requests are sent on every socket before any response is read, so a batch costs one
    round trip to the server. Bytes after a response (an early tick) stay in ``leftover``.
    """
    socks = []
    for _ in range(count):
        sock = socket.create_connection((HOST, port), timeout=timeout)
        sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            f"GET /ws HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n".encode()
        )
        socks.append(sock)
    for sock in socks:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("the server closed during the handshake")
            head += chunk
        if not head.startswith(b"HTTP/1.1 101"):
            raise ConnectionError(f"handshake refused: {head[:80]!r}")
        leftover[sock.fileno()] = head.partition(b"\r\n\r\n")[2]
    return socks


def masked_frame(opcode: int, payload: bytes) -> bytes:
    """A client-to-server frame: FIN set, masked with a fresh random key."""
    return Frame(Opcode(opcode), payload).serialize(mask=True)


def parse_frames(buf: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Split unmasked server frames off ``buf``: ``[(opcode, payload)], rest``."""
    frames = []
    while len(buf) >= 2:
        n = buf[1] & 0x7F
        start = 2
        if n == 126:
            if len(buf) < 4:
                break
            n, start = struct.unpack_from("!H", buf, 2)[0], 4
        elif n == 127:
            if len(buf) < 10:
                break
            n, start = struct.unpack_from("!Q", buf, 2)[0], 10
        if len(buf) < start + n:
            break
        frames.append((buf[0] & 0x0F, buf[start:start + n]))
        buf = buf[start + n:]
    return frames, buf


def kernel_time(ancdata: list[tuple[int, int, bytes]]) -> float | None:
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack_from("qq", data)
            return sec + nsec / 1e9
    return None


def reset(socks: list[socket.socket]) -> None:
    """Close with a TCP reset, not a FIN: no TIME_WAIT pile-up between runs."""
    for sock in socks:
        leftover.pop(sock.fileno(), None)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()


# -- the client worker process -------------------------------------------------------------


def client_worker(pipe, port: int, count: int, batch: int, niceness: int, churn: int) -> None:
    """Hold ``count`` connections, record every tick, report on the window the parent sets.

    With ``churn``, also replace that many other connections every second from the start
    of the window (close them, open new ones), as visitors of a public demo come and go;
    their ticks are not counted.

    Messages on ``pipe``: sends ``("ready", opened, ramp_seconds)`` (or ``("error", text)``),
    receives ``(first_epoch, seconds, cpu_marks, stop_at)``, sends ``("result", dict)``.
    """
    os.nice(niceness)  # the clients stand in for other machines: the server goes first
    started = time.monotonic()
    socks: list[socket.socket] = []
    try:
        while len(socks) < count and time.monotonic() - started < 120:
            socks += open_ws(port, min(batch, count - len(socks)))
    except OSError as exc:
        pipe.send(("error", f"{len(socks)} connections opened, then {exc!r}"))
        return
    pipe.send(("ready", len(socks), time.monotonic() - started))
    by_fd = {s.fileno(): s for s in socks}
    bufs = {fd: leftover.get(fd, b"") for fd in by_fd}
    poller = select.epoll(len(socks) + 1)
    for fd, sock in by_fd.items():
        sock.setblocking(False)
        poller.register(fd, select.EPOLLIN)
    poller.register(pipe.fileno(), select.EPOLLIN)

    window = None  # (first_epoch, last_epoch) once the parent has set it
    marks: list[float] = []  # wall-clock times at which to read our own CPU time
    cpu: list[float] = []
    stop_at = time.time() + 600
    seen: dict[int, list[int]] = defaultdict(list)  # fd -> epochs received in the window
    arrivals: dict[int, array] = defaultdict(lambda: array("d"))  # epoch -> arrival times
    lags = array("d")  # read time - kernel arrival time
    epochs: dict[bytes, int] = {}  # tick payload -> its epoch (one JSON parse per tick)
    closed = 0
    no_timestamp = 0
    churners: list[socket.socket] = []
    next_churn = stop_at
    churned = 0

    while (now := time.time()) < stop_at:
        if marks and now >= marks[0]:
            cpu.append(time.process_time())
            marks.pop(0)
        if now >= next_churn:
            reset(churners)
            churners = open_ws(port, churn)
            churned += churn
            next_churn += 1
        # Sleep, then take what is ready, rather than block in epoll_wait: on loopback a
        # tick written to a blocked client wakes it from inside the server's send() (on the
        # server's CPU), which a server never pays for clients on other machines.
        time.sleep(min(POLL_EVERY, max(0.0, min(marks[:1] + [next_churn, stop_at]) - now)))
        for fd, _ in poller.poll(0, len(by_fd) + 1):
            if fd == pipe.fileno():
                first, seconds, marks, stop_at = pipe.recv()
                window = (first, first + seconds - 1)
                next_churn = first - 0.5 if churn else stop_at
                continue
            try:
                data, anc, _, _ = by_fd[fd].recvmsg(65536, ANCILLARY)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                poller.unregister(fd)
                closed += 1
                continue
            read_at = time.time()
            arrived = kernel_time(anc)
            if arrived is None:
                arrived, no_timestamp = read_at, no_timestamp + 1
            frames, bufs[fd] = parse_frames(bufs[fd] + data)
            for opcode, payload in frames:
                if opcode == 0x1:  # text: a tick (or an error event)
                    epoch = epochs.get(payload)
                    if epoch is None:
                        message = json.loads(payload)
                        epoch = message["data"]["epoch"] if message["event"] == "second" else -1
                        epochs[payload] = epoch
                    if window and window[0] <= epoch <= window[1]:
                        seen[fd].append(epoch)
                        arrivals[epoch].append(arrived)
                        lags.append(read_at - arrived)
                elif opcode == 0x9:  # ping: answer with a pong, as every client must
                    by_fd[fd].send(masked_frame(0xA, payload))
                elif opcode == 0x8:  # close
                    closed += 1

    reset(socks + churners)
    distinct: dict[int, int] = defaultdict(int)  # epoch -> connections that got it
    duplicates: dict[int, int] = defaultdict(int)  # epoch -> extra copies received
    for epochs_seen in seen.values():
        for epoch in set(epochs_seen):
            distinct[epoch] += 1
            duplicates[epoch] += epochs_seen.count(epoch) - 1
    pipe.send(("result", {
        "connections": len(socks),
        "distinct": dict(distinct),
        "duplicates": dict(duplicates),
        "out_of_order": sum(e != sorted(e) for e in seen.values()),
        "arrivals": dict(arrivals),
        "lags": lags,
        "cpu": cpu,
        "closed": closed,
        "no_timestamp": no_timestamp,
        "churned": churned,
    }))


class Clients:
    """``count`` raw WebSocket clients spread over ``workers`` processes."""

    def __init__(self, port: int, count: int, workers: int, batch: int = 50,
                 niceness: int = 10, churn: int = 0) -> None:
        shares = [count // workers + (i < count % workers) for i in range(workers)]
        churns = [churn // workers + (i < churn % workers) for i in range(workers)]
        self.pipes = []
        self.procs = []
        ctx = multiprocessing.get_context("fork")
        for share, churners in zip(shares, churns, strict=True):
            mine, theirs = ctx.Pipe()
            proc = ctx.Process(target=client_worker, daemon=True, args=(
                theirs, port, share, max(1, batch // workers), niceness, churners))
            proc.start()
            self.pipes.append(mine)
            self.procs.append(proc)
        self.ramp_seconds = 0.0
        for pipe in self.pipes:
            message = self._receive(pipe, 150)
            if message[0] != "ready":
                self.close()
                raise RuntimeError(f"clients could not connect: {message[1]}")
            self.ramp_seconds = max(self.ramp_seconds, message[2])

    def start_window(self, first_epoch: int, seconds: int, cpu_marks: list[float],
                     stop_at: float) -> None:
        for pipe in self.pipes:
            pipe.send((first_epoch, seconds, cpu_marks, stop_at))

    def results(self, timeout: float) -> list[dict]:
        return [self._receive(pipe, timeout)[1] for pipe in self.pipes]

    def close(self) -> None:
        for proc in self.procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join()

    @staticmethod
    def _receive(pipe, timeout: float):
        if not pipe.poll(timeout):
            raise RuntimeError(f"a client worker did not answer within {timeout} s")
        return pipe.recv()


def tick_stats(results: list[dict], first_epoch: int, seconds: int) -> dict:
    """Merge the workers' tick records into the figures the benchmarks print."""
    connections = sum(r["connections"] for r in results)
    window = range(first_epoch, first_epoch + seconds)
    offsets = array("d")
    starts = []  # per second: first arrival minus the second (how late the tick started)
    spreads = []  # per second: last arrival minus first arrival
    for epoch in window:
        times = array("d")
        for r in results:
            times.extend(r["arrivals"].get(epoch, ()))
        offsets.extend(t - epoch for t in times)
        if times:
            starts.append(min(times) - epoch)
            spreads.append(max(times) - min(times))
    lags = array("d")
    for r in results:
        lags.extend(r["lags"])
    expected = connections * seconds
    delivered = sum(r["distinct"].get(e, 0) for r in results for e in window)
    return {
        "connections": connections,
        "ticks_expected": expected,
        "ticks_delivered": delivered,
        "delivered_pct": round(100 * delivered / expected, 3) if expected else 0.0,
        "missing": expected - delivered,
        "duplicates": sum(r["duplicates"].get(e, 0) for r in results for e in window),
        "out_of_order": sum(r["out_of_order"] for r in results),
        "offset_ms": ms_percentiles(offsets),
        "start_ms": median_max(starts),
        "spread_ms": median_max(spreads),
        "read_lag_ms": ms_percentiles(lags),
        "closed": sum(r["closed"] for r in results),
        "churned": sum(r["churned"] for r in results),
        "no_kernel_timestamp": sum(r["no_timestamp"] for r in results),
    }


# -- figures -------------------------------------------------------------------------------


def ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def percentile(values, q: float) -> float:
    """Nearest-rank percentile of a sorted sequence."""
    return values[min(len(values) - 1, max(0, round(q / 100 * len(values) + 0.5) - 1))]


def ms_percentiles(values) -> dict:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)
    return {"p50": ms(percentile(ordered, 50)), "p99": ms(percentile(ordered, 99)),
            "max": ms(ordered[-1])}


def median_max(values: list[float]) -> dict:
    if not values:
        return {"median": None, "max": None}
    return {"median": ms(statistics.median(values)), "max": ms(max(values))}


def sleep_until(wall_time: float) -> None:
    while (left := wall_time - time.time()) > 0:
        time.sleep(min(left, 0.5))


def print_table(rows: list[list[object]], header: list[str], show_header: bool = True) -> None:
    """Right-aligned columns of fixed width, so rows printed one by one line up."""
    for line in ([header] if show_header else []) + rows:
        print(" ".join(str("-" if c is None else c).rjust(max(9, len(h)))
                       for c, h in zip(line, header, strict=True)), flush=True)


def median_of(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
