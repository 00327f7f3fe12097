"""The plain per-packet backend: one ``recv_into`` and one ``send`` per frame (packet(7)).

The readable reference among the socket backends: no batching below the interface, so its
figures show what the batch backends (:mod:`data_plane.io.ring`, :mod:`data_plane.io.rawsock`)
buy. The same fast path runs above it; only the number of syscalls differs.
"""

from __future__ import annotations

import socket
import struct
import time

from data_plane.io.base import U8, Index, RxBatch
from vnf.adapters.packet import SOL_PACKET, open_packet_socket

PACKET_STATISTICS = 6
_STATS = struct.Struct("II")


class PacketPort:
    """A worker port on a Linux interface; implements :class:`~data_plane.io.base.FrameIO`."""

    def __init__(
        self, ifname: str, rcvbuf: int = 8 << 20, sndbuf: int = 8 << 20, promiscuous: bool = True
    ) -> None:
        self.ifname = self.name = ifname
        self._sock = open_packet_socket(ifname, rcvbuf, sndbuf, promiscuous)
        self.rx_packets = 0
        self.rx_truncated = 0
        self.tx_packets = 0
        self.tx_dropped = 0
        self.kernel_drops = 0

    def fileno(self) -> int:
        return self._sock.fileno()

    def recv_batch(self, batch: RxBatch) -> int:
        """One ``recv_into`` per frame into its row, until nothing waits or the batch is full."""
        flat = batch.buf.reshape(-1).data  # the rows are contiguous: a view, no copy
        row = batch.buf.shape[1]
        h, room, n = batch.headroom, batch.max_frame, 0
        while n < batch.capacity:
            start = n * row + h
            try:
                size = self._sock.recv_into(flat[start : start + room], room, socket.MSG_TRUNC)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:  # ENETDOWN while the link flaps: nothing to read now
                break
            if size > room:
                self.rx_truncated += 1
                size = room
            batch.lengths[n] = size
            n += 1
        batch.count = n
        batch.rx_ns = time.monotonic_ns() if n else 0
        self.rx_packets += n
        return n

    def send_batch(self, buf: U8, rows: Index, offsets: Index, lengths: Index) -> int:
        """One ``send`` per frame; a frame the kernel refuses is counted and dropped."""
        sent = 0
        width = buf.shape[1]
        for row, start, size in zip(rows.tolist(), offsets.tolist(), lengths.tolist(), strict=True):
            if not (0 <= row < buf.shape[0] and start >= 0 and size >= 0 and start + size <= width):
                raise ValueError("send_batch frame outside the buffer")
            try:
                self._sock.send(buf[row, start : start + size].data)
            except OSError:
                self.tx_dropped += 1
            else:
                sent += 1
        self.tx_packets += sent
        return sent

    def send(self, frame: bytes) -> None:
        try:
            self._sock.send(frame)
        except OSError:
            self.tx_dropped += 1
        else:
            self.tx_packets += 1

    def kernel_stats(self) -> tuple[int, int]:
        """PACKET_STATISTICS since the last call: (frames queued, frames dropped)."""
        packets, drops = _STATS.unpack(self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8))
        self.kernel_drops += drops
        return packets, drops

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> PacketPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
