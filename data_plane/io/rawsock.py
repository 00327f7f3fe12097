"""AF_PACKET raw-socket port with recvmmsg/sendmmsg batches (packet(7), recvmmsg(2)).

The socket is bound to one interface for every protocol (ETH_P_ALL), joins the interface's
promiscuous membership (PACKET_ADD_MEMBERSHIP / PACKET_MR_PROMISC: a worker receives frames
for its groups' virtual MACs, which are not the interface's own), ignores outgoing frames
(PACKET_IGNORE_OUTGOING, Linux 4.20+: without it the socket would read back every frame it
or any other socket transmits on the interface) and never blocks.

``recv_batch`` is one ``recvmmsg`` whose iovecs point into the rows of an
:class:`~data_plane.io.base.RxBatch` (at the headroom), ``send_batch`` one ``sendmmsg`` per
1024 frames whose iovecs point into any 2-D ``uint8`` buffer: no copy in user space either
way. The mmsghdr/iovec arrays are numpy views of the C structures, filled vectorized.

A socket keeps the network namespace it was created in: create the port inside the node's
namespace (in a thread that has done ``setns``), then use it from anywhere.
"""

from __future__ import annotations

import ctypes
import errno
import os
import socket
import struct
import time
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from data_plane.io.base import U8, Index, RxBatch
from vnf.adapters.packet import SOL_PACKET, open_packet_socket

PACKET_STATISTICS = 6
MSG_DONTWAIT = 0x40
MSG_TRUNC = 0x20
UIO_MAXIOV = 1024
"""The most messages one sendmmsg/recvmmsg call takes."""

_RETRY = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR)


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [
        ("msg_name", ctypes.c_void_p),
        ("msg_namelen", ctypes.c_uint32),
        ("msg_iov", ctypes.c_void_p),
        ("msg_iovlen", ctypes.c_size_t),
        ("msg_control", ctypes.c_void_p),
        ("msg_controllen", ctypes.c_size_t),
        ("msg_flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("msg_hdr", _MsgHdr), ("msg_len", ctypes.c_uint)]


_IOVEC = np.dtype(_IoVec)
_MMSGHDR = np.dtype(_MMsgHdr)

_libc = ctypes.CDLL(None, use_errno=True)
_recvmmsg = _libc.recvmmsg
_recvmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
_recvmmsg.restype = ctypes.c_int
_sendmmsg = _libc.sendmmsg
_sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
_sendmmsg.restype = ctypes.c_int


class _Vectors:
    """``count`` mmsghdrs, each with one iovec (numpy views of the C arrays)."""

    def __init__(self, count: int) -> None:
        self.iov: npt.NDArray[np.void] = np.zeros(count, dtype=_IOVEC)
        self.msgs: npt.NDArray[np.void] = np.zeros(count, dtype=_MMSGHDR)
        hdr = self.msgs["msg_hdr"]
        hdr["msg_iov"] = self.iov.ctypes.data + np.arange(count, dtype=np.uint64) * _IOVEC.itemsize
        hdr["msg_iovlen"] = 1
        self.pointer = int(self.msgs.ctypes.data)

    def at(self, index: int) -> int:
        """Address of mmsghdr ``index``."""
        return self.pointer + index * int(_MMSGHDR.itemsize)


class RawSocketPort:
    """A worker port on a Linux interface; implements :class:`~data_plane.io.base.FrameIO`.

    ``qdisc_bypass`` sends straight to the driver (faster, but capture tools on the
    interface then miss our frames). Buffer sizes are forced when we have CAP_NET_ADMIN and
    requested otherwise.
    """

    _STATS = struct.Struct("II")
    """struct tpacket_stats: packets, drops."""

    def __init__(
        self,
        ifname: str,
        rcvbuf: int = 8 << 20,
        sndbuf: int = 8 << 20,
        qdisc_bypass: bool = False,
        promiscuous: bool = True,
        before_bind: Callable[[socket.socket], None] | None = None,
    ) -> None:
        self.ifname = ifname
        self.name = ifname
        sock = open_packet_socket(
            ifname, rcvbuf, sndbuf, promiscuous, qdisc_bypass, before_bind=before_bind
        )
        self._sock = sock
        self._fd = sock.fileno()
        self._rx_cache: dict[tuple[int, int, int, int], _Vectors] = {}
        self._tx = _Vectors(UIO_MAXIOV)
        self.rx_packets = 0
        self.rx_truncated = 0
        self.tx_packets = 0
        self.tx_dropped = 0
        """Frames the kernel refused (queue full, link down, too big)."""
        self.kernel_drops = 0

    def fileno(self) -> int:
        return self._fd

    # ---- receive ------------------------------------------------------------------------
    def recv_batch(self, batch: RxBatch) -> int:
        vec = self._rx_vectors(batch)
        n = int(_recvmmsg(self._fd, vec.pointer, batch.capacity, MSG_DONTWAIT, None))
        if n < 0:
            err = ctypes.get_errno()
            batch.count = 0
            if err in _RETRY or err == errno.ENETDOWN:
                return 0
            raise OSError(err, f"recvmmsg on {self.ifname}: {os.strerror(err)}")
        msgs = vec.msgs[:n]
        batch.lengths[:n] = msgs["msg_len"]
        truncated = int(np.count_nonzero(msgs["msg_hdr"]["msg_flags"] & MSG_TRUNC))
        self.rx_truncated += truncated
        batch.count = n
        batch.rx_ns = time.monotonic_ns()
        self.rx_packets += n
        return n

    def _rx_vectors(self, batch: RxBatch) -> _Vectors:
        buf = batch.buf
        key = (int(buf.ctypes.data), batch.capacity, int(buf.strides[0]), batch.headroom)
        vec = self._rx_cache.get(key)
        if vec is None:
            if buf.strides[1] != 1:
                raise ValueError("batch rows must be contiguous bytes")
            if len(self._rx_cache) >= 8:
                self._rx_cache.clear()
            vec = _Vectors(batch.capacity)
            rows = np.arange(batch.capacity, dtype=np.uint64)
            vec.iov["iov_base"] = key[0] + rows * np.uint64(key[2]) + np.uint64(batch.headroom)
            vec.iov["iov_len"] = batch.max_frame
            self._rx_cache[key] = vec
        return vec

    # ---- send ---------------------------------------------------------------------------
    def send_batch(self, buf: U8, rows: Index, offsets: Index, lengths: Index) -> int:
        count = len(rows)
        if count == 0:
            return 0
        if buf.ndim != 2 or buf.strides[1] != 1:
            raise ValueError("send_batch needs a 2-D buffer of contiguous rows")
        # The kernel reads wherever the iovecs point: never let them leave the buffer.
        starts = offsets.astype(np.int64, copy=False)
        sizes = lengths.astype(np.int64, copy=False)
        if (
            int(rows.min()) < 0
            or int(rows.max()) >= buf.shape[0]
            or int(starts.min()) < 0
            or int(sizes.min()) < 0
            or int((starts + sizes).max()) > buf.shape[1]
        ):
            raise ValueError("send_batch frame outside the buffer")
        base, stride = int(buf.ctypes.data), int(buf.strides[0])
        iov = self._tx.iov
        sent = 0
        for start in range(0, count, UIO_MAXIOV):
            m = min(UIO_MAXIOV, count - start)
            chunk = slice(start, start + m)
            iov["iov_base"][:m] = base + rows[chunk] * stride + offsets[chunk]
            iov["iov_len"][:m] = lengths[chunk]
            done = self._sendmmsg(m)
            sent += done
            if done < m:
                self.tx_dropped += count - start - done
                break
        self.tx_packets += sent
        return sent

    def _sendmmsg(self, m: int) -> int:
        done = 0
        while done < m:
            r = _sendmmsg(self._fd, self._tx.at(done), m - done, 0)
            if r < 0:
                if ctypes.get_errno() == errno.EINTR:
                    continue
                break  # EAGAIN/ENOBUFS/ENETDOWN...: the rest of the batch is dropped
            done += r
        return done

    def send(self, frame: bytes) -> None:
        try:
            self._sock.send(frame)
        except OSError:
            self.tx_dropped += 1
        else:
            self.tx_packets += 1

    # ---- housekeeping ---------------------------------------------------------------------
    def kernel_stats(self) -> tuple[int, int]:
        """PACKET_STATISTICS since the last call: (frames queued, frames the kernel dropped
        because the receive buffer was full). Drops also accumulate in :attr:`kernel_drops`."""
        raw = self._sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, self._STATS.size)
        packets, drops = self._STATS.unpack(raw)[:2]
        self.kernel_drops += drops
        return packets, drops

    def close(self) -> None:
        self._sock.close()
        self._rx_cache.clear()

    def __enter__(self) -> RawSocketPort:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
