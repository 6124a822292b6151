# Solution of the exercise in 07-polling-vs-push.ipynb: run it there (it uses `sensor`).
# ruff: noqa: F821
HOURS = 1
spikes = sensor.spikes(0.0, HOURS * 3600.0)  # every spike of the first hour of 1970
span = sensor.period - sensor.width  # a spike starts at most this far into its period
print(f"{len(spikes)} spikes of {sensor.width * 1000:.0f} ms in {HOURS} h, each starting "
      f"in the first {span:g} s of its {sensor.period:g} s period")


def timer(rate, phase=0.5):
    """A perfect timer: when each poll of the hour goes out."""
    return [phase + i / rate for i in range(HOURS * 3600 * rate)]


def caught(polls):
    """The share of the spikes that some poll landed in."""
    hit = {sensor.spike_in(int(t // sensor.period)).start for t in polls
           if sensor.value_at(t) == sensor.peak}
    return len(hit) / len(spikes)


def expected(polls):
    """The share of spike starts, anywhere in [0, span], that put a spike over a poll.

    A poll at offset p into its period is inside the spikes that start in (p - width, p].
    """
    offsets = {round(t % sensor.period, 9) % sensor.period for t in polls}  # every period
    windows = sorted((max(0.0, p - sensor.width), min(p, span)) for p in offsets)
    covered = reach = 0.0
    for low, high in windows:
        if high > max(low, reach):
            covered += high - max(low, reach)
            reach = high
    return covered / span


for rate in (1, 2, 5, 6, 7, 10):
    polls = timer(rate)
    odds = min(1.0, rate * sensor.width)
    print(f"{rate:2d} Hz: odds {odds:4.0%}, expected {expected(polls):4.0%}, "
          f"caught {caught(polls):4.0%}")
shifted = timer(2, phase=0.25)
print(f" 2 Hz from t = 0.25: expected {expected(shifted):4.0%}, caught {caught(shifted):4.0%}")
print(f"never miss a {sensor.width * 1000:.0f} ms spike from {1 / sensor.width:.2f} Hz up")
