"""IPv4 and UDP headers and the Internet checksum.

- RFC 791 §3.1: the IPv4 header (Version 4, IHL in 32-bit words >= 5, Total Length, TTL,
  Protocol, Header Checksum over the header only).
- RFC 768: the UDP header (Source Port, Destination Port, Length, Checksum; a checksum of 0
  means "not computed", which IPv4 allows).
- RFC 1071 §4: the Internet checksum, computed here as the 16-bit one's complement sum of the
  data taken as one big integer modulo 0xFFFF (2**16 = 1 modulo 0xFFFF, so the sum of the
  16-bit words and the whole number leave the same remainder) - one C-level pass instead of a
  Python loop per word.

Addresses are host-order ``int`` as everywhere in the fast path (``vnf.model.addresses``).
Decoders raise only :class:`vnf.errors.DecodeError` with layer ``"ipv4"`` or ``"udp"``.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

from vnf.errors import DecodeError

IPV4_HLEN = 20
UDP_HLEN = 8
IPPROTO_ICMP = 1
IPPROTO_TCP = 6
IPPROTO_UDP = 17

_IPV4 = struct.Struct("!BBHHHBBHII")
_UDP = struct.Struct("!HHHH")
_IPV4_UDP = struct.Struct("!BBHHHBBHIIHHHH")
_PSEUDO = struct.Struct("!IIBBH")


def internet_checksum(data: bytes) -> int:
    """RFC 1071 checksum of ``data`` (odd lengths padded with a zero byte)."""
    if len(data) & 1:
        data = bytes(data) + b"\x00"
    value = int.from_bytes(data, "big")
    total = value % 0xFFFF
    if total == 0 and value != 0:
        total = 0xFFFF  # a one's complement sum is only 0 when every word is 0
    return 0xFFFF - total


def _fold(total: int) -> int:
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return total


class IPv4Header(NamedTuple):
    """A decoded IPv4 header (a NamedTuple: immutable and cheap to build per packet)."""

    src: int
    dst: int
    protocol: int
    total_length: int
    ttl: int = 64
    ident: int = 0
    tos: int = 0
    flags_fragment: int = 0
    checksum: int = 0
    ihl: int = 5

    @property
    def header_length(self) -> int:
        return self.ihl * 4


def decode_ipv4(buf: bytes, offset: int = 0, *, verify_checksum: bool = True) -> IPv4Header:
    """Decode and check the IPv4 header at ``offset`` (options are skipped, not parsed)."""
    if offset < 0 or len(buf) - offset < IPV4_HLEN:
        raise DecodeError("ipv4", offset, "truncated")
    (ver_ihl, tos, total, ident, frag, ttl, proto, csum, src, dst) = _IPV4.unpack_from(buf, offset)
    if ver_ihl >> 4 != 4:
        raise DecodeError("ipv4", offset, "bad_version")
    ihl = ver_ihl & 0x0F
    if ihl < 5:
        raise DecodeError("ipv4", offset, "bad_ihl")
    hlen = ihl * 4
    if total < hlen:
        raise DecodeError("ipv4", offset + 2, "bad_length")
    if offset + total > len(buf):
        raise DecodeError("ipv4", offset + 2, "length_overrun")
    if verify_checksum:
        if ihl == 5:  # sum the words we already unpacked instead of a second pass
            total_sum = _fold(
                (ver_ihl << 8 | tos)
                + total
                + ident
                + frag
                + (ttl << 8 | proto)
                + csum
                + (src >> 16)
                + (src & 0xFFFF)
                + (dst >> 16)
                + (dst & 0xFFFF)
            )
            valid = total_sum == 0xFFFF
        else:
            valid = internet_checksum(buf[offset : offset + hlen]) == 0
        if not valid:
            raise DecodeError("ipv4", offset + 10, "bad_checksum")
    return IPv4Header(src, dst, proto, total, ttl, ident, tos, frag, csum, ihl)


def encode_ipv4(header: IPv4Header) -> bytes:
    """A 20-byte header (no options) with a correct checksum; ``header.checksum`` is ignored."""
    total = (
        0x4500
        + header.tos
        + header.total_length
        + header.ident
        + header.flags_fragment
        + ((header.ttl << 8) | header.protocol)
        + (header.src >> 16)
        + (header.src & 0xFFFF)
        + (header.dst >> 16)
        + (header.dst & 0xFFFF)
    )
    return _IPV4.pack(
        0x45,
        header.tos,
        header.total_length,
        header.ident,
        header.flags_fragment,
        header.ttl,
        header.protocol,
        0xFFFF - _fold(total),
        header.src,
        header.dst,
    )


class UdpHeader(NamedTuple):
    sport: int
    dport: int
    length: int
    checksum: int = 0


def decode_udp(buf: bytes, offset: int = 0) -> UdpHeader:
    """Decode the UDP header at ``offset``; its Length must fit in the buffer."""
    if offset < 0 or len(buf) - offset < UDP_HLEN:
        raise DecodeError("udp", offset, "truncated")
    sport, dport, length, csum = _UDP.unpack_from(buf, offset)
    if length < UDP_HLEN:
        raise DecodeError("udp", offset + 4, "bad_length")
    if offset + length > len(buf):
        raise DecodeError("udp", offset + 4, "length_overrun")
    return UdpHeader(sport, dport, length, csum)


def encode_udp(header: UdpHeader) -> bytes:
    return _UDP.pack(header.sport, header.dport, header.length, header.checksum)


def udp_checksum(src_ip: int, dst_ip: int, udp: bytes) -> int:
    """RFC 768 checksum over the pseudo header and ``udp`` (header with checksum 0 + payload).

    A computed 0 is sent as 0xFFFF (0 means "no checksum").
    """
    pseudo = _PSEUDO.pack(src_ip, dst_ip, 0, IPPROTO_UDP, len(udp))
    value = internet_checksum(pseudo + udp)
    return value or 0xFFFF


def build_udp_packet(
    src_ip: int,
    dst_ip: int,
    sport: int,
    dport: int,
    payload: bytes,
    ttl: int = 64,
    ident: int = 0,
) -> bytes:
    """An IPv4/UDP packet with a correct header checksum and UDP checksum 0 (RFC 768).

    One ``struct.pack`` of both headers; the header checksum is summed from the fields
    directly (no second pass over bytes).
    """
    length = len(payload)
    total = IPV4_HLEN + UDP_HLEN + length
    s = (
        0x4500
        + total
        + ident
        + ((ttl << 8) | IPPROTO_UDP)
        + (src_ip >> 16)
        + (src_ip & 0xFFFF)
        + (dst_ip >> 16)
        + (dst_ip & 0xFFFF)
    )
    s = (s & 0xFFFF) + (s >> 16)
    s = (s & 0xFFFF) + (s >> 16)
    return (
        _IPV4_UDP.pack(
            0x45,
            0,
            total,
            ident,
            0,
            ttl,
            IPPROTO_UDP,
            0xFFFF - s,
            src_ip,
            dst_ip,
            sport,
            dport,
            UDP_HLEN + length,
            0,
        )
        + payload
    )


class UdpFlow:
    """A fixed 5-tuple: the part of the header checksum that never changes is summed once.

    ``build(payload, ident)`` is :func:`build_udp_packet` for this flow with fewer operations
    per packet, for traffic generators sending many packets of one flow.
    """

    __slots__ = ("_base", "_dport", "_dst", "_sport", "_src", "_ttl")

    def __init__(self, src_ip: int, dst_ip: int, sport: int, dport: int, ttl: int = 64) -> None:
        self._src = src_ip
        self._dst = dst_ip
        self._sport = sport
        self._dport = dport
        self._ttl = ttl
        self._base = (
            0x4500
            + IPV4_HLEN
            + UDP_HLEN
            + ((ttl << 8) | IPPROTO_UDP)
            + (src_ip >> 16)
            + (src_ip & 0xFFFF)
            + (dst_ip >> 16)
            + (dst_ip & 0xFFFF)
        )

    def build(self, payload: bytes, ident: int = 0) -> bytes:
        length = len(payload)
        s = self._base + length + ident
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        return (
            _IPV4_UDP.pack(
                0x45,
                0,
                IPV4_HLEN + UDP_HLEN + length,
                ident,
                0,
                self._ttl,
                IPPROTO_UDP,
                0xFFFF - s,
                self._src,
                self._dst,
                self._sport,
                self._dport,
                UDP_HLEN + length,
                0,
            )
            + payload
        )
