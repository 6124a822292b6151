"""demo_server.dissect.engineio: golden vectors from the specs and the article's session, checked
against python-engineio / python-socketio's own decoders; bad input raises only our error."""

from __future__ import annotations

import json
import random

import pytest
from engineio.packet import Packet as ReferenceEngineIOPacket
from engineio.payload import Payload as ReferencePayload
from socketio.packet import Packet as ReferenceSocketIOPacket

from demo_server.dissect.engineio import (
    EngineIODecodeError,
    EngineIOPacket,
    EngineIOQuery,
    EngineIOType,
    JSONValue,
    SocketIOPacket,
    SocketIOType,
    decode_engineio,
    decode_polling_payload,
    decode_socketio,
    is_engineio_path,
    is_polling_ack,
    message_label,
    parse_engineio_query,
    socketio_in,
)

HANDSHAKE = ('{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,'
             '"pingTimeout":20000,"maxPayload":1000000}')
PLACEHOLDER: dict[str, JSONValue] = {"_placeholder": True, "num": 0}


def sio(kind: str, data: object = None, namespace: str = "/", ack: int | None = None) -> dict:
    return {"type": kind, "namespace": namespace, "id": ack, "data": data}


# (text on the wire, Engine.IO type, Socket.IO dict or None, table label)
TEXT_VECTORS = [
    # Engine.IO, every type (spec "Packet encoding" and the article's session)
    ("0" + HANDSHAKE, "open", None,
     "0 open sid=lv_VI97HAXpY6yYWAAAC upgrades=websocket pingInterval=25000 "
     "pingTimeout=20000 maxPayload=1000000"),
    ("1", "close", None, "1 close"),
    ("2", "ping", None, "2 ping"),
    ("3", "pong", None, "3 pong"),
    ("2probe", "ping", None, "2 ping probe"),
    ("3probe", "pong", None, "3 pong probe"),
    ("5", "upgrade", None, "5 upgrade"),
    ("6", "noop", None, "6 noop"),
    # Socket.IO inside Engine.IO messages: the article's frames
    ("40", "message", sio("CONNECT"), "40 CONNECT /"),
    ('40{"sid":"wZX3oN0bSVIhsaknAAAI"}', "message", sio("CONNECT", {"sid": "wZX3oN0bSVIhsaknAAAI"}),
     '40 CONNECT / {"sid":"wZX3oN0bSVIhsaknAAAI"}'),
    ('42["second",{"second":16}]', "message", sio("EVENT", ["second", {"second": 16}]),
     '42 EVENT second {"second":16}'),
    ('42["client_data","a"]', "message", sio("EVENT", ["client_data", "a"]),
     '42 EVENT client_data "a"'),
    ("41", "message", sio("DISCONNECT"), "41 DISCONNECT /"),
    # the Socket.IO spec's encoding tables and sample session
    ("40/admin,", "message", sio("CONNECT", namespace="/admin"), "40 CONNECT /admin"),
    ('40/admin,{"sid":"oSO0OpakMV_3jnilAAAA"}', "message",
     sio("CONNECT", {"sid": "oSO0OpakMV_3jnilAAAA"}, "/admin"),
     '40 CONNECT /admin {"sid":"oSO0OpakMV_3jnilAAAA"}'),
    ('40/admin,{"token":"123"}', "message", sio("CONNECT", {"token": "123"}, "/admin"),
     '40 CONNECT /admin {"token":"123"}'),
    ('44{"message":"Not authorized"}', "message",
     sio("CONNECT_ERROR", {"message": "Not authorized"}),
     '44 CONNECT_ERROR / {"message":"Not authorized"}'),
    ('44"Not authorized"', "message", sio("CONNECT_ERROR", "Not authorized"),
     '44 CONNECT_ERROR / "Not authorized"'),
    ("41/admin,", "message", sio("DISCONNECT", namespace="/admin"), "41 DISCONNECT /admin"),
    ('42["foo"]', "message", sio("EVENT", ["foo"]), "42 EVENT foo"),
    ('42/admin,["bar"]', "message", sio("EVENT", ["bar"], "/admin"), "42 EVENT /admin bar"),
    ('4212["foo"]', "message", sio("EVENT", ["foo"], ack=12), "42 EVENT id=12 foo"),
    ("4312[]", "message", sio("ACK", [], ack=12), "43 ACK id=12 []"),
    ('42/admin,13["foo"]', "message", sio("EVENT", ["foo"], "/admin", 13),
     "42 EVENT /admin id=13 foo"),
    ('43/admin,13["bar"]', "message", sio("ACK", ["bar"], "/admin", 13),
     '43 ACK /admin id=13 ["bar"]'),
    ('42/admin,1["tellme"]', "message", sio("EVENT", ["tellme"], "/admin", 1),
     "42 EVENT /admin id=1 tellme"),
    ("430", "message", sio("ACK", ack=0), "43 ACK id=0"),
    ("42[7]", "message", sio("EVENT", [7]), "42 EVENT 7"),
    # binary events and acks: placeholders in the text, attachments in the next messages
    ('451-["baz",{"_placeholder":true,"num":0}]', "message",
     sio("BINARY_EVENT", ["baz", PLACEHOLDER]),
     '45 BINARY_EVENT attachments=1 baz {"_placeholder":true,"num":0}'),
    ('452-/admin,["baz",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]', "message",
     sio("BINARY_EVENT", ["baz", PLACEHOLDER, {"_placeholder": True, "num": 1}], "/admin"),
     '45 BINARY_EVENT /admin attachments=2 baz {"_placeholder":true,"num":0} '
     '{"_placeholder":true,"num":1}'),
    ('451-14["foo",{"_placeholder":true,"num":0}]', "message",
     sio("BINARY_EVENT", ["foo", PLACEHOLDER], ack=14),
     '45 BINARY_EVENT id=14 attachments=1 foo {"_placeholder":true,"num":0}'),
    ('461-15["bar",{"_placeholder":true,"num":0}]', "message",
     sio("BINARY_ACK", ["bar", PLACEHOLDER], ack=15),
     '46 BINARY_ACK id=15 attachments=1 ["bar",{"_placeholder":true,"num":0}]'),
    ('461-/admin,1[{"_placeholder":true,"num":0}]', "message",
     sio("BINARY_ACK", [PLACEHOLDER], "/admin", 1),
     '46 BINARY_ACK /admin id=1 attachments=1 [{"_placeholder":true,"num":0}]'),
    ('452-["pair",{"b":{"_placeholder":true,"num":1},"a":[{"_placeholder":true,"num":0}]}]',
     "message",
     sio("BINARY_EVENT", ["pair", {"b": {"_placeholder": True, "num": 1}, "a": [PLACEHOLDER]}]),
     '45 BINARY_EVENT attachments=2 pair '
     '{"b":{"_placeholder":true,"num":1},"a":[{"_placeholder":true,"num":0}]}'),
    # unicode: in the event, in its data, in the namespace
    ('42["client_data","秒 ü € 😀"]', "message", sio("EVENT", ["client_data", "秒 ü € 😀"]),
     '42 EVENT client_data "秒 ü € 😀"'),
    ('42/聊天,["訊息",{"text":"\\u4f60\\u597d"}]', "message",
     sio("EVENT", ["訊息", {"text": "你好"}], "/聊天"), '42 EVENT /聊天 訊息 {"text":"你好"}'),
]


@pytest.mark.parametrize(("wire", "engineio", "socketio", "label"), TEXT_VECTORS,
                         ids=[vector[0][:40] for vector in TEXT_VECTORS])
def test_golden_text_vector(wire: str, engineio: str, socketio: dict | None, label: str) -> None:
    packet = decode_engineio(wire)
    inner = socketio_in(packet)
    assert packet.to_json() == {"type": engineio, "data": wire[1:]}  # the text after the digit
    assert (inner.to_json() if inner else None) == socketio
    assert message_label(packet, inner) == label
    json.dumps({"engineio": packet.to_json(), "socketio": inner and inner.to_json()})


def test_types_are_named_as_the_issue_says() -> None:
    assert [kind.name.lower() for kind in EngineIOType] == [
        "open", "close", "ping", "pong", "message", "upgrade", "noop"]
    assert [kind.name for kind in SocketIOType] == [
        "CONNECT", "DISCONNECT", "EVENT", "ACK", "CONNECT_ERROR", "BINARY_EVENT", "BINARY_ACK"]
    assert [int(kind) for kind in SocketIOType] == list(range(7))


def test_typed_fields() -> None:
    assert decode_engineio("2probe") == EngineIOPacket(EngineIOType.PING, "probe")
    assert decode_socketio('51-/admin,7["a",{"_placeholder":true,"num":0}]') == SocketIOPacket(
        SocketIOType.BINARY_EVENT, "/admin", 7, ["a", PLACEHOLDER], attachments=1)
    assert decode_socketio('2["a"]').attachments is None


def test_binary_messages() -> None:
    """EIO 4: a binary WebSocket message is a message as is; polling sends it as b + base64."""
    attachment = decode_engineio(bytes([1, 2, 3, 4]))
    assert attachment == EngineIOPacket(EngineIOType.MESSAGE, b"\x01\x02\x03\x04")
    assert attachment.to_json() == {"type": "message", "data": "01020304"}
    assert socketio_in(attachment) is None  # the attachment of the BINARY_* before it
    assert message_label(attachment) == "binary message (4 bytes) 01020304"
    assert decode_engineio("bAQIDBA==") == attachment
    assert decode_engineio(b"") == EngineIOPacket(EngineIOType.MESSAGE, b"")
    assert decode_engineio("b") == EngineIOPacket(EngineIOType.MESSAGE, b"")
    assert message_label(decode_engineio(bytes(range(40)))) == (
        f"binary message (40 bytes) {bytes(range(16)).hex()}…")


def test_engineio_message_that_is_not_socketio() -> None:
    """A bare Engine.IO app may send any text: Engine.IO decodes it, Socket.IO refuses it."""
    packet = decode_engineio("4HelloWorld")
    assert packet.to_json() == {"type": "message", "data": "HelloWorld"}
    assert message_label(packet) == "4 message HelloWorld"
    with pytest.raises(EngineIODecodeError, match="unknown Socket.IO packet type 'H'"):
        socketio_in(packet)


def test_polling_bodies_of_the_article_session() -> None:
    """The bodies of the article's polling requests and responses, in order."""
    opened = decode_polling_payload(("0" + HANDSHAKE).encode())
    assert opened == [EngineIOPacket(EngineIOType.OPEN, HANDSHAKE)]
    assert decode_polling_payload(b"40") == [EngineIOPacket(EngineIOType.MESSAGE, "0")]
    assert is_polling_ack(b"ok") and is_polling_ack("ok") and is_polling_ack(b"OK")
    assert not is_polling_ack(b"40") and not is_polling_ack(b"")
    granted = decode_polling_payload(b'40{"sid":"wZX3oN0bSVIhsaknAAAI"}')
    assert socketio_in(granted[0]) == SocketIOPacket(
        SocketIOType.CONNECT, data={"sid": "wZX3oN0bSVIhsaknAAAI"})


def test_polling_payload_with_several_packets_and_binary() -> None:
    body = '42["hello"]\x1e42["world"]\x1e2\x1ebAQIDBA==\x1e42["秒"]'.encode()
    packets = decode_polling_payload(body)
    assert [packet.to_json() for packet in packets] == [
        {"type": "message", "data": '2["hello"]'},
        {"type": "message", "data": '2["world"]'},
        {"type": "ping", "data": ""},
        {"type": "message", "data": "01020304"},
        {"type": "message", "data": '2["秒"]'},
    ]
    assert [message_label(p, socketio_in(p)) for p in packets] == [
        "42 EVENT hello", "42 EVENT world", "2 ping", "binary message (4 bytes) 01020304",
        "42 EVENT 秒"]
    assert decode_polling_payload(b"") == []
    assert decode_polling_payload("4hello\x1e2\x1e4world") == [  # the Engine.IO spec's example
        EngineIOPacket(EngineIOType.MESSAGE, "hello"), EngineIOPacket(EngineIOType.PING),
        EngineIOPacket(EngineIOType.MESSAGE, "world")]


POLLING_BODIES = [
    "0" + HANDSHAKE,
    '40{"sid":"wZX3oN0bSVIhsaknAAAI"}\x1e42["second",{"second":16}]',
    '42["hello"]\x1e42["world"]',
    "4hello\x1ebAQIDBA==",
    "4hello\x1e2\x1e4world",
    '6\x1e451-["a",{"_placeholder":true,"num":0}]\x1ebAQI=\x1e3probe\x1e1',
]


@pytest.mark.parametrize("body", POLLING_BODIES)
def test_polling_payload_agrees_with_python_engineio(body: str) -> None:
    ours = decode_polling_payload(body)
    theirs = ReferencePayload(encoded_payload=body).packets
    assert len(ours) == len(theirs)
    for mine, reference in zip(ours, theirs, strict=True):
        assert_engineio_agrees(mine, reference)


def assert_engineio_agrees(ours: EngineIOPacket, reference: ReferenceEngineIOPacket) -> None:
    """python-engineio parses data as JSON when it can: compare the JSON then, else as is."""
    assert int(ours.type) == reference.packet_type
    if isinstance(reference.data, (str, bytes)):
        assert ours.data == reference.data
    else:
        assert isinstance(ours.data, str)
        assert json.dumps(json.loads(ours.data)) == json.dumps(reference.data)


def assert_agrees_with_references(message: str | bytes) -> None:
    """Our decoding of a message we accept is python-engineio's and python-socketio's."""
    packet = decode_engineio(message)
    assert_engineio_agrees(packet, ReferenceEngineIOPacket(encoded_packet=message))
    inner = socketio_in(packet)
    if inner is None:
        return
    assert isinstance(packet.data, str)
    reference = ReferenceSocketIOPacket(encoded_packet=packet.data)
    assert (int(inner.type), inner.namespace, inner.id, inner.attachments or 0) == (
        reference.packet_type, reference.namespace or "/", reference.id,
        reference.attachment_count)
    assert json.dumps(inner.data) == json.dumps(reference.data)


@pytest.mark.parametrize("wire", [vector[0] for vector in TEXT_VECTORS] + [b"\x00\xff", b""])
def test_vector_agrees_with_python_engineio_and_socketio(wire: str | bytes) -> None:
    assert_agrees_with_references(wire)


# (type, data, namespace, ack id) as python-socketio emits them; bytes become attachments
EMITTED = [
    (SocketIOType.CONNECT, None, "/", None),
    (SocketIOType.CONNECT, {"sid": "oSO0OpakMV_3jnilAAAA"}, "/admin", None),
    (SocketIOType.EVENT, ["second", {"second": 16}], "/", None),
    (SocketIOType.EVENT, ["client_data", "秒 😀"], "/聊天", 7),
    (SocketIOType.ACK, [], "/", 0),
    (SocketIOType.EVENT, ["baz", b"\x01\x02", {"more": [b"\x03", b""]}], "/admin", 14),
    (SocketIOType.ACK, ["bar", bytes(range(256))], "/", 15),
    (SocketIOType.CONNECT_ERROR, {"message": "Not authorized"}, "/", None),
    (SocketIOType.DISCONNECT, None, "/admin", None),
]


BINARY_OF = {SocketIOType.EVENT: SocketIOType.BINARY_EVENT,
             SocketIOType.ACK: SocketIOType.BINARY_ACK}


@pytest.mark.parametrize("transport", ["polling", "websocket"])
def test_decodes_what_python_socketio_encodes(transport: str) -> None:
    """Every packet python-socketio emits, binary ones as a text packet plus attachments,
    sent in one polling body (base64 binary) or as WebSocket messages, decodes back to it."""
    messages = []
    for kind, data, namespace, ack in EMITTED:
        encoded = ReferenceSocketIOPacket(int(kind), data, namespace, ack).encode()
        parts = encoded if isinstance(encoded, list) else [encoded]
        messages += [ReferenceEngineIOPacket(4, part) for part in parts]
    if transport == "polling":
        body = ReferencePayload(packets=messages).encode().encode()
        packets = decode_polling_payload(body)
    else:
        packets = [decode_engineio(message.encode()) for message in messages]
    for kind, data, namespace, ack in EMITTED:
        inner = socketio_in(packets.pop(0))
        assert inner is not None
        attachments = [packets.pop(0).data for _ in range(inner.attachments or 0)]
        assert all(isinstance(attachment, bytes) for attachment in attachments)
        assert inner.type is (BINARY_OF[kind] if attachments else kind)
        assert (inner.namespace, inner.id) == (namespace, ack)
        assert ReferenceSocketIOPacket.reconstruct_binary(inner.data, attachments) == data
    assert packets == []


BAD_ENGINEIO = [
    ("", "empty Engine.IO packet"),
    ("7", "unknown Engine.IO packet type '7'"),
    ("9hello", "unknown Engine.IO packet type '9'"),
    ("x", "unknown Engine.IO packet type 'x'"),
    ("٣", "unknown Engine.IO packet type '٣'"),  # a digit, but not ASCII
    (" 2", "unknown Engine.IO packet type ' '"),
    ("bA=", "bad base64"),
    ("bAQID*A==", "bad base64"),
    ("0", "open packet data is not valid JSON"),
    ('0{"sid":', "open packet data is not valid JSON"),
    ('0["sid"]', "open packet data is not a JSON object"),
]

BAD_SOCKETIO = [
    ("", "empty Socket.IO packet"),
    ("7", "unknown Socket.IO packet type '7'"),
    ("{}", "unknown Socket.IO packet type '{'"),
    ("2", "EVENT payload must be a non-empty JSON array"),
    ("2[]", "EVENT payload must be a non-empty JSON array"),
    ('2{"a":1}', "EVENT payload must be a non-empty JSON array"),
    ('2"second"', "EVENT payload must be a non-empty JSON array"),
    ("2[true]", "EVENT name (the array's first item) must be a string or a number, not true"),
    ("2[null]", "EVENT name (the array's first item) must be a string or a number, not null"),
    ("2[{}]", "EVENT name"),
    ('2["a"', "EVENT payload is not valid JSON"),
    ('2["a",NaN]', "EVENT payload is not valid JSON (NaN is not JSON)"),
    ('2["a",Infinity]', "EVENT payload is not valid JSON"),
    ("2/admin", "EVENT payload must be a non-empty JSON array"),  # namespace, then nothing
    ('2/admin["a"]', "EVENT payload must be a non-empty JSON array"),  # no comma: all namespace
    ('2,["a"]', "EVENT payload is not valid JSON"),  # a namespace must start with /
    ('2-1["a"]', "EVENT payload is not valid JSON"),
    ('2٣["a"]', "EVENT payload is not valid JSON"),  # ack ids are ASCII digits only
    ('2²["a"]', "EVENT payload is not valid JSON"),
    ('29007199254740992["a"]', "bad ack id '9007199254740992'"),
    ("2" + "9" * 5000 + '["a"]', "bad ack id"),
    ("0[]", "CONNECT payload must be a JSON object, not []"),
    ('0"x"', "CONNECT payload must be a JSON object"),
    ("0null", "CONNECT payload must be a JSON object, not null"),
    ("1{}", "DISCONNECT carries no payload"),
    ("1/admin,[1]", "DISCONNECT carries no payload"),
    ("4[1]", "CONNECT_ERROR payload must be a JSON object or string"),
    ("3[]", "ACK without an ack id"),
    ("3/admin,", "ACK without an ack id"),
    ('31{"a":1}', "ACK payload must be a JSON array"),
    ('5["a"]', "BINARY_EVENT must start with its attachment count and '-'"),
    ('51["a"]', "BINARY_EVENT must start with its attachment count and '-'"),
    ('5-["a"]', "BINARY_EVENT must start with its attachment count and '-'"),
    ('50-["a"]', "BINARY_EVENT attachment count must be 1 or more, not 0"),
    ("5" + "1" * 30 + '-["a"]', "bad BINARY_EVENT attachment count"),
    ('51-["a"]',
     "BINARY_EVENT declares 1 attachment(s) but its placeholders number [], expected 0 to 0"),
    ('52-["a",{"_placeholder":true,"num":0}]', "declares 2 attachment(s)"),
    ('51-["a",{"_placeholder":true,"num":1}]', "placeholders number [1], expected 0 to 0"),
    ('51-["a",{"_placeholder":true,"num":"0"}]', "placeholders number [\"0\"]"),
    ('51-["a",{"_placeholder":true,"num":true}]', "placeholders number [true]"),
    ('51-["a",{"_placeholder":true}]', "placeholders number [null]"),
    ('51-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":"0"}]',
     "placeholders number [0,\"0\"]"),
    ('59007199254740991-["a",{"_placeholder":true,"num":0}]',  # counted, never allocated
     "declares 9007199254740991 attachment(s)"),
    ('52-["a",{"_placeholder":true,"num":0},{"_placeholder":true,"num":0}]',
     "placeholders number [0,0], expected 0 to 1, once each"),
    ('61-1{"_placeholder":true,"num":0}', "BINARY_ACK payload must be a JSON array"),
    ('61-["a",{"_placeholder":true,"num":0}]', "BINARY_ACK without an ack id"),
    ("2" + "[" * 100_000, "EVENT payload is not valid JSON (nested too deeply)"),
]


@pytest.mark.parametrize(("wire", "reason"), BAD_ENGINEIO)
def test_bad_engineio_packet_is_named(wire: str, reason: str) -> None:
    with pytest.raises(EngineIODecodeError) as caught:
        decode_engineio(wire)
    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(("text", "reason"), BAD_SOCKETIO, ids=[t[:30] for t, _ in BAD_SOCKETIO])
def test_bad_socketio_packet_is_named(text: str, reason: str) -> None:
    with pytest.raises(EngineIODecodeError) as caught:
        socketio_in(decode_engineio("4" + text))
    assert reason in str(caught.value)
    assert len(str(caught.value)) < 300  # a long input is cut in the message


def test_bad_polling_payload_names_the_record() -> None:
    with pytest.raises(EngineIODecodeError, match=r"^packet 2 of 3: unknown Engine.IO packet "
                                                  r"type '9'"):
        decode_polling_payload(b'42["a"]\x1e9\x1e42["b"]')
    with pytest.raises(EngineIODecodeError, match=r"^packet 3 of 3: empty Engine.IO packet"):
        decode_polling_payload(b'42["a"]\x1e2\x1e')
    with pytest.raises(EngineIODecodeError, match="^bad base64"):
        decode_polling_payload(b"b!!")
    with pytest.raises(EngineIODecodeError, match="polling body is not UTF-8 text"):
        decode_polling_payload(b"4\xff\xfe")
    with pytest.raises(EngineIODecodeError, match="unknown Engine.IO packet type 'o'"):
        decode_polling_payload(b"ok")  # the POST's answer: is_polling_ack says so first


def mutants(seed: int, count: int) -> list[str]:
    """Valid wire strings with characters inserted, deleted or replaced, and their prefixes."""
    alphabet = '0123456789-,/[]{}":b=\x1e _placeholdernum秒😀\\'
    rng = random.Random(seed)
    wires = [vector[0] for vector in TEXT_VECTORS] + POLLING_BODIES
    out = [wire[:cut] for wire in wires for cut in range(len(wire))]
    for _ in range(count):
        chars = list(rng.choice(wires))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(chars) + 1)
            action = rng.choice(("insert", "delete", "replace"))
            if action == "insert" or not chars[at:]:
                chars.insert(at, rng.choice(alphabet))
            elif action == "delete":
                del chars[at]
            else:
                chars[at] = rng.choice(alphabet)
        out.append("".join(chars))
    return out


def test_garbage_raises_only_our_error_and_what_we_accept_the_references_read_alike() -> None:
    """Thousands of broken strings: each is decoded or refused with EngineIODecodeError, and
    whatever we accept python-engineio/python-socketio decode to the same packet."""
    refused = accepted = 0
    for wire in mutants(seed=10, count=4000):
        try:
            decode_polling_payload(wire)
            packet = decode_engineio(wire)
            socketio_in(packet)
        except EngineIODecodeError:
            refused += 1
            continue
        accepted += 1
        if "\x1e" not in wire and "?" not in wire:
            assert_agrees_with_references(wire)
    assert refused > 1000 and accepted > 500  # the mutations reach both outcomes


@pytest.mark.parametrize(("path", "query", "engineio"), [
    ("/socket.io/?EIO=4&transport=polling&t=N8hyd6w", EngineIOQuery("4", "polling", None), True),
    ("/socket.io/?EIO=4&transport=websocket&sid=lv_VI97HAXpY6yYWAAAC",
     EngineIOQuery("4", "websocket", "lv_VI97HAXpY6yYWAAAC"), True),
    ("/socket.io/", EngineIOQuery(None, None, None), True),
    ("/socket.io", EngineIOQuery(None, None, None), True),
    ("/chat/?EIO=4&transport=polling", EngineIOQuery("4", "polling", None), True),
    ("http://127.0.0.1:8001/socket.io/?EIO=3&transport=polling&sid=a%2Bb",
     EngineIOQuery("3", "polling", "a+b"), True),
    ("/ws", EngineIOQuery(None, None, None), False),
    ("/socket.iox/?transport=polling", EngineIOQuery(None, "polling", None), False),
    ("/static/socket.io.js", EngineIOQuery(None, None, None), False),
    ("/socket.io/socket.io.js", EngineIOQuery(None, None, None), False),  # the client script
    ("/ws?eio=4", EngineIOQuery(None, None, None), False),
])
def test_engineio_paths(path: str, query: EngineIOQuery, engineio: bool) -> None:
    assert parse_engineio_query(path) == query
    assert is_engineio_path(path) is engineio
