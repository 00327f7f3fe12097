"""DOCSIS 3.1 MAC frames (CM-SP-MULPIv3.1 §6.2 MAC frame formats, §6.2.5 extended headers,
§6.4 MAC management messages) and the Ethernet carrier our emulated cable link puts them in.

Generic MAC header (§6.2.1; multi-byte fields big-endian, except the HCS, see below)::

    byte   field     meaning
    0      FC        FC_TYPE (bits 7-6) | FC_PARM (bits 5-1) | EHDR_ON (bit 0)
    1      MAC_PARM  ELEN when EHDR_ON = 1; else reserved (0), CNT (concatenation header)
                     or REQ (request frame: mini-slots requested)
    2-3    LEN       ELEN + the bytes after the HCS; the SID in a request frame
    4..    EHDR      ELEN bytes (1-240) of EH elements, only when EHDR_ON = 1
    +0     HCS       2 bytes: CRC over FC .. end of EHDR
    +2     PDU       LEN - ELEN bytes

    FC_TYPE 00  Packet PDU (FC_PARM 00000)     -> PacketFrame
    FC_TYPE 11  MAC-specific, FC_PARM:
                00000 timing header (SYNC, RNG-REQ)     -> ManagementFrame(timing=True)
                00001 MAC management header             -> ManagementFrame
                00010 request frame (6 bytes, no PDU)   -> RequestFrame
                00100 queue-depth based request frame: FC, REQ (2 bytes), SID (2 bytes), HCS
                      (7 bytes)                         -> RequestFrame(queue_depth=True)
    anything else (isolation PDU 10, reserved 01, fragmentation 00011, concatenation 11100 ...)
                header decoded, PDU kept raw            -> OtherFrame

HCS: "CRC-CCITT (x^16 + x^12 + x^5 + 1) as defined in [ITU-T X.25]" (§6.2.1), i.e. the X.25 /
HDLC FCS: register preset to 0xFFFF, bits processed LSB first (reflected polynomial 0x8408),
result complemented; check value 0x906E for ASCII "123456789". Like every X.25 FCS it is sent
low-order byte first, so that a CRC over header + HCS leaves the constant residue (0xF0B8
before the complement, RFC 1662 §C.2). Wireshark's and pom-ng's DOCSIS dissectors check it
the same way on captured frames.

Extended header elements (§6.2.5): one byte EH_TYPE (bits 7-4) | EH_LEN (bits 3-0), then EH_LEN
bytes. The elements fill ELEN exactly::

    EH_TYPE  EH_LEN  element                                           decoded as
    0        0       NULL (padding; EH_LEN MUST be 0)                  EhElement(0, b"")
    1        3       Request: mini-slots requested (1), SID (2)        RequestEh
    2-14     0-15    ack / BP_UP / BP_DOWN / service flow / BP_UP2 /   EhElement (raw, re-encoded
                     DS EHDR / DPV / reserved                          byte for byte)
    15       -       extended EH element                               rejected: "unsupported_eh"

Upstream SID: an upstream frame names its SID with the Request EH element (EH_TYPE 1). On RF
the CMTS knows the SID of a burst from the MAP grant it was sent in; our link has no MAPs, so
the frame must name its SID itself. The Request EH is the one MULPI element whose content is
the transmitting CM's SID (14 bits; the top two bits of the 2-byte field are 0) and nothing
else of weight. BP_UP (3) and BP_UP2 (7) carry a SID too, but belong to BPI+ [SEC] and would
assert key sequence and encryption state we do not emulate; the service flow element (6)
carries PHS/UGS bits; the DS EHDR (8) a downstream DSID. Our modems set the mini-slot count to
0 (nothing is scheduled on the emulated link) and the CMTS ignores it. Frames downstream carry
no SID: the CM is addressed by MAC.

Packet PDU (§6.2.2) - an Ethernet frame *with* its CRC, which DOCSIS carries and we verify::

    DA (6) | SA (6) | type/len (2) | user data | CRC (4: IEEE 802.3 CRC-32 over DA .. data,
                                                 in Ethernet FCS byte order)

A Packet PDU shorter than those 18 bytes (an EHDR alone included) is ``"pdu_truncated"``.

MAC management message (§6.4.1) after the MAC header - an 802.3 frame with an LLC header::

    DA (6) | SA (6) | msg LEN (2: DSAP .. end of payload) | DSAP 0x00 | SSAP 0x00 |
    control 0x03 | version (1) | type (1) | RSVD (1, sent 0, ignored) | payload | CRC (4)

Carrier (ours, not DOCSIS): the access link is veth and bridges, not RF. One DOCSIS MAC frame
is the payload of one Ethernet frame of EtherType 0x88B6 (IEEE Std 802 "Local Experimental
EtherType 2"; 0x88B5 is taken by the data plane's claim frames), from the modem's MAC to the
CMTS group's virtual MAC upstream and back downstream::

    dst (6) | src (6) | 0x88B6 | DOCSIS MAC frame | zero padding to 60 bytes

The MAC frame's own length (LEN, or 6/7 bytes for a request frame) says where it ends, so the
padding is ignored. ``decode_frame(carrier, ETH_HLEN)`` decodes straight from a carrier frame.

Every decoder raises only :class:`vnf.errors.DecodeError` with layer ``"docsis"`` (or
``"ethernet"`` for a carrier too short or of another EtherType). Encoders raise ValueError for
values that cannot be encoded (our misuse).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

from vnf.codec.ethernet import ETH_ALEN, ETH_HLEN, ETH_ZLEN, decode_ethernet, encode_ethernet
from vnf.errors import DecodeError

MAC_HLEN = 6
"""FC, MAC_PARM, LEN and HCS: the MAC header without an EHDR."""
QUEUE_DEPTH_REQUEST_LEN = 7
EHDR_MAX = 240
SID_MAX = 0x3FFF
PDU_MIN = 18
"""DA, SA, type/len and CRC: the shortest Packet PDU."""
MGMT_HLEN = 20
"""DA .. RSVD: the management message header."""
CRC_LEN = 4
LLC_NULL_SAP = 0x00
LLC_CONTROL_UI = 0x03
CARRIER_ETHERTYPE = 0x88B6

_HDR = struct.Struct("!BBH")
_QDB_HDR = struct.Struct("!BHH")
_HCS = struct.Struct("<H")
_CRC = struct.Struct("<I")
_ETH = struct.Struct("!6s6sH")
_MGMT = struct.Struct("!6s6sHBBBBBB")
_REQUEST_EH = struct.Struct("!BBH")


class FcType(IntEnum):
    """FC_TYPE (§6.2.1)."""

    PACKET = 0b00
    RESERVED = 0b01
    ISOLATION_PACKET = 0b10
    MAC_SPECIFIC = 0b11


class FcParm(IntEnum):
    """FC_PARM of the MAC-specific headers (FC_TYPE 11, §6.2.4)."""

    TIMING = 0b00000
    MAC_MANAGEMENT = 0b00001
    REQUEST = 0b00010
    FRAGMENTATION = 0b00011
    QUEUE_DEPTH_REQUEST = 0b00100
    CONCATENATION = 0b11100


class EhType(IntEnum):
    """EH_TYPE of the extended header elements (§6.2.5)."""

    NULL = 0
    REQUEST = 1
    ACK_REQUESTED = 2
    BP_UP = 3
    BP_DOWN = 4
    DS_SERVICE_FLOW = 5
    US_SERVICE_FLOW = 6
    BP_UP2 = 7
    DS_SERVICE = 8
    DPV = 9
    EXTENDED = 15


class MgmtType(IntEnum):
    """MAC management message types (§6.4.1), the ones the simulator names."""

    SYNC = 1
    UCD = 2
    MAP = 3
    RNG_REQ = 4
    RNG_RSP = 5
    REG_REQ = 6
    REG_RSP = 7
    UCC_REQ = 8
    UCC_RSP = 9
    BPKM_REQ = 12
    BPKM_RSP = 13
    REG_ACK = 14
    DSA_REQ = 15
    DSA_RSP = 16
    DSA_ACK = 17
    DSC_REQ = 18
    DSC_RSP = 19
    DSC_ACK = 20
    DSD_REQ = 21
    DSD_RSP = 22
    INIT_RNG_REQ = 30
    MDD = 33
    B_INIT_RNG_REQ = 34
    REG_REQ_MP = 44
    REG_RSP_MP = 45


@dataclass(frozen=True, slots=True)
class RequestEh:
    """The Request EH element (EH_TYPE 1): how an upstream frame names its SID."""

    mini_slots: int
    sid: int


@dataclass(frozen=True, slots=True)
class EhElement:
    """Any other EH element, value kept raw (NULL padding is ``EhElement(0, b"")``)."""

    type: int
    value: bytes


EhdrElement: TypeAlias = RequestEh | EhElement


@dataclass(frozen=True, slots=True)
class PacketFrame:
    """A Packet PDU: one Ethernet frame (its CRC checked on decode, computed on encode)."""

    dst: bytes
    src: bytes
    ethertype: int
    payload: bytes
    ehdr: tuple[EhdrElement, ...] = ()


@dataclass(frozen=True, slots=True)
class ManagementFrame:
    """A MAC management message behind a MAC management (or, if ``timing``, timing) header."""

    dst: bytes
    src: bytes
    version: int
    type: int
    payload: bytes
    ehdr: tuple[EhdrElement, ...] = ()
    timing: bool = False


@dataclass(frozen=True, slots=True)
class RequestFrame:
    """A bandwidth request: mini-slots (or, if ``queue_depth``, bytes) requested by ``sid``."""

    sid: int
    requested: int
    queue_depth: bool = False


@dataclass(frozen=True, slots=True)
class OtherFrame:
    """Any other MAC frame: header decoded, what follows the HCS kept raw.

    ``mac_parm`` is the MAC_PARM byte of a frame without EHDR (CNT for a concatenation
    header); with an EHDR that byte is ELEN, computed on encode, and ``mac_parm`` is 0.
    """

    fc_type: int
    fc_parm: int
    mac_parm: int
    body: bytes
    ehdr: tuple[EhdrElement, ...] = ()


MacFrame: TypeAlias = PacketFrame | ManagementFrame | RequestFrame | OtherFrame


def _crc16_x25_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        table.append(crc)
    return tuple(table)


_CRC16_X25 = _crc16_x25_table()


def crc16_x25(data: bytes) -> int:
    """The HCS of ``data``: CRC-CCITT as ITU-T X.25 defines its FCS (see the module docstring).

    Put on the wire low-order byte first (``struct.pack("<H", ...)``).
    """
    crc = 0xFFFF
    table = _CRC16_X25
    for byte in data:
        crc = (crc >> 8) ^ table[(crc ^ byte) & 0xFF]
    return crc ^ 0xFFFF


def upstream_sid(ehdr: tuple[EhdrElement, ...]) -> int | None:
    """The SID named by the first Request EH element of ``ehdr``, or None."""
    for element in ehdr:
        if isinstance(element, RequestEh):
            return element.sid
    return None


def _is_request(fc: int) -> bool:
    return fc >> 6 == FcType.MAC_SPECIFIC and (fc >> 1) & 0x1F in (
        FcParm.REQUEST,
        FcParm.QUEUE_DEPTH_REQUEST,
    )


def mac_frame_length(buf: bytes, offset: int = 0) -> int:
    """The length of the MAC frame at ``offset``, from its header alone (HCS not checked).

    Raises ``"truncated"`` or ``"length_overrun"`` when ``buf`` does not hold all of it.
    """
    if offset < 0 or len(buf) - offset < 1:
        raise DecodeError("docsis", offset, "truncated")
    if _is_request(buf[offset]):
        queue_depth = (buf[offset] >> 1) & 0x1F == FcParm.QUEUE_DEPTH_REQUEST
        size = QUEUE_DEPTH_REQUEST_LEN if queue_depth else MAC_HLEN
        if len(buf) - offset < size:
            raise DecodeError("docsis", offset, "truncated")
        return size
    if len(buf) - offset < MAC_HLEN:
        raise DecodeError("docsis", offset, "truncated")
    size = MAC_HLEN + ((buf[offset + 2] << 8) | buf[offset + 3])
    if len(buf) - offset < size:
        raise DecodeError("docsis", offset + 2, "length_overrun")
    return size


def _check_hcs(buf: bytes, start: int, hcs_at: int) -> None:
    got: int = _HCS.unpack_from(buf, hcs_at)[0]
    expected = crc16_x25(buf[start:hcs_at])
    if got != expected:
        raise DecodeError("docsis", hcs_at, "bad_hcs", f"HCS {got:#06x}, computed {expected:#06x}")


def _decode_ehdr(buf: bytes, pos: int, end: int) -> tuple[EhdrElement, ...]:
    elements: list[EhdrElement] = []
    while pos < end:
        eh_type, eh_len = buf[pos] >> 4, buf[pos] & 0x0F
        if eh_type == EhType.EXTENDED:
            raise DecodeError("docsis", pos, "unsupported_eh", "extended EH element (EH_TYPE 15)")
        start = pos + 1
        if start + eh_len > end:
            raise DecodeError("docsis", pos, "eh_overrun")
        if eh_type == EhType.REQUEST:
            if eh_len != 3:
                raise DecodeError("docsis", pos, "bad_eh_len", "a Request EH has EH_LEN 3")
            sid = (buf[start + 1] << 8) | buf[start + 2]
            if sid > SID_MAX:
                raise DecodeError("docsis", start + 1, "bad_sid", "a SID has 14 bits")
            elements.append(RequestEh(buf[start], sid))
        elif eh_type == EhType.NULL and eh_len:
            # §6.2.5: for the NULL element "the EH_LEN MUST be zero".
            raise DecodeError("docsis", pos, "bad_eh_len", "a NULL EH has EH_LEN 0")
        else:
            elements.append(EhElement(eh_type, bytes(buf[start : start + eh_len])))
        pos = start + eh_len
    return tuple(elements)


def _decode_header(buf: bytes, offset: int) -> tuple[int, int, tuple[EhdrElement, ...], int, int]:
    """Check the header at ``offset``; return (fc, mac_parm, ehdr, body start, frame end)."""
    if offset < 0 or len(buf) - offset < MAC_HLEN:
        raise DecodeError("docsis", offset, "truncated")
    fc, mac_parm, length = _HDR.unpack_from(buf, offset)
    elen = 0
    if fc & 1:
        elen = mac_parm
        if not 0 < elen <= EHDR_MAX:
            raise DecodeError("docsis", offset + 1, "bad_elen", "ELEN is 1 to 240 with EHDR_ON")
        if len(buf) - offset < MAC_HLEN + elen:
            raise DecodeError("docsis", offset, "truncated")
    hcs_at = offset + 4 + elen
    _check_hcs(buf, offset, hcs_at)
    if length < elen:
        raise DecodeError("docsis", offset + 2, "bad_len", "LEN shorter than the EHDR")
    end = offset + MAC_HLEN + length
    if end > len(buf):
        raise DecodeError("docsis", offset + 2, "length_overrun")
    ehdr = _decode_ehdr(buf, offset + 4, hcs_at) if elen else ()
    return fc, (0 if elen else mac_parm), ehdr, hcs_at + 2, end


def _check_crc(buf: bytes, start: int, crc_at: int) -> None:
    got: int = _CRC.unpack_from(buf, crc_at)[0]
    if got != zlib.crc32(buf[start:crc_at]):
        raise DecodeError("docsis", crc_at, "bad_crc")


def _decode_request(buf: bytes, offset: int) -> RequestFrame:
    fc = buf[offset]
    queue_depth = (fc >> 1) & 0x1F == FcParm.QUEUE_DEPTH_REQUEST
    size = QUEUE_DEPTH_REQUEST_LEN if queue_depth else MAC_HLEN
    if len(buf) - offset < size:
        raise DecodeError("docsis", offset, "truncated")
    _check_hcs(buf, offset, offset + size - 2)
    if fc & 1:
        raise DecodeError("docsis", offset, "bad_ehdr_on", "a request frame has no EHDR")
    fields = (_QDB_HDR if queue_depth else _HDR).unpack_from(buf, offset)
    if fields[2] > SID_MAX:
        raise DecodeError("docsis", offset + size - 4, "bad_sid", "a SID has 14 bits")
    return RequestFrame(fields[2], fields[1], queue_depth)


def _decode_packet(buf: bytes, start: int, end: int, ehdr: tuple[EhdrElement, ...]) -> PacketFrame:
    if end - start < PDU_MIN:
        raise DecodeError("docsis", start, "pdu_truncated")
    _check_crc(buf, start, end - CRC_LEN)
    dst, src, ethertype = _ETH.unpack_from(buf, start)
    return PacketFrame(dst, src, ethertype, bytes(buf[start + ETH_HLEN : end - CRC_LEN]), ehdr)


def _decode_management(
    buf: bytes, start: int, end: int, ehdr: tuple[EhdrElement, ...], timing: bool
) -> ManagementFrame:
    if end - start < MGMT_HLEN + CRC_LEN:
        raise DecodeError("docsis", start, "mgmt_truncated")
    dst, src, msg_len, dsap, ssap, control, version, type_, _rsvd = _MGMT.unpack_from(buf, start)
    # §6.4.1: msg LEN counts DSAP through the end of the payload, not the CRC.
    if msg_len != end - start - (2 * ETH_ALEN + 2 + CRC_LEN):
        raise DecodeError("docsis", start + 12, "bad_msg_len")
    if (dsap, ssap, control) != (LLC_NULL_SAP, LLC_NULL_SAP, LLC_CONTROL_UI):
        raise DecodeError("docsis", start + 14, "bad_llc", "DSAP 0, SSAP 0, control 3 expected")
    _check_crc(buf, start, end - CRC_LEN)
    payload = bytes(buf[start + MGMT_HLEN : end - CRC_LEN])
    return ManagementFrame(dst, src, version, type_, payload, ehdr, timing)


def decode_frame(buf: bytes, offset: int = 0) -> MacFrame:
    """Decode the MAC frame at ``offset``; bytes after its end (carrier padding) are ignored."""
    if offset < 0 or len(buf) - offset < 1:
        raise DecodeError("docsis", offset, "truncated")
    if _is_request(buf[offset]):
        return _decode_request(buf, offset)
    fc, mac_parm, ehdr, start, end = _decode_header(buf, offset)
    fc_type, fc_parm = fc >> 6, (fc >> 1) & 0x1F
    if fc_type == FcType.PACKET and fc_parm == 0:
        return _decode_packet(buf, start, end, ehdr)
    if fc_type == FcType.MAC_SPECIFIC and fc_parm in (FcParm.TIMING, FcParm.MAC_MANAGEMENT):
        return _decode_management(buf, start, end, ehdr, fc_parm == FcParm.TIMING)
    return OtherFrame(fc_type, fc_parm, mac_parm, bytes(buf[start:end]), ehdr)


def encode_ehdr(ehdr: tuple[EhdrElement, ...]) -> bytes:
    """The EHDR bytes of ``ehdr`` (empty for no EHDR)."""
    parts: list[bytes] = []
    for element in ehdr:
        if isinstance(element, RequestEh):
            if not 0 <= element.sid <= SID_MAX:
                raise ValueError("a SID has 14 bits")
            parts.append(_REQUEST_EH.pack(0x13, element.mini_slots, element.sid))
            continue
        if element.type in (EhType.REQUEST, EhType.EXTENDED) or not 0 <= element.type <= 15:
            raise ValueError(f"EH_TYPE {element.type} cannot be a raw element")
        if len(element.value) > 15 or (element.type == EhType.NULL and element.value):
            raise ValueError("EH_LEN is 0 for NULL and at most 15 otherwise")
        parts.append(bytes(((element.type << 4) | len(element.value),)) + element.value)
    out = b"".join(parts)
    if len(out) > EHDR_MAX:
        raise ValueError("an EHDR has at most 240 bytes")
    return out


def _encode_mac(fc: int, mac_parm: int, ehdr: tuple[EhdrElement, ...], body: bytes) -> bytes:
    eh = encode_ehdr(ehdr)
    if eh:
        if mac_parm:
            raise ValueError("MAC_PARM is ELEN when there is an EHDR")
        fc, mac_parm = fc | 1, len(eh)
    length = len(eh) + len(body)
    if length > 0xFFFF:
        raise ValueError("a MAC frame has LEN at most 65535")
    head = _HDR.pack(fc, mac_parm, length) + eh
    return head + _HCS.pack(crc16_x25(head)) + body


def _with_crc(data: bytes) -> bytes:
    return data + _CRC.pack(zlib.crc32(data))


def _check_macs(dst: bytes, src: bytes) -> None:
    if len(dst) != ETH_ALEN or len(src) != ETH_ALEN:
        raise ValueError("MAC addresses have 6 bytes")


def _encode_request(frame: RequestFrame) -> bytes:
    if not 0 <= frame.sid <= SID_MAX:
        raise ValueError("a SID has 14 bits")
    if frame.queue_depth:
        head = _QDB_HDR.pack(FcParm.QUEUE_DEPTH_REQUEST << 1 | 0xC0, frame.requested, frame.sid)
    else:
        head = _HDR.pack(FcParm.REQUEST << 1 | 0xC0, frame.requested, frame.sid)
    return head + _HCS.pack(crc16_x25(head))


def encode_frame(frame: MacFrame) -> bytes:
    """The MAC frame's bytes, HCS and (Packet PDU, management) CRC computed."""
    if isinstance(frame, RequestFrame):
        return _encode_request(frame)
    if isinstance(frame, PacketFrame):
        _check_macs(frame.dst, frame.src)
        pdu = _with_crc(_ETH.pack(frame.dst, frame.src, frame.ethertype) + frame.payload)
        return _encode_mac(FcType.PACKET << 6, 0, frame.ehdr, pdu)
    if isinstance(frame, ManagementFrame):
        _check_macs(frame.dst, frame.src)
        head = _MGMT.pack(
            frame.dst,
            frame.src,
            len(frame.payload) + 6,
            LLC_NULL_SAP,
            LLC_NULL_SAP,
            LLC_CONTROL_UI,
            frame.version,
            frame.type,
            0,
        )
        fc_parm = FcParm.TIMING if frame.timing else FcParm.MAC_MANAGEMENT
        return _encode_mac(0xC0 | fc_parm << 1, 0, frame.ehdr, _with_crc(head + frame.payload))
    if not (0 <= frame.fc_type <= 3 and 0 <= frame.fc_parm <= 0x1F):
        raise ValueError("FC_TYPE has 2 bits and FC_PARM 5")
    fc = frame.fc_type << 6 | frame.fc_parm << 1
    packet = frame.fc_type == FcType.PACKET and frame.fc_parm == 0
    management = frame.fc_type == FcType.MAC_SPECIFIC and frame.fc_parm in (0, 1)
    if packet or management or _is_request(fc):
        raise ValueError("this FC has its own frame class")
    return _encode_mac(fc, frame.mac_parm, frame.ehdr, frame.body)


def encode_carrier(dst: bytes, src: bytes, mac_frame: bytes) -> bytes:
    """One Ethernet frame of EtherType 0x88B6 carrying ``mac_frame``, padded to 60 bytes."""
    frame = encode_ethernet(dst, src, CARRIER_ETHERTYPE) + mac_frame
    if len(frame) < ETH_ZLEN:
        frame += bytes(ETH_ZLEN - len(frame))
    return frame


def decode_carrier(frame: bytes) -> tuple[bytes, bytes, bytes]:
    """(dst, src, MAC frame bytes) of a carrier frame, padding cut off (HCS not checked)."""
    header = decode_ethernet(frame)
    if header.ethertype != CARRIER_ETHERTYPE:
        raise DecodeError("ethernet", 12, "bad_ethertype")
    end = ETH_HLEN + mac_frame_length(frame, ETH_HLEN)
    return header.dst, header.src, bytes(frame[ETH_HLEN:end])
