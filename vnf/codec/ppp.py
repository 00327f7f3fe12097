"""PPP packets carried in PPPoE session frames.

- RFC 1661 §2 (Protocol field values), §5 (LCP packet format: Code, Identifier, Length, Data;
  "Octets outside the range of the Length field are treated as padding and are ignored"),
  §6 (LCP configuration options: Type, Length, Data).
- RFC 1332 §3 (IPCP, same packet format as LCP, codes 1-7) and RFC 1877 (DNS/NBNS options).
- RFC 1334 §2.2 (PAP: Authenticate-Request with Peer-ID and Passwd, Ack/Nak with Message).
- RFC 1994 §4 (CHAP: Challenge/Response with Value-Size, Value, Name; Success/Failure with
  Message) and §2.2 MD5 (algorithm 5): Response = MD5(Identifier || secret || Challenge).

Decoders raise only :class:`vnf.errors.DecodeError`; reasons: ``truncated`` (fewer bytes than a
header), ``bad_length`` (a Length field smaller than its own header), ``length_overrun`` (Length
past the buffer), ``option_overrun`` (an option running past the data), ``bad_code`` (a PAP or
CHAP code we do not know).
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass
from enum import IntEnum

from vnf.errors import DecodeError

_HEADER = struct.Struct("!BBH")
_PROTOCOL = struct.Struct("!H")

CHAP_MD5 = 5
"""RFC 1994 §2.2 / RFC 1661 Authentication-Protocol option: algorithm 5 = MD5."""


class PppProtocol(IntEnum):
    """RFC 1661 §2 Protocol field values (assigned numbers) used here."""

    IPV4 = 0x0021
    IPV6 = 0x0057
    IPCP = 0x8021
    IPV6CP = 0x8057
    LCP = 0xC021
    PAP = 0xC023
    CHAP = 0xC223


class ControlCode(IntEnum):
    """RFC 1661 §5 LCP codes; IPCP (RFC 1332 §2) uses 1-7."""

    CONFIGURE_REQUEST = 1
    CONFIGURE_ACK = 2
    CONFIGURE_NAK = 3
    CONFIGURE_REJECT = 4
    TERMINATE_REQUEST = 5
    TERMINATE_ACK = 6
    CODE_REJECT = 7
    PROTOCOL_REJECT = 8
    ECHO_REQUEST = 9
    ECHO_REPLY = 10
    DISCARD_REQUEST = 11


class LcpOption(IntEnum):
    """RFC 1661 §6 configuration option types."""

    MRU = 1
    ACCM = 2
    AUTH_PROTOCOL = 3
    QUALITY_PROTOCOL = 4
    MAGIC_NUMBER = 5
    PFC = 7
    ACFC = 8


class IpcpOption(IntEnum):
    """RFC 1332 §3 and RFC 1877 §1 option types."""

    IP_ADDRESSES = 1
    IP_COMPRESSION_PROTOCOL = 2
    IP_ADDRESS = 3
    PRIMARY_DNS = 129
    PRIMARY_NBNS = 130
    SECONDARY_DNS = 131
    SECONDARY_NBNS = 132


class PapCode(IntEnum):
    """RFC 1334 §2.2."""

    AUTHENTICATE_REQUEST = 1
    AUTHENTICATE_ACK = 2
    AUTHENTICATE_NAK = 3


class ChapCode(IntEnum):
    """RFC 1994 §4."""

    CHALLENGE = 1
    RESPONSE = 2
    SUCCESS = 3
    FAILURE = 4


# --- LCP / IPCP control packets ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ControlPacket:
    code: int
    identifier: int
    data: bytes


def _packet_bounds(buf: bytes, offset: int, layer: str) -> tuple[int, int, int]:
    """(code, identifier, end) of the Code/Identifier/Length packet at ``offset``."""
    if offset < 0 or len(buf) - offset < 4:
        raise DecodeError(layer, offset, "truncated")
    code, identifier, length = _HEADER.unpack_from(buf, offset)
    if length < 4:
        raise DecodeError(layer, offset + 2, "bad_length")
    end = offset + length
    if end > len(buf):
        raise DecodeError(layer, offset + 2, "length_overrun")
    return code, identifier, end


def decode_control(buf: bytes, offset: int = 0, layer: str = "ppp") -> ControlPacket:
    """Decode an LCP/IPCP packet. Unknown codes decode fine: the engine Code-Rejects them."""
    code, identifier, end = _packet_bounds(buf, offset, layer)
    return ControlPacket(code, identifier, bytes(buf[offset + 4 : end]))


def encode_control(pkt: ControlPacket) -> bytes:
    return _HEADER.pack(pkt.code, pkt.identifier, len(pkt.data) + 4) + pkt.data


def control_bytes(code: int, identifier: int, data: bytes) -> bytes:
    """:func:`encode_control` without building a ControlPacket first."""
    return _HEADER.pack(code, identifier, len(data) + 4) + data


# --- configuration options ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Option:
    type: int
    value: bytes


def decode_options(data: bytes, layer: str = "ppp") -> tuple[Option, ...]:
    """Decode the Options field of a Configure-* packet (RFC 1661 §6)."""
    opts: list[Option] = []
    pos = 0
    end = len(data)
    while pos < end:
        if end - pos < 2:
            raise DecodeError(layer, pos, "option_overrun")
        length = data[pos + 1]
        if length < 2:
            raise DecodeError(layer, pos + 1, "bad_length")
        if pos + length > end:
            raise DecodeError(layer, pos + 1, "option_overrun")
        opts.append(Option(data[pos], bytes(data[pos + 2 : pos + length])))
        pos += length
    return tuple(opts)


def encode_option(opt: Option) -> bytes:
    if len(opt.value) > 253:
        raise ValueError("an option value has at most 253 bytes")
    return bytes((opt.type, len(opt.value) + 2)) + opt.value


def encode_options(opts: tuple[Option, ...] | list[Option]) -> bytes:
    return b"".join(encode_option(o) for o in opts)


# --- PAP (RFC 1334 §2.2) -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PapRequest:
    identifier: int
    peer_id: bytes
    password: bytes


@dataclass(frozen=True, slots=True)
class PapReply:
    code: int  # AUTHENTICATE_ACK or AUTHENTICATE_NAK
    identifier: int
    message: bytes


def decode_pap(buf: bytes, offset: int = 0) -> PapRequest | PapReply:
    code, identifier, end = _packet_bounds(buf, offset, "pap")
    pos = offset + 4
    if code == PapCode.AUTHENTICATE_REQUEST:
        if pos >= end:
            raise DecodeError("pap", pos, "truncated")
        id_len = buf[pos]
        pos += 1
        if pos + id_len >= end:  # the Passwd-Length octet must follow the Peer-ID
            raise DecodeError("pap", pos - 1, "length_overrun")
        peer_id = bytes(buf[pos : pos + id_len])
        pos += id_len
        pw_len = buf[pos]
        pos += 1
        if pos + pw_len > end:
            raise DecodeError("pap", pos - 1, "length_overrun")
        return PapRequest(identifier, peer_id, bytes(buf[pos : pos + pw_len]))
    if code in (PapCode.AUTHENTICATE_ACK, PapCode.AUTHENTICATE_NAK):
        if pos >= end:
            # RFC 1334 requires Msg-Length; accept its absence as an empty message.
            return PapReply(code, identifier, b"")
        msg_len = buf[pos]
        if pos + 1 + msg_len > end:
            raise DecodeError("pap", pos, "length_overrun")
        return PapReply(code, identifier, bytes(buf[pos + 1 : pos + 1 + msg_len]))
    raise DecodeError("pap", offset, "bad_code")


def encode_pap_request(identifier: int, peer_id: bytes, password: bytes) -> bytes:
    if len(peer_id) > 255 or len(password) > 255:
        raise ValueError("PAP Peer-ID and Passwd have at most 255 bytes")
    data = bytes((len(peer_id),)) + peer_id + bytes((len(password),)) + password
    return control_bytes(PapCode.AUTHENTICATE_REQUEST, identifier, data)


def encode_pap_reply(code: int, identifier: int, message: bytes) -> bytes:
    if len(message) > 255:
        raise ValueError("a PAP message has at most 255 bytes")
    return control_bytes(code, identifier, bytes((len(message),)) + message)


def encode_pap(pkt: PapRequest | PapReply) -> bytes:
    if isinstance(pkt, PapRequest):
        return encode_pap_request(pkt.identifier, pkt.peer_id, pkt.password)
    return encode_pap_reply(pkt.code, pkt.identifier, pkt.message)


# --- CHAP (RFC 1994 §4) ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChapValue:
    """Challenge or Response: Value-Size, Value, Name."""

    code: int  # CHALLENGE or RESPONSE
    identifier: int
    value: bytes
    name: bytes


@dataclass(frozen=True, slots=True)
class ChapStatus:
    """Success or Failure with its Message."""

    code: int  # SUCCESS or FAILURE
    identifier: int
    message: bytes


def decode_chap(buf: bytes, offset: int = 0) -> ChapValue | ChapStatus:
    code, identifier, end = _packet_bounds(buf, offset, "chap")
    pos = offset + 4
    if code in (ChapCode.CHALLENGE, ChapCode.RESPONSE):
        if pos >= end:
            raise DecodeError("chap", pos, "truncated")
        size = buf[pos]
        if pos + 1 + size > end:
            raise DecodeError("chap", pos, "length_overrun")
        value = bytes(buf[pos + 1 : pos + 1 + size])
        return ChapValue(code, identifier, value, bytes(buf[pos + 1 + size : end]))
    if code in (ChapCode.SUCCESS, ChapCode.FAILURE):
        return ChapStatus(code, identifier, bytes(buf[pos:end]))
    raise DecodeError("chap", offset, "bad_code")


def encode_chap(pkt: ChapValue | ChapStatus) -> bytes:
    if isinstance(pkt, ChapValue):
        if len(pkt.value) > 255:
            raise ValueError("a CHAP value has at most 255 bytes")
        data = bytes((len(pkt.value),)) + pkt.value + pkt.name
        return control_bytes(pkt.code, pkt.identifier, data)
    return control_bytes(pkt.code, pkt.identifier, pkt.message)


def chap_md5(identifier: int, secret: bytes, challenge: bytes) -> bytes:
    """RFC 1994 §4.1: the Response Value is MD5 over Identifier || secret || Challenge."""
    data = bytes((identifier & 0xFF,)) + secret + challenge
    return hashlib.md5(data, usedforsecurity=False).digest()


def encode_protocol(protocol: int) -> bytes:
    return _PROTOCOL.pack(protocol)
