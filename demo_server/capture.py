"""Capture the loopback TCP traffic of one port with scapy, or fall back to a bundled sample.

``with capture(port) as cap: ...`` records every TCP packet to or from ``port`` while the
block runs; then ``cap.packets`` holds them (scapy packets, in arrival order) and
``cap.save(path)`` writes a pcap. Two backends capture live, tried in this order:

- ``"socket"``: scapy's own packet socket (Linux), BPF device (macOS) or Npcap (Windows).
  It needs root or CAP_NET_RAW on Linux, read access to ``/dev/bpf*`` on macOS, Npcap on
  Windows.
- ``"dumpcap"``: Wireshark's ``dumpcap`` as a subprocess, writing pcap into a pipe that
  scapy reads: the way Wireshark users capture without root (Debian: package
  ``wireshark-common``, the user in group ``wireshark``).

``cap.backend`` says which one ran; ``backend=`` forces one. :func:`capture_or_sample` adds
the last resort, the bundled sample. Every way a capture can fail to start (no permission,
no Npcap, no such interface, ...) is a :class:`CaptureUnavailable` whose message says why
and how to enable capture on this OS. Pitfalls measured on Linux, and what this module does:

- The loopback interface shows each packet twice (leaving and arriving): the socket keeps
  only the arriving copy, as libpcap (and so dumpcap) does.
- ``AsyncSniffer.start()`` returns before the sniffer listens: the packet socket is opened
  (and queues packets) before the block runs, and ``start()`` waits for the sniffer thread.
  dumpcap writes its pcap header once it listens, and ``start()`` waits for that header.
- ``AsyncSniffer.stop()`` drops packets still queued: after the block, a UDP sentinel is
  sent to the port until it comes back through the sniffer with no new TCP packet before it.
- A 64 KB loopback segment is 65,549 bytes with its Ethernet header: the socket reads up to
  :data:`SNAPLEN` bytes, the kernel filter keeps as many, and the receive buffer is large.
- The kernel (BPF) filter needs libpcap to compile it; without libpcap every loopback
  packet is filtered in Python instead (slower, same result).

CLI: ``python -m demo_server.capture --port PORT --seconds S --out FILE.pcap [--backend B]``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import math
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, NoReturn

import scapy.layers.inet6  # noqa: F401  (so [::1] traffic dissects too)
from scapy.arch.common import compile_filter, free_filter
from scapy.config import conf
from scapy.error import Scapy_Exception
from scapy.layers.inet import TCP, UDP
from scapy.packet import Packet
from scapy.sendrecv import AsyncSniffer
from scapy.utils import PcapReader, rdpcap, wrpcap

__all__ = [
    "BACKENDS",
    "SAMPLES",
    "SAMPLE_PORT",
    "SNAPLEN",
    "Capture",
    "CaptureUnavailable",
    "capture",
    "capture_or_sample",
    "load_sample",
    "main",
]

SNAPLEN = 262_144  # bytes kept per packet, as tcpdump and Wireshark do
SAMPLE_PORT = 8001  # the server port in the bundled samples (the article's port)
BACKENDS = ("socket", "dumpcap")  # the live backends, in the order they are tried
SAMPLES = {  # name: what it holds (scripts/make_sample_capture.py says more)
    "handshake": "one conversation with the demo server: handshake, ticks, ping, close",
    "deflate": "the same conversation with permessage-deflate",
    "observers": "notebook 07: one sensor watched five ways for the same 10 s: polling at "
                 "1 Hz and 10 Hz, long-polling, /ws/sensor (8001), Server-Sent Events (8002)",
    "socketio": "notebook 08: 5 s recorded live: socket.io polling then WebSocket (8001), "
                "plain /ws (8002), long-polling only (8003)",
    "frames": "notebook 06: a message in fragments with a ping between, a binary message",
    "tls": "notebook 09: wss:// recorded live (TLS 1.3, SNI localhost); its key log is "
           "demo_server.tls.sample_keylog()",
}
_RCVBUF = 32 * 1024 * 1024  # kernel queue for the packet socket (and dumpcap's -B)
_QUIET = 0.01  # seconds without a new packet that mean the conversation is over
_DRAIN_ROUNDS = 200  # at most ~2 s of draining a port that never goes quiet
_SENTINEL = b"demo_server.capture sentinel "
_SENTINEL_TIMEOUT = 0.5  # seconds without progress before giving up on the sentinel
_SENTINEL_WAITS = 60  # ... and at most 30 s in all
_START_TIMEOUT = 5.0
_MAX_SECONDS = 86_400.0  # the CLI's longest capture: a day (packets are kept in memory)
_CAP_NET_RAW = 13  # the capability's bit in /proc/self/status
_STOP_TIMEOUT = 10.0  # for dumpcap to exit and the sniffer to read the end of the pipe
# What scapy 2.8 raises when it cannot open a capture: OSError (Linux socket, libpcap,
# dumpcap), ValueError (no such interface), Scapy_Exception (macOS BPF), RuntimeError
# (Windows without Npcap).
_OPEN_ERRORS = (OSError, ValueError, RuntimeError, Scapy_Exception)


class CaptureUnavailable(PermissionError):
    """Live capture is not possible here; ``str()`` says why and how to enable it."""


def _how_to_enable() -> str:
    """How to let this user capture on this OS, without running Python as root."""
    if sys.platform == "darwin":
        return (
            "to capture without sudo, install Wireshark with its ChmodBPF package (it lets "
            "the access_bpf group read /dev/bpf*) and add your user to that group"
        )
    if sys.platform == "win32":
        return (
            'install Npcap (https://npcap.com) with "Support loopback traffic" ticked, and '
            "run as administrator if Npcap was restricted to administrators"
        )
    if _root_without_net_raw():
        return (
            "this process runs as root but without the CAP_NET_RAW capability (a container "
            "or a parent process dropped it): start it with that capability (Docker: `docker "
            "run --cap-add=NET_RAW ...`), or capture outside this container"
        )
    return (
        "to capture without root, install Wireshark's dumpcap and let your user run it "
        "(Debian and Ubuntu: `sudo apt install wireshark-common`, answer Yes to letting "
        "non-superusers capture, `sudo usermod -aG wireshark $USER`, log in again)"
    )


def _root_without_net_raw() -> bool:
    """Root on Linux without CAP_NET_RAW: "run it as root" would not help."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return False
    found = re.search(r"^CapEff:\s*([0-9a-fA-F]+)$", status, re.MULTILINE)
    return found is not None and not int(found.group(1), 16) >> _CAP_NET_RAW & 1


def _choose_interface(iface: str) -> str:
    """What to do about an interface that does not exist."""
    if iface == conf.loopback_name and sys.platform == "win32":
        return _how_to_enable()  # Npcap without its loopback adapter
    names = sorted({dev.network_name for dev in conf.ifaces.values()})
    return f"pass one of the interfaces found here: {', '.join(names) or 'none'}"


def _is_permission_error(exc: BaseException) -> bool:
    if isinstance(exc, PermissionError):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.EPERM, errno.EACCES):
        return True
    return any(word in str(exc).lower() for word in ("permission", "access is denied"))


def _is_missing_interface(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno in (errno.ENODEV, errno.ENXIO):
        return True
    text = str(exc)  # scapy's resolve_iface, BPF's BIOCSETIF, libpcap's and dumpcap's words
    return any(words in text for words in ("not found", "BIOCSETIF failed", "No such device",
                                           "no device named", "There is no device"))


def _why(backend: str, exc: BaseException, iface: str) -> str:
    """One clause: why ``backend`` could not capture on ``iface``."""
    detail = getattr(exc, "strerror", None) or str(exc).strip().splitlines()[0]
    detail = detail.split(". ")[0]  # its first sentence: ours stays one sentence
    if backend == "dumpcap" and isinstance(exc, FileNotFoundError):
        return "Wireshark's dumpcap is not installed"
    if _is_missing_interface(exc):
        if iface == conf.loopback_name:
            return f"no loopback interface {iface} was found ({detail})"
        return f"there is no interface {iface} ({detail})"
    if isinstance(exc, RuntimeError) and "winpcap" in str(exc).lower():
        return "Npcap is not installed, and scapy needs it to capture on Windows"
    if backend == "dumpcap":
        if _is_permission_error(exc) and isinstance(exc, OSError) and exc.filename:
            who = "this process" if _root_without_net_raw() else "this user"
            return f"{who} may not run {exc.filename} ({detail})"
        return f"dumpcap could not capture on {iface} ({detail})"
    if _is_permission_error(exc):
        if sys.platform == "darwin":
            return f"this process may not read the BPF devices /dev/bpf* ({detail})"
        if sys.platform == "win32":
            return f"Npcap refused to open {iface} ({detail})"
        return f"this process may not open a raw socket on {iface} ({detail})"
    return f"scapy could not capture on {iface} ({detail})"


def _open_libpcap_socket(iface: str, bpf: str) -> Any:
    """scapy's socket on macOS (BPF) and Windows (Npcap): ``conf.L2listen``."""
    sock: Any
    try:
        sock = conf.L2listen(iface=iface, filter=bpf)
        sock.bpf = bpf
    except Scapy_Exception as exc:
        if "Cannot set filter" not in str(exc):
            raise
        sock = conf.L2listen(iface=iface)  # no libpcap to compile it: filter in Python
        sock.bpf = None
    return sock


if sys.platform.startswith("linux"):
    from scapy.arch.linux import L2ListenSocket, get_last_packet_timestamp
    from scapy.data import SO_ATTACH_FILTER, SOL_PACKET
    from scapy.libs.structures import sock_fprog

    _SO_RCVBUFFORCE = 33  # like SO_RCVBUF, past net.core.rmem_max (needs CAP_NET_ADMIN)
    _PACKET_STATISTICS = 6
    _BPF_RET_K = 0x06

    class _LinuxListenSocket(L2ListenSocket):
        """A packet socket that keeps whole 64 KB segments, and loopback packets once."""

        def __init__(self, iface: str, bpf: str) -> None:
            super().__init__(iface=iface)  # no scapy filter: ours keeps SNAPLEN bytes
            self.drop_outgoing = iface == conf.loopback_name
            try:
                self.ins.setsockopt(socket.SOL_SOCKET, _SO_RCVBUFFORCE, _RCVBUF)
            except PermissionError:
                self.ins.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RCVBUF)
            self.bpf = self._attach(bpf)
            self._forget_setup()

        def _attach(self, expression: str) -> str | None:
            """Compile ``expression`` with libpcap and attach it; None without libpcap."""
            try:
                program = compile_filter(expression, self.iface)
            except ImportError:
                return None
            try:
                # libpcap's "accept" is `ret #65535` (scapy's snaplen), which would cut a
                # 65,549-byte loopback frame: accept SNAPLEN bytes instead.
                for i in range(program.bf_len):
                    if program.bf_insns[i].code == _BPF_RET_K and program.bf_insns[i].k:
                        program.bf_insns[i].k = SNAPLEN
                fprog = sock_fprog(program.bf_len, program.bf_insns)
                self.ins.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
            finally:
                free_filter(program)
            return expression

        def _forget_setup(self) -> None:
            """Discard what came in before the filter and buffer were set, and its drops."""
            for _ in range(100_000):
                if not select.select([self.ins], [], [], 0)[0]:
                    break
                self.ins.recv(SNAPLEN)
            self.drops()  # reading the statistics resets them

        def recv_raw(self, x: int = SNAPLEN
                     ) -> tuple[type[Packet] | None, bytes | None, float | None]:
            pkt, sa_ll, ts = self._recv_raw(self.ins, x)
            if self.drop_outgoing and sa_ll[2] == socket.PACKET_OUTGOING:
                return None, None, None  # the loopback's first copy; the second one arrives
            return self.LL, pkt, ts if ts is not None else get_last_packet_timestamp(self.ins)

        def recv(self, x: int = SNAPLEN, **kwargs: Any) -> Packet | None:
            return super().recv(x, **kwargs)

        def drops(self) -> int:
            """Packets the kernel dropped because the queue was full (since the last call)."""
            stats = self.ins.getsockopt(SOL_PACKET, _PACKET_STATISTICS, 8)
            return struct.unpack("II", stats)[1]

    def _open_socket(iface: str, bpf: str) -> _LinuxListenSocket:
        return _LinuxListenSocket(iface, bpf)

else:
    _open_socket = _open_libpcap_socket


class _DumpcapSocket:
    """Wireshark's dumpcap capturing into a pipe, read by scapy: a socket for AsyncSniffer."""

    nonblocking_socket = True  # recv() blocks in the sniffer thread until a packet or EOF
    _STATISTICS = re.compile(r"received/dropped on interface .*: (\d+)/(\d+)")

    def __init__(self, iface: str, bpf: str) -> None:
        program = shutil.which("dumpcap", mode=os.F_OK)  # not executable: say so, below
        if program is None:
            raise FileNotFoundError(errno.ENOENT, "no such program on PATH", "dumpcap")
        self.bpf = bpf
        self._dropped: int | None = None
        self._ending = False
        self._process = subprocess.Popen(
            [program, "-i", iface, "-f", bpf, "-s", str(SNAPLEN), "-B", str(_RCVBUF >> 20),
             "-P", "-q", "-w", "-"],  # pcap (-P) into stdout (-w -), quietly (-q)
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._reader = self._read_header()

    def _read_header(self) -> PcapReader:
        """Wait until dumpcap listens (it then writes the pcap header); else raise its error."""
        opened: list[PcapReader] = []
        pipe: Any = self._process.stdout  # scapy's type hints want a file name

        def read_header() -> None:
            with contextlib.suppress(Scapy_Exception, EOFError, OSError):  # dumpcap exited
                opened.append(PcapReader(pipe))

        waiter = threading.Thread(target=read_header, daemon=True)
        waiter.start()
        waiter.join(_START_TIMEOUT)
        if opened:
            return opened[0]
        self._process.kill()  # silent or failed: kill it, so that the waiter sees EOF
        waiter.join(_START_TIMEOUT)
        self._process.wait()
        error = self._stderr()
        lines = [line for line in error.splitlines() if line and not line.startswith(
            ("Capturing on", "File:"))]
        message = lines[0] if lines else f"no pcap header within {_START_TIMEOUT:g} s"
        raise OSError(errno.EACCES if _is_permission_error(Exception(error)) else errno.EIO,
                      message)

    def _stderr(self) -> str:
        assert self._process.stderr is not None
        return self._process.stderr.read().decode(errors="replace")

    def recv(self, x: int = SNAPLEN) -> Packet | None:
        return self._reader.recv(x)  # EOFError once dumpcap has exited: the sniffer ends

    @staticmethod
    def select(sockets: list[Any], remain: float | None = None) -> list[Any]:
        return sockets  # always readable: recv() blocks

    def end(self) -> None:
        """Stop dumpcap; the sniffer reads what is left in the pipe, then EOF."""
        self._ending = True
        self._process.terminate()
        try:
            self._process.wait(_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        found = self._STATISTICS.search(self._stderr())
        self._dropped = int(found.group(2)) if found else None

    def drops(self) -> int | None:
        """Packets dumpcap or the kernel dropped, from dumpcap's statistics at exit."""
        return self._dropped

    def close(self) -> None:
        """Kill dumpcap unless :meth:`end` stops it (the sniffer closes at EOF, meanwhile)."""
        if not self._ending and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._reader.close()


class Capture:
    """TCP packets of one port, captured live (:func:`capture`) or read from a pcap."""

    def __init__(self, port: int, *, iface: str | None = None, backend: str | None = None
                 ) -> None:
        if backend is not None and backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        self.port = port
        self.iface = iface or conf.loopback_name
        self.backend = backend  # after start(): the live backend that runs, or "sample"
        self.packets: list[Packet] = []
        self.source = "live"  # or the pcap file the packets come from
        self.bpf: str | None = None  # the kernel filter, None when filtering in Python
        self.drops: int | None = None  # packets the kernel dropped (Linux), after stop()
        self._sock: Any = None
        self._sniffer: AsyncSniffer | None = None
        self._token = b""
        self._sentinel_seen = threading.Event()
        self._handled = 0  # packets the sniffer has looked at

    @classmethod
    def from_pcap(cls, path: str | os.PathLike[str], port: int) -> Capture:
        """The packets of ``path`` (pcap or pcapng) for dissection on ``port``."""
        cap = cls(port)
        cap.packets = list(rdpcap(str(path)))
        cap.source = str(path)
        return cap

    def start(self) -> Capture:
        """Listen; return once the sniffer runs. Raises :class:`CaptureUnavailable`."""
        if self._sniffer is not None:
            raise RuntimeError("this capture is already running")
        reasons, advice = [], _how_to_enable()
        openers = {"socket": _open_socket, "dumpcap": _DumpcapSocket}  # looked up now: tests
        sock = None
        for backend in (self.backend,) if self.backend else BACKENDS:
            try:
                sock = openers[backend](self.iface, f"port {self.port}")
            except _OPEN_ERRORS as exc:
                reasons.append(_why(backend, exc, self.iface))
                if _is_missing_interface(exc):  # no backend can capture on it
                    advice = _choose_interface(self.iface)
                    break
            else:
                self.backend = backend
                break
        if sock is None:
            raise CaptureUnavailable(
                f"Live capture is not possible: {', and '.join(reasons)}; {advice}.")
        self._sock = sock
        self.bpf = self._sock.bpf
        self.packets = []
        started = threading.Event()
        self._sniffer = AsyncSniffer(
            opened_socket=self._sock, prn=self._keep, store=False, started_callback=started.set
        )
        self._sniffer.start()
        if not started.wait(_START_TIMEOUT):
            self._close()
            raise RuntimeError(f"the sniffer thread did not start within {_START_TIMEOUT} s")
        return self

    def stop(self) -> Capture:
        """Wait until every packet of the port is read and traffic is quiet, then stop."""
        if self._sniffer is None:
            raise RuntimeError("this capture is not running")
        try:
            self._drain()
        finally:
            self._close()
        return self

    def _keep(self, pkt: Packet) -> None:
        """Sniffer thread: keep the port's TCP packets, notice our sentinel."""
        self._handled += 1
        tcp = pkt.getlayer(TCP)
        if tcp is not None and self.port in (tcp.sport, tcp.dport):
            self.packets.append(pkt)
            return
        udp = pkt.getlayer(UDP)
        if udp is not None and udp.dport == self.port and bytes(udp.payload) == self._token:
            self._sentinel_seen.set()

    def _drain(self) -> None:
        """Repeat until no packet arrives: pause, send a sentinel, wait until it is read.

        Packets queue in order, so once the sentinel is read every packet sent before it
        was read too; a round with no new packet means the conversation is quiet. The
        sentinel goes over loopback: on another interface, stop at once.
        """
        if self.iface != conf.loopback_name:
            return
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            for round_ in range(_DRAIN_ROUNDS):
                before = len(self.packets)
                time.sleep(_QUIET)
                self._token = _SENTINEL + str(round_).encode()
                self._sentinel_seen.clear()
                udp.sendto(self._token, ("127.0.0.1", self.port))
                if not self._sentinel_read() or len(self.packets) == before:
                    return

    def _sentinel_read(self) -> bool:
        """Wait for the sentinel while the sniffer works through its queue.

        Without a kernel filter the sniffer parses every loopback packet in Python, and a
        busy loopback (a notebook's kernel talks over it) can queue thousands before the
        sentinel: keep waiting while it makes progress, give up when it stalls.
        """
        for _ in range(_SENTINEL_WAITS):
            handled = self._handled
            if self._sentinel_seen.wait(_SENTINEL_TIMEOUT):
                return True
            if self._handled == handled:
                return False
        return False

    def _close(self) -> None:
        sniffer, self._sniffer = self._sniffer, None
        assert sniffer is not None
        try:
            if isinstance(self._sock, _DumpcapSocket):
                self._sock.end()  # the sniffer reads the rest of the pipe, then stops at EOF
                sniffer.join(_STOP_TIMEOUT)
            elif sniffer.running:
                sniffer.stop(join=True)
            else:
                sniffer.join()
        finally:
            if hasattr(self._sock, "drops"):
                self.drops = self._sock.drops()
            self._sock.close()

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the packets to a pcap file that Wireshark and tcpdump read."""
        wrpcap(str(path), self.packets, snaplen=SNAPLEN)
        return Path(path)

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __iter__(self) -> Iterator[Packet]:
        return iter(self.packets)

    def __len__(self) -> int:
        return len(self.packets)

    def __repr__(self) -> str:
        return f"<Capture port {self.port}: {len(self.packets)} packets from {self.source}>"


def capture(port: int, *, iface: str | None = None, backend: str | None = None) -> Capture:
    """Capture TCP port ``port`` on ``iface`` (default: loopback) while a ``with`` block runs.

    ``backend`` (one of :data:`BACKENDS`) forces one; by default the first that works.

    >>> with capture(server.port) as cap:          # doctest: +SKIP
    ...     talk_to(server)
    >>> cap.save("session.pcap")                   # doctest: +SKIP
    """
    return Capture(port, iface=iface, backend=backend)


def load_sample(name: str | None = None, *, deflate: bool = False) -> Capture:
    """The bundled sample ``name`` (one of :data:`SAMPLES`), on :data:`SAMPLE_PORT`.

    Without a name: the demo conversation, with permessage-deflate if ``deflate``. Made by
    ``scripts/make_sample_capture.py``; see its docstring for what each one holds.
    """
    name = name or ("deflate" if deflate else "handshake")
    if name not in SAMPLES:
        raise ValueError(f"no sample named {name!r}: choose one of {', '.join(SAMPLES)}")
    file = {"handshake": "sample.pcap"}.get(name, f"sample-{name}.pcap")
    with resources.as_file(resources.files(__package__) / "data" / file) as path:
        cap = Capture.from_pcap(path, SAMPLE_PORT)
    cap.backend = "sample"
    return cap


@contextlib.contextmanager
def capture_or_sample(
    port: int, *, iface: str | None = None, deflate: bool = False, sample: str | None = None,
    backend: str | None = None,
) -> Iterator[Capture]:
    """Like :func:`capture`, but when no backend can capture say why once and yield a sample.

    The sample is :func:`load_sample` of ``sample`` and ``deflate``; ``backend="sample"``
    asks for it directly. Dissect with the yielded capture's ``port``: the sample's port is
    :data:`SAMPLE_PORT`, and its ``backend`` says which one ran.
    """
    if backend == "sample":
        yield load_sample(sample, deflate=deflate)
        return
    live = capture(port, iface=iface, backend=backend)
    try:
        live.start()
    except CaptureUnavailable as exc:
        print(f"{exc} Showing the bundled sample capture instead.", file=sys.stderr)
        yield load_sample(sample, deflate=deflate)
        return
    try:
        yield live
    finally:
        live.stop()


class _ArgumentParser(argparse.ArgumentParser):
    """Bad arguments: exit 2 with one line, like every other refusal of this CLI."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    """argparse type: the port of the server to capture."""
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port from 1 to 65535, got {text!r}")
    return port


def _seconds(text: str) -> float:
    """argparse type: how long to capture."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds <= _MAX_SECONDS:  # False for nan too
        raise argparse.ArgumentTypeError(
            f"expected seconds from 0 to {_MAX_SECONDS:g} (a day), got {text!r}")
    return seconds


def _check_writable(path: str) -> None:
    """Raise OSError now if ``path`` cannot be written, rather than after the capture."""
    existed = os.path.lexists(path)
    with open(path, "ab"):
        pass
    if not existed:
        os.remove(path)


def main(argv: list[str] | None = None) -> int:
    """``python -m demo_server.capture``: capture a port for S seconds into a pcap.

    Every argument is checked before capturing; a bad one, or a capture that cannot start,
    exits 2 with one line.
    """
    parser = _ArgumentParser(
        prog="python -m demo_server.capture",
        description="Capture the loopback TCP traffic of one port into a pcap file.",
    )
    parser.add_argument("--port", type=_port, required=True, help="the server's TCP port")
    parser.add_argument("--seconds", type=_seconds, required=True,
                        help=f"stop after S seconds (at most {_MAX_SECONDS:g}; Ctrl-C stops "
                        "earlier)")
    parser.add_argument("--out", required=True, help="the pcap file to write")
    parser.add_argument("--iface", help=f"interface (default: {conf.loopback_name})")
    parser.add_argument("--backend", choices=BACKENDS,
                        help="capture with this one only (default: the first that works)")
    args = parser.parse_args(argv)
    try:
        _check_writable(args.out)
    except OSError as exc:
        parser.error(f"argument --out: cannot write {args.out}: {exc.strerror or exc}")
    cap = capture(args.port, iface=args.iface, backend=args.backend)
    try:
        cap.start()
    except CaptureUnavailable as exc:
        print(f"capture: {exc}", file=sys.stderr)
        return 2
    _stop_on_signals()
    try:  # a signal may come as soon as the line is out: the print is inside
        print(f"capturing TCP port {args.port} on {cap.iface} with {cap.backend} for "
              f"{args.seconds:g} s (Ctrl-C stops)", flush=True)
        time.sleep(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        cap.stop()
    cap.save(args.out)
    dropped = f", {cap.drops} dropped" if cap.drops else ""
    print(f"{len(cap)} packets written to {args.out}{dropped}")
    return 0


def _stop_on_signals() -> None:
    """Ctrl-C (SIGINT) and SIGTERM end the capture early and keep what it got.

    Set explicitly: Python leaves SIGINT ignored when its parent ignored it, as a shell does
    for the commands it starts in the background, and then Ctrl-C would do nothing.
    """
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)


if __name__ == "__main__":
    sys.exit(main())
