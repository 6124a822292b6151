"""The spiky sensor signal: deterministic, and what polling and push both carry."""

import itertools

import pytest

from demo_server.sensor import Sensor


def test_the_signal_is_a_pure_function_of_time():
    a, b = Sensor(), Sensor()
    assert [a.spike_in(i) for i in range(100)] == [b.spike_in(i) for i in range(100)]
    assert Sensor(seed=1).spike_in(7) != Sensor(seed=2).spike_in(7)


def test_one_short_spike_per_period_and_base_elsewhere():
    sensor = Sensor(base=1, peak=9, width=0.15, period=2)
    spikes = sensor.spikes(1000, 1100)
    assert len(spikes) == 50
    for spike in spikes:
        assert spike.end - spike.start == pytest.approx(0.15)
        assert sensor.value_at(spike.start) == 9
        assert sensor.value_at(spike.start + 0.1) == 9
        assert sensor.value_at(spike.end) == 1
        assert sensor.value_at(spike.start - 0.001) == 1


def test_changes_alternate_peak_and_base_in_time_order():
    sensor = Sensor()
    changes = list(itertools.islice(sensor.changes(5000.3), 40))
    times = [t for t, _ in changes]
    assert times == sorted(times) and times[0] > 5000.3
    values = [v for _, v in changes]
    assert set(values) == {sensor.base, sensor.peak}
    assert all(x != y for x, y in itertools.pairwise(values))
    for when, value in changes:
        assert sensor.value_at(when) == value


def test_a_1_hz_poller_misses_most_spikes_and_a_10_hz_poller_none():
    sensor = Sensor()
    spikes = sensor.spikes(0, 600)
    for rate, at_least, at_most in ((1, 0.0, 0.3), (10, 1.0, 1.0)):
        polls = [i / rate + 0.0371 for i in range(600 * rate)]
        seen = {sensor.spike_in(int(t // sensor.period)) for t in polls
                if sensor.value_at(t) == sensor.peak}
        assert at_least <= len(seen) / len(spikes) <= at_most


@pytest.mark.parametrize(("width", "period"), [(0, 2), (2, 2), (-1, 2), (3, 2)])
def test_nonsense_shapes_are_refused(width, period):
    with pytest.raises(ValueError, match="width < period"):
        Sensor(width=width, period=period)
