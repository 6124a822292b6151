"""Record ``demo_server/data/sample-socketio.pcap``: notebook 08's session, captured live.

Usage (as root, or as a user who may capture: see ``demo_server.capture``)::

    python scripts/record_socketio_sample.py [--out demo_server/data/sample-socketio.pcap]

Unlike the other samples (``scripts/make_sample_capture.py`` synthesizes those), this one is
a real recording of real servers and clients on loopback, made the way notebook 08 makes
its own: three demo servers on fixed ports and one client each, for the same
:data:`SECONDS` seconds, each port captured by its own :func:`~demo_server.capture.capture`.

- ``127.0.0.1:8001`` (:data:`SOCKETIO_PORT`): the socket.io flavour (``ping_interval=2,
  ping_timeout=1``)
  and a python-socketio client that polls, then upgrades to WebSocket; it sends
  ``client_data`` ``"hi"`` with an acknowledgement and receives the ``second`` ticks.
- ``127.0.0.1:8002`` (:data:`PLAIN_PORT`): the plain WebSocket server (``/ws``) and a
  :class:`~demo_server.ClientThread`, which sends ``client_data`` ``"hi"``.
- ``127.0.0.1:8003`` (:data:`POLLING_PORT`): the socket.io flavour again, and a
  python-socketio client restricted to long-polling (``transports=["polling"]``), which
  sends ``client_data`` ``"hi"``; it disconnects last.

The three captures are merged in time order into one pcap; ``load_sample("socketio")``
reads it on port 8001, and the other two ports are dissected from the same packets.
"""

from __future__ import annotations

import argparse
import contextlib
import time
from pathlib import Path

import socketio
from scapy.packet import Packet
from scapy.utils import wrpcap

from demo_server import ClientThread, ServerThread
from demo_server.capture import SNAPLEN, capture

__all__ = ["PLAIN_PORT", "POLLING_PORT", "SECONDS", "SOCKETIO_PORT", "main", "record"]

OUT = Path(__file__).resolve().parent.parent / "demo_server" / "data" / "sample-socketio.pcap"
SOCKETIO_PORT, PLAIN_PORT, POLLING_PORT = 8001, 8002, 8003
SECONDS = 5.0
PING_INTERVAL, PING_TIMEOUT = 2, 1  # seconds; socket.io's defaults are 25 and 20
MAX_BYTES = 100_000  # the sample ships in the wheel: keep it small


def record(seconds: float = SECONDS) -> list[Packet]:
    """Run the three sessions for ``seconds`` inside captures; return every packet, in order."""
    with contextlib.ExitStack() as stack:
        sio_server = stack.enter_context(
            ServerThread(port=SOCKETIO_PORT, flavour="socketio",
                         ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT))
        plain_server = stack.enter_context(ServerThread(port=PLAIN_PORT))
        polling_server = stack.enter_context(
            ServerThread(port=POLLING_PORT, flavour="socketio",
                         ping_interval=PING_INTERVAL, ping_timeout=PING_TIMEOUT))
        caps = [stack.enter_context(capture(port))
                for port in (SOCKETIO_PORT, PLAIN_PORT, POLLING_PORT)]
        start = time.monotonic()
        sio = socketio.Client(reconnection=False, handle_sigint=False)
        polling = socketio.Client(reconnection=False, handle_sigint=False)
        try:
            with ClientThread(plain_server.ws_url) as plain:
                sio.connect(sio_server.url, wait_timeout=5)
                polling.connect(polling_server.url, wait_timeout=5, transports=["polling"])
                sio.call("client_data", "hi", timeout=5)  # acknowledged: 421[...], 431[]
                polling.emit("client_data", "hi")
                plain.send("client_data", "hi")
                time.sleep(max(0.0, seconds - (time.monotonic() - start)))
                sio.disconnect()
        finally:
            # Last: python-engineio answers its pending GET only when the poll times out,
            # pingInterval + pingTimeout after it was sent.
            polling.disconnect()
    packets = [pkt for cap in caps for pkt in cap.packets]
    return sorted(packets, key=lambda pkt: float(pkt.time))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"default: {OUT}")
    out = parser.parse_args(argv).out
    packets = record()
    out.parent.mkdir(parents=True, exist_ok=True)
    wrpcap(str(out), packets, snaplen=SNAPLEN)
    size = out.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{out} is {size:,} bytes, more than {MAX_BYTES:,}: record less")
    print(f"{out}: {len(packets)} packets, {size:,} bytes")


if __name__ == "__main__":
    main()
