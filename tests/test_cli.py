"""``demo-server`` as a user runs it: a real subprocess, real signals."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from demo_server import RateLimit
from demo_server.cli import parse_args

from .conftest import http_get


def launch(*args: str, python=sys.executable, cwd=None, entry=("-m", "demo_server"),
           stderr=subprocess.PIPE) -> tuple[subprocess.Popen[str], int]:
    """Start the CLI (``python *entry``) on a free port; return it and its port once it
    prints its URLs."""
    proc = subprocess.Popen(
        [python, *entry, "--port", "0", *args],
        stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=cwd,
    )
    assert proc.stdout is not None
    banner = [proc.stdout.readline() for _ in range(5)]
    match = re.search(r"browser page\s+http://127\.0\.0\.1:(\d+)/socket\.html", "".join(banner))
    assert match, banner
    return proc, int(match.group(1))


def read_until(proc: subprocess.Popen[str], pattern: str, timeout: float = 10.0) -> str:
    """Read the process's stderr until ``pattern`` is found in it; return what was read.

    Bytes are read straight from the pipe (nothing stays in a buffer), so
    ``proc.communicate()`` returns the rest afterwards.
    """
    assert proc.stderr is not None
    fd, read = proc.stderr.fileno(), b""
    deadline = time.monotonic() + timeout
    while not re.search(pattern, read.decode(errors="replace")):
        left = deadline - time.monotonic()
        assert left > 0 and select.select([fd], [], [], left)[0], f"no {pattern!r} in {read!r}"
        chunk = os.read(fd, 65536)
        assert chunk, f"stderr ended without {pattern!r}: {read!r}"
        read += chunk
    return read.decode()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_serves_everything_and_exits_0_on_a_signal(sig):
    proc, port = launch()
    try:
        assert http_get(port, "/")[2] == b"Hello, World."
        assert http_get(port, "/socket.html")[0] == 200
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            assert '"second"' in ws.recv(timeout=3)
            ws.send('{"event":"client_data","data":"h"}')
            logged = read_until(proc, r"client_data from 127\.0\.0\.1:\d+: 'h'")
        started = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
        # Well under the 10 s a close or a join would wait for before giving up.
        assert time.monotonic() - started < 5
    finally:
        proc.kill()
    assert proc.returncode == 0
    assert "stopping" in out
    assert "Traceback" not in logged + err


def test_cli_port_in_use_is_one_clear_line_and_exit_2():
    proc, port = launch()
    try:
        second = subprocess.run([sys.executable, "-m", "demo_server", "--port", str(port)],
                                capture_output=True, text=True, timeout=10)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=5)
    assert second.returncode == 2
    assert second.stderr.strip().splitlines() == [
        f"demo-server: error: port {port} on 127.0.0.1 is already in use (another "
        "demo-server?): stop it, or choose another port (0 picks a free one)"
    ]


@pytest.mark.parametrize(("args", "message"), [
    (["--port", "70000"], "port must be an integer from 0 to 65535"),
    (["--allow-origin", "teacher.local"], "an origin looks like http://host:port"),
    (["--host", "no-such-host.invalid"], "cannot listen on host"),
    (["--rate-limit", "0,10"], "expected RATE[,BURST]"),
    (["--rate-limit", "fast"], "expected RATE[,BURST]"),
])
def test_cli_bad_arguments_exit_2_with_a_reason(args, message):
    result = subprocess.run([sys.executable, "-m", "demo_server", *args],
                            capture_output=True, text=True, timeout=10)
    assert result.returncode == 2
    assert message in result.stderr


@pytest.mark.parametrize(("value", "limit"), [
    (None, RateLimit()),
    ("off", None),
    ("20", RateLimit(20, RateLimit.burst)),
    ("20,5", RateLimit(20, 5)),
])
def test_cli_rate_limit_option(value, limit):
    assert parse_args([] if value is None else ["--rate-limit", value]).rate_limit == limit


def test_console_script_is_installed():
    script = Path(sys.executable).with_name("demo-server")  # beside the venv's python
    script = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=10)
    assert script.returncode == 0
    assert "--allow-origin" in script.stdout


# Windows' event loops have no add_signal_handler: BaseEventLoop's, which raises
# NotImplementedError, is what they inherit. The CLI, with that one in place here.
WITHOUT_ADD_SIGNAL_HANDLER = (
    "-c",
    "import asyncio, sys; from demo_server.cli import main\n"
    "asyncio.SelectorEventLoop.add_signal_handler = asyncio.BaseEventLoop.add_signal_handler\n"
    "sys.exit(main())",
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_stops_on_a_signal_where_the_loop_cannot_handle_signals(sig):
    proc, port = launch(entry=WITHOUT_ADD_SIGNAL_HANDLER)
    try:
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            assert '"second"' in ws.recv(timeout=3)  # it serves
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "stopping" in out and "Traceback" not in err


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert found is not None
    return int(found.group(1)) / 1024


def test_cli_memory_stays_flat_however_much_is_received():
    """84 MB of client_data: the CLI keeps one message at most (it kept the last 1000, up to
    64 KiB each, in a record nothing read; DemoServer's default record keeps 100)."""
    proc, port = launch("--rate-limit", "off", stderr=subprocess.DEVNULL)  # logged whole
    message = '{"event":"client_data","data":"%s"}' % ("x" * 60_000)
    try:
        with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
            def send_and_wait(count: int) -> None:
                for _ in range(count):
                    ws.send(message)
                ws.send("not json")  # answered once everything before it was handled
                while '"error"' not in ws.recv(timeout=30):
                    pass

            send_and_wait(3)  # warm up: buffers and the allocator
            before = rss_mib(proc.pid)
            send_and_wait(1400)
            grown = rss_mib(proc.pid) - before
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=15)
    # Measured: +0.2 MiB; a 100-message record: +6.8 MiB, the old 1000: +80 MiB.
    assert grown < 3, f"the CLI's memory grew by {grown:.1f} MiB"


def test_a_stderr_nobody_reads_never_stalls_the_ticks():
    """The log is written from its own thread: a full pipe (a frozen terminal, a slow SSH
    session) blocks that thread, not the event loop, and the dropped lines are counted."""
    proc, port = launch("--rate-limit", "off")  # stderr: a pipe this test never reads
    try:
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            for i in range(3000):  # ~600 KB of log lines: ten times what the pipe holds
                ws.send('{"event":"client_data","data":"%s"}' % ("x" * 150 + str(i)))
            late = []
            for _ in range(3):
                tick = json.loads(ws.recv(timeout=3))
                if tick["event"] == "second":
                    late.append(tick["data"]["sent"] - tick["data"]["epoch"])
        assert late and max(late) < 0.3, late  # the ticks went on, on time
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "stopping" in out
    assert re.search(r"demo-server: \d+ log lines dropped: stderr did not keep up", err)
