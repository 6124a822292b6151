"""``python -m demo_server.dissect CAPTURE.pcap --port PORT [--client-port N] [--json]``."""

from __future__ import annotations

import argparse
import logging
import sys

from .conversation import DissectError, dissect

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """``python -m demo_server.dissect``: print the handshake, frames and messages."""
    parser = argparse.ArgumentParser(
        prog="python -m demo_server.dissect",
        description="Show the WebSocket handshake, frames and messages of a capture.",
    )
    parser.add_argument("capture", help="a pcap or pcapng file")
    parser.add_argument("--port", type=int, required=True, help="the server's TCP port")
    parser.add_argument("--client-port", type=int, help="pick one of several connections")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # we report truncation once
    try:
        conv = dissect(args.capture, args.port, client_port=args.client_port)
    except DissectError as exc:
        print(f"dissect: {exc}", file=sys.stderr)
        return 2
    print(conv.to_json() if args.json else conv.to_table())
    if conv.warnings:
        more = f" (and {len(conv.warnings) - 1} more)" if len(conv.warnings) > 1 else ""
        print(f"dissect: {conv.warnings[0]}{more}", file=sys.stderr)
        return 2
    return 0
