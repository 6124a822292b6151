"""The browser page over https:// and wss://, in Debian's Chromium.

Chromium does not know the throwaway authority, so these tests (only these) tell it to
accept the certificate: Playwright's ``ignore_https_errors``, the test-only equivalent of
``--ignore-certificate-errors``.
"""

from __future__ import annotations

import os

import pytest

from demo_server import ServerThread
from demo_server.capture import CaptureUnavailable, capture
from demo_server.dissect import Direction, dissect

from .conftest import CHROMIUM, FLAGS


@pytest.fixture
def tls_server(tmp_path):
    with ServerThread("localhost", tls=True, keylog=tmp_path / "server.keys") as running:
        yield running


@pytest.fixture
def page(browser):
    context = browser.new_context(ignore_https_errors=True)
    yield context.new_page()
    context.close()


def test_the_page_over_https_shows_live_seconds_and_sends_what_is_typed(tls_server, page):
    assert tls_server.page_url.startswith("https://localhost:")
    page.goto(tls_server.page_url)
    page.wait_for_selector("#status.open")
    assert page.evaluate("location.protocol") == "https:"
    page.wait_for_function("/^\\d+$/.test(document.querySelector('#second').textContent)")
    first = page.text_content("#second")
    page.wait_for_function(f"document.querySelector('#second').textContent !== '{first}'",
                           timeout=5000)
    page.locator("#text").press_sequentially("hi")
    assert tls_server.received.wait_for(2, timeout=5)
    assert [r.data for r in tls_server.received.snapshot()] == ["h", "i"]


def ws_from_https(chromium_page, server: ServerThread, host: str) -> str | None:
    """What ``new WebSocket("ws://HOST:PORT/ws")`` does in the https: page: the error, or
    None when the constructor accepts it (then the page waits for the result: open or not)."""
    chromium_page.goto(server.page_url.replace("localhost", host))
    return chromium_page.evaluate("""url => {
        try { new WebSocket(url); return null; } catch (e) { return e.name + ": " + e.message; }
    }""", f"ws://{host}:{server.port}/ws")


def test_an_https_page_may_not_open_ws_but_on_loopback(tls_server, page, browser):
    """Mixed content: from an https: page Chromium refuses ws:// in the constructor, except
    to a loopback host, which the Mixed Content spec counts as potentially trustworthy."""
    assert ws_from_https(page, tls_server, "localhost") is None
    chromium = browser.browser_type.launch(  # a name that is not loopback, resolved to it
        executable_path=CHROMIUM, headless=True,
        args=[*FLAGS, "--host-resolver-rules=MAP demo.test 127.0.0.1"])
    try:
        elsewhere = chromium.new_context(ignore_https_errors=True).new_page()
        error = ws_from_https(elsewhere, tls_server, "demo.test")
    finally:
        chromium.close()
    assert error is not None and error.startswith("SecurityError"), error
    assert "insecure" in error, error


def test_chromium_writes_a_key_log_that_decrypts_its_own_wss(tmp_path, browser):
    """SSLKEYLOGFILE in Chromium's environment: its own secrets decrypt what it sent."""
    try:
        capture(9, backend="socket").start().stop()
    except CaptureUnavailable as exc:
        pytest.skip(f"live capture: {exc}")
    keys = tmp_path / "chromium.keys"
    with ServerThread("localhost", tls=True) as server:
        chromium = browser.browser_type.launch(
            executable_path=CHROMIUM, headless=True, args=FLAGS,
            env={**os.environ, "SSLKEYLOGFILE": str(keys)})
        try:
            context = chromium.new_context(ignore_https_errors=True)
            with capture(server.port) as cap:
                page = context.new_page()
                page.goto(server.page_url)
                page.wait_for_selector("#status.open")
                page.locator("#text").press_sequentially("ok")
                assert server.received.wait_for(2, timeout=5)
                context.close()
        finally:
            chromium.close()
    conv = dissect(cap, cap.port, keylog=keys)
    assert conv.tls.decrypted and conv.tls.sni == "localhost"
    assert conv.handshake.request.path == "/ws"
    sent = [m.text for m in conv.messages if m.direction is Direction.C2S and m.opcode == 1]
    assert sent == ['{"event":"client_data","data":"o"}', '{"event":"client_data","data":"k"}']
