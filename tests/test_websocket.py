"""/ws on a real socket: ticks, client_data, bad input, limits, rate limiting."""

from __future__ import annotations

import asyncio
import gc
import itertools
import json
import logging
import socket
import time

import pytest
from websockets.asyncio.client import connect as aconnect
from websockets.exceptions import ConnectionClosedError
from websockets.frames import CloseCode, Frame, Opcode
from websockets.sync.client import connect

from demo_server import RateLimit, ServerThread

# A tick is sent right after its second starts; on a loaded 2-core machine it may be late,
# but a ticker that drifts or starts at a random phase lands anywhere in the second.
ON_TIME = 0.3


def recv_json(ws, timeout=3.0):
    return json.loads(ws.recv(timeout=timeout))


def next_event(ws, event, timeout=3.0):
    deadline = time.monotonic() + timeout
    while True:
        message = recv_json(ws, max(0.01, deadline - time.monotonic()))
        if message["event"] == event:
            return message["data"]


# -- ticks ---------------------------------------------------------------------------------

def test_ticks_arrive_on_each_wall_clock_second(server):
    with connect(server.ws_url) as ws:
        ticks = []
        for _ in range(4):
            tick = next_event(ws, "second")
            ticks.append((time.time(), tick))
    epochs = [tick["epoch"] for _, tick in ticks]
    assert epochs == list(range(epochs[0], epochs[0] + 4)), "one tick per second, in order"
    for arrived, tick in ticks:
        assert tick["second"] == tick["epoch"] % 60
        assert 0 <= tick["sent"] - tick["epoch"] < ON_TIME
        assert 0 <= arrived - tick["epoch"] < ON_TIME


def test_every_client_gets_the_same_second_at_the_same_time(server):
    with connect(server.ws_url) as a, connect(server.ws_url) as b:
        next_event(a, "second")
        next_event(b, "second")  # both now past any tick that raced the second connection
        tick_a, tick_b = next_event(a, "second"), next_event(b, "second")
    assert tick_a == tick_b  # one broadcast, same bytes, same "sent" stamp


def test_a_tick_on_the_wire_is_exactly_the_frame_websockets_would_send(server):
    # The ticker serializes a tick once and writes the bytes to each connection's transport
    # (tests/test_fast_path.py checks the connection attributes that relies on). A
    # websockets release that changes what a frame is must fail here, not on the wire.
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
        sock.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                     b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     b"Sec-WebSocket-Version: 13\r\n\r\n")
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        head, _, data = data.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101")
        while len(data) < 2 or len(data) < 2 + (data[1] & 0x7F):
            data += sock.recv(4096)
    assert data[1] & 0x7F < 126, "a tick fits the short length form"
    frame = data[:2 + (data[1] & 0x7F)]
    payload = frame[2:]
    assert json.loads(payload)["event"] == "second"
    assert frame == Frame(Opcode.TEXT, payload).serialize(mask=False)  # FIN, TEXT, no mask


def test_with_frames_logged_ticks_are_logged_too(server, caplog):
    caplog.set_level(logging.DEBUG, logger="demo_server.websockets")  # what -v does
    with connect(server.ws_url) as ws:
        next_event(ws, "second")
    sent = [r.getMessage() for r in caplog.records if r.getMessage().startswith("> TEXT")]
    assert any('"event":"second"' in line for line in sent)


async def _collect(url: str, clients: int, seconds: float) -> list[list[int]]:
    connections = [await aconnect(url) for _ in range(clients)]
    seen: list[list[int]] = [[] for _ in connections]

    async def read(i, ws):
        while True:
            seen[i].append(json.loads(await ws.recv())["data"]["epoch"])

    readers = [asyncio.create_task(read(i, ws)) for i, ws in enumerate(connections)]
    await asyncio.sleep(seconds)
    for task in readers:
        task.cancel()
    await asyncio.gather(*(ws.close() for ws in connections))
    return seen


def test_200_clients_get_every_tick_once(server):
    seen = asyncio.run(_collect(server.ws_url, 200, 3.6))
    everyone = set.intersection(*(set(epochs) for epochs in seen))
    window = range(min(everyone), max(everyone) + 1)
    assert len(window) >= 3
    for epochs in seen:
        inside = [e for e in epochs if e in window]
        assert inside == list(window), "no lost, duplicate or reordered ticks"


def test_after_a_stall_there_is_no_burst_of_stale_ticks(server):
    with connect(server.ws_url) as ws:
        next_event(ws, "second")
        server._loop.call_soon_threadsafe(time.sleep, 2.5)  # block the server's loop
        stalled_at = time.time()
        ticks = [next_event(ws, "second", timeout=5) for _ in range(3)]
    epochs = [t["epoch"] for t in ticks]
    assert epochs == sorted(set(epochs)), "never the same second twice"
    # The first tick after the stall names the second in which it was sent, not an old one.
    assert ticks[0]["epoch"] >= int(stalled_at + 2.5) - 1
    assert all(0 <= t["sent"] - t["epoch"] < 1 for t in ticks)
    assert epochs[2] - epochs[1] == 1


def test_gc_after_tick_collects_and_freezes_just_after_a_tick():
    gc.unfreeze()
    try:
        with ServerThread(gc_after_tick=True) as server:
            for _ in range(15):  # 30 connections opened or closed: more than a quarter of 100
                with connect(server.ws_url):
                    pass
            with connect(server.ws_url) as ws:
                first = next_event(ws, "second")  # sent after those 30: collects after it
                second = next_event(ws, "second")
            assert second["epoch"] == first["epoch"] + 1
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()  # leave the test process's collector as it was


# -- client_data ---------------------------------------------------------------------------

def test_client_data_is_recorded_logged_and_published(server, caplog):
    seen = []
    unsubscribe = server.received.subscribe(seen.append)
    caplog.set_level(logging.INFO, logger="demo_server")
    with connect(server.ws_url) as ws:
        for ch in "hi":
            ws.send(json.dumps({"event": "client_data", "data": ch}))
        assert server.received.wait_for(2, timeout=3)
        port = ws.local_address[1]
    unsubscribe()
    records = server.received.snapshot()
    assert [r.data for r in records] == ["h", "i"]
    assert {r.address for r in records} == {f"127.0.0.1:{port}"}
    assert records[0].client == records[1].client
    assert seen == records
    assert f"client_data from 127.0.0.1:{port}: 'h'" in caplog.text


def test_each_client_has_its_own_id(server):
    with connect(server.ws_url) as a, connect(server.ws_url) as b:
        a.send('{"event":"client_data","data":"A"}')
        b.send('{"event":"client_data","data":"B"}')
        assert server.received.wait_for(2, timeout=3)
    by_text = {r.data: r.client for r in server.received.snapshot()}
    assert by_text["A"] != by_text["B"]


BAD_INPUT = [
    ("not json", "not JSON"),
    ("[1,2]", "expected a JSON object"),
    ('{"data":"x"}', 'missing "event"'),
    ('{"event":"shout","data":"x"}', "unknown event 'shout'"),
    ('{"event":"second","data":{"second":1}}', "unknown event 'second'"),
    ('{"event":"client_data","data":42}', "must be a string"),
    (b"\x00\x01binary", "binary frames are not accepted"),
]


@pytest.mark.parametrize(("raw", "problem"), BAD_INPUT)
def test_bad_input_gets_an_error_and_nothing_else_changes(server, raw, problem):
    with connect(server.ws_url) as bad, connect(server.ws_url) as bystander:
        bad.send(raw)
        assert problem in next_event(bad, "error")["message"]
        # The same connection still works, and the other client never noticed.
        bad.send('{"event":"client_data","data":"ok"}')
        assert server.received.wait_for(1, timeout=3)
        assert server.received.text() == "ok"
        assert next_event(bystander, "second")["second"] in range(60)
        assert next_event(bad, "second")["second"] in range(60)


def test_invalid_utf8_is_closed_by_the_library_with_1007(server):
    with connect(server.ws_url) as ws:
        # A text frame whose bytes are not UTF-8: sent through the protocol layer on purpose.
        with ws.protocol_mutex:
            ws.protocol.send_text(b"\xff\xfe")
            ws.send_data()
        with pytest.raises(ConnectionClosedError):
            while True:
                ws.recv(timeout=3)
        assert ws.protocol.close_rcvd.code == CloseCode.INVALID_DATA
    assert http_ok(server)


def test_a_frame_over_max_size_is_closed_with_1009():
    with ServerThread(max_size=1024) as server, connect(server.ws_url) as ws:
        ws.send(json.dumps({"event": "client_data", "data": "x" * 2000}))
        with pytest.raises(ConnectionClosedError):
            while True:
                ws.recv(timeout=3)
        assert ws.protocol.close_rcvd.code == CloseCode.MESSAGE_TOO_BIG
        assert server.received.total == 0


def http_ok(server) -> bool:
    with connect(server.ws_url) as ws:
        return next_event(ws, "second")["second"] in range(60)


# -- rate limiting -------------------------------------------------------------------------

def test_a_flooder_is_slowed_down_loses_nothing_and_delays_no_one():
    limit = RateLimit(rate=20, burst=10)
    with (
        ServerThread(rate_limit=limit) as server,
        connect(server.ws_url) as other,
        connect(server.ws_url) as flooder,
    ):
        started = time.monotonic()
        for i in range(60):
            flooder.send(json.dumps({"event": "client_data", "data": str(i)}))
        ticks = []
        for _ in range(2):
            ticks.append((next_event(other, "second", timeout=4), time.time()))
        assert server.received.wait_for(60, timeout=10)
        took = time.monotonic() - started
    assert [r.data for r in server.received.snapshot()] == [str(i) for i in range(60)]
    assert took >= (60 - limit.burst) / limit.rate * 0.9  # 50 over the burst at 20/s: 2.5 s
    for tick, arrived in ticks:
        assert 0 <= arrived - tick["epoch"] < ON_TIME


def test_rate_limit_off_processes_at_full_speed():
    with ServerThread(rate_limit=None) as server, connect(server.ws_url) as ws:
        started = time.monotonic()
        for i in range(500):
            ws.send(json.dumps({"event": "client_data", "data": str(i)}))
        assert server.received.wait_for(500, timeout=10)
        assert time.monotonic() - started < 2.5  # a 50/s limit would need 8 s


@pytest.mark.parametrize(("rate", "burst"), [(0, 10), (-1, 10), (10, 0)])
def test_nonsense_rate_limits_are_refused(rate, burst):
    with pytest.raises(ValueError):
        RateLimit(rate=rate, burst=burst)


# -- compression ---------------------------------------------------------------------------

def test_compression_is_off_by_default(server):
    with connect(server.ws_url, compression="deflate") as ws:
        assert ws.protocol.extensions == []
        assert next_event(ws, "second")


def test_compression_on_negotiates_permessage_deflate():
    with ServerThread(compression=True) as server, connect(server.ws_url) as ws:
        assert [e.name for e in ws.protocol.extensions] == ["permessage-deflate"]
        assert next_event(ws, "second")["second"] in range(60)


# -- /ws/sensor ----------------------------------------------------------------------------

def test_the_sensor_stream_pushes_every_change_as_it_happens(server):
    sensor = server.server.sensor
    with connect(server.sensor_url) as ws:
        first = next_event(ws, "sensor")
        assert first["value"] == sensor.value_at(first["t"])
        changes = []
        for _ in range(4):  # two spikes: up, down, up, down (one spike per 2 s period)
            changes.append((next_event(ws, "sensor", timeout=5), time.time()))
    truth = dict(itertools.islice(sensor.changes(first["t"]), 4))
    assert [c["t"] for c, _ in changes] == pytest.approx(list(truth), abs=1e-6)
    assert [c["value"] for c, _ in changes] == list(truth.values())
    for change, arrived in changes:
        assert 0 <= arrived - change["t"] < ON_TIME


def test_the_sensor_stream_answers_chatter_with_an_error(server):
    with connect(server.sensor_url) as ws:
        next_event(ws, "sensor")
        ws.send('{"event":"client_data","data":"x"}')
        assert "only pushes readings" in next_event(ws, "error")["message"]
    assert server.received.total == 0


def test_sensor_listeners_get_no_ticks_and_tick_listeners_no_readings(server):
    with connect(server.sensor_url) as sensor_ws, connect(server.ws_url) as tick_ws:
        events = {recv_json(sensor_ws, 5)["event"] for _ in range(2)}
        events_ticks = {recv_json(tick_ws, 3)["event"] for _ in range(2)}
    assert events == {"sensor"}
    assert events_ticks == {"second"}
