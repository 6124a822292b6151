"""The notebook views (demo_server.widgets) against a real ServerThread, without a kernel."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from demo_server import ClientThread, ServerThread
from demo_server.widgets import LiveSeconds, ReceivedView, SendBox, _inserted


def demo_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith("demo-"))


def eventually(check: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


@pytest.fixture
def server() -> Iterator[ServerThread]:
    with ServerThread() as server:
        yield server
    assert eventually(lambda: demo_threads() == []), demo_threads()


@pytest.fixture
def client(server: ServerThread) -> Iterator[ClientThread]:
    with ClientThread(server.ws_url) as client:
        yield client


def sent_data(server: ServerThread) -> list[str]:
    return [item.data for item in server.received.snapshot()]


# -- LiveSeconds ---------------------------------------------------------------------------


def test_live_seconds_shows_each_tick_then_stops_its_threads(server: ServerThread) -> None:
    live = LiveSeconds(server.ws_url)
    assert live.second is None and ">–</div>" in live.number.value
    assert "demo-live-seconds" in live._dom_classes
    live.start()
    assert live.running
    assert {"demo-client", "demo-live-seconds"} <= set(demo_threads())
    assert live.wait(2, timeout=5)
    assert live.second is not None and 0 <= live.second <= 59
    assert f">{live.second}</div>" in live.number.value
    assert live.status.value.endswith("ticks received")  # at least 2: plural
    live.stop()
    assert not live.running
    assert live.status.value == "stopped"
    assert demo_threads() == ["demo-server"]
    live.stop()  # twice is fine


def test_live_seconds_start_is_idempotent_and_restarts(server: ServerThread) -> None:
    live = LiveSeconds(server.ws_url)
    live.start()
    client = live.client
    live.start()
    assert live.client is client
    live.stop()
    live.start()
    assert live.client is not client
    assert live.wait(1, timeout=5)
    live.stop()


def test_live_seconds_says_when_the_server_goes_away(server: ServerThread) -> None:
    live = LiveSeconds(server.ws_url)
    live.start()
    server.stop()
    assert eventually(lambda: live.status.value.startswith("disconnected (close code 1001)"))
    assert eventually(lambda: not live.running)  # the client's thread ends just after
    live.stop()


def test_live_seconds_cannot_connect() -> None:
    with ServerThread() as gone:
        url = gone.ws_url
    live = LiveSeconds(url)
    with pytest.raises(ConnectionError):
        live.start()
    assert live.status.value.startswith("cannot connect")
    assert demo_threads() == []


# -- SendBox -------------------------------------------------------------------------------


def test_send_box_sends_each_key(server: ServerThread, client: ClientThread) -> None:
    box = SendBox(client)
    assert "demo-send-box" in box._dom_classes
    box.type("hi")
    box.text.value = "hi there"  # a paste: one message
    box.text.value = "hi"  # a deletion: nothing sent, like the article's keypress
    box.text.value = "h-i"  # typed in the middle
    assert server.received.wait_for(4, timeout=5)
    assert sent_data(server) == ["h", "i", " there", "-"]
    assert box.sent == 4
    assert box.status.value == "sent 4 messages, the last: '-'"


def test_send_box_line_mode_sends_lines_on_enter(
    server: ServerThread, client: ClientThread
) -> None:
    box = SendBox(client, mode="line")
    box.type("one\ntw")
    assert box.text.value == "tw"
    box.type("o\n")
    assert box.text.value == ""
    box.text.value = "three\nfour\nfi"  # a pasted block: its complete lines are sent
    assert box.text.value == "fi"
    assert server.received.wait_for(4, timeout=5)
    assert sent_data(server) == ["one\n", "two\n", "three\n", "four\n"]


def test_send_box_shows_a_failed_send_and_stops(client: ClientThread) -> None:
    box = SendBox(client)
    client.stop()
    box.type("x")
    assert box.status.value.startswith("not sent (ConnectionError")
    assert box.sent == 0
    box.stop()
    assert box.text.disabled
    box.type("y")  # no longer observed: nothing happens
    assert box.status.value == "stopped after 0 messages"


def test_send_box_rejects_an_unknown_mode(client: ClientThread) -> None:
    with pytest.raises(ValueError, match="mode"):
        SendBox(client, mode="word")


@pytest.mark.parametrize(
    ("old", "new", "inserted"),
    [("", "a", "a"), ("ab", "abc", "c"), ("ac", "abc", "b"), ("abc", "ac", ""),
     ("aaa", "aaaa", "a"), ("abc", "xyz", "xyz"), ("hello", "help!", "p!")],
)
def test_inserted(old: str, new: str, inserted: str) -> None:
    assert _inserted(old, new) == inserted


# -- ReceivedView --------------------------------------------------------------------------


def test_received_view_has_a_row_per_client(server: ServerThread) -> None:
    view = ReceivedView(server)
    assert "demo-received" in view._dom_classes
    assert view.summary.value == "nothing received yet"
    with ClientThread(server.ws_url) as a, ClientThread(server.ws_url) as b:
        a.send("client_data", "<b>hi</b>")
        b.send("client_data", "x")
        a.send("client_data", "\n!")
        assert view.wait_for(3, timeout=5)
    assert view.summary.value == "2 clients, 3 messages received"
    assert len(view.rows) == 2 and len(view.children) == 3
    first, second = (view.rows[n].value for n in sorted(view.rows))
    assert "2 messages" in first and "&lt;b&gt;hi&lt;/b&gt;\n!" in first
    assert "<b>hi</b>" not in first
    assert "1 message<" in second
    view.stop()


def test_received_view_shows_history_once_then_follows(
    server: ServerThread, client: ClientThread
) -> None:
    client.send("client_data", "before")
    assert server.received.wait_for(1, timeout=5)
    view = ReceivedView(server.received, tail=8)
    assert view.shown == 1
    client.send("client_data", " and after")
    assert view.wait_for(2, timeout=5)
    assert view.shown == 2
    (row,) = view.rows.values()
    assert "d after</pre>" in row.value  # only the last 8 characters
    view.stop()
    client.send("client_data", "unseen")
    assert server.received.wait_for(3, timeout=5)
    assert not view.wait_for(3, timeout=0.2)


def test_reprs_do_not_change_with_live_values(server: ServerThread, client: ClientThread) -> None:
    live, box, view = LiveSeconds(server.ws_url), SendBox(client, "line"), ReceivedView(server)
    before = [repr(live), repr(box), repr(view)]
    live.start()
    box.type("a\n")
    assert live.wait(1, timeout=5) and view.wait_for(1, timeout=5)
    assert [repr(live), repr(box), repr(view)] == before
    assert before == [f"LiveSeconds({server.ws_url!r})", "SendBox(mode='line')", "ReceivedView()"]
    bundle = live._repr_mimebundle_()
    assert bundle is not None
    assert bundle["text/plain"] == before[0]
    live.stop()
    view.stop()


# -- static snapshots: what a notebook shows where widgets cannot run ----------------------

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def snapshot(view: object) -> str:
    bundle = view._repr_mimebundle_()  # type: ignore[attr-defined]
    assert WIDGET_VIEW in bundle and bundle["text/plain"] == repr(view)
    return bundle["text/html"]


def test_live_seconds_snapshot_shows_the_second_and_status(server: ServerThread) -> None:
    live = LiveSeconds(server.ws_url)
    before = snapshot(live)
    assert 'class="demo-snapshot demo-live-seconds-snapshot"' in before
    assert '">–</div>' in before and "not connected" in before
    live.start()
    try:
        assert live.wait(1, timeout=5)
        after = snapshot(live)
    finally:
        live.stop()
    assert re.search(rf'class="demo-snapshot-second"[^>]*>{live.second}</div>', after)
    assert "tick" in after and "received" in after


def test_send_box_and_received_view_snapshots_show_the_text(
    server: ServerThread, client: ClientThread
) -> None:
    box = SendBox(client)
    assert "Type here" in snapshot(box)  # the placeholder, before anything is typed
    view = ReceivedView(server)
    assert "nothing received yet" in snapshot(view)
    box.type("<b>你好")
    assert view.wait_for(5)
    assert "&lt;b&gt;你好" in snapshot(box) and "sent 5 messages" in snapshot(box)
    shown = snapshot(view)
    assert "1 client, 5 messages received" in shown and "&lt;b&gt;你好</pre>" in shown
    assert "<b>你好" not in shown  # typed text is escaped, never markup
    view.stop()
