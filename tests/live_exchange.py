"""Run as an unprivileged user by test_capture_unprivileged.py: capture one live exchange.

Prints one JSON object: which backend captured, what the raw socket said, and whether the
capture holds the whole exchange (every byte of both directions, the SYN, the close).
"""

from __future__ import annotations

import json
import random
import socket
import threading

from websockets.sync.client import connect
from websockets.sync.server import serve

from demo_server.capture import CaptureUnavailable, capture
from demo_server.dissect import Direction, dissect


def echo(ws) -> None:
    for message in ws:
        ws.send(message)


def main() -> None:
    payload = random.Random(12).randbytes(100_000)
    try:
        capture(9, backend="socket").start().stop()
        raw_socket = "opened"
    except CaptureUnavailable as exc:
        raw_socket = str(exc)
    with serve(echo, sock=socket.create_server(("127.0.0.1", 0)), compression=None,
               max_size=None) as server:
        thread = threading.Thread(target=server.serve_forever)
        thread.start()
        port = server.socket.getsockname()[1]
        try:
            with (capture(port) as cap,
                  connect(f"ws://127.0.0.1:{port}/", compression=None, max_size=None) as ws):
                ws.send("hello")
                ws.recv(timeout=10)
                ws.send(payload)
                echoed = ws.recv(timeout=10)
        finally:
            server.shutdown()
            thread.join(10)
    conv = dissect(cap, port)
    data = [(m.direction.value, m.data) for m in conv.messages if m.opcode in (1, 2)]
    complete = all(
        len(conv.streams[way].data) == max(s.seq + len(s.data) for s in conv.segments
                                           if s.direction is way and s.data)
        for way in Direction)
    print(json.dumps({
        "backend": cap.backend, "raw_socket": raw_socket, "drops": cap.drops,
        "warnings": conv.warnings, "first": conv.segments[0].flags,
        "upgraded": bool(conv.handshake and conv.handshake.upgraded), "echoed": echoed == payload,
        "messages": data == [("c2s", b"hello"), ("s2c", b"hello"), ("c2s", payload),
                             ("s2c", payload)],
        "closed": [m.opcode for m in conv.messages][-2:] == [8, 8], "complete": complete,
    }))


if __name__ == "__main__":
    main()
