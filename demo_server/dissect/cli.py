"""``python -m demo_server.dissect CAPTURE.pcap --port PORT [--client-port N | --all] [--json]
[--keylog KEYS]``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from .conversation import DissectError, Limits, conversations, dissect

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
    parser.add_argument("--all", action="store_true",
                        help="every TCP connection to the port, in order of first packet "
                        "(e.g. socket.io's long-polling requests, then its WebSocket)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--keylog", metavar="KEYS",
                        help="decrypt wss:// (TLS) with this NSS key log, the file "
                        "SSLKEYLOGFILE names (as Wireshark's TLS (Pre)-Master-Secret log)")
    defaults = Limits()
    for name, what in (("max_packets", "packets read from the file"),
                       ("max_inflated", "bytes inflated per connection (permessage-deflate)"),
                       ("max_shown", "bytes (characters of text) of each payload or body "
                        "in the JSON")):
        parser.add_argument(f"--{name.replace('_', '-')}", type=_positive, metavar="N",
                            default=getattr(defaults, name),
                            help=f"at most N {what} (default: {getattr(defaults, name):,})")
    args = parser.parse_args(argv)
    limits = Limits(args.max_packets, args.max_inflated, args.max_shown)
    if args.all and args.client_port is not None:
        parser.error("--all and --client-port do not go together")
    logging.getLogger("scapy.runtime").setLevel(logging.ERROR)  # we report truncation once
    try:
        if args.all:
            found = conversations(args.capture, args.port, limits=limits,
                                  keylog=args.keylog)
            if not found:
                raise DissectError(f"no TCP packets to or from port {args.port}")
        else:
            found = [dissect(args.capture, args.port, client_port=args.client_port,
                             limits=limits, keylog=args.keylog)]
    except DissectError as exc:
        print(f"dissect: {exc}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"connections": [conv.to_dict() for conv in found]}, ensure_ascii=False)
              if args.all else found[0].to_json())
    else:
        print("\n\n".join(conv.to_table() for conv in found))
    warnings = [warning for conv in found for warning in conv.warnings]
    if warnings:
        more = f" (and {len(warnings) - 1} more)" if len(warnings) > 1 else ""
        print(f"dissect: {warnings[0]}{more}", file=sys.stderr)
        return 2
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value
