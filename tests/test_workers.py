"""``demo-server --workers N --redis URL``: real processes on one port, a real redis-server."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from IPython.display import Image
from websockets.sync.client import connect

from demo_server import ServerThread, redis_local, scaleout
from demo_server.redis_local import RedisServer, free_port
from demo_server.scaleout import Workers

from .redis_server import start_redis

CLIENTS = 16  # all on one worker of two by chance: 2 ** -15


@pytest.fixture
def redis() -> Iterator[RedisServer]:
    """A fresh redis-server on a free port, stopped after the test."""
    yield from start_redis()


def demo_server(*args: str, log: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "demo_server", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=log.open("w"), text=True)


def banner(proc: subprocess.Popen[str]) -> str:
    """The supervisor's banner, up to "Press Ctrl-C"."""
    assert proc.stdout is not None
    lines: list[str] = []
    while not lines or "Ctrl-C" not in lines[-1]:
        line = proc.stdout.readline()
        assert line, f"exited ({proc.wait()}) after {lines}"
        lines.append(line)
    return "".join(lines)


@contextlib.contextmanager
def workers(redis: RedisServer, tmp_path: Path, count: int = 2
            ) -> Iterator[tuple[subprocess.Popen[str], int, dict[str, int]]]:
    """The supervisor, its port and each worker's pid; stopped (SIGTERM) at the end."""
    proc = demo_server("--workers", str(count), "--redis", redis.url, log=tmp_path / "log")
    try:
        text = banner(proc)
        port = int(re.search(r"port (\d+) \(SO_REUSEPORT\)", text).group(1))  # type: ignore[union-attr]
        pids = {name: int(pid) for name, pid in re.findall(r"(w\d+@\S+)\s+pid (\d+)", text)}
        assert set(pids) == {f"w{i}@{socket.gethostname()}:{port}" for i in range(1, count + 1)}
        assert len(pids) == count, text
        yield proc, port, pids
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_two_workers_on_one_port_spread_clients_and_share_one_record(redis, tmp_path):
    # The test's own server joins the same Redis: its record is what every worker shares.
    with ServerThread(redis_url=redis.url, process="observer") as observer, \
            workers(redis, tmp_path) as (proc, port, pids):
        assert all(alive(pid) for pid in pids.values())
        with contextlib.ExitStack() as stack:
            clients = [stack.enter_context(connect(f"ws://127.0.0.1:{port}/ws"))
                       for _ in range(CLIENTS)]
            names = [c.response.headers["X-Demo-Process"] for c in clients]
            assert set(names) == set(pids), Counter(names)  # the kernel spread them
            for n, client in enumerate(clients):
                client.send(json.dumps({"event": "client_data", "data": f"hello {n}"}))
            assert observer.received.wait_for(CLIENTS, 20)
            seen = {r.data: r.process for r in observer.received.snapshot()}
            assert seen == {f"hello {n}": names[n] for n in range(CLIENTS)}
            # Every worker ticks on the wall-clock second: the same second for everyone.
            ticks = {json.loads(c.recv(timeout=5))["data"]["epoch"] for c in clients}
            assert len(ticks) <= 2  # one second, or two if a tick fell between the recvs
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
        assert proc.returncode == 0 and "demo-server: stopping" in out
    assert not any(alive(pid) for pid in pids.values())
    log = (tmp_path / "log").read_text()
    assert re.search(r"\[w1\] client \d+ connected", log) and "[w2] client_data" in log


def test_a_worker_that_dies_stops_the_others_with_a_clear_message(redis, tmp_path):
    with workers(redis, tmp_path) as (proc, _, pids):
        w1, w2 = sorted(pids)
        os.kill(pids[w2], signal.SIGKILL)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 1
    log = (tmp_path / "log").read_text()
    assert f"worker {w2} (pid {pids[w2]}) exited with code -9; stopping the others" in log
    deadline = time.monotonic() + 5
    while alive(pids[w1]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(pids[w1])


@pytest.mark.parametrize(("args", "message"), [
    (["--workers", "2"], r"--workers 2 needs --redis URL"),
    (["--workers", "2", "--redis", "http://127.0.0.1/"], r"bad Redis URL 'http://127\.0\.0\.1/'"),
    (["--workers", "0"], r"--workers: expected a number of processes from 1 to 64, got '0'"),
    (["--redis", "redis://127.0.0.1:PORT/0"], r"cannot reach Redis at redis://127\.0\.0\.1:\d+/0"),
    (["--workers", "3", "--redis", "redis://127.0.0.1:PORT/0"],
     r"cannot reach Redis at redis://127\.0\.0\.1:\d+/0: Error 111 connecting"
     r".*is redis-server running"),
    (["--workers", "2", "--redis", "redis://127.0.0.1:PORT/0", "--socketio"],
     r"--workers runs the WebSocket flavour"),
    (["--workers", "2", "--redis", "redis://127.0.0.1:PORT/0", "--tls"],
     r"--workers with --tls needs --certfile: each worker would make a throwaway"),
])
def test_refuses_with_a_clear_message_and_exit_2(args, message):
    port = str(free_port())  # nothing listens there
    done = subprocess.run([sys.executable, "-m", "demo_server", "--port", "0",
                           *(a.replace("PORT", port) for a in args)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2, done
    assert re.search(r"demo-server: error: .*" + message, done.stderr), done.stderr
    assert done.stdout == ""


def test_one_process_with_redis_says_so_in_its_banner(redis, tmp_path):
    proc = demo_server("--redis", redis.url, log=tmp_path / "log")
    try:
        text = banner(proc)
        assert re.search(rf"joined by Redis {re.escape(redis.url)} as \S+/{proc.pid}\n", text)
        assert re.search(r"event loop      (uvloop \d|asyncio)", text)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert proc.returncode == 0


def test_workers_from_python_start_serve_and_stop(redis):
    workers = Workers(2, redis.url).start()
    try:
        assert workers.running and workers.port
        assert set(workers.pids) == {f"w{i}@{socket.gethostname()}:{workers.port}" for i in (1, 2)}
        with connect(workers.ws_url) as client:
            assert client.response.headers["X-Demo-Process"] in workers.pids
    finally:
        workers.stop()
    assert not workers.running and not any(alive(pid) for pid in workers.pids.values())


def test_workers_from_python_say_why_they_did_not_start():
    with pytest.raises(RuntimeError, match=r"did not start: .*cannot reach Redis"):
        Workers(2, f"redis://127.0.0.1:{free_port()}/0").start()


def test_without_redis_server_a_notebook_replays_the_recording(monkeypatch, capsys):
    monkeypatch.setattr(redis_local.shutil, "which", lambda name: None)
    assert scaleout.start_redis() is None
    assert "redis-server is not installed: install it: sudo apt-get install redis-server" \
        in capsys.readouterr().out
    ran = []
    assert isinstance(scaleout.live("two_workers", lambda: ran.append(1)), Image)  # its picture
    shown = capsys.readouterr().out
    assert shown.startswith("[recorded with Redis running, ") and "both workers had clients: True" \
        in shown and ran == []
    scaleout.live("no such cell", lambda: ran.append(1))
    assert "(no recording of 'no such cell': this cell needs redis-server)" in \
        capsys.readouterr().out and ran == []


@pytest.mark.parametrize("loop", ["asyncio", "uvloop"])
def test_the_loop_chosen_runs_and_the_banner_says_which(loop, tmp_path):
    pytest.importorskip(loop)
    with ServerThread(loop=loop) as server, connect(server.ws_url) as client:
        assert json.loads(client.recv(timeout=5))["event"] == "second"
        assert type(server._loop).__module__.partition(".")[0] == loop
    proc = demo_server("--loop", loop, log=tmp_path / "log")
    try:
        assert re.search(rf"event loop      {loop}\b", banner(proc))
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_a_loop_that_is_not_one_is_refused():
    with pytest.raises(ValueError, match="loop must be one of asyncio, uvloop, auto, got 'trio'"):
        ServerThread(loop="trio")


def test_workers_stop_when_their_supervisor_is_killed(redis, tmp_path):
    with workers(redis, tmp_path) as (proc, _, pids):
        proc.kill()  # SIGKILL: no chance to stop them
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in pids.values())


def test_a_port_in_use_is_a_clear_error(redis):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        done = subprocess.run([sys.executable, "-m", "demo_server", "--workers", "2",
                               "--redis", redis.url, "--port", str(busy.getsockname()[1])],
                              capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert re.search(r"demo-server: error: cannot listen on 127\.0\.0\.1 port \d+: the port is "
                     r"in use \(another demo-server\?\)", done.stderr), done.stderr
