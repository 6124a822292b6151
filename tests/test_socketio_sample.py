"""The bundled ``sample-socketio.pcap``: notebook 08's session for readers who cannot capture.

It is a recording (``scripts/record_socketio_sample.py``) of three servers at once: the
socket.io flavour with a polling-then-upgrading python-socketio client on 8001, the plain
``/ws`` with a ``ClientThread`` on 8002, and a long-polling-only client on 8003. These tests
check that it still shows what notebook 08 teaches from it.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import pytest
from websockets.frames import Opcode

from demo_server import capture as capture_module
from demo_server.capture import SAMPLE_PORT, capture_or_sample
from demo_server.dissect import Conversation, Direction, conversations
from demo_server.dissect.engineio import EngineIOType, SocketIOType

FILE = "sample-socketio.pcap"
SOCKETIO_PORT, PLAIN_PORT, POLLING_PORT = 8001, 8002, 8003  # as the script records them
SECONDS = 5  # the session's length


@pytest.fixture(scope="module")
def packets():
    with resources.as_file(resources.files("demo_server") / "data" / FILE) as path:
        size = path.stat().st_size
        return size, conversations(path, SOCKETIO_PORT), conversations(
            path, PLAIN_PORT), conversations(path, POLLING_PORT)


def labels(conv: Conversation) -> list[str]:
    return [m.packet.label for m in conv.messages if m.packet is not None]


def ticks(conv: Conversation) -> list[Any]:
    """The data of each ``second`` event the server sent on ``conv``."""
    found = []
    for m in conv.messages:
        socketio = m.packet.socketio if m.packet is not None else None
        if m.direction is Direction.S2C and socketio and socketio.type is SocketIOType.EVENT:
            data: Any = socketio.data
            if data[0] == "second":
                found.append(data[1])
    return found


def test_small_and_every_connection_dissects_without_warnings(packets):
    size, *runs = packets
    assert size < 100_000
    for run in runs:
        assert run and all(conv.warnings == [] for conv in run)


def test_socketio_polls_then_upgrades_with_the_same_sid(packets):
    _, sio, _, _ = packets
    assert [conv.engineio.transport for conv in sio] == ["polling", "websocket"]
    opened = sio[0].http[0].response_packets[0].engineio
    assert opened.type is EngineIOType.OPEN
    handshake = json.loads(opened.data)
    assert handshake["upgrades"] == ["websocket"]
    assert (handshake["pingInterval"], handshake["pingTimeout"]) == (2000, 1000)
    upgraded = sio[1]
    assert upgraded.handshake.upgraded and upgraded.engineio.sid == handshake["sid"]
    assert [(m.direction, m.text) for m in upgraded.messages[:3]] == [
        (Direction.C2S, "2probe"), (Direction.S2C, "3probe"), (Direction.C2S, "5")]
    found = labels(upgraded)
    assert "40 CONNECT / {}" in found and "41 DISCONNECT /" in found


def test_socketio_ticks_ack_and_text_heartbeats(packets):
    _, sio, _, _ = packets
    upgraded = sio[1]
    seconds = [tick["second"] for tick in ticks(upgraded)]
    assert len(seconds) >= SECONDS - 1 and all(0 <= s < 60 for s in seconds)
    acked = [m.text for m in upgraded.messages
             if m.packet and m.packet.socketio and m.packet.socketio.id is not None]
    assert acked == ['421["client_data","hi"]', "431[]"]
    beats = [(m.direction, m.text) for m in upgraded.messages if m.text in ("2", "3")]
    assert len(beats) >= 2 and set(beats) == {(Direction.S2C, "2"), (Direction.C2S, "3")}
    assert not any(m.opcode in (Opcode.PING, Opcode.PONG) for m in upgraded.messages)


def test_plain_ws_ticks_beside_it(packets):
    _, _, plain, _ = packets
    assert len(plain) == 1 and plain[0].engineio is None
    texts = [json.loads(m.data) for m in plain[0].messages
             if m.direction is Direction.S2C and m.opcode is Opcode.TEXT]
    assert len(texts) >= SECONDS - 1
    assert all(t["event"] == "second" and set(t["data"]) == {"second", "epoch", "sent"}
               for t in texts)
    assert all(m.packet is None for m in plain[0].messages)


def test_polling_only_carries_ticks_in_gets_and_pongs_in_posts(packets):
    _, _, _, polling = packets
    exchanges = [e for conv in polling for e in conv.http]
    assert all(conv.engineio.transport == "polling" for conv in polling)
    got = [p.label for e in exchanges if e.request.method == "GET" for p in e.response_packets]
    sent = [p.label for e in exchanges if e.request.method == "POST" for p in e.request_packets]
    assert sum(label.startswith("42 EVENT second") for label in got) >= SECONDS - 1
    assert "2 ping" in got and "3 pong" in sent and "40 CONNECT / {}" in sent


def test_capture_or_sample_yields_it_on_the_sample_port():
    assert "socketio" in capture_module.SAMPLES
    with capture_or_sample(12345, sample="socketio", backend="sample") as cap:
        pass
    assert cap.port == SAMPLE_PORT == SOCKETIO_PORT and cap.source.endswith(FILE)
    assert len(conversations(cap.packets, PLAIN_PORT)) == 1
