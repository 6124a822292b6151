"""dissect on socket.io traffic: long-polling exchanges, the upgrade, Engine.IO and Socket.IO.

``data/socketio-node/socketio-node.pcap`` is a recording of the article's own stack (Node,
express 5, socket.io 4.8 and the official socket.io-client 4.8; ``make_capture.py`` beside
it says how it was made); synthetic flows cover what a recording cannot choose (keep-alive,
chunked bodies, garbage). Live captures of our socket.io flavour are in test_socketio.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from websockets.frames import Opcode

from demo_server.dissect import conversations, dissect

from .test_dissect import C2S, S2C, TcpFlow, encode_frame, flow_with, handshake_bytes, run_cli

NODE = Path(__file__).parent / "data" / "socketio-node"
NODE_PCAP = NODE / "socketio-node.pcap"
NODE_PORT = int((NODE / "port.txt").read_text())


def node_json() -> dict:
    done = run_cli(str(NODE_PCAP), "--port", str(NODE_PORT), "--all", "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_node_session_is_polling_then_one_upgraded_websocket():
    found = node_json()["connections"]
    upgraded = [c for c in found if c["handshake"]["response"]["status"] == 101]
    assert len(upgraded) == 1 and len(found) >= 3
    polling = [c for c in found if c is not upgraded[0]]
    assert all(c["engineio"]["transport"] == "polling" and c["frames"] == [] for c in polling)
    sid = upgraded[0]["engineio"]["sid"]
    assert upgraded[0]["engineio"] == {"eio": "4", "transport": "websocket", "sid": sid}
    # the first request opens the session: its answer is the open packet with that sid
    first = found[0]["http"][0]
    assert first["request"]["method"] == "GET" and "sid=" not in first["request"]["path"]
    (opened,) = first["response"]["packets"]
    assert opened["engineio"]["type"] == "open" and opened["socketio"] is None
    assert json.loads(opened["engineio"]["data"])["sid"] == sid
    assert all(c["engineio"]["sid"] == sid for c in found[1:])
    assert all(not c["warnings"] for c in found)


def test_node_session_polling_bodies_are_engineio_packets():
    exchanges = [e for c in node_json()["connections"] for e in c.get("http", [])]
    posts = [e for e in exchanges if e["request"]["method"] == "POST"]
    assert posts and all(e["response"]["body"] == "ok" and e["response"]["packets"] == []
                         for e in posts)
    sent = [p["socketio"] for e in posts for p in e["request"]["packets"]]
    assert {"type": "CONNECT", "namespace": "/", "id": None, "data": None} in sent
    got = [p["socketio"] for e in exchanges for p in e["response"].get("packets", [])
           if p["socketio"]]
    connected = [p for p in got if p["type"] == "CONNECT"]
    assert {p["namespace"] for p in connected} == {"/", "/admin"}
    assert all(set(p["data"]) == {"sid"} for p in connected)
    # two packets in one body, separated by \x1e
    assert any(len(e["response"].get("packets", [])) == 2 for e in exchanges)


def test_node_session_websocket_messages_carry_both_layers():
    (ws,) = [c for c in node_json()["connections"] if c["frames"]]
    texts = [(m["direction"], m.get("text")) for m in ws["messages"]]
    assert texts[:3] == [("c2s", "2probe"), ("s2c", "3probe"), ("c2s", "5")]
    kinds = [m["engineio"] and m["engineio"]["type"] for m in ws["messages"]]
    assert kinds[:3] == ["ping", "pong", "upgrade"]
    # Engine.IO v4 heartbeats are text frames: the server pings, the client answers
    assert any(m.get("text") == "2" and m["direction"] == "s2c" for m in ws["messages"])
    assert any(m.get("text") == "3" and m["direction"] == "c2s" for m in ws["messages"])
    assert not any(m["opcode_name"] in ("PING", "PONG") for m in ws["messages"])
    seconds = [m for m in ws["messages"] if m.get("text", "").startswith('42["second"')]
    assert len(seconds) >= 3
    for tick in seconds:
        assert tick["engineio"] == {"type": "message", "data": tick["text"][1:]}
        name, data = tick["socketio"].pop("data")
        assert tick["socketio"] == {"type": "EVENT", "namespace": "/", "id": None}
        assert name == "second" and set(data) == {"second"} and 0 <= data["second"] <= 59
    socketio = [m["socketio"] for m in ws["messages"] if m["socketio"]]
    ack = next(p for p in socketio if p["type"] == "ACK")
    asked = next(p for p in socketio if p["type"] == "EVENT" and p["id"] == ack["id"])
    assert asked["data"][0] == "with_ack" and ack["data"] == [{"got": "ping?"}]
    binary = [m for m in ws["messages"] if m["opcode_name"] == "BINARY"]
    assert [m["engineio"] for m in binary] == [{"type": "message", "data": "62696e"},
                                               {"type": "message", "data": "010203"}]
    assert all(m["socketio"] is None for m in binary)
    closes = [m for m in ws["messages"] if m["opcode_name"] == "CLOSE"]
    assert closes and all(m["engineio"] is None and m["socketio"] is None for m in closes)
    assert {"type": "DISCONNECT", "namespace": "/", "id": None, "data": None} in [
        m["socketio"] for m in ws["messages"]]


def test_node_session_table_names_the_packets():
    done = run_cli(str(NODE_PCAP), "--port", str(NODE_PORT), "--all")
    assert done.returncode == 0, done.stderr
    for line in ('42 EVENT second {"second":', "2 ping probe", "3 pong probe", "5 upgrade",
                 "40 CONNECT /admin", "0 open sid=", "45 BINARY_EVENT attachments=1 upload",
                 "41 DISCONNECT /"):
        assert line in done.stdout, line
    assert done.stdout.count("\nconnection ") + 1 == len(conversations(NODE_PCAP, NODE_PORT))


def test_single_connection_output_is_the_websocket_one():
    done = run_cli(str(NODE_PCAP), "--port", str(NODE_PORT), "--json")
    assert done.returncode == 0, done.stderr
    (ws,) = [c for c in node_json()["connections"] if c["frames"]]
    assert json.loads(done.stdout) == ws


def test_plain_websocket_has_no_engineio_keys_and_all_wraps_it():
    flow = flow_with([(S2C, encode_frame(Opcode.TEXT, b'{"event":"second","data":{"second":1}}'))])
    conv = dissect(flow.packets, 8001)
    out = conv.to_dict()
    assert "engineio" not in out and "http" not in out
    assert all("engineio" not in m and "socketio" not in m for m in out["messages"])


def polling_flow(*exchanges: tuple[bytes, bytes]) -> TcpFlow:
    flow = TcpFlow()
    flow.open(1.0)
    for i, (request, response) in enumerate(exchanges):
        flow.send(C2S, request, 2.0 + i)
        flow.send(S2C, response, 2.5 + i)
    return flow


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode()


def post(path: str, body: bytes) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body)


def ok(body: bytes, *, chunked: bool = False) -> bytes:
    if chunked:
        return (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                + b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:3], body[3:]))
                + b"0\r\n\r\n")
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_keep_alive_polling_reads_every_exchange_and_chunked_bodies():
    path = "/socket.io/?EIO=4&transport=polling&sid=abc"
    flow = polling_flow((get(path), ok(b'42["second",{"second":7}]\x1e2', chunked=True)),
                        (post(path, b'42["client_data","\xe4\xbd\xa0"]\x1e3'), ok(b"ok")),
                        (get(path), ok(b"6")))
    (conv,) = conversations(flow.packets, 8001)
    assert conv.warnings == []
    assert [e.request.method for e in conv.http] == ["GET", "POST", "GET"]
    labels = [[p.label for p in e.request_packets + e.response_packets] for e in conv.http]
    assert labels == [['42 EVENT second {"second":7}', "2 ping"],
                      ['42 EVENT client_data "你"', "3 pong"], ["6 noop"]]
    assert conv.http[1].request_body.decode().startswith("42")
    assert [e.response_end for e in conv.http] == sorted(e.response_end for e in conv.http)


def test_plain_http_connection_is_not_a_warning_but_asking_dissect_for_one_is():
    flow = polling_flow((get("/second"), ok(b'{"second": 3}')))
    (conv,) = conversations(flow.packets, 8001)
    assert conv.warnings == [] and conv.engineio is None
    assert conv.to_dict()["http"][0]["response"]["body"] == '{"second": 3}'
    assert "packets" not in conv.to_dict()["http"][0]["request"]
    asked = dissect(flow.packets, 8001)
    assert asked.warnings == ["no WebSocket handshake: GET /second is not a WebSocket "
                              "upgrade request"]


@pytest.mark.parametrize("text, warning", [
    ("", "message 1: not Engine.IO/Socket.IO"),
    ("9oops", "unknown Engine.IO packet type"),
    ('42["second",{"second":', "message 1: not Engine.IO/Socket.IO"),
    ("4/admin", "message 1: not Engine.IO/Socket.IO"),
])
def test_garbage_on_an_engineio_websocket_is_a_warning(text, warning):
    request, response = handshake_bytes()
    path = b"/socket.io/?EIO=4&transport=websocket"
    flow = TcpFlow()
    flow.open(1.0)
    flow.send(C2S, request.replace(b"/ws", path, 1), 1.1)
    flow.send(S2C, response, 1.2)
    flow.send(S2C, encode_frame(Opcode.TEXT, text.encode()), 1.3)
    flow.send(S2C, encode_frame(Opcode.TEXT, b'42["second",{"second":1}]'), 1.4)
    conv = dissect(flow.packets, 8001)
    assert any(warning in w for w in conv.warnings), conv.warnings
    first, second = conv.to_dict()["messages"]
    assert first["engineio"] is None and first["socketio"] is None
    assert second["socketio"]["data"] == ["second", {"second": 1}]  # it goes on


def test_attachments_are_counted():
    request, response = handshake_bytes()
    flow = TcpFlow()
    flow.open(1.0)
    flow.send(C2S, request.replace(b"/ws", b"/socket.io/?EIO=4&transport=websocket", 1), 1.1)
    flow.send(S2C, response, 1.2)
    flow.send(S2C, encode_frame(Opcode.BINARY, b"\x01\x02"), 1.3)  # announced by nothing
    flow.send(S2C, encode_frame(Opcode.TEXT, b'452-["x",{"_placeholder":true,"num":0},'
                                b'{"_placeholder":true,"num":1}]'), 1.4)
    flow.send(S2C, encode_frame(Opcode.BINARY, b"\x03"), 1.5)  # the second never comes
    conv = dissect(flow.packets, 8001)
    assert conv.warnings == ["message 1: a binary message no BINARY_EVENT or BINARY_ACK announced",
                             "s2c: 1 binary attachment(s) announced but not captured"]


def test_bad_polling_body_is_a_warning_and_the_rest_is_kept():
    path = "/socket.io/?EIO=4&transport=polling&sid=abc"
    flow = polling_flow((get(path), ok(b"4\xff\xfe")), (get(path), ok(b"2")))
    (conv,) = conversations(flow.packets, 8001)
    assert len(conv.http) == 2 and conv.http[1].response_packets[0].label == "2 ping"
    assert len(conv.warnings) == 1 and "HTTP exchange 1, response body" in conv.warnings[0]


def test_all_rejects_client_port_and_reports_no_traffic(tmp_path):
    done = run_cli(str(NODE_PCAP), "--port", str(NODE_PORT), "--all", "--client-port", "1")
    assert done.returncode == 2 and "do not go together" in done.stderr
    done = run_cli(str(NODE_PCAP), "--port", "1", "--all")
    assert done.returncode == 2 and done.stderr == "dissect: no TCP packets to or from port 1\n"
