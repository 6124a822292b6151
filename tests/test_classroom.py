"""The classroom without a browser: the roster, announcements, URLs, QR codes, the CLI, and
the teacher's view, against real servers and clients on loopback."""

from __future__ import annotations

import base64
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from demo_server import ClientThread, Event, ServerThread
from demo_server.classroom import ClassroomView
from demo_server.events import MAX_ANNOUNCEMENT
from demo_server.lan import JoinCode, lan_address, lan_url, qr_text
from demo_server.notebook import reader_url
from demo_server.proxy import proxy_prefix
from demo_server.roster import Roster, agent_family

CHROME = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Chrome/126.0.0.0 Safari/537.36")
ANDROID = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/126.0.0.0 Mobile Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
EDGE = CHROME + " Edg/126.0.0.0"


# -- the roster -----------------------------------------------------------------------------

def test_roster_follows_join_typed_leave_and_stays_bounded() -> None:
    roster = Roster(tail=5, keep_left=2)
    for client in range(1, 5):
        roster.join(client, f"10.0.0.{client}:5000", ANDROID)
    roster.typed(1, "hello world")
    roster.typed(1, "!")
    roster.typed(99, "nobody")  # not connected: ignored
    (first, *_) = roster.connected()
    assert (first.client, first.messages, first.typing, first.agent) == (
        1, 2, "orld!", "Chrome on Android")
    for client in (1, 2, 3):
        roster.leave(client)
    roster.leave(3)  # twice: nothing more
    assert [(s.client, s.left is None) for s in roster.snapshot()] == [
        (4, True), (2, False), (3, False)]  # connected first; only the last 2 that left
    assert len(roster) == 3


def test_roster_keeps_whole_characters_and_counts_versions() -> None:
    roster = Roster()
    roster.join(1, "127.0.0.1:1", None)
    version = roster.version
    roster.typed(1, "\ud83d")  # half an emoji, as JSON can carry it
    assert roster.wait_changed(version, timeout=1) == version + 1
    assert roster.connected()[0].typing == "\ufffd"
    assert roster.connected()[0].agent == "unknown"
    assert roster.wait_changed(roster.version, timeout=0.05) == roster.version  # timed out


@pytest.mark.parametrize(("header", "family"), [
    (CHROME, "Chrome on Linux"), (ANDROID, "Chrome on Android"), (IPHONE, "Safari on iPhone"),
    (EDGE, "Edge on Linux"), ("Python/3.11 websockets/17.0", "Python websockets"),
    ("curl/8.5.0", "curl"), ("", "unknown"), ("((( ", "unknown"),
])
def test_agent_family(header: str, family: str) -> None:
    assert agent_family(header) == family


def test_roster_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="tail must be >= 1"):
        Roster(tail=0)


# -- announcements ----------------------------------------------------------------------------

@pytest.fixture
def server():
    with ServerThread() as running:
        yield running


def test_announce_reaches_every_client_and_clients_that_come_later(server) -> None:
    with ClientThread(server.ws_url) as early:
        server.announce("Open exercise 3 ✍️")
        assert early.next(Event.ANNOUNCE)["text"] == "Open exercise 3 ✍️"
    with ClientThread(server.ws_url) as late:
        assert late.next(Event.ANNOUNCE)["text"] == "Open exercise 3 ✍️"
        server.announce("")  # taken down: a page hides the banner
        assert late.next(Event.ANNOUNCE)["text"] == ""
    with ClientThread(server.ws_url) as later:
        assert later.next(Event.SECOND, timeout=3) is not None
        assert later.counts[Event.ANNOUNCE] == 0  # nothing to show: nothing sent


def test_a_restarted_server_announces_again() -> None:
    server = ServerThread()
    server.start()
    try:
        server.announce("back in 5 minutes")
        server.stop()
        server.start()
        with ClientThread(server.ws_url) as client:
            assert client.next(Event.ANNOUNCE)["text"] == "back in 5 minutes"
    finally:
        server.stop()


@pytest.mark.parametrize(("text", "error", "match"), [
    (42, TypeError, "an announcement is a str, got int"),
    (b"bytes", TypeError, "got bytes"),
    ("x" * (MAX_ANNOUNCEMENT + 1), ValueError, f"at most {MAX_ANNOUNCEMENT} characters"),
    ("half \ud83d an emoji", ValueError, "lone surrogate '\\\\ud83d' at character 5"),
])
def test_bad_announcements_get_a_clear_error(server, text, error, match) -> None:
    with pytest.raises(error, match=match):
        server.announce(text)
    with ClientThread(server.ws_url) as client:
        client.next(Event.SECOND, timeout=3)
        assert client.counts[Event.ANNOUNCE] == 0
    assert server.announcement == ""


def test_announce_is_refused_where_there_is_no_banner() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        ServerThread().announce("hello")
    with ServerThread(flavour="socketio") as socketio, pytest.raises(
            RuntimeError, match="needs the websocket flavour"):
        socketio.announce("hello")


# -- where students find the page ---------------------------------------------------------------

@pytest.mark.parametrize(("proxy", "environ", "prefix"), [
    (None, {}, None),
    (None, {"JUPYTERHUB_SERVICE_PREFIX": "/user/ann/"}, "/user/ann/"),
    (None, {"JUPYTERHUB_SERVICE_PREFIX": "/user/ann/", "DEMO_SERVER_PROXY": "off"}, None),
    (None, {"DEMO_SERVER_PROXY": "on"}, "/"),
    (None, {"DEMO_SERVER_PROXY": "/lab"}, "/lab/"),
    (True, {"JUPYTERHUB_SERVICE_PREFIX": "/user/bo/"}, "/user/bo/"),
    (False, {"JUPYTERHUB_SERVICE_PREFIX": "/user/ann/"}, None),
    ("/hub/", {}, "/hub/"),
])
def test_proxy_prefix(proxy, environ, prefix) -> None:
    assert proxy_prefix(proxy, environ) == prefix


@pytest.mark.parametrize("bad", ["user/ann", "http://x/", "/a b/", 3])
def test_proxy_prefix_rejects_what_is_not_a_path(bad) -> None:
    with pytest.raises(ValueError, match="a proxy prefix is a URL path"):
        proxy_prefix(bad, {})


def test_reader_url_direct_or_through_the_proxy(server, monkeypatch) -> None:
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    monkeypatch.delenv("DEMO_SERVER_PROXY", raising=False)
    assert reader_url(server) == server.page_url
    monkeypatch.setenv("DEMO_SERVER_PROXY", "/")
    assert reader_url(server) == f"/proxy/{server.port}/socket.html"
    assert reader_url(server, "client.js", proxy="/user/ann/") == (
        f"/user/ann/proxy/{server.port}/client.js")


def test_lan_url_names_this_machine_never_a_wildcard() -> None:
    assert lan_url("127.0.0.1", 8001) is None and lan_url("localhost", 8001) is None
    assert lan_url("192.168.1.20", 8001) == "http://192.168.1.20:8001/socket.html"
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no network address")
    assert not address.startswith("127.")
    assert lan_url("0.0.0.0", 8001) == f"http://{address}:8001/socket.html"


def test_qr_codes_for_the_terminal_and_the_notebook() -> None:
    text = qr_text("http://192.168.1.20:8001/socket.html")
    lines = text.splitlines()
    assert len(lines) > 10 and set("".join(lines)) <= set("█▀▄ ")
    bundle = JoinCode("http://192.168.1.20:8001/socket.html")._repr_mimebundle_()
    assert bundle["text/plain"] == "Scan to open http://192.168.1.20:8001/socket.html"
    assert base64.b64decode(bundle["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(ValueError, match="non-empty URL"):
        qr_text("")


def test_cli_on_the_network_prints_the_lan_url_and_a_qr_code() -> None:
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no network address")
    proc = subprocess.Popen([sys.executable, "-m", "demo_server", "--host", "0.0.0.0",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline()]
        while "or scan:\n" not in lines[-2:-1] and len(lines) < 30:  # the banner, then this
            lines.append(proc.stdout.readline())
        port = re.search(r"port (\d+)", lines[0])
        assert port, lines
        assert f"Students open http://{address}:{port.group(1)}/socket.html\n" in lines
        assert "or scan:\n" in lines and lines[-1].startswith("███")
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=10)
    assert proc.returncode == 0


# -- the teacher's view -----------------------------------------------------------------------

def test_classroom_view_lists_each_client_with_its_text(server) -> None:
    view = ClassroomView(server, redraw_every=0.05)
    try:
        assert "no student yet" in view._snapshot_html()
        with ClientThread(server.ws_url) as ann, ClientThread(server.ws_url) as bo:
            for char in "ann":
                ann.send(Event.CLIENT_DATA, char)
            bo.send(Event.CLIENT_DATA, "<b>bo</b>")
            assert view.wait_until(lambda s: [x.typing for x in s] == ["ann", "<b>bo</b>"])
            table = view.table.value
            assert re.search(r'data-client="1".*Python websockets.*<td[^>]*>3</td>.*ann', table)
            assert "&lt;b&gt;bo&lt;/b&gt;" in table  # escaped, not markup
            view.announce("pens down")
            assert ann.next(Event.ANNOUNCE)["text"] == "pens down"
            assert "announced at" in view.status.value
            with pytest.raises(TypeError):
                view.announce(None)  # type: ignore[arg-type]
            assert view.status.value.startswith("not announced: an announcement is a str")
        assert view.wait_until(lambda s: all(x.left is not None for x in s))
        assert "2 left" in view._snapshot_html() and repr(view) == "ClassroomView()"
    finally:
        view.stop()
    assert not view._thread.is_alive()


def test_classroom_view_redraws_at_most_every_interval(server) -> None:
    view = ClassroomView(server, redraw_every=0.5)
    draws = []
    view.table.observe(lambda change: draws.append(time.monotonic()), names="value")
    try:
        with ClientThread(server.ws_url) as client:
            for _ in range(100):
                client.send(Event.CLIENT_DATA, "k")
            assert view.wait_until(lambda s: s and s[0].messages == 100)
        gaps = [b - a for a, b in zip(draws, draws[1:], strict=False)]
        assert len(draws) <= 4 and all(gap > 0.4 for gap in gaps), gaps
    finally:
        view.stop()
