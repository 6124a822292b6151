"""Fan-out: how well one ``second`` tick per second reaches N clients.

For each client count and run: start ``demo-server --port 0`` as a subprocess, open the
clients from worker processes (ramped in batches), then over a window of whole seconds
measure

- ticks delivered vs expected (clients x seconds), missing and duplicate seconds;
- offset: when each tick reached the client's socket (kernel receive timestamp) minus the
  wall-clock second it names; p50, p99 and max over every delivered tick;
- start and spread: for one second, first arrival minus the second (how late the ticker
  began), and last arrival minus first arrival across clients (how long the fan-out took);
- server CPU per delivered tick (``/proc/PID/stat`` over the window) and RSS per
  connection (RSS with the clients connected, minus RSS with one, over N);
- the client workers' own CPU and read lag (when they read a tick after it arrived), so a
  saturated client side shows up instead of passing for a slow server;
- the rest of the machine's CPU use during the window (``other``), and the load average.

``--workers 1,2`` and ``--loops asyncio,uvloop`` compare servers side by side in one run
(same clients, same hour, runs interleaved): ``--workers N`` runs ``demo-server --workers
N`` joined by a ``redis-server`` this script starts (and stops); the server's CPU and RSS
are then its processes' summed.

``--churn N`` also closes and reopens N other connections every second during the window
(their ticks are not counted), as visitors of a public demo come and go: that is what
makes garbage for the collector's full collections, which walk every live object.

Prints a table row and one JSON line per run, then the medians per client count::

    .venv/bin/python benchmarks/fanout.py --clients 100,1000,5000,10000 --seconds 10 --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time

import harness

HEADER = ["clients", "server", "run", "ticks %", "miss", "dup", "p50 ms", "p99 ms", "max ms",
          "start ms", "spread ms", "us/tick", "usr+sys", "KB/conn", "srv cpu%", "cli cpu%",
          "lag p99", "other%"]


def server_options(workers: int, loop: str, redis_url: str | None) -> list[str]:
    """``demo-server`` options for ``workers`` processes on ``loop``."""
    options = ["--loop", loop]
    if workers > 1:
        assert redis_url is not None
        options += ["--workers", str(workers), "--redis", redis_url]
    return options


def run_once(clients: int, seconds: int, workers: int, server_args: list[str],
             churn: int, server_nice: int, client_nice: int, label: str = "") -> dict:
    server = harness.Server(server_args, fd_limit=2 * (clients + churn) + 1000,
                            niceness=server_nice)
    pool = None
    try:
        harness.open_ws(server.port, 1)[0].close()  # warm up: imports, first handshake
        time.sleep(0.5)
        rss_before = server.rss_bytes()
        try:
            pool = harness.Clients(server.port, clients, workers, churn=churn,
                                   niceness=client_nice)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}; server log: {server.problems()[:5]}") from None
        first = int(time.time()) + 2  # a second to settle after the ramp
        marks = [first - 0.5, first + seconds - 0.5]  # exactly `seconds` ticks in between
        pool.start_window(first, seconds, marks, stop_at=first + seconds + 0.9)
        readings = []
        for mark in marks:
            harness.sleep_until(mark)
            readings.append((time.time(), server.cpu_seconds(),
                             harness.machine_busy_seconds(), server.cpu_split()))
        rss = server.rss_bytes()
        load = harness.loadavg()
        results = pool.results(timeout=seconds + 60)
    finally:
        if pool is not None:
            pool.close()
        server.stop()
    (t0, server0, busy0, split0), (t1, server1, busy1, split1) = readings
    wall = t1 - t0
    ticks = harness.tick_stats(results, first, seconds)
    client_cpu = [r["cpu"][1] - r["cpu"][0] for r in results if len(r["cpu"]) == 2]
    server_cpu = server1 - server0
    other = (busy1 - busy0) - server_cpu - sum(client_cpu)
    return {
        "benchmark": "fanout",
        "clients": clients,
        "server": label,
        "server_processes": len(server.pids),
        "seconds": seconds,
        "churn_per_s": churn,
        **ticks,
        "server_cpu_us_per_tick": round(1e6 * server_cpu / max(1, ticks["ticks_delivered"]), 2),
        "server_cpu_pct": round(100 * server_cpu / wall, 1),
        # the same CPU, user (Python) and system (kernel), at clock-tick resolution
        "server_user_us_per_tick": round(
            1e6 * (split1[0] - split0[0]) / max(1, ticks["ticks_delivered"]), 2),
        "server_sys_us_per_tick": round(
            1e6 * (split1[1] - split0[1]) / max(1, ticks["ticks_delivered"]), 2),
        "rss_kb_per_conn": round((rss - rss_before) / clients / 1024, 2),
        "server_rss_mb": round(rss / 2**20, 1),
        "client_workers": len(results),
        "client_cpu_pct": [round(100 * c / wall, 1) for c in client_cpu],
        "client_saturated": any(c / wall > 0.9 for c in client_cpu)
        or (ticks["read_lag_ms"]["p99"] or 0) > 500,
        "other_cpu_pct": round(100 * max(0.0, other) / wall, 1),
        "loadavg": load,
        "ramp_s": round(pool.ramp_seconds, 2),
        "server_args": server_args,
        "server_nice": server_nice,
        "client_nice": client_nice,
        "server_problems": server.problems()[:5],
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def row(r: dict, run: object) -> list[str]:
    return [r["clients"], r["server"], run, f"{r['delivered_pct']:.2f}", r["missing"],
            r["duplicates"],
            r["offset_ms"]["p50"], r["offset_ms"]["p99"], r["offset_ms"]["max"],
            r["start_ms"]["median"], r["spread_ms"]["median"], r["server_cpu_us_per_tick"],
            f"{r['server_user_us_per_tick']:.1f}+{r['server_sys_us_per_tick']:.1f}",
            r["rss_kb_per_conn"],
            r["server_cpu_pct"], "+".join(str(c) for c in r["client_cpu_pct"]),
            r["read_lag_ms"]["p99"], r["other_cpu_pct"]]


def median_row(runs: list[dict]) -> list[str]:
    def med(get):
        return harness.median_of([get(r) for r in runs])
    return [runs[0]["clients"], runs[0]["server"], "median",
            f"{med(lambda r: r['delivered_pct']):.2f}",
            med(lambda r: r["missing"]), med(lambda r: r["duplicates"]),
            med(lambda r: r["offset_ms"]["p50"]), med(lambda r: r["offset_ms"]["p99"]),
            med(lambda r: r["offset_ms"]["max"]), med(lambda r: r["start_ms"]["median"]),
            med(lambda r: r["spread_ms"]["median"]),
            med(lambda r: r["server_cpu_us_per_tick"]),
            f"{med(lambda r: r['server_user_us_per_tick']):.1f}+"
            f"{med(lambda r: r['server_sys_us_per_tick']):.1f}",
            med(lambda r: r["rss_kb_per_conn"]),
            med(lambda r: r["server_cpu_pct"]), med(lambda r: sum(r["client_cpu_pct"])),
            med(lambda r: r["read_lag_ms"]["p99"]), med(lambda r: r["other_cpu_pct"])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", default="100,1000,5000,10000",
                        help="comma-separated client counts (default: %(default)s)")
    parser.add_argument("--seconds", type=int, default=10, help="window length (default: 10)")
    parser.add_argument("--runs", type=int, default=3,
                        help="runs per client count; medians are printed (default: 3)")
    parser.add_argument("--workers", default="1",
                        help="comma-separated server process counts to compare (demo-server "
                        "--workers; over 1 starts a redis-server) (default: %(default)s)")
    parser.add_argument("--loops", default="asyncio",
                        help="comma-separated event loops to compare: auto, asyncio, uvloop "
                        "(default: %(default)s)")
    parser.add_argument("--client-procs", type=int, default=0,
                        help="client processes (default: one per 5000 clients, at most 2)")
    parser.add_argument("--churn", type=int, default=0, metavar="N",
                        help="also replace N other connections every second, as visitors "
                        "come and go (default: 0)")
    parser.add_argument("--server-nice", type=int, default=0, metavar="N",
                        help="run the server at this niceness; -10 (root) shields it from "
                        "other load on the machine (default: 0)")
    parser.add_argument("--client-nice", type=int, default=10, metavar="N",
                        help="niceness of the client processes (default: 10)")
    parser.add_argument("--server-arg", action="append", default=[], metavar="ARG",
                        help="extra demo-server argument, e.g. --server-arg=--compression")
    args = parser.parse_args(argv)
    counts = [int(c) for c in args.clients.split(",")]
    servers = [(int(w), loop) for w in args.workers.split(",") for loop in args.loops.split(",")]
    if not 1 <= args.seconds <= 60 or not 1 <= args.runs <= 10 or not all(
            1 <= c <= 20000 for c in counts) or not 0 <= args.churn <= 1000 or not all(
            1 <= w <= 4 and loop in ("auto", "asyncio", "uvloop") for w, loop in servers):
        parser.error("bounds: 1-20000 clients, 1-60 seconds, 1-10 runs, churn 0-1000, "
                     "1-4 workers, loops auto/asyncio/uvloop")
    with contextlib.ExitStack() as stack:
        redis_url = None
        if any(w > 1 for w, _ in servers):
            sys.path.insert(0, str(harness.ROOT))
            from demo_server.redis_local import RedisServer

            redis_url = stack.enter_context(RedisServer()).url
        medians = []
        for clients in counts:
            client_procs = args.client_procs or min(2, math.ceil(clients / 5000))
            runs: dict[tuple[int, str], list[dict]] = {server: [] for server in servers}
            for run in range(1, args.runs + 1):
                for workers, loop in servers:  # interleaved: each run sees the same hour
                    label = f"{workers}x{loop}"
                    result = run_once(clients, args.seconds, client_procs,
                                      server_options(workers, loop, redis_url)
                                      + args.server_arg, args.churn, args.server_nice,
                                      args.client_nice, label)
                    runs[workers, loop].append(result)
                    harness.print_table([row(result, run)], HEADER,
                                        show_header=run == 1 and (workers, loop) == servers[0])
                    print(json.dumps(result), flush=True)
                    for problem in result["server_problems"]:
                        print(f"  server log: {problem}", flush=True)
            medians += [median_row(results) for results in runs.values()]
        print("\nmedians")
        harness.print_table(medians, HEADER)
    return 0


if __name__ == "__main__":
    sys.exit(main())
