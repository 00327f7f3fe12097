"""AF_PACKET sockets on one interface, the way every vnf process opens them (packet(7)).

Bound to one interface for every protocol (ETH_P_ALL); PACKET_IGNORE_OUTGOING (Linux 4.20+)
keeps the socket from reading back frames that it or any other socket transmits on the
interface; promiscuous membership lets it see frames for MACs that are not the interface's
own (virtual AC MACs, emulated clients); non-blocking. A socket keeps the network namespace
it was created in.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Callable

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_PROMISC = 1
PACKET_QDISC_BYPASS = 20
PACKET_IGNORE_OUTGOING = 23
SO_SNDBUFFORCE = 32
SO_RCVBUFFORCE = 33


def open_packet_socket(
    ifname: str,
    rcvbuf: int = 8 << 20,
    sndbuf: int = 8 << 20,
    promiscuous: bool = True,
    qdisc_bypass: bool = False,
    ignore_outgoing: bool = True,
    before_bind: Callable[[socket.socket], None] | None = None,
) -> socket.socket:
    """``ignore_outgoing=False`` makes a capture socket: it also sees what others transmit.
    ``before_bind`` sets up what must precede ``bind`` (a PACKET_RX_RING)."""
    # Protocol 0 until bind: the socket receives nothing from other interfaces meanwhile.
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        if ignore_outgoing:
            sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
        set_buffer(sock, SO_RCVBUFFORCE, socket.SO_RCVBUF, rcvbuf)
        set_buffer(sock, SO_SNDBUFFORCE, socket.SO_SNDBUF, sndbuf)
        if qdisc_bypass:
            sock.setsockopt(SOL_PACKET, PACKET_QDISC_BYPASS, 1)
        if before_bind is not None:
            before_bind(sock)
        sock.bind((ifname, ETH_P_ALL))
        if promiscuous:
            mreq = struct.pack("iHH8s", socket.if_nametoindex(ifname), PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def set_buffer(sock: socket.socket, force: int, plain: int, size: int) -> None:
    """Force the buffer size with CAP_NET_ADMIN, else ask for it (capped by rmem_max)."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, force, size)
    except PermissionError:
        sock.setsockopt(socket.SOL_SOCKET, plain, size)
