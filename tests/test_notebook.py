"""demo_server.notebook: what notebooks use to re-run cells and to end clean."""

from __future__ import annotations

import asyncio
import re

import pytest
from websockets.asyncio.server import ServerConnection, serve

from demo_server import ClientThread, ServerThread
from demo_server.notebook import PageFrame, demo_threads, keep, stop_all


@pytest.fixture(autouse=True)
def nothing_kept_after():
    yield
    stop_all()
    assert demo_threads() == []


def test_keep_stops_what_an_earlier_run_kept_under_that_name() -> None:
    first = keep("server", ServerThread()).start()
    second = keep("server", ServerThread()).start()  # the cell, run again
    assert not first.running and second.running
    assert keep("server", second) is second and second.running  # the same one: kept as is


def test_stop_all_stops_newest_first_so_clients_close_normally() -> None:
    server = keep("server", ServerThread()).start()
    client = keep("client", ClientThread(server.ws_url)).start()
    stop_all()
    assert client.close_code == 1000  # closed by the client, not 1001 from a stopped server
    assert not server.running
    stop_all()  # nothing left: a no-op


def test_keep_closes_a_websockets_server_and_cancels_a_task() -> None:
    async def main() -> None:
        async def idle(websocket: ServerConnection) -> None:
            await websocket.wait_closed()

        server = keep("my_server", await serve(idle, "127.0.0.1", 0))
        ticker = keep("my_ticker", asyncio.create_task(asyncio.sleep(60)))
        stop_all()
        await server.wait_closed()  # returns only once close() was called
        with pytest.raises(asyncio.CancelledError):
            await ticker

    asyncio.run(main())


def test_keep_refuses_what_it_cannot_stop() -> None:
    with pytest.raises(TypeError, match="stop\\(\\), close\\(\\) or cancel\\(\\), got int"):
        keep("number", 42)


def test_page_frame_shows_the_live_page_or_a_sketch_of_it() -> None:
    with ServerThread() as server:
        ticks = ClientThread(server.ws_url).start()
        try:
            ticks.next("second", timeout=5)  # the server has ticked at least once
        finally:
            ticks.stop()
        frame = PageFrame(server)
        shown = frame._repr_html_()
        assert shown.startswith(f'<object data="{server.page_url}" type="text/html"')
        assert server.server is not None and server.server.last_tick is not None
        assert frame.second == server.server.last_tick % 60
        assert re.search(rf'class="demo-snapshot-second"[^>]*>{frame.second}</div>', shown)
        assert 'class="demo-snapshot demo-page-snapshot"' in shown
