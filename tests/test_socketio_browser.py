"""The socket.io page in a real browser: Debian's Chromium, the official socket.io client."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from demo_server import ServerThread

from . import test_browser
from .test_browser import second_text

pytestmark = pytest.mark.browser

# test_browser's fixture: a fresh page whose JavaScript errors fail the test, with a
# screenshot under test-artifacts/ when the test fails.
page = test_browser.page


@pytest.fixture
def server():
    with ServerThread(flavour="socketio") as running:
        yield running


def test_the_page_polls_upgrades_shows_live_seconds_and_sends_what_is_typed(server, page):
    requests: list[str] = []
    websockets: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("websocket", lambda websocket: websockets.append(websocket.url))
    page.goto(server.page_url)
    page.wait_for_function("/^\\d+$/.test(document.querySelector('#second').textContent)")
    page.wait_for_function("document.querySelector('#status').textContent"
                           " === 'connected (websocket)'", timeout=5000)
    first = second_text(page)
    page.wait_for_function(f"document.querySelector('#second').textContent !== '{first}'",
                           timeout=3000)
    page.locator("#text").press_sequentially("hi")
    assert server.received.wait_for(2, timeout=3)
    assert [r.data for r in server.received.snapshot()] == ["h", "i"]
    # As in the article's DevTools: the page, the client from the server itself, then
    # long-polling, then one WebSocket for the same session; nothing from anywhere else.
    paths = [urlsplit(url).path for url in requests]
    assert paths[:3] == ["/socket.html", "/socket.io/socket.io.js", "/socketio-client.js"]
    assert "EIO=4&transport=polling" in requests[3]
    (websocket,) = websockets
    assert "EIO=4&transport=websocket&sid=" in websocket
    assert {urlsplit(url).netloc for url in requests + websockets} == {
        urlsplit(server.url).netloc}


def test_bad_input_is_shown_and_enter_and_paste_are_sent(server, page):
    page.goto(server.page_url)
    page.wait_for_selector("#status.open")
    page.evaluate("socket.emit('client_data', 5)")
    page.wait_for_function("document.querySelector('#notice').textContent"
                           " === 'server: client_data takes one string, got a number'")
    page.locator("#text").press("Enter")
    page.locator("#text").evaluate("""el => {
        const data = new DataTransfer();
        data.setData('text/plain', '貼上的文字 pasted');
        el.dispatchEvent(new ClipboardEvent('paste', {clipboardData: data, bubbles: true}));
    }""")
    assert server.received.wait_for(2, timeout=3)
    assert [r.data for r in server.received.snapshot()] == ["\n", "貼上的文字 pasted"]


def test_text_composed_by_an_input_method_is_sent_once_when_composition_ends(server, page):
    page.goto(server.page_url)
    page.wait_for_selector("#status.open")
    page.locator("#text").focus()
    cdp = page.context.new_cdp_session(page)
    for partial in ["ㄋ", "你", "你好"]:  # Zhuyin: the composition grows, nothing is sent
        cdp.send("Input.imeSetComposition",
                 {"text": partial, "selectionStart": len(partial), "selectionEnd": len(partial)})
    assert page.locator("#sent").inner_text() == "0"
    cdp.send("Input.insertText", {"text": "你好"})  # committed: one message
    page.locator("#text").press_sequentially("!")
    assert server.received.wait_for(2, timeout=3)
    assert [r.data for r in server.received.snapshot()] == ["你好", "!"]


def test_the_page_reconnects_when_the_server_comes_back(page):
    server = ServerThread(flavour="socketio").start()
    port = server.port
    try:
        page.goto(server.page_url)
        page.wait_for_selector("#status.open")
        server.stop()
        page.wait_for_selector("#status.closed")
        page.locator("#text").press_sequentially("ab")  # typed while away: kept, sent later
        server = ServerThread(flavour="socketio", port=port).start()
        page.wait_for_selector("#status.open", timeout=15000)
        assert server.received.wait_for(2, timeout=3)
        assert server.received.text() == "ab"
    finally:
        server.stop()


def test_the_browsers_session_dissects_whole(server, page):
    """The official client in Chromium, captured: keep-alive polling, POSTs, the upgrade."""
    from demo_server.capture import CaptureUnavailable, capture
    from demo_server.dissect import conversations

    try:
        cap = capture(server.port).start()
    except CaptureUnavailable as exc:
        pytest.skip(str(exc))
    try:
        page.goto(server.page_url)
        page.wait_for_function("document.querySelector('#status').textContent"
                               " === 'connected (websocket)'", timeout=5000)
        page.locator("#text").press_sequentially("ok")
        assert server.received.wait_for(2, timeout=3)
        page.wait_for_timeout(1200)  # a tick or two over the WebSocket
    finally:
        cap.stop()
    convs = [c for c in conversations(cap.packets, server.port) if c.engineio]
    assert convs and all(c.warnings == [] for c in convs)
    (websocket,) = [c for c in convs if c.engineio.transport == "websocket"]
    # the page, its scripts and the polling share kept-alive connections: only requests to
    # Engine.IO's path carry packets
    exchanges = [e for c in convs for e in c.http if e.engineio]
    assert any(not e.engineio for c in convs for e in c.http)
    sent = [p.label for e in exchanges for p in e.request_packets]
    assert "40 CONNECT /" in sent  # the browser connects its namespace over a POST
    (opening,) = [e for e in exchanges if e.engineio.sid is None]
    opened = opening.response_packets[0]
    assert opened.label.startswith(f"0 open sid={websocket.engineio.sid}")
    labels = [m.packet.label for m in websocket.messages if m.packet]
    assert labels[:3] == ["2 ping probe", "3 pong probe", "5 upgrade"]
    assert any(label.startswith('42 EVENT second {"second":') for label in labels)
    typed = [p.label for p in sent if p.startswith("42")] + [
        label for label in labels if label.startswith("42 EVENT client_data")]
    assert sorted(typed) == ['42 EVENT client_data "k"', '42 EVENT client_data "o"']
