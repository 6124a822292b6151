"""The JSON envelope: golden encodings and every way a message can be wrong."""

import re

import pytest

from demo_server.events import Event, EventError, Message, decode, encode


def test_encode_is_compact_json_with_event_and_data():
    assert encode(Event.SECOND, {"second": 7}) == '{"event":"second","data":{"second":7}}'
    assert encode("client_data", "好") == '{"event":"client_data","data":"好"}'


def test_encode_rejects_unknown_event_names():
    with pytest.raises(ValueError):
        encode("nope", 1)


def test_decode_round_trips():
    assert decode(encode(Event.CLIENT_DATA, "h")) == Message(Event.CLIENT_DATA, "h")
    assert decode('{"event":"second","data":{"second":59}}').data == {"second": 59}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("hello", "not JSON"),
        ("", "not JSON"),
        ("[1, 2]", "expected a JSON object, got an array"),
        ('"client_data"', "expected a JSON object, got a string"),
        ("42", "expected a JSON object, got a number"),
        ('{"data": "x"}', 'missing "event"'),
        ('{"event": 5, "data": "x"}', '"event" must be a string, got a number'),
        ('{"event": "shout", "data": "x"}', "unknown event 'shout'"),
        ('{"event": "client_data", "data": 5}', "must be a string, got a number"),
        ('{"event": "client_data"}', "must be a string, got null"),
        ('{"event": "client_data", "data": ["h"]}', "must be a string, got an array"),
        (b'{"event": "client_data", "data": "h"}', "binary frames are not accepted"),
    ],
)
def test_decode_names_the_problem(raw, problem):
    with pytest.raises(EventError, match=re.escape(problem)):
        decode(raw)


def test_decode_restricts_to_expected_events():
    with pytest.raises(EventError, match="unknown event 'second'"):
        decode('{"event": "second", "data": {}}', expect=frozenset({Event.CLIENT_DATA}))


def test_unknown_event_name_is_clipped_in_the_error():
    with pytest.raises(EventError) as info:
        decode('{"event": "%s"}' % ("x" * 10_000))
    assert len(str(info.value)) < 80
