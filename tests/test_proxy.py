"""The page behind a Jupyter server: real JupyterLab with jupyter-server-proxy, under a
hub's path prefix and a hub's host name, in real Chromium.

JupyterLab listens on 127.0.0.1 with ``base_url=/user/ann/`` (what a JupyterHub single-user
server gets) and a token; Chromium resolves ``hub.test`` to 127.0.0.1, so the browser sees a
site that is not loopback, as on a real hub. The demo server runs in this process.
"""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from demo_server import ServerThread
from demo_server.notebook import PageFrame, reader_url

from .conftest import CHROMIUM, FLAGS, SHOTS
from .jupyter_lab import running_lab
from .test_jupyterlab import free_port

pytestmark = pytest.mark.browser

PREFIX = "/user/ann/"
HUB = "hub.test"  # the hub's name, for the browser; resolved to 127.0.0.1 by Chromium
EVIL = "evil.test"  # another site, also resolved to 127.0.0.1 (as DNS rebinding would)
SECOND_MOVES = "/^\\d+$/.test(document.querySelector('#second').textContent)"


@dataclass(frozen=True)
class Hub:
    port: int
    token: str

    @property
    def origin(self) -> str:
        return f"http://{HUB}:{self.port}"

    def url(self, path: str) -> str:
        """``path`` (absolute, under the prefix) on the hub's site, logged in by token."""
        return f"{self.origin}{path}?token={self.token}"


@pytest.fixture(scope="module")
def hub(tmp_path_factory) -> Iterator[Hub]:
    """JupyterLab + jupyter-server-proxy on 127.0.0.1, as a hub's single-user server."""
    port, token = free_port(), secrets.token_hex(16)
    with running_lab(port, [
        f"--ServerApp.base_url={PREFIX}", f"--IdentityProvider.token={token}",
        "--ServerApp.allow_remote_access=True",  # a hub's name is not a local one
        f"--ServerApp.root_dir={tmp_path_factory.mktemp('hub-root')}",
    ], f"{PREFIX}api/status?token={token}", tmp_path_factory.mktemp("hub-log")):
        yield Hub(port, token)


@pytest.fixture(scope="module")
def hub_browser():
    """Chromium that resolves hub.test and evil.test to 127.0.0.1."""
    if not shutil.which(CHROMIUM):
        pytest.skip("Debian's Chromium is not installed: sudo apt-get install chromium")
    from playwright.sync_api import sync_playwright

    rules = f"--host-resolver-rules=MAP {HUB} 127.0.0.1, MAP {EVIL} 127.0.0.1"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=[*FLAGS, rules])
        yield chromium
        chromium.close()


@pytest.fixture
def hub_page(hub_browser, request):
    context = hub_browser.new_context()
    page = context.new_page()
    yield page
    if request.node.rep_call.failed:
        SHOTS.mkdir(exist_ok=True)
        page.screenshot(path=SHOTS / f"{request.node.name}.png")
    context.close()


@pytest.fixture
def on_a_hub(monkeypatch):
    """The kernel's environment on a JupyterHub single-user server."""
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", PREFIX)
    monkeypatch.delenv("DEMO_SERVER_PROXY", raising=False)


def connections(server: ServerThread) -> list:
    assert server.server is not None
    return list(server.server.clients)  # a set the server's thread changes: copied at once


def test_the_page_works_through_the_proxy_and_these_headers_arrive(hub, hub_page, on_a_hub):
    with ServerThread() as server:  # behind_proxy: on, from JUPYTERHUB_SERVICE_PREFIX
        url = PageFrame(server).url
        assert url == f"{PREFIX}proxy/{server.port}/socket.html" == reader_url(server)
        hub_page.goto(hub.url(url))
        hub_page.wait_for_function(SECOND_MOVES, timeout=10_000)
        first = hub_page.locator("#second").inner_text()
        hub_page.wait_for_function(
            f"document.querySelector('#second').textContent !== '{first}'", timeout=5000)
        hub_page.locator("#text").press_sequentially("hub!")
        assert server.received.wait_for(4, timeout=5)
        assert server.received.text() == "hub!"
        # What jupyter-server-proxy forwards: the browser's own headers, copied (its
        # proxy_request_headers), to ws://localhost:PORT/ws from this machine.
        (connection,) = connections(server)
        headers = connection.request.headers
        print({name: headers.get(name) for name in
               ("Host", "Origin", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto",
                "X-Forwarded-Prefix", "User-Agent")}, connection.request.path,
              connection.remote_address[:2])
        assert headers["Host"] == f"{HUB}:{hub.port}"  # the hub's, not ours
        assert headers["Origin"] == hub.origin
        assert connection.request.path == "/ws"
        assert connection.remote_address[0] in ("127.0.0.1", "::1")
        assert "Cookie" in headers  # Jupyter's login cookie travels on too
        assert not [name for name in headers if name.lower().startswith("x-forwarded")]
        (student,) = server.roster.connected()
        assert student.agent.startswith("Headless Chrome") and student.typing == "hub!"


def test_a_page_of_another_site_is_refused_every_way(hub, hub_page):
    with ServerThread(behind_proxy=True) as server:
        hub_page.route(f"http://{EVIL}/**", lambda route: route.fulfill(
            body="<!DOCTYPE html><title>another site</title>", content_type="text/html"))
        hub_page.goto(f"http://{EVIL}/")
        results = hub_page.evaluate("""urls => Promise.all(urls.map(url => new Promise(done => {
            const ws = new WebSocket(url);
            ws.onopen = () => { done('open'); ws.close(); };
            ws.onclose = e => done(`closed ${e.code}`);
        })))""", [
            f"ws://{HUB}:{hub.port}{PREFIX}proxy/{server.port}/ws",  # Jupyter refuses
            f"ws://127.0.0.1:{server.port}/ws",  # not same-origin with us
            f"ws://{EVIL}:{server.port}/ws",  # a rebound name, port ours: not a proxy
        ])
        assert results == ["closed 1006"] * 3
        assert server.roster.snapshot() == []


def test_without_behind_proxy_the_proxied_page_is_refused(hub, hub_page, on_a_hub):
    with ServerThread(behind_proxy=False) as server:
        hub_page.goto(hub.url(PageFrame(server).url))
        hub_page.wait_for_selector("#status.closed", timeout=10_000)
        assert hub_page.locator("#second").inner_text() == "–"
        assert server.roster.snapshot() == []
