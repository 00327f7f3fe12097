"""In-memory frame ports, for tests and for component tests that run workers without sockets.

``memory_pair()`` gives two connected ports: what one sends, the other receives (a veth in a
queue). An unlinked port keeps what it sends in :attr:`MemoryPort.sent`. Either way a port's
receive queue is bounded like a socket buffer (overflow is counted, not raised), and
:meth:`MemoryPort.fileno` is an eventfd that polls readable while frames wait, so an event
loop can watch a memory port exactly like a socket.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from collections.abc import Callable, Iterable

from data_plane.io.base import U8, Index, RxBatch


class MemoryPort:
    """One end of an in-memory link; implements :class:`~data_plane.io.base.FrameIO`."""

    def __init__(
        self,
        name: str = "mem",
        depth: int = 65536,
        clock_ns: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        self.name = name
        self.depth = depth
        self.peer: MemoryPort | None = None
        self.sent: list[bytes] = []
        """Frames sent while unlinked (tests read them with :meth:`take_sent`)."""
        self.rx_packets = 0
        self.rx_dropped = 0
        """Frames lost because the receive queue was full."""
        self.rx_truncated = 0
        self.tx_packets = 0
        self._rx: deque[bytes] = deque()
        self._clock_ns = clock_ns
        self._efd: int | None = None
        self._closed = False

    # ---- the wire side ------------------------------------------------------------------
    def inject(self, frames: Iterable[bytes]) -> int:
        """Frames arriving from the wire; returns how many fit in the queue."""
        taken = 0
        for frame in frames:
            if len(self._rx) >= self.depth:
                self.rx_dropped += 1
                continue
            self._rx.append(bytes(frame))
            taken += 1
        if taken and self._efd is not None:
            os.eventfd_write(self._efd, 1)
        return taken

    def pending(self) -> int:
        return len(self._rx)

    def take_sent(self) -> list[bytes]:
        """The frames sent since the last call (unlinked port)."""
        out, self.sent = self.sent, []
        return out

    # ---- FrameIO --------------------------------------------------------------------------
    def fileno(self) -> int:
        if self._closed:
            raise ValueError("port closed")
        if self._efd is None:
            self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            if self._rx:
                os.eventfd_write(self._efd, 1)
        return self._efd

    def recv_batch(self, batch: RxBatch) -> int:
        room = batch.max_frame
        take = min(len(self._rx), batch.capacity)
        frames = [self._rx.popleft() for _ in range(take)]
        self.rx_truncated += sum(1 for f in frames if len(f) > room)
        n = batch.fill(frames, self._clock_ns())
        self.rx_packets += n
        if not self._rx and self._efd is not None:
            with contextlib.suppress(BlockingIOError):  # already drained
                os.eventfd_read(self._efd)
        return n

    def send_batch(self, buf: U8, rows: Index, offsets: Index, lengths: Index) -> int:
        frames = [
            buf[r, o : o + ln].tobytes()
            for r, o, ln in zip(rows.tolist(), offsets.tolist(), lengths.tolist(), strict=True)
        ]
        self._deliver(frames)
        return len(frames)

    def send(self, frame: bytes) -> None:
        self._deliver([bytes(frame)])

    def close(self) -> None:
        if self._efd is not None:
            os.close(self._efd)
            self._efd = None
        self._closed = True

    def _deliver(self, frames: list[bytes]) -> None:
        self.tx_packets += len(frames)
        if self.peer is None:
            self.sent.extend(frames)
        else:
            self.peer.inject(frames)


def memory_pair(a: str = "a", b: str = "b", depth: int = 65536) -> tuple[MemoryPort, MemoryPort]:
    """Two linked ports: frames sent on one are received on the other."""
    left, right = MemoryPort(a, depth), MemoryPort(b, depth)
    left.peer, right.peer = right, left
    return left, right
