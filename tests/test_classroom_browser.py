"""A class in real Chromium: three students (one through Jupyter's proxy, as on a hub)
typing at once, the teacher's view, announcements, a page that loses the server and comes
back, and a phone on the LAN."""

from __future__ import annotations

import pytest

from demo_server import ServerThread
from demo_server.classroom import ClassroomView
from demo_server.lan import lan_address, lan_url

from .test_jupyterlab import free_port
from .test_proxy import PREFIX, SECOND_MOVES, hub, hub_browser  # noqa: F401 (fixtures)

pytestmark = pytest.mark.browser

BANNER = "#announce:not([hidden])"


@pytest.fixture
def pages(hub_browser):  # noqa: F811
    """A function opening a page in a browser context of its own (a student each)."""
    contexts = []
    errors: list[str] = []

    def open_page(url: str):
        context = hub_browser.new_context()
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(url)
        page.wait_for_function(SECOND_MOVES, timeout=10_000)
        return page

    yield open_page
    for context in contexts:
        context.close()
    assert errors == [], "JavaScript errors on a page"


def banner(page) -> str:
    return page.locator(BANNER).inner_text(timeout=5000)


def test_three_students_type_at_once_and_every_page_gets_the_announcement(
        hub, pages, monkeypatch):  # noqa: F811
    monkeypatch.delenv("DEMO_SERVER_PROXY", raising=False)
    port = free_port()  # a fixed port, so the server can come back where pages look for it
    with ServerThread(port=port, behind_proxy=True) as server:
        view = ClassroomView(server, redraw_every=0.1)
        try:
            students = [
                pages(server.page_url),
                pages(server.page_url),
                pages(hub.url(f"{PREFIX}proxy/{port}/socket.html")),  # through JupyterLab
            ]
            words = ["anna", "bert", "hub!"]
            for chars in zip(*words, strict=True):  # interleaved: one key each, in turn
                for page, char in zip(students, chars, strict=True):
                    page.locator("#text").press(char)
            assert view.wait_until(lambda shown: sorted(s.typing for s in shown) == sorted(
                words), timeout=10), view.shown
            by_client = {s.client: s for s in view.shown}
            assert sorted(by_client) == [1, 2, 3] and all(
                s.messages == 4 for s in by_client.values())
            typed = {s.typing: s for s in view.shown}
            assert typed["hub!"].address.startswith(("127.0.0.1:", "[::1]:"))  # the proxy's
            for student in view.shown:
                assert student.agent == "Headless Chrome on Linux"
                assert (f'data-client="{student.client}"' in view.table.value
                        and student.typing in view.table.value)
            view.announce("Open exercise 3")
            assert [banner(p) for p in students] == ["Open exercise 3"] * 3
            fourth = pages(server.page_url)  # opens afterwards: gets the last announcement
            assert banner(fourth) == "Open exercise 3"
            assert view.wait_until(lambda shown: len(shown) == 4)

            # The server goes away and comes back on its port: every page reconnects by
            # itself (client.js, with backoff), and the banner is sent again.
            for page in students:
                page.locator("#announce").evaluate("el => el.textContent = 'stale'")
            server.stop()
            for page in students:
                page.wait_for_selector("#status.closed", timeout=5000)
            server.start()
            for page in students:
                page.wait_for_selector("#status.open", timeout=15_000)  # backoff: <= 1.5 s...
                page.wait_for_function(
                    "document.querySelector('#announce').textContent === 'Open exercise 3'",
                    timeout=5000)
            assert view.wait_until(  # the new server's roster: the pages are back
                lambda shown: len(shown) == 4 and all(s.messages == 0 for s in shown),
                timeout=10)
            view.announce("")  # taken down everywhere
            for page in students:
                page.wait_for_selector("#announce[hidden]", state="attached", timeout=5000)
        finally:
            view.stop()


def test_a_phone_on_the_lan_is_same_origin_with_the_server(pages):
    address = lan_address()
    if address is None:
        pytest.skip("this machine has no network address: nothing but loopback to test")
    with ServerThread(host="0.0.0.0") as server:
        url = lan_url(server.host, server.port)
        assert url == f"http://{address}:{server.port}/socket.html"
        phone = pages(url)
        phone.locator("#text").press_sequentially("hi")
        assert server.received.wait_for(2, timeout=5)
        (student,) = server.roster.connected()
        assert student.address.startswith(f"{address}:") and student.typing == "hi"
