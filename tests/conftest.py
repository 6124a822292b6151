"""Shared fixtures: a real server on a real loopback socket, and raw HTTP."""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest

from demo_server import ServerThread

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def browser():
    """Headless Debian Chromium through Playwright; never a browser Playwright downloads."""
    if not shutil.which(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run must install Debian's chromium")
        pytest.skip("Debian's Chromium is not installed: sudo apt-get install chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def server():
    with ServerThread() as running:
        yield running


def http_raw(port: int, request: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes exactly as given (no client-side path cleanup) and read the whole reply."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    return reply


def http_get(port: int, path: bytes | str, headers: str = "") -> tuple[int, dict[str, str], bytes]:
    """GET ``path`` verbatim; return status, headers (lower-case names) and body."""
    if isinstance(path, str):
        path = path.encode()
    reply = http_raw(port, b"GET " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     + headers.encode() + b"\r\n")
    head, _, body = reply.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    fields = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in fields.items()}, body


def demo_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("demo-")]


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test item, so fixtures can see if the test failed."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
