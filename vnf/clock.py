"""Time is injected everywhere: engines and services take ``now`` (monotonic seconds).

Production wiring passes ``time.monotonic`` from a ``main.py``; tests use :class:`FakeClock`
and advance it explicitly, never sleeping.
"""

from __future__ import annotations

from collections.abc import Callable

Clock = Callable[[], float]
"""A callable returning monotonic seconds."""


class FakeClock:
    """A manually advanced clock for tests and deterministic simulations."""

    def __init__(self, start: float = 1000.0) -> None:
        self._now = start

    def __call__(self) -> float:
        return self._now

    def advance(self, seconds: float) -> float:
        if seconds < 0:
            raise ValueError("time does not go backwards")
        self._now += seconds
        return self._now

    def set(self, now: float) -> None:
        if now < self._now:
            raise ValueError("time does not go backwards")
        self._now = now
