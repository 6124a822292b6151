# Solution of the exercise in 07-polling-vs-push.ipynb: run it there (it uses `sensor`).
# ruff: noqa: F821
HOURS = 1
spikes = sensor.spikes(0.0, HOURS * 3600.0)  # every spike of the first hour of 1970
print(f"{len(spikes)} spikes of {sensor.width * 1000:.0f} ms in {HOURS} h")
for rate in (1, 2, 5, 6, 7, 10):
    polls = [0.5 + i / rate for i in range(HOURS * 3600 * rate)]  # a perfect timer
    caught = {sensor.spike_in(int(t // sensor.period)).start for t in polls
              if sensor.value_at(t) == sensor.peak}
    odds = min(1.0, rate * sensor.width)
    print(f"{rate:2d} Hz: {rate * sensor.width:4.2f} polls per spike, odds {odds:4.0%}, "
          f"caught {len(caught) / len(spikes):4.0%}")
print(f"never miss a {sensor.width * 1000:.0f} ms spike from {1 / sensor.width:.2f} Hz up")
