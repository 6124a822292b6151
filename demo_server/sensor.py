"""A sensor reading that mostly sits still and sometimes spikes for a moment.

The article's closing point: a browser cannot poll every instant, so short peaks are
missed. This signal makes that measurable. It is a pure function of the wall clock, so the
polling endpoint and the push stream report the same values, and a test or a notebook can
say exactly when each spike began and ended.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Sensor", "Spike"]


@dataclass(frozen=True)
class Spike:
    start: float  # wall-clock seconds since the epoch
    end: float
    value: float


@dataclass(frozen=True)
class Sensor:
    """One spike to ``peak`` per ``period`` seconds, ``width`` long, at a seeded random offset.

    Between spikes the reading is ``base``. Offsets come from ``seed`` and the period's
    number, so every process computes the same spikes for the same instant.
    """

    base: float = 20.0
    peak: float = 80.0
    width: float = 0.15
    period: float = 2.0
    seed: int = 6455

    def __post_init__(self) -> None:
        if not 0 < self.width < self.period:
            raise ValueError(f"need 0 < width < period, got {self.width!r}, {self.period!r}")

    def spike_in(self, index: int) -> Spike:
        """The spike of period number ``index`` (periods start at multiples of ``period``)."""
        offset = random.Random(self.seed * 1_000_003 + index).uniform(0, self.period - self.width)
        start = index * self.period + offset
        return Spike(start, start + self.width, self.peak)

    def value_at(self, t: float) -> float:
        spike = self.spike_in(math.floor(t / self.period))
        return spike.value if spike.start <= t < spike.end else self.base

    def spikes(self, start: float, end: float) -> list[Spike]:
        """Spikes that begin in ``[start, end)``."""
        first, last = math.floor(start / self.period), math.floor(end / self.period)
        return [s for i in range(first, last + 1) if start <= (s := self.spike_in(i)).start < end]

    def changes(self, after: float) -> Iterator[tuple[float, float]]:
        """``(time, new value)`` for every change after ``after``, forever, in order."""
        index = math.floor(after / self.period)
        while True:
            spike = self.spike_in(index)
            for when, value in ((spike.start, spike.value), (spike.end, self.base)):
                if when > after:
                    yield when, value
            index += 1
