"""Ethernet II framing (IEEE 802.3 clause 3.2.6, "type" interpretation of the Length/Type field).

Only the 14-byte header is decoded here; the payload is left in the buffer for the next layer
so that nothing is copied. Frames shorter than 60 bytes are padded on the wire (IEEE 802.3
minimum frame size); the layers above carry their own length and ignore the padding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from vnf.errors import DecodeError

ETH_HLEN = 14
ETH_ALEN = 6
ETH_ZLEN = 60
"""Minimum frame length without the FCS: shorter frames are padded on the wire."""

_HEADER = struct.Struct("!6s6sH")
_ETHERTYPE = struct.Struct("!H")


class EtherType(IntEnum):
    """EtherType values used by the simulator (IEEE registry)."""

    IPV4 = 0x0800
    ARP = 0x0806
    VLAN = 0x8100
    PPPOE_DISCOVERY = 0x8863
    PPPOE_SESSION = 0x8864
    LOCAL_EXPERIMENTAL = 0x88B5


@dataclass(frozen=True, slots=True)
class EthernetHeader:
    dst: bytes
    src: bytes
    ethertype: int


def decode_ethernet(buf: bytes, offset: int = 0) -> EthernetHeader:
    """Decode the Ethernet header at ``offset``; ``DecodeError("ethernet", ..., "truncated")``."""
    if offset < 0 or len(buf) - offset < ETH_HLEN:
        raise DecodeError("ethernet", offset, "truncated")
    dst, src, ethertype = _HEADER.unpack_from(buf, offset)
    return EthernetHeader(dst, src, ethertype)


def peek_ethertype(buf: bytes) -> int:
    """The EtherType of a frame, or -1 if the frame is shorter than an Ethernet header."""
    if len(buf) < ETH_HLEN:
        return -1
    value: int = _ETHERTYPE.unpack_from(buf, 12)[0]
    return value


def encode_ethernet(dst: bytes, src: bytes, ethertype: int) -> bytes:
    """The 14-byte header; ``dst`` and ``src`` must be 6 bytes (our misuse raises ValueError)."""
    if len(dst) != ETH_ALEN or len(src) != ETH_ALEN:
        raise ValueError("MAC addresses have 6 bytes")
    return _HEADER.pack(dst, src, ethertype)
