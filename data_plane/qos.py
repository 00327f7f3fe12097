"""Per-session token buckets, policed a batch at a time (the QoS of a session rule).

Theory of operation
-------------------
One :class:`TokenBuckets` holds one direction's buckets for every session slot, as numpy
arrays indexed by slot like the session table's (rate, depth, tokens, time of the last
refill, and a ``limited`` flag; pages of ``np.zeros`` commit lazily). A rate of 0 means
unlimited: such a slot is not ``limited`` and the fast path never looks at its bucket.

The fast path calls :meth:`TokenBuckets.police` once per batch with the frames that would
forward, in arrival order. The frames of limited sessions are policed with a fixed number of
numpy calls, whatever the batch holds:

1. **Refill**, once per slot per batch: ``tokens = min(depth, tokens + elapsed * rate)``, the
   elapsed time measured from the slot's last refill to the batch's receive time.
2. **Conform**: the frames are sorted by slot (stably, so each slot keeps its arrival order),
   a cumulative sum of their sizes minus the sum before each slot's first frame gives every
   frame the bytes its slot has sent up to and including it; the frames whose running sum
   fits the slot's tokens pass. That is a prefix of each slot's frames: once one frame does
   not fit, none after it in the batch is sent (a later, smaller frame is not slipped in).
3. **Spend** what passed, per slot (one ``bincount``).

The metered size is the IPv4 total length, the bytes that the usage counters count, so a
session's forwarded bytes per second and its configured rate are the same measure.

The depth of a bucket is ``max(burst_bytes, 3044, 10 ms of the rate)``. 3044 bytes is
DOCSIS's default Maximum Traffic Burst (the service flow QoS parameter of CM-SP-MULPIv3.1
Annex C): two full-size frames always pass. The 10 ms floor is ours: the refill happens once
per batch, and a bucket shallower than what the rate adds between two batches overflows in
between and under-delivers; batches are a few milliseconds apart under load, so 10 ms of the
rate keeps a policed flow at its rate.

A new limited session starts with a full bucket. A changed rate (a MODIFY) takes effect at
the next batch: the slot keeps its tokens, clamped to the new depth, and its refill time.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

DOCSIS_DEFAULT_BURST = 3044
"""Bytes: DOCSIS's default Maximum Traffic Burst, the shallowest bucket (see the module
docstring)."""
REFILL_WINDOW_S = 0.010
"""Seconds of the rate a bucket holds at least (see the module docstring)."""

Bool = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Rows = npt.NDArray[np.integer[Any]]
_ZERO = np.array(0.0)


def bucket_depth(rate_bytes_per_s: float, burst_bytes: int) -> float:
    """The depth of a bucket filling at ``rate_bytes_per_s`` (see the module docstring)."""
    return max(float(burst_bytes), float(DOCSIS_DEFAULT_BURST), rate_bytes_per_s * REFILL_WINDOW_S)


class TokenBuckets:
    """One direction's token buckets for ``size`` slots (see the module docstring)."""

    def __init__(self, size: int) -> None:
        self.limited: Bool = np.zeros(size, dtype=bool)
        self.rate: F64 = np.zeros(size, dtype=np.float64)
        """Bytes per nanosecond."""
        self.depth: F64 = np.zeros(size, dtype=np.float64)
        self.tokens: F64 = np.zeros(size, dtype=np.float64)
        self.refilled_ns: I64 = np.zeros(size, dtype=np.int64)
        self.count = 0
        """Limited slots: with none, the fast path skips policing without a lookup."""

    def _arrays(self) -> tuple[Bool | F64 | I64, ...]:
        return (self.limited, self.rate, self.depth, self.tokens, self.refilled_ns)

    # ---- rules --------------------------------------------------------------------------
    def configure(self, slot: int, kbps: int, burst_bytes: int) -> None:
        """Police ``slot`` at ``kbps`` (1 kbit = 1000 bits; 0: unlimited)."""
        if kbps <= 0:
            self.clear(slot)
            return
        rate = kbps * 1000 / 8  # bytes per second
        depth = bucket_depth(rate, burst_bytes)
        if self.limited[slot]:
            self.tokens[slot] = min(float(self.tokens[slot]), depth)
        else:
            self.limited[slot] = True
            self.count += 1
            self.tokens[slot] = depth
            self.refilled_ns[slot] = 0  # the first refill finds it full anyway
        self.rate[slot] = rate / 1e9
        self.depth[slot] = depth

    def clear(self, slot: int) -> None:
        if self.limited[slot]:
            self.count -= 1
        for array in self._arrays():
            array[slot] = 0

    def move(self, old: int, new: int) -> None:
        """The bucket of ``old`` now belongs to ``new`` (a session that changed slot)."""
        if old == new:
            return
        self.clear(new)
        for array in self._arrays():
            array[new] = array[old]
        if self.limited[new]:
            self.count += 1
        self.clear(old)

    # ---- the fast path ------------------------------------------------------------------
    def police(self, slot: Rows, size: npt.NDArray[np.uint64], now_ns: int) -> Bool | None:
        """Per frame (``slot`` and IPv4 total length ``size``, in arrival order): whether it
        conforms. None when no frame belongs to a limited slot (everything conforms)."""
        limited = self.limited[slot]
        count = np.count_nonzero(limited)
        if not count:
            return None
        rows: Rows | None = None if count == len(slot) else limited.nonzero()[0]
        s = slot if rows is None else slot[rows]
        # 1. Refill: every frame gets its slot's bucket, refilled (the same for each).
        now = np.array(now_ns, dtype=np.int64)
        gain = (now - self.refilled_ns[s]) * self.rate[s]
        np.maximum(gain, _ZERO, out=gain)  # a clock that went back refills nothing
        tokens = gain
        tokens += self.tokens[s]
        np.minimum(tokens, self.depth[s], out=tokens)
        self.refilled_ns[s] = now
        # 2. Conform: the running sum of each slot's sizes in arrival order (a stable sort
        # by slot, a cumulative sum, minus the sum before the slot's first frame).
        order = s.argsort(kind="stable")
        ss = s[order]
        sizes = (size if rows is None else size[rows])[order].astype(np.float64)
        first = np.empty(len(ss), dtype=bool)
        first[0] = True
        np.not_equal(ss[1:], ss[:-1], out=first[1:])
        running = np.add.accumulate(sizes)
        # The sum before each frame is nondecreasing: kept at each slot's first frame and
        # carried forward by a running maximum, it is the sum before the slot's first frame.
        before = running - sizes
        before *= first
        running -= np.maximum.accumulate(before, out=before)
        available = tokens[order]
        conform = running <= available
        # 3. Spend what passed: the conforming frames are a prefix of their slot's, so what
        # is left is the least of available - running over them (available if none).
        starts = first.nonzero()[0]
        left = np.where(conform, available - running, available)
        self.tokens[ss[starts]] = np.minimum.reduceat(left, starts)
        if rows is None:
            passed = np.empty(len(slot), dtype=bool)
            passed[order] = conform
            return passed
        passed = np.ones(len(slot), dtype=bool)
        passed[rows[order]] = conform
        return passed
