"""Capture the loopback TCP traffic of one port with scapy, or fall back to a bundled sample.

``with capture(port) as cap: ...`` records every TCP packet to or from ``port`` while the
block runs; then ``cap.packets`` holds them (scapy packets, in arrival order) and
``cap.save(path)`` writes a pcap. Pitfalls measured on Linux, and what this module does:

- The loopback interface shows each packet twice (leaving and arriving): the socket keeps
  only the arriving copy, as libpcap does.
- ``AsyncSniffer.start()`` returns before the sniffer listens: the packet socket is opened
  (and queues packets) before the block runs, and ``start()`` waits for the sniffer thread.
- ``AsyncSniffer.stop()`` drops packets still queued: after the block, a UDP sentinel is
  sent to the port until it comes back through the sniffer with no new TCP packet before it.
- A 64 KB loopback segment is 65,549 bytes with its Ethernet header: the socket reads up to
  :data:`SNAPLEN` bytes, the kernel filter keeps as many, and the receive buffer is large.
- The kernel (BPF) filter needs libpcap to compile it; without libpcap every loopback
  packet is filtered in Python instead (slower, same result).
- Without root / CAP_NET_RAW, opening the socket fails at once with :class:`CaptureUnavailable`.

CLI: ``python -m demo_server.capture --port PORT --seconds S --out FILE.pcap``.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import scapy.layers.inet6  # noqa: F401  (so [::1] traffic dissects too)
from scapy.arch.common import compile_filter, free_filter
from scapy.config import conf
from scapy.layers.inet import TCP, UDP
from scapy.packet import Packet
from scapy.sendrecv import AsyncSniffer
from scapy.utils import rdpcap, wrpcap

__all__ = [
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
_SAMPLES = {False: "sample.pcap", True: "sample-deflate.pcap"}
_RCVBUF = 32 * 1024 * 1024  # kernel queue for the packet socket
_QUIET = 0.01  # seconds without a new packet that mean the conversation is over
_DRAIN_ROUNDS = 200  # at most ~2 s of draining a port that never goes quiet
_SENTINEL = b"demo_server.capture sentinel "
_SENTINEL_TIMEOUT = 0.5  # seconds without progress before giving up on the sentinel
_SENTINEL_WAITS = 60  # ... and at most 30 s in all
_START_TIMEOUT = 5.0


class CaptureUnavailable(PermissionError):
    """Live capture is not allowed for this process; ``str()`` says why and how to enable it."""


def _how_to_enable() -> str:
    if sys.platform == "darwin":
        return (
            "run it as root, or give your user read access to the BPF devices /dev/bpf* "
            "that capture lo0 (Wireshark's ChmodBPF does this)"
        )
    if sys.platform == "win32":
        return 'install Npcap with "Support loopback traffic" ticked and run as administrator'
    python = os.path.realpath(sys.executable)
    return (
        "run it as root, or grant this Python the capabilities once with "
        f"`sudo setcap cap_net_raw,cap_net_admin+eip {python}`"
    )


def _is_permission_error(exc: OSError) -> bool:
    if isinstance(exc, PermissionError) or exc.errno in (errno.EPERM, errno.EACCES):
        return True
    return "permission" in str(exc).lower()  # libpcap reports it in words


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

        def recv_raw(self, x: int = SNAPLEN):
            pkt, sa_ll, ts = self._recv_raw(self.ins, x)
            if self.drop_outgoing and sa_ll[2] == socket.PACKET_OUTGOING:
                return None, None, None  # the loopback's first copy; the second one arrives
            return self.LL, pkt, ts if ts is not None else get_last_packet_timestamp(self.ins)

        def recv(self, x: int = SNAPLEN, **kwargs) -> Packet | None:
            return super().recv(x, **kwargs)

        def drops(self) -> int:
            """Packets the kernel dropped because the queue was full (since the last call)."""
            stats = self.ins.getsockopt(SOL_PACKET, _PACKET_STATISTICS, 8)
            return struct.unpack("II", stats)[1]

    def _open_socket(iface: str, bpf: str) -> _LinuxListenSocket:
        return _LinuxListenSocket(iface, bpf)

else:

    def _open_socket(iface: str, bpf: str):  # libpcap socket: macOS, Npcap
        sock = conf.L2listen(iface=iface, filter=bpf)
        sock.bpf = bpf
        return sock


class Capture:
    """TCP packets of one port, captured live (:func:`capture`) or read from a pcap."""

    def __init__(self, port: int, *, iface: str | None = None) -> None:
        self.port = port
        self.iface = iface or conf.loopback_name
        self.packets: list[Packet] = []
        self.source = "live"  # or the pcap file the packets come from
        self.bpf: str | None = None  # the kernel filter, None when filtering in Python
        self.drops: int | None = None  # packets the kernel dropped (Linux), after stop()
        self._sock = None
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
        try:
            self._sock = _open_socket(self.iface, f"port {self.port}")
        except OSError as exc:
            if not _is_permission_error(exc):
                raise
            raise CaptureUnavailable(
                f"Live capture is not possible: this process may not open a raw socket on "
                f"{self.iface} ({exc.strerror or exc}); {_how_to_enable()}."
            ) from exc
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
        try:
            if sniffer.running:
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


def capture(port: int, *, iface: str | None = None) -> Capture:
    """Capture TCP port ``port`` on ``iface`` (default: loopback) while a ``with`` block runs.

    >>> with capture(server.port) as cap:          # doctest: +SKIP
    ...     talk_to(server)
    >>> cap.save("session.pcap")                   # doctest: +SKIP
    """
    return Capture(port, iface=iface)


def load_sample(*, deflate: bool = False) -> Capture:
    """The bundled sample conversation (permessage-deflate on if ``deflate``), on SAMPLE_PORT.

    Made by ``scripts/make_sample_capture.py``; see its docstring for what it holds.
    """
    with resources.as_file(resources.files(__package__) / "data" / _SAMPLES[deflate]) as path:
        return Capture.from_pcap(path, SAMPLE_PORT)


@contextlib.contextmanager
def capture_or_sample(
    port: int, *, iface: str | None = None, deflate: bool = False
) -> Iterator[Capture]:
    """Like :func:`capture`, but without permission say why once and yield the sample.

    Dissect with the yielded capture's ``port``: the sample's port is :data:`SAMPLE_PORT`.
    """
    live = capture(port, iface=iface)
    try:
        live.start()
    except CaptureUnavailable as exc:
        print(f"{exc} Showing the bundled sample capture instead.", file=sys.stderr)
        yield load_sample(deflate=deflate)
        return
    try:
        yield live
    finally:
        live.stop()


def main(argv: list[str] | None = None) -> int:
    """``python -m demo_server.capture``: capture a port for S seconds into a pcap."""
    parser = argparse.ArgumentParser(
        prog="python -m demo_server.capture",
        description="Capture the loopback TCP traffic of one port into a pcap file.",
    )
    parser.add_argument("--port", type=int, required=True, help="the server's TCP port")
    parser.add_argument("--seconds", type=float, required=True, help="stop after S seconds")
    parser.add_argument("--out", required=True, help="the pcap file to write")
    parser.add_argument("--iface", help=f"interface (default: {conf.loopback_name})")
    args = parser.parse_args(argv)
    if args.seconds < 0:
        parser.error("--seconds must not be negative")
    cap = capture(args.port, iface=args.iface)
    try:
        cap.start()
    except CaptureUnavailable as exc:
        print(f"capture: {exc}", file=sys.stderr)
        return 2
    print(f"capturing TCP port {args.port} on {cap.iface} for {args.seconds:g} s "
          "(Ctrl-C stops)", flush=True)
    try:
        time.sleep(args.seconds)
    except KeyboardInterrupt:
        pass
    finally:
        cap.stop()
    cap.save(args.out)
    dropped = f", {cap.drops} dropped by the kernel" if cap.drops else ""
    print(f"{len(cap)} packets written to {args.out}{dropped}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
