"""AF_PACKET port with a TPACKET_V3 mmap receive ring and sendmmsg transmit (packet(7)).

Theory of operation
-------------------
The kernel copies every received frame into a ring of *blocks* shared with us by ``mmap``
(``PACKET_RX_RING``, TPACKET_V3, Documentation/networking/packet_mmap.rst). It fills one
block at a time, frames packed one after the other, each behind a ``tpacket3_hdr``; when the
block is full, or ``block_timeout_ms`` after its first frame, it *retires* the block: sets
its status to TP_STATUS_USER and wakes ``poll``. We own the block until we write
TP_STATUS_KERNEL back. There is no receive syscall and no socket-buffer queue: that is what
makes this backend the fast one (the prototype in ``shared/reference/dataplane-io`` measured
0.64x of kernel forwarding against 0.39x for recvmmsg).

``recv_batch`` walks the current block's chain of frames (``tp_next_offset``: one read per
frame through a ``uint32`` memoryview, the only per-frame Python work), reads the frames'
lengths and offsets vectorized, and copies up to a batch of frames into the batch's rows at
the headroom in one numpy step (a 2-D window over the ring, one row per possible start,
indexed by the frames' starts). A block holds several batches of small frames; the position
is kept across calls, and the block goes back to the kernel as soon as its last frame is
copied out, so the ring is free again before the fast path even runs.

Why copy instead of running the fast path on the ring in place: the fast path works on rows
(a frame at a fixed column of each row, with headroom before it for the downstream
encapsulation), which V3's packed frames are not; copying a frame's bytes once costs tens of
nanoseconds, and every backend then feeds the same fast path.

Transmit is :class:`~data_plane.io.rawsock.RawSocketPort`'s ``sendmmsg`` from the batch rows
(PACKET_TX_RING measured slower than sendmmsg in the prototype).

Latency: a block that does not fill is handed over after ``block_timeout_ms`` (the kernel's
timer runs in jiffies, so up to a few ms on a HZ=250 kernel): a lone control frame waits
that long. Under load blocks fill long before.
"""

from __future__ import annotations

import contextlib
import mmap
import socket
import struct
import time

import numpy as np
from numpy.lib.stride_tricks import as_strided

from data_plane.io.base import I64, ROW, RxBatch
from data_plane.io.rawsock import RawSocketPort
from vnf.adapters.packet import SOL_PACKET

PACKET_RX_RING = 5
PACKET_VERSION = 10
TPACKET_V3 = 2
TP_STATUS_KERNEL = 0
TP_STATUS_USER = 1
_REQ3 = struct.Struct("7I")
"""struct tpacket_req3: block size, block count, frame size, frame count, retire timeout
(ms), private area size, feature request word."""
# struct tpacket_block_desc (version, offset_to_priv, then tpacket_hdr_v1), as uint32 words:
_BLOCK_STATUS = 2
_NUM_PKTS = 3
_FIRST_PKT = 4
# struct tpacket3_hdr, byte offsets:
_NEXT = 0
_SNAPLEN = 12
_LEN = 16
_MAC = 24
_HDR_MIN = 48


class RingPort(RawSocketPort):
    """A worker port on a Linux interface: TPACKET_V3 receive ring, sendmmsg transmit;
    implements :class:`~data_plane.io.base.FrameIO`."""

    _STATS = struct.Struct("III")
    """struct tpacket_stats_v3: packets, drops, times the queue froze (ring full)."""

    def __init__(
        self,
        ifname: str,
        blocks: int = 64,
        block_size: int = 128 << 10,
        block_timeout_ms: int = 2,
        sndbuf: int = 8 << 20,
        qdisc_bypass: bool = False,
        promiscuous: bool = True,
    ) -> None:
        if block_size % mmap.PAGESIZE or block_size < ROW * 2:
            raise ValueError("block_size must be a multiple of the page size, at least 4 KiB")
        if blocks < 2:
            raise ValueError("a ring needs at least two blocks")
        self.blocks = blocks
        self.block_size = block_size
        self.size = blocks * block_size
        request = _REQ3.pack(
            block_size, blocks, ROW, blocks * (block_size // ROW), block_timeout_ms, 0, 0
        )

        def setup(sock: socket.socket) -> None:
            sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
            sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)

        super().__init__(ifname, 1 << 16, sndbuf, qdisc_bypass, promiscuous, setup)
        try:
            self._mm = mmap.mmap(self.fileno(), self.size, mmap.MAP_SHARED)
        except OSError:
            self._sock.close()
            raise
        self._ring = np.frombuffer(self._mm, dtype=np.uint8)
        self._words = memoryview(self._mm).cast("I")
        self._u32 = np.frombuffer(self._mm, dtype=np.uint32)
        self._u16 = np.frombuffer(self._mm, dtype=np.uint16)
        self._block = 0
        """The block we read next (or are reading)."""
        self._left = 0
        """Frames of the current block not yet copied out (0: no block held)."""
        self._pos = 0
        """Ring offset of the next frame's header in the current block."""
        self._holding = False
        """We own the current block (opened, not yet handed back)."""
        self.blocks_read = 0
        self.bad_blocks = 0
        """Blocks whose frame chain pointed outside the block (handed back, rest lost)."""
        self._closed = False

    # ---- receive ------------------------------------------------------------------------
    def recv_batch(self, batch: RxBatch) -> int:
        starts = self._walk(batch.capacity)
        n = len(starts)
        batch.count = n
        if not n:
            if self._left == 0 and self._holding:
                self._release()  # a malformed block yielded nothing: hand it back anyway
            return 0
        hdr = np.array(starts, dtype=np.int64)
        snap = self._u32[(hdr + _SNAPLEN) >> 2].astype(np.int64)
        wire = self._u32[(hdr + _LEN) >> 2].astype(np.int64)
        data = hdr + self._u16[(hdr + _MAC) >> 1]
        kept = np.minimum(snap, batch.max_frame)
        self.rx_truncated += int(np.count_nonzero(wire > kept))
        self._copy(batch, data, kept)
        batch.lengths[:n] = kept
        batch.rx_ns = time.monotonic_ns()
        self.rx_packets += n
        if self._left == 0:
            self._release()
        return n

    def _walk(self, limit: int) -> list[int]:
        """Header offsets of up to ``limit`` frames, from the current block onward; blocks
        fully walked are handed back (their frames are copied before the next walk)."""
        starts: list[int] = []
        words = self._words
        while len(starts) < limit:
            if self._left == 0:
                if not self._open_block():
                    break
                continue
            base = self._block * self.block_size
            end = base + self.block_size - _HDR_MIN
            take = min(self._left, limit - len(starts))
            pos = self._pos
            for _ in range(take):
                if not base < pos <= end or pos & 3:
                    self.bad_blocks += 1
                    self._left = 0
                    break
                starts.append(pos)
                pos += words[pos >> 2]
                self._left -= 1
            self._pos = pos
            if self._left == 0 and len(starts) < limit:
                # Copy what we have before handing the block back.
                break
        return starts

    def _open_block(self) -> bool:
        base = (self._block * self.block_size) >> 2
        words = self._words
        if not words[base + _BLOCK_STATUS] & TP_STATUS_USER:
            return False
        count = words[base + _NUM_PKTS]
        self._pos = (base << 2) + words[base + _FIRST_PKT]
        self._left = count
        self._holding = True
        if count == 0:
            self._release()
            return True
        return True

    def _release(self) -> None:
        """Hand the current block back to the kernel and move to the next one."""
        base = (self._block * self.block_size) >> 2
        self._words[base + _BLOCK_STATUS] = TP_STATUS_KERNEL
        self._block = (self._block + 1) % self.blocks
        self._left = 0
        self._holding = False
        self.blocks_read += 1

    def _copy(self, batch: RxBatch, data: I64, kept: I64) -> None:
        """Frames at ring offsets ``data`` (lengths ``kept``) into rows 0..n at the headroom:
        rows of a window over the ring, one start per byte, gathered in one step."""
        n, h = len(data), batch.headroom
        width = int(kept.max())
        if width == 0:
            return
        fits = data + width <= self.size
        ring = self._ring
        window = as_strided(ring, shape=(self.size - width + 1, width), strides=(1, 1))
        if bool(fits.all()):
            batch.buf[:n, h : h + width] = window[data]
            return
        for i in range(n):  # a frame at the very end of the ring: rare
            start, size = int(data[i]), int(kept[i])
            batch.buf[i, h : h + size] = ring[start : start + size]

    # ---- housekeeping ---------------------------------------------------------------------
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        super().close()
        self._words.release()
        del self._ring, self._u32, self._u16
        with contextlib.suppress(BufferError):  # a caller still holds a view: GC unmaps
            self._mm.close()
