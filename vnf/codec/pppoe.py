"""PPPoE framing: RFC 2516 §4 (packet format), §5 (discovery), Appendix A (tags), and the
RFC 4638 PPP-Max-Payload tag.

Wire format (RFC 2516 §4, after the 14-byte Ethernet header)::

     0                   1                   2                   3
    |  VER  | TYPE  |      CODE     |          SESSION_ID           |
    |            LENGTH             |           payload  ...        |

VER and TYPE "MUST be set to 0x1". Discovery (EtherType 0x8863) payloads are TLV tags
(TAG_TYPE 16 bits, TAG_LENGTH 16 bits, value); the session stage (0x8864) carries a PPP
packet with CODE 0x00. LENGTH counts the payload only; Ethernet padding after it (frames shorter
than 60 bytes are padded) is ignored. Tags after End-Of-List are ignored (Appendix A).

Every decoder raises only :class:`vnf.errors.DecodeError` with layer ``"pppoe"`` (or
``"ethernet"`` for a frame too short or of another EtherType).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from vnf.codec.ethernet import ETH_HLEN, EtherType
from vnf.errors import DecodeError

PPPOE_HLEN = 6
PPPOE_VER_TYPE = 0x11
PPPOE_SESSION_HLEN = ETH_HLEN + PPPOE_HLEN + 2
"""Ethernet + PPPoE + PPP protocol field: the 22 bytes in front of a PPP information field."""

_HEADER = struct.Struct("!BBHH")
_TAG = struct.Struct("!HH")
_ETH = struct.Struct("!6s6sH")
_SESSION = struct.Struct("!6s6sHBBHHH")
_DISCOVERY_HEAD = struct.Struct("!6s6sHBBHH")


class PppoeCode(IntEnum):
    """RFC 2516 CODE field values."""

    SESSION = 0x00
    PADO = 0x07
    PADI = 0x09
    PADR = 0x19
    PADS = 0x65
    PADT = 0xA7


DISCOVERY_CODES = frozenset(
    (PppoeCode.PADI, PppoeCode.PADO, PppoeCode.PADR, PppoeCode.PADS, PppoeCode.PADT)
)


class TagType(IntEnum):
    """RFC 2516 Appendix A tag types, plus RFC 4638 PPP-Max-Payload."""

    END_OF_LIST = 0x0000
    SERVICE_NAME = 0x0101
    AC_NAME = 0x0102
    HOST_UNIQ = 0x0103
    AC_COOKIE = 0x0104
    VENDOR_SPECIFIC = 0x0105
    RELAY_SESSION_ID = 0x0110
    PPP_MAX_PAYLOAD = 0x0120
    SERVICE_NAME_ERROR = 0x0201
    AC_SYSTEM_ERROR = 0x0202
    GENERIC_ERROR = 0x0203


ERROR_TAGS = frozenset((TagType.SERVICE_NAME_ERROR, TagType.AC_SYSTEM_ERROR, TagType.GENERIC_ERROR))


@dataclass(frozen=True, slots=True)
class Tag:
    type: int
    value: bytes


@dataclass(frozen=True, slots=True)
class DiscoveryPacket:
    code: int
    session_id: int
    tags: tuple[Tag, ...]

    def tag(self, type: int) -> bytes | None:
        """The value of the first tag of ``type``, or None."""
        for t in self.tags:
            if t.type == type:
                return t.value
        return None

    def tag_values(self, type: int) -> tuple[bytes, ...]:
        """The values of every tag of ``type``, in order."""
        return tuple(t.value for t in self.tags if t.type == type)


@dataclass(frozen=True, slots=True)
class DiscoveryFrame:
    dst: bytes
    src: bytes
    packet: DiscoveryPacket


@dataclass(frozen=True, slots=True)
class PppFrame:
    dst: bytes
    src: bytes
    session_id: int
    protocol: int
    payload: bytes


def _check_header(buf: bytes, offset: int) -> tuple[int, int, int]:
    """Validate the 6-byte header at ``offset``; return (code, session_id, length)."""
    if offset < 0 or len(buf) - offset < PPPOE_HLEN:
        raise DecodeError("pppoe", offset, "truncated")
    ver_type, code, session_id, length = _HEADER.unpack_from(buf, offset)
    if ver_type != PPPOE_VER_TYPE:
        # RFC 2516 §4: "The VER field is four bits and MUST be set to 0x1 ... The TYPE field
        # is four bits and MUST be set to 0x1."
        reason = "bad_version" if ver_type >> 4 != 1 else "bad_type"
        raise DecodeError("pppoe", offset, reason)
    if offset + PPPOE_HLEN + length > len(buf):
        raise DecodeError("pppoe", offset + 4, "length_overrun")
    return code, session_id, length


def _decode_tags(buf: bytes, pos: int, end: int) -> tuple[Tag, ...]:
    tags: list[Tag] = []
    while pos < end:
        if end - pos < 4:
            raise DecodeError("pppoe", pos, "tag_overrun")
        tag_type, tag_len = _TAG.unpack_from(buf, pos)
        if tag_type == TagType.END_OF_LIST:
            break  # Appendix A: End-Of-List "indicates that there are no further tags"
        pos += 4
        if pos + tag_len > end:
            raise DecodeError("pppoe", pos - 2, "tag_overrun")
        tags.append(Tag(tag_type, bytes(buf[pos : pos + tag_len])))
        pos += tag_len
    return tuple(tags)


def decode_discovery(buf: bytes, offset: int = 0) -> DiscoveryPacket:
    """Decode a discovery packet whose PPPoE header starts at ``offset``."""
    code, session_id, length = _check_header(buf, offset)
    if code not in DISCOVERY_CODES:
        raise DecodeError("pppoe", offset + 1, "bad_code")
    start = offset + PPPOE_HLEN
    return DiscoveryPacket(code, session_id, _decode_tags(buf, start, start + length))


def encode_tags(tags: tuple[Tag, ...] | list[Tag]) -> bytes:
    parts: list[bytes] = []
    for t in tags:
        if len(t.value) > 0xFFFF:
            raise ValueError("a PPPoE tag value has at most 65535 bytes")
        parts.append(_TAG.pack(t.type, len(t.value)))
        parts.append(t.value)
    return b"".join(parts)


def encode_discovery(pkt: DiscoveryPacket) -> bytes:
    """The PPPoE header and tags (no Ethernet header)."""
    body = encode_tags(pkt.tags)
    if len(body) > 0xFFFF:
        raise ValueError("PPPoE payload longer than 65535 bytes")
    return _HEADER.pack(PPPOE_VER_TYPE, pkt.code, pkt.session_id, len(body)) + body


def _check_ethertype(frame: bytes, expected: int) -> None:
    if len(frame) < ETH_HLEN:
        raise DecodeError("ethernet", 0, "truncated")
    if frame[12] != expected >> 8 or frame[13] != expected & 0xFF:
        raise DecodeError("ethernet", 12, "bad_ethertype")


def decode_discovery_frame(frame: bytes) -> DiscoveryFrame:
    """Decode a whole Ethernet frame of EtherType 0x8863."""
    _check_ethertype(frame, EtherType.PPPOE_DISCOVERY)
    return DiscoveryFrame(frame[0:6], frame[6:12], decode_discovery(frame, ETH_HLEN))


def encode_discovery_frame(dst: bytes, src: bytes, pkt: DiscoveryPacket) -> bytes:
    body = encode_tags(pkt.tags)
    if len(body) > 0xFFFF:
        raise ValueError("PPPoE payload longer than 65535 bytes")
    head = _DISCOVERY_HEAD.pack(
        dst, src, EtherType.PPPOE_DISCOVERY, PPPOE_VER_TYPE, pkt.code, pkt.session_id, len(body)
    )
    return head + body


def decode_session_frame(frame: bytes) -> PppFrame:
    """Decode a whole Ethernet frame of EtherType 0x8864 into its PPP protocol and payload.

    The PPP Protocol field is always two bytes: Protocol-Field-Compression is never
    negotiated by our LCP (RFC 2516 §7 lets us refuse it).
    """
    _check_ethertype(frame, EtherType.PPPOE_SESSION)
    code, session_id, length = _check_header(frame, ETH_HLEN)
    if code != PppoeCode.SESSION:
        raise DecodeError("pppoe", ETH_HLEN + 1, "bad_code")
    if length < 2:
        raise DecodeError("pppoe", ETH_HLEN + 4, "bad_length")
    protocol = (frame[20] << 8) | frame[21]
    end = ETH_HLEN + PPPOE_HLEN + length
    return PppFrame(frame[0:6], frame[6:12], session_id, protocol, frame[PPPOE_SESSION_HLEN:end])


def encode_session_frame(
    dst: bytes, src: bytes, session_id: int, protocol: int, payload: bytes
) -> bytes:
    """A whole session-stage Ethernet frame (no padding: the NIC or the kernel pads)."""
    head = _SESSION.pack(
        dst,
        src,
        EtherType.PPPOE_SESSION,
        PPPOE_VER_TYPE,
        PppoeCode.SESSION,
        session_id,
        len(payload) + 2,
        protocol,
    )
    return head + payload
