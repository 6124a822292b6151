"""Record ``demo_server/data/sample-tls.pcap`` and its key log ``sample-tls.keys``: notebook
09's ``wss://`` session, captured live.

Usage (as root, or as a user who may capture: see ``demo_server.capture``)::

    python scripts/record_tls_sample.py [--out-dir demo_server/data]

Like ``sample-socketio.pcap`` (and unlike the synthesized samples), this is a real
recording: TLS picks fresh random numbers and keys for every connection, so no script can
write the same bytes twice. The demo server runs with ``tls=True`` on ``localhost:8001``
(:data:`~demo_server.capture.SAMPLE_PORT`) with its throwaway certificate and writes its
key log; one :class:`~demo_server.ClientThread` connects to ``wss://localhost:8001/ws``
(TLS 1.3; the ClientHello names ``localhost``), waits for two ``second`` ticks, sends
``client_data`` ``"hi"``, waits for one more tick and closes (1000). The key log holds the
secrets of that one connection and nothing else.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from scapy.utils import wrpcap

from demo_server import ClientThread, ServerThread
from demo_server.capture import SAMPLE_PORT, SNAPLEN, capture

__all__ = ["main", "record"]

OUT_DIR = Path(__file__).resolve().parent.parent / "demo_server" / "data"
MAX_BYTES = 100_000  # the sample ships in the wheel: keep it small


def record(out_dir: Path) -> tuple[Path, Path]:
    """Run the session inside a capture; write the pcap and the key log into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pcap, keys = out_dir / "sample-tls.pcap", out_dir / "sample-tls.keys"
    with tempfile.TemporaryDirectory() as folder:
        keylog = Path(folder) / "keys"
        with (ServerThread("localhost", SAMPLE_PORT, tls=True, keylog=keylog) as server,
              capture(SAMPLE_PORT) as cap, ClientThread(server.ws_url) as client):
            client.next("second", timeout=5)
            client.next("second", timeout=5)
            client.send("client_data", "hi")
            client.next("second", timeout=5)
        keys.write_text(keylog.read_text())
    wrpcap(str(pcap), cap.packets, snaplen=SNAPLEN)
    return pcap, keys


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=OUT_DIR, help=f"default: {OUT_DIR}")
    pcap, keys = record(parser.parse_args(argv).out_dir)
    size = pcap.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{pcap} is {size:,} bytes, more than {MAX_BYTES:,}: record less")
    print(f"{pcap}: {size:,} bytes; {keys}: {len(keys.read_text().splitlines())} lines")


if __name__ == "__main__":
    main()
