"""Flood: how fast the server takes ``client_data`` from one client, and what it costs others.

Each run has two scenarios, each on a fresh ``demo-server --port 0``, with ``--observers``
clients (in a worker process) recording ticks as the fan-out benchmark does:

- ``off``: the server runs with ``--rate-limit off``. One client sends ``--messages``
  ``client_data`` frames as fast as the socket takes them, then one message the server
  refuses (an unknown event). Messages are handled in order, so the ``error`` reply to that
  last one means every earlier message has been processed: messages/s is ``--messages``
  over the time from the first byte sent to that reply. No timed sleep is involved.
- ``limited``: the server's default rate limit (50 messages/s, burst 100). The flooder
  pushes for the whole window; the server reads it at the limit, TCP backpressure holds
  back the rest, and the figures show what that flooder costs everyone else's ticks.

``--loops asyncio,uvloop`` runs each scenario on each event loop, side by side (runs
interleaved).

For both: tick offsets for the observers over the seconds the flood lasted, and the server's
CPU per processed message. Prints a table row and one JSON line per scenario and run::

    .venv/bin/python benchmarks/flood.py --messages 200000 --observers 1000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import math
import socket
import sys
import time

import harness

HEADER = ["scenario:loop", "run", "messages", "msg/s", "us/msg", "flood s", "ticks %", "tick p50",
          "tick p99", "tick max", "srv cpu%", "other%"]
SENTINEL = b'{"event":"flood-done","data":""}'  # unknown event: the server answers "error"


def flood_frames(count: int) -> list[bytes]:
    """``count`` masked ``client_data`` frames of one typed character each, like the page."""
    return [harness.masked_frame(0x1, b'{"event":"client_data","data":"%c"}' % (97 + i % 26))
            for i in range(count)]


def wait_for_error(sock: socket.socket, buf: bytes, deadline: float) -> bool:
    """Read frames until an ``error`` event arrives (True) or the deadline passes."""
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except TimeoutError:
            return False
        if not data:
            return False
        frames, buf = harness.parse_frames(buf + data)
        if any(op == 0x1 and b'"event":"error"' in payload for op, payload in frames):
            return True
    return False


def run_once(scenario: str, frames: list[bytes], observers: int, seconds: int,
             loop: str = "asyncio") -> dict:
    args = ["--loop", loop] + (["--rate-limit", "off"] if scenario == "off" else [])
    server = harness.Server(args, fd_limit=2 * observers + 1000)
    pool = None
    try:
        pool = harness.Clients(server.port, observers, 1)
        (flooder,) = harness.open_ws(server.port, 1, timeout=60)
        buf = harness.leftover.pop(flooder.fileno(), b"")
        first = int(time.time()) + 2
        pool.start_window(first, seconds, [], stop_at=first + seconds + 0.9)
        harness.sleep_until(first - 0.5)  # the flood starts half a second before a tick
        cpu0, busy0, t0 = (harness.cpu_seconds(server.pid), harness.machine_busy_seconds(),
                           time.time())
        if scenario == "off":
            flooder.sendall(b"".join(frames) + harness.masked_frame(0x1, SENTINEL))
            done = wait_for_error(flooder, buf, time.monotonic() + 120)
            sent = len(frames) if done else None
        else:
            sent = push_until(flooder, frames, first + seconds - 0.5)
            done = True
        t1, cpu1, busy1 = (time.time(), harness.cpu_seconds(server.pid),
                           harness.machine_busy_seconds())
        flooder.close()
        results = pool.results(timeout=seconds + 60)
    finally:
        if pool is not None:
            pool.close()
        server.stop()
    during = max(0, min(first + seconds, math.floor(t1) + 1) - first)  # ticks while flooding
    ticks = harness.tick_stats(results, first, during) if during else None
    wall = t1 - t0
    server_cpu = cpu1 - cpu0
    return {
        "benchmark": "flood",
        "scenario": scenario,
        "loop": loop,
        # off: messages processed; limited: messages the kernel took (the server reads
        # them at the limit, so a rate or a cost per message means nothing there)
        "messages": sent,
        "completed": done,
        "flood_s": round(wall, 3),
        "msg_per_s": round(sent / wall) if sent and scenario == "off" else None,
        "server_cpu_us_per_msg": round(1e6 * server_cpu / sent, 2)
        if sent and scenario == "off" else None,
        "server_cpu_pct": round(100 * server_cpu / wall, 1),
        "other_cpu_pct": round(100 * max(0.0, busy1 - busy0 - server_cpu) / wall, 1),
        "observers": observers,
        "tick_seconds_during_flood": during,
        "ticks": ticks,
        "loadavg": harness.loadavg(),
        "server_problems": server.problems()[:5],
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def push_until(sock: socket.socket, frames: list[bytes], until: float) -> int:
    """Write frames for as long as the socket takes them, until ``until``; return how many
    the kernel accepted (all frames have the same length)."""
    data = memoryview(b"".join(frames))
    sock.settimeout(0.05)
    sent = 0
    while time.time() < until and sent < len(data):
        try:
            sent += sock.send(data[sent:sent + 65536])
        except TimeoutError:
            continue
    return sent // len(frames[0])


def row(r: dict, run: object) -> list[object]:
    ticks = r["ticks"] or {"delivered_pct": None, "offset_ms": {}}
    offsets = ticks["offset_ms"]
    return [f"{r['scenario']}:{r['loop']}", run, r["messages"], r["msg_per_s"],
            r["server_cpu_us_per_msg"],
            r["flood_s"], ticks["delivered_pct"], offsets.get("p50"), offsets.get("p99"),
            offsets.get("max"), r["server_cpu_pct"], r["other_cpu_pct"]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200_000,
                        help="client_data messages the flooder sends (default: 200000)")
    parser.add_argument("--observers", type=int, default=1000,
                        help="other clients whose ticks are measured (default: 1000)")
    parser.add_argument("--seconds", type=int, default=5,
                        help="longest window for ticks and the limited flood (default: 5)")
    parser.add_argument("--runs", type=int, default=3, help="runs (default: 3)")
    parser.add_argument("--loops", default="asyncio",
                        help="comma-separated event loops to compare: auto, asyncio, uvloop "
                        "(default: %(default)s)")
    parser.add_argument("--scenarios", default="off,limited",
                        help="comma-separated: off, limited (default: %(default)s)")
    args = parser.parse_args(argv)
    scenarios = args.scenarios.split(",")
    loops = args.loops.split(",")
    if not (1 <= args.messages <= 2_000_000 and 1 <= args.observers <= 10000
            and 1 <= args.seconds <= 60 and 1 <= args.runs <= 10
            and set(scenarios) <= {"off", "limited"}
            and set(loops) <= {"auto", "asyncio", "uvloop"}):
        parser.error("bounds: 1-2000000 messages, 1-10000 observers, 1-60 s, 1-10 runs; "
                     "scenarios off, limited; loops auto, asyncio, uvloop")
    frames = flood_frames(args.messages)
    by_scenario: dict[tuple[str, str], list[dict]] = {
        (s, loop): [] for s in scenarios for loop in loops}
    for run in range(1, args.runs + 1):
        for scenario, loop in by_scenario:
            result = run_once(scenario, frames, args.observers, args.seconds, loop)
            by_scenario[scenario, loop].append(result)
            harness.print_table([row(result, run)], HEADER,
                                show_header=run == 1 and (scenario, loop) == next(
                                    iter(by_scenario)))
            print(json.dumps(result), flush=True)
            for problem in result["server_problems"]:
                print(f"  server log: {problem}", flush=True)
    print("\nmedians")
    medians = []
    for (scenario, loop), results in by_scenario.items():
        columns = list(zip(*(row(r, "") for r in results), strict=True))
        medians.append([f"{scenario}:{loop}", "median",
                        *(harness.median_of(c) for c in columns[2:])])
    harness.print_table(medians, HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
