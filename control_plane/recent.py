"""Copies of one broadcast: every active DP of a site hears a subscriber's broadcast (a PADI,
an initial RNG-REQ) and punts it, and the control plane must answer it once."""

from __future__ import annotations

from collections.abc import Hashable


class RecentFrames:
    """Keys (the frame, or the frame and its site) seen within the last ``window_s``."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._seen: dict[Hashable, float] = {}  # insertion order is time order

    def first(self, key: Hashable, now: float) -> bool:
        """True for the first copy of ``key`` in the window; False for a copy of it."""
        seen = self._seen
        while seen:
            oldest = next(iter(seen))
            if now - seen[oldest] <= self.window_s:
                break
            del seen[oldest]
        if key in seen:
            return False
        seen[key] = now
        return True
