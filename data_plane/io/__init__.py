"""Frame I/O backends of the data-plane worker (the only data_plane package doing I/O).

:mod:`data_plane.io.base` defines the batch shape and the :class:`FrameIO` interface;
:mod:`data_plane.io.memory` is the in-memory backend; :mod:`data_plane.io.rawsock` the
AF_PACKET recvmmsg/sendmmsg backend (imported explicitly: it loads libc through ctypes).
"""

from __future__ import annotations

from data_plane.io.base import HEADROOM, ROW, FrameIO, RxBatch, TxBatch, send_tx
from data_plane.io.memory import MemoryPort, memory_pair

__all__ = [
    "HEADROOM",
    "ROW",
    "FrameIO",
    "MemoryPort",
    "RxBatch",
    "TxBatch",
    "memory_pair",
    "send_tx",
]
