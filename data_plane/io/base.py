"""The batch shape and the frame I/O interface of a data-plane worker.

Theory of operation
-------------------
A backend receives frames into an :class:`RxBatch`: a 2-D ``uint8`` array with one frame per
row, each frame starting at column ``headroom`` (24 bytes free in front of it, so the
downstream encapsulation can prepend its extra bytes in place: 8 for PPPoE, 20 for DOCSIS).
The fast path rewrites the headers inside that buffer and describes what to send as a
:class:`TxBatch`: row indices, column offsets and lengths into the *same* buffer. A backend's
``send_batch`` sends straight from there (``sendmmsg`` iovecs pointing into the rows), so no
frame is copied in user space.

The interface is small on purpose: a recvmmsg/sendmmsg socket (``io/rawsock.py``), a
TPACKET_V3 ring whose frames are copied into rows (``io/ring.py``), one syscall per frame
(``io/packet.py``), an in-memory pair for tests and, later, an AF_XDP umem all fit behind
``recv_batch`` / ``send_batch``.

A kernel-offload backend (XDP programs on the access and core veths, forwarding the ordinary
frames in the kernel from BPF maps) fits as well: its ``recv_batch`` returns only what the
program passes up (control frames, unknown sessions, exceptions) and it mirrors the session
table into its maps whenever the forwarding thread applies rules (the one place tables
change). Rules, usage and punts stay the worker's, so the CP↔DP contract does not change.

Lifetime: a :class:`TxBatch` built from an :class:`RxBatch` refers to its buffer; send it
before the next ``recv_batch`` into the same batch.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

HEADROOM = 24
"""Bytes free before each received frame: a multiple of 8 (the fast path reads 64-bit words)
covering the 20 bytes that a downstream DOCSIS frame has in front of the received IPv4
packet's 14-byte Ethernet header."""

ROW = 2048
"""Default row size: headroom + a 1500-byte MTU frame + VLAN/PPPoE slack, 8-byte aligned."""

DEFAULT_CAPACITY = 256

U8 = npt.NDArray[np.uint8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
Index = npt.NDArray[np.integer[Any]]
"""Any integer array: row indices, offsets and lengths of frames to send."""


class RxBatch:
    """Up to ``capacity`` received frames, one per row of ``buf``.

    ``buf[i, headroom : headroom + lengths[i]]`` is frame ``i`` for ``i < count``; ``rx_ns``
    is the receive time of the batch (monotonic nanoseconds, from the backend's clock).
    """

    __slots__ = ("buf", "count", "headroom", "lengths", "rx_ns")

    def __init__(
        self, capacity: int = DEFAULT_CAPACITY, row: int = ROW, headroom: int = HEADROOM
    ) -> None:
        if capacity < 1:
            raise ValueError("a batch holds at least one frame")
        if headroom < HEADROOM or headroom % 8:
            raise ValueError(f"headroom must be a multiple of 8 and at least {HEADROOM}")
        if row % 8 or row < headroom + 64:
            raise ValueError("row must be a multiple of 8 with room for a minimum frame")
        self.buf: U8 = np.zeros((capacity, row), dtype=np.uint8)
        self.lengths: I32 = np.zeros(capacity, dtype=np.int32)
        self.count = 0
        self.rx_ns = 0
        self.headroom = headroom

    @property
    def capacity(self) -> int:
        return int(self.buf.shape[0])

    def time_ns(self) -> int:
        """The batch's receive time: ``rx_ns``, or (a backend that set none) the monotonic
        clock now. The fast path's token buckets read it once per batch."""
        return self.rx_ns or time.monotonic_ns()

    @property
    def max_frame(self) -> int:
        """The longest frame a row holds."""
        return int(self.buf.shape[1]) - self.headroom

    def frame(self, i: int) -> bytes:
        """A copy of frame ``i`` (for punts, tests and logs; never on the forwarding path)."""
        if not 0 <= i < self.count:
            raise IndexError(i)
        h = self.headroom
        return self.buf[i, h : h + int(self.lengths[i])].tobytes()

    def frames(self) -> list[bytes]:
        return [self.frame(i) for i in range(self.count)]

    def fill(self, frames: Iterable[bytes], rx_ns: int = 0) -> int:
        """Copy ``frames`` into the rows (for tests and the in-memory backend).

        Frames longer than :attr:`max_frame` are truncated, as a socket would truncate
        them. Returns the number of frames taken (at most ``capacity``).
        """
        h, cap, room = self.headroom, self.capacity, self.max_frame
        n = 0
        for frame in frames:
            if n == cap:
                break
            size = min(len(frame), room)
            self.buf[n, h : h + size] = np.frombuffer(frame, dtype=np.uint8, count=size)
            self.lengths[n] = size
            n += 1
        self.count = n
        self.rx_ns = rx_ns
        return n

    @classmethod
    def of(cls, frames: list[bytes], row: int = ROW, rx_ns: int = 0) -> RxBatch:
        """A batch holding exactly ``frames``."""
        batch = cls(max(1, len(frames)), row)
        batch.fill(frames, rx_ns)
        return batch


def _no_frames() -> Index:
    return np.zeros(0, dtype=np.int64)


@dataclass(slots=True)
class TxBatch:
    """Frames to send: ``buf[rows[i], offsets[i] : offsets[i] + lengths[i]]``."""

    buf: U8
    rows: Index = field(default_factory=_no_frames)
    offsets: Index = field(default_factory=_no_frames)
    lengths: Index = field(default_factory=_no_frames)

    @property
    def count(self) -> int:
        return len(self.rows)

    def frame(self, i: int) -> bytes:
        start = int(self.offsets[i])
        return self.buf[int(self.rows[i]), start : start + int(self.lengths[i])].tobytes()

    def frames(self) -> list[bytes]:
        """Copies of the frames (tests and the in-memory backend)."""
        return [self.frame(i) for i in range(self.count)]


class FrameIO(Protocol):
    """One port of a worker: a batch receiver and a batch sender."""

    def fileno(self) -> int:
        """A file descriptor that polls readable when frames are waiting."""
        ...

    def recv_batch(self, batch: RxBatch) -> int:
        """Receive up to ``batch.capacity`` frames without blocking; sets and returns count."""
        ...

    def send_batch(self, buf: U8, rows: Index, offsets: Index, lengths: Index) -> int:
        """Send ``buf[rows[i], offsets[i]:offsets[i]+lengths[i]]``; returns how many went out."""
        ...

    def send(self, frame: bytes) -> None:
        """Send one (control) frame; a full queue drops it and counts, it does not raise."""
        ...

    def close(self) -> None: ...


def send_tx(port: FrameIO, tx: TxBatch) -> int:
    """Send a :class:`TxBatch` on ``port`` (nothing to do for an empty one)."""
    if not tx.count:
        return 0
    return port.send_batch(tx.buf, tx.rows, tx.offsets, tx.lengths)
