"""demo_server.polling against the real server: real HTTP polls, a real WebSocket, a live capture.

A fast sensor (a 50 ms spike every 0.5 s) gives six spikes in a 3 s run, so "1 Hz polling
misses most of them" holds by a wide margin: each poll catches a given spike with
probability 1/20, and catching four of six is about 1 in 100,000.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import pytest
from scapy.layers.inet import IP, TCP

from demo_server import ServerThread
from demo_server.capture import capture
from demo_server.dissect import Direction, conversations
from demo_server.polling import Reading, judge, listen, listen_sse, long_poll, poll, traffic
from demo_server.sensor import Sensor

FAST = Sensor(width=0.05, period=0.5, seed=7)
SECONDS = 3.0
# Push is prompt when a change arrives within half a period, before the next spike could
# begin; typically it takes a few ms here, 51 ms at worst with six CPU-bound processes on
# the 2 cores. 1 Hz polling sees a spike half a second late on average.
PROMPT = FAST.period / 2


@pytest.fixture(scope="module")
def fast_server():
    with ServerThread(port=0, sensor=FAST) as running:
        yield running


def sensor_http(server: ServerThread) -> str:
    return server.url.rstrip("/") + "/sensor"


def timed(client):
    start = time.time()
    readings = client()
    return readings, start, time.time()


@pytest.mark.parametrize("observer", ["WebSocket", "SSE", "long-polling"])
def test_push_and_long_polling_see_every_spike_promptly(fast_server, observer):
    watch = {"WebSocket": lambda: listen(fast_server.sensor_url, SECONDS),
             "SSE": lambda: listen_sse(fast_server.sse_url, SECONDS),
             "long-polling": lambda: long_poll(sensor_http(fast_server), SECONDS)}[observer]
    readings, start, end = timed(watch)
    assert end - start == pytest.approx(SECONDS, abs=0.5)
    # Judged from when the stream opened (its first message is the reading then) to PROMPT
    # before listening stopped: a spike that ends later may not have been pushed yet.
    outcome = judge(observer, readings, FAST, readings[0].t, start + SECONDS - PROMPT)
    assert len(outcome.spikes) >= 4  # the ~2.7 s judged hold 4 whole periods at least
    assert outcome.missed == []
    assert outcome.median_latency is not None and outcome.median_latency < 0.1
    assert max(outcome.latencies) < PROMPT
    # every change arrives: the peak and the return to base, for each spike, in order
    assert sum(r.value == FAST.peak for r in readings) >= len(outcome.spikes)
    assert [r.t for r in readings] == sorted(r.t for r in readings)
    for reading in readings:  # t is rounded to the microsecond: 1 µs later is the value
        assert reading.value == FAST.value_at(reading.t + 1e-6)


def test_slow_polling_misses_most_spikes(fast_server):
    readings, start, end = timed(lambda: poll(sensor_http(fast_server), 1, SECONDS))
    assert end - start >= SECONDS - 0.01  # it watches for the whole time
    assert len(readings) == 3  # one request per second, on schedule
    outcome = judge("1 Hz", readings, FAST, start, end)
    assert len(outcome.spikes) >= 5
    assert len(outcome.missed) > len(outcome.spikes) / 2


def test_fast_polling_readings_carry_the_server_value(fast_server):
    readings, start, end = timed(lambda: poll(sensor_http(fast_server), 20, 1.0))
    # 20 slots, never more requests (no burst to catch up); a slot is skipped when the
    # request before it ends more than a slot late, which a loaded machine does now and then.
    assert 20 / 2 <= len(readings) <= 20
    for reading in readings:
        assert start <= reading.t <= reading.seen <= end
        assert reading.value == FAST.value_at(reading.t)


def test_traffic_adds_up(fast_server):
    with capture(fast_server.port) as polled:
        polls = len(poll(sensor_http(fast_server), 20, 2.0))
    with capture(fast_server.port) as pushed:
        listen(fast_server.sensor_url, 1.0)
    with capture(fast_server.port) as long_polled:
        answers = len(long_poll(sensor_http(fast_server), 1.0))
    with capture(urlsplit(fast_server.sse_url).port) as streamed:
        listen_sse(fast_server.sse_url, 1.0)
    # long-polling: a connection per answer, and one more, unanswered, when the second ran
    # out while a request was held (none when it ran out between an answer and the next ask)
    held = [c for c in conversations(long_polled.packets, long_polled.port)
            if not (c.http and c.http[0].response)]
    assert len(held) <= 1
    for cap, opened in ((polled, polls), (pushed, 1), (long_polled, answers + len(held)),
                        (streamed, 1)):
        convs = conversations(cap.packets, cap.port)
        seen = traffic(convs)
        assert seen.connections == len(convs) == opened
        segments = [s for conv in convs for s in conv.segments]
        assert sum(seen.packets.values()) == len(segments) == len(seen.times)
        assert seen.total == sum(s.wire_length for s in segments) == sum(seen.sizes)
        assert seen.times == sorted(seen.times)
        for way in Direction:
            tcp_payload = sum(len(s.data) for s in segments if s.direction is way)
            assert seen.header_bytes[way] + seen.payload_bytes[way] == tcp_payload
            # every packet has at least 40 bytes of IP and TCP headers around its payload
            assert seen.wire_bytes[way] >= tcp_payload + 40 * seen.packets[way]
        # a TCP open is 3 packets, a close at least 3: for each connection
        assert seen.open_close_packets >= 6 * opened
    polled_traffic = traffic(conversations(polled.packets, polled.port))
    assert polled_traffic.payload_bytes[Direction.C2S] == 0  # a GET has no body
    assert polled_traffic.header_bytes[Direction.C2S] > 0


def test_a_reused_client_port_is_a_new_connection():
    def packet(sport, dport, flags, seq, ack=0, data=b"", at=0.0):
        pkt = IP(src="127.0.0.1", dst="127.0.0.1") / TCP(sport=sport, dport=dport,
                                                          flags=flags, seq=seq, ack=ack) / data
        pkt = IP(bytes(pkt))
        pkt.time = at
        return pkt

    def exchange(client_seq, at):
        c, s = client_seq, 5000 + client_seq
        return [packet(40000, 8001, "S", c, at=at), packet(8001, 40000, "SA", s, c + 1, at=at),
                packet(40000, 8001, "A", c + 1, s + 1, at=at),
                packet(40000, 8001, "PA", c + 1, s + 1, b"GET / HTTP/1.1\r\n\r\n", at=at),
                packet(8001, 40000, "FA", s + 1, c + 19, at=at),
                packet(40000, 8001, "FA", c + 19, s + 2, at=at),
                packet(8001, 40000, "A", s + 2, c + 20, at=at)]

    packets = exchange(1000, 1.0) + exchange(900_000, 2.0)
    convs = conversations(packets, 8001)
    assert len(convs) == 2
    seen = traffic(convs)
    assert seen.header_bytes[Direction.C2S] == 2 * 18 and seen.payload_bytes[Direction.C2S] == 0
    assert seen.open_close_packets == 12


def test_judge_on_made_up_readings():
    sensor = Sensor()
    spike = sensor.spike_in(1000)
    start, end = spike.start - 0.5, spike.end + 0.5
    during = Reading(seen=spike.start + 0.03, value=sensor.peak, t=spike.start + 0.01)
    after = Reading(seen=spike.end + 0.2, value=sensor.base, t=spike.end + 0.19)
    caught = judge("made up", [after, during], sensor, start, end)
    assert caught.spikes == [spike] and caught.seen == [spike] and caught.missed == []
    assert caught.latencies == [pytest.approx(0.03)]
    assert "1/1 spikes seen" in caught.summary()
    # the peak, but with a server time outside the spike, does not count
    late = Reading(seen=spike.end + 0.3, value=sensor.peak, t=spike.end + 0.2)
    missed = judge("made up", [late], sensor, start, end)
    assert missed.missed == [spike] and missed.median_latency is None


@pytest.mark.parametrize("call", [
    lambda: poll("http://127.0.0.1:1/sensor", 0, 1),
    lambda: poll("http://127.0.0.1:1/sensor", 1000, 1),
    lambda: poll("http://127.0.0.1:1/sensor", 1, 0),
    lambda: poll("ws://127.0.0.1:1/ws/sensor", 1, 1),
    lambda: listen("ws://127.0.0.1:1/ws/sensor", 0),
    lambda: listen("http://127.0.0.1:1/sensor", 1),
    lambda: long_poll("http://127.0.0.1:1/sensor", 0),
    lambda: long_poll("ws://127.0.0.1:1/sensor", 1),
    lambda: listen_sse("http://127.0.0.1:1/sensor/events", 601),
    lambda: listen_sse("ws://127.0.0.1:1/sensor/events", 1),
    lambda: judge("x", [], Sensor(), 10.0, 10.0),
])
def test_bad_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
