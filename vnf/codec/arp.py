"""ARP for Ethernet and IPv4 (RFC 826), pure decode/encode.

Only the combination a data-plane worker's core port needs is accepted: hardware type 1
(Ethernet, 6-byte addresses) and protocol type 0x0800 (IPv4, 4-byte addresses), as RFC 826
"Packet format" lays them out::

    ar$hrd 16  ar$pro 16  ar$hln 8  ar$pln 8  ar$op 16
    ar$sha 48  ar$spa 32  ar$tha 48  ar$tpa 32            (28 bytes in all)

Anything else decodes to :class:`vnf.errors.DecodeError` with layer ``"arp"``. IPv4
addresses are ``int`` (host order), MACs 6-byte ``bytes``, as everywhere in the project.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from vnf.errors import DecodeError

ETHERTYPE_ARP = 0x0806
HRD_ETHERNET = 1
PRO_IPV4 = 0x0800
ARP_LEN = 28
ETHERNET_HEADER_LEN = 14

_ARP = struct.Struct("!HHBBH6sI6sI")
_ETHERNET = struct.Struct("!6s6sH")


class ArpOp(enum.IntEnum):
    """RFC 826 ar$op (ares_op$REQUEST, ares_op$REPLY)."""

    REQUEST = 1
    REPLY = 2


@dataclass(frozen=True, slots=True)
class ArpPacket:
    op: ArpOp
    sender_mac: bytes
    sender_ip: int
    target_mac: bytes
    target_ip: int

    @property
    def is_gratuitous(self) -> bool:
        """An announcement of the sender's own binding (sender and target address equal)."""
        return self.sender_ip == self.target_ip


def decode_arp(buf: bytes | bytearray | memoryview, offset: int = 0) -> ArpPacket:
    """Decode the ARP packet at ``buf[offset:]`` (bytes after it, e.g. padding, are ignored)."""
    if offset < 0 or len(buf) - offset < ARP_LEN:
        raise DecodeError("arp", offset, "truncated", f"{max(0, len(buf) - offset)} bytes")
    hrd, pro, hln, pln, op, sha, spa, tha, tpa = _ARP.unpack_from(buf, offset)
    if hrd != HRD_ETHERNET:
        raise DecodeError("arp", offset, "bad_hardware_type", str(hrd))
    if pro != PRO_IPV4:
        raise DecodeError("arp", offset + 2, "bad_protocol_type", f"0x{pro:04x}")
    if hln != 6 or pln != 4:
        raise DecodeError("arp", offset + 4, "bad_address_length", f"{hln}/{pln}")
    if op not in (ArpOp.REQUEST, ArpOp.REPLY):
        raise DecodeError("arp", offset + 6, "bad_opcode", str(op))
    return ArpPacket(ArpOp(op), sha, spa, tha, tpa)


def encode_arp(packet: ArpPacket) -> bytes:
    """The 28-byte ARP packet (no Ethernet header)."""
    if len(packet.sender_mac) != 6 or len(packet.target_mac) != 6:
        raise ValueError("ARP hardware addresses are 6 bytes")
    return _ARP.pack(
        HRD_ETHERNET,
        PRO_IPV4,
        6,
        4,
        int(packet.op),
        packet.sender_mac,
        packet.sender_ip,
        packet.target_mac,
        packet.target_ip,
    )


def encode_arp_frame(eth_dst: bytes, eth_src: bytes, packet: ArpPacket) -> bytes:
    """An Ethernet frame (ethertype 0x0806) carrying ``packet``."""
    return _ETHERNET.pack(eth_dst, eth_src, ETHERTYPE_ARP) + encode_arp(packet)


def request(sender_mac: bytes, sender_ip: int, target_ip: int) -> ArpPacket:
    """RFC 826: a request leaves the target hardware address zero ("don't care")."""
    return ArpPacket(ArpOp.REQUEST, sender_mac, sender_ip, b"\x00" * 6, target_ip)


def reply_to(req: ArpPacket, own_mac: bytes) -> ArpPacket:
    """RFC 826: "swap hardware and protocol fields, putting the local hardware and protocol
    addresses in the sender fields", and set the opcode to reply."""
    return ArpPacket(ArpOp.REPLY, own_mac, req.target_ip, req.sender_mac, req.sender_ip)
