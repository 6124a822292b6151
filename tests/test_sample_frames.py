"""Notebook 06's sample of the other frame types: fragments, a ping between them, binary.

The sample is synthesized by scripts/make_sample_capture.py. These tests check that the
bundled file is what the script writes, that an independent parser (websockets' sans-I/O
server) accepts the client's frames as RFC 6455 allows them, and that the real demo server
answers the sample's messages as the sample says.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.frames import CloseCode, Opcode
from websockets.server import ServerProtocol

from demo_server.capture import SAMPLE_PORT, capture_or_sample, load_sample
from demo_server.dissect import Direction, dissect

from .scripts import make_sample

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make_sample_capture.py"
C2S, S2C = Direction.C2S, Direction.S2C
HELLO = '{"event":"client_data","data":"hello"}'


def frames_conversation():
    conv = dissect(load_sample("frames"), SAMPLE_PORT)
    assert conv.warnings == []
    return conv


def test_the_bundled_frames_sample_is_what_the_script_makes(tmp_path):
    subprocess.run([sys.executable, str(SCRIPT), "--out-dir", str(tmp_path)], check=True,
                   capture_output=True, timeout=60, cwd=ROOT)
    bundled = ROOT / "demo_server" / "data" / "sample-frames.pcap"
    made = (tmp_path / "sample-frames.pcap").read_bytes()
    assert made == bundled.read_bytes(), "re-run scripts/make_sample_capture.py"


def test_capture_or_sample_gives_it_by_name(capsys):
    with capture_or_sample(12345, sample="frames", backend="sample") as cap:
        pass
    assert cap.backend == "sample" and cap.port == SAMPLE_PORT
    assert cap.source.endswith("sample-frames.pcap") and capsys.readouterr().err == ""


def test_its_frames_are_the_ones_the_script_describes():
    conv = frames_conversation()
    assert conv.handshake.accept_ok and conv.handshake.deflate is None
    assert [(f.direction, f.opcode, f.fin, f.masked) for f in conv.frames] == [
        (S2C, Opcode.TEXT, True, False),
        (C2S, Opcode.TEXT, False, True),  # the first fragment
        (C2S, Opcode.PING, True, True),  # a control frame between fragments
        (S2C, Opcode.PONG, True, False),
        (C2S, Opcode.CONT, False, True),
        (C2S, Opcode.CONT, False, True),
        (C2S, Opcode.CONT, True, True),  # websockets ends with an empty final frame
        (C2S, Opcode.BINARY, True, True),
        (S2C, Opcode.TEXT, True, False),  # the server's error event
        (C2S, Opcode.CLOSE, True, True),
        (S2C, Opcode.CLOSE, True, False)]
    fragments = [f.payload for f in conv.frames if f.direction is C2S
                 and f.opcode in (Opcode.TEXT, Opcode.CONT)]
    assert fragments == [part.encode() for part in make_sample.FRAGMENTS] + [b""]
    assert b"".join(fragments) == HELLO.encode()
    keys = [f.masking_key for f in conv.frames if f.masked]
    assert keys == [make_sample.KEYS[i % 3] for i in range(len(keys))]


def test_dissect_joins_the_fragments_into_one_message():
    conv = frames_conversation()
    hello = next(m for m in conv.messages if m.direction is C2S and m.opcode is Opcode.TEXT)
    assert hello.text == HELLO and hello.frames == (1, 4, 5, 6)
    binary = next(m for m in conv.messages if m.opcode is Opcode.BINARY)
    assert binary.data == make_sample.BINARY and binary.text is None
    closes = [m.close_code for m in conv.messages if m.opcode is Opcode.CLOSE]
    assert closes == [CloseCode.NORMAL_CLOSURE] * 2


def test_websockets_server_protocol_accepts_the_clients_frames():
    """An independent parser: masking, fragment order and the ping between are all legal."""
    stream = frames_conversation().streams[C2S].data
    head, _, frames = stream.partition(b"\r\n\r\n")
    protocol = ServerProtocol()
    protocol.receive_data(head + b"\r\n\r\n")
    (request,) = protocol.events_received()
    protocol.send_response(protocol.accept(request))
    protocol.receive_data(frames)
    received = protocol.events_received()
    assert protocol.parser_exc is None
    assert [(f.opcode, f.fin) for f in received] == [
        (Opcode.TEXT, False), (Opcode.PING, True), (Opcode.CONT, False), (Opcode.CONT, False),
        (Opcode.CONT, True), (Opcode.BINARY, True), (Opcode.CLOSE, True)]


def test_the_demo_server_answers_as_the_sample_says(server):
    """Live: the fragmented client_data is recorded whole, binary gets the sample's answer."""
    conv = frames_conversation()
    sample_answer = next(m.text for m in conv.messages if m.direction is S2C
                         and m.opcode is Opcode.TEXT and '"error"' in m.text)

    async def talk() -> str:
        async with connect(server.ws_url, compression=None) as websocket:
            await websocket.send(list(make_sample.FRAGMENTS))
            await websocket.send(make_sample.BINARY)
            for _ in range(5):  # ticks may come first
                answer = await asyncio.wait_for(websocket.recv(decode=True), timeout=5)
                assert isinstance(answer, str)
                if json.loads(answer)["event"] == "error":
                    return answer
        raise AssertionError("no error event in 5 messages")

    assert asyncio.run(talk()) == sample_answer
    assert server.received.wait_for(1, timeout=5)
    assert server.received.snapshot()[-1].data == "hello"
