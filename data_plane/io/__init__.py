"""Frame I/O backends of the data-plane worker (the only data_plane package doing I/O).

:mod:`data_plane.io.base` defines the batch shape and the :class:`FrameIO` interface. The
backends behind it, by the DP's ``io`` setting (:func:`open_port`):

* ``ring`` — :mod:`data_plane.io.ring`: TPACKET_V3 mmap receive ring + sendmmsg;
* ``mmsg`` — :mod:`data_plane.io.rawsock`: recvmmsg/sendmmsg (the lab's default);
* ``packet`` — :mod:`data_plane.io.packet`: one recv/send per frame, the readable reference;

and :mod:`data_plane.io.memory`, in-memory ports for tests. The Linux backends are imported
on demand (they load libc through ctypes).
"""

from __future__ import annotations

from data_plane.io.base import HEADROOM, ROW, FrameIO, RxBatch, TxBatch, send_tx
from data_plane.io.memory import MemoryPort, memory_pair
from vnf.config import DP_IO_BACKENDS as BACKENDS


def open_port(backend: str, ifname: str) -> FrameIO:
    """A port on ``ifname`` (in the caller's network namespace) with ``backend``; ValueError
    naming the choices for an unknown one."""
    if backend == "ring":
        from data_plane.io.ring import RingPort

        return RingPort(ifname)
    if backend == "mmsg":
        from data_plane.io.rawsock import RawSocketPort

        return RawSocketPort(ifname)
    if backend == "packet":
        from data_plane.io.packet import PacketPort

        return PacketPort(ifname)
    raise ValueError(f"unknown I/O backend {backend!r}: choose one of {', '.join(BACKENDS)}")


__all__ = [
    "BACKENDS",
    "HEADROOM",
    "ROW",
    "FrameIO",
    "MemoryPort",
    "RxBatch",
    "TxBatch",
    "memory_pair",
    "open_port",
    "send_tx",
]
