"""Payloads of the DOCSIS MAC management messages the simulator uses (CM-SP-MULPIv3.1 §6.4:
§6.4.5-6 RNG-REQ/RNG-RSP, §6.4.7-8 REG-REQ/REG-RSP, §6.4.9 REG-ACK, §6.4.16-18
DSC-REQ/RSP/ACK; TLV encodings from Annex C) and the helpers that put them in carrier frames.

A payload is what follows the management header's RSVD byte (:mod:`vnf.codec.docsis` frames
it). Multi-byte fields are big-endian. Each message is known by (version, type)::

    RNG-REQ (1, 4)    byte  field                     meaning
                      0-1   SID                       the CM's SID (0 before one is assigned)
                      2     Downstream Channel ID     the downstream the CM listens on
                      3     Pending Till Complete     0, or 1/100 s still needed to finish
                      4..   (ignored)

    RNG-RSP (1, 5)    0-1   SID                       the SID ranged
                      2     Upstream Channel ID       the upstream the CMTS heard it on
                      3..   TLVs                      1 Timing Adjust (4, signed)
                                                      2 Power Level Adjust (1, signed, 1/4 dB)
                                                      5 Ranging Status (1: 1 continue,
                                                        2 abort, 3 success) - required

    REG-REQ (1, 6)    0-1   SID                       the CM's SID
                      2..   TLVs                      3 Network Access Control (1: 1/0)
                                                      18 Max Number of CPEs (1)
                                                      19 TFTP Server Timestamp (4, RFC 868)
                                                      24/25 service flows, others kept,
                                                      7 CMTS MIC (16)

    REG-RSP (1, 7)    0-1   SID                       the CM's SID
                      2     Response                  a Confirmation code
                      3..   TLVs                      24/25 service flows

    REG-ACK (2, 14)   0-1   SID                       the CM's SID
                      2     Confirmation Code         a Confirmation code
                      3..   TLVs                      none used

    DSC-REQ (1, 18)   0-1   Transaction ID            chosen by the sender
                      2..   TLVs                      24/25 service flows

    DSC-RSP (1, 19)   0-1   Transaction ID            of the DSC-REQ answered
                      2     Confirmation Code         a Confirmation code
                      3..   TLVs                      24/25 service flows

    DSC-ACK (1, 20)   0-1   Transaction ID            of the DSC-RSP answered
                      2     Confirmation Code         a Confirmation code
                      3..   TLVs                      none used

TLVs (Annex C.1): type (1 byte), length (1 byte), value. A service flow (Annex C.2.2, TLV 24
upstream / 25 downstream) is a TLV whose value is a run of sub-TLVs of the same shape::

    sub-TLV  bytes  field                                   ServiceFlow
    1        2      Service Flow Reference                  reference
    2        4      Service Flow Identifier                 sfid
    3        2      Service Identifier (upstream)           sid
    4        2-16   Service Class Name, ASCII + NUL         class_name
    6        1      QoS Parameter Set Type (bits 1 prov.,   qos_set
                    2 admitted, 4 active)
    8        4      Maximum Sustained Traffic Rate (bit/s)  max_rate_bps
    9        4      Maximum Traffic Burst (bytes)           max_burst
    other    any    kept raw, re-encoded in order           unknown

A field of 0 (or "") is an absent sub-TLV. Encoders write the known TLVs in the order of the
tables above, then the unknown ones. A known TLV or sub-TLV of the wrong length, repeated, or
with a value the table does not allow is ``"bad_tlv"``; a TLV running past its container is
``"truncated"``. A REG-REQ without TLV 3 decodes as network access enabled (the DOCSIS
default); without 18 or 19 as 0. TLVs a message does not use are ignored by its decoder
(REG-REQ keeps them in ``other``), but their framing is still checked.

CMTS MIC (TLV 7): HMAC-MD5 (RFC 2104) keyed with the shared secret over the TLVs of the
REG-REQ, each as type, length and value bytes, in the order ``encode_message`` writes them,
TLV 7 itself excluded. Real DOCSIS (MULPI §6.4.7, Annex D.3.1) digests a fixed subset of the
configuration TLVs in a fixed order; we digest every TLV the REG-REQ carries, which is
stricter. The digest is over the canonical encoding of the decoded message, so a sender that
orders its TLVs otherwise, or sends values the encoder omits (TLV 18 or 19 of 0), fails the
check.

Simplified: no multiple-channel REG-REQ-MP, no DOCSIS 3.1 RNG-RSP TLVs beyond 1, 2 and 5, no
DSC HMAC digest (TLV 27) or service flow error sets; the Service Identifier sub-TLV is accepted
on a downstream flow and kept. SIDs are 2-byte fields here (MULPI's 14-bit limit is checked
where a SID goes on the wire as the Request EH element, by :mod:`vnf.codec.docsis`).

Upstream frames name their SID with a Request EH element (see :mod:`vnf.codec.docsis`);
``mgmt_carrier`` adds one when given ``upstream_sid``. RNG-REQ travels behind the timing
header, every other message behind the MAC management header.

Decoders raise only :class:`vnf.errors.DecodeError`, layer ``"docsis_mgmt"``, offsets counted
from the start of the payload (``"unknown_type"`` and ``"bad_version"`` at offset 0).
Encoders raise ValueError for values that cannot be encoded (our misuse).
"""

from __future__ import annotations

import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import IntEnum, IntFlag
from typing import TypeAlias

from vnf.codec.docsis import (
    ManagementFrame,
    MgmtType,
    RequestEh,
    decode_carrier,
    decode_frame,
    encode_carrier,
    encode_frame,
    upstream_sid,
)
from vnf.codec.ethernet import ETH_HLEN
from vnf.errors import DecodeError

LAYER = "docsis_mgmt"
RFC868_EPOCH_OFFSET = 2208988800
"""Seconds from 1900-01-01 (the RFC 868 time base of TLV 19) to 1970-01-01."""
MIC_LEN = 16
CLASS_NAME_MAX = 16
"""Bytes of a Service Class Name, the NUL included (Annex C.2.2.3.4)."""

_U16 = struct.Struct("!H")
_U16_U8 = struct.Struct("!HB")
_RNG_REQ = struct.Struct("!HBB")
_TLV_HEAD = struct.Struct("!BB")


class RangingStatus(IntEnum):
    """RNG-RSP TLV 5 (MULPI §6.4.6)."""

    CONTINUE = 1
    ABORT = 2
    SUCCESS = 3


class Confirmation(IntEnum):
    """Confirmation codes (MULPI Annex C.4)."""

    OK = 0
    REJECT_OTHER = 1
    REJECT_UNRECOGNIZED_CONFIGURATION_SETTING = 2
    REJECT_TEMPORARY = 3
    REJECT_PERMANENT = 4
    REJECT_NOT_OWNER = 5
    REJECT_SERVICE_FLOW_NOT_FOUND = 6
    REJECT_SERVICE_FLOW_EXISTS = 7
    REJECT_REQUIRED_PARAMETER_NOT_PRESENT = 8
    REJECT_HEADER_SUPPRESSION = 9
    REJECT_UNKNOWN_TRANSACTION_ID = 10
    REJECT_AUTHENTICATION_FAILURE = 11
    REJECT_ADD_ABORTED = 12


class QosSet(IntFlag):
    """QoS Parameter Set Type bits (Annex C.2.2.5.1, sub-TLV 6)."""

    PROVISIONED = 1
    ADMITTED = 2
    ACTIVE = 4


class RngRspTlv(IntEnum):
    """RNG-RSP TLVs (MULPI §6.4.6)."""

    TIMING_ADJUST = 1
    POWER_LEVEL_ADJUST = 2
    RANGING_STATUS = 5


class RegTlv(IntEnum):
    """Top-level TLVs of REG-REQ/REG-RSP/DSC (Annex C.1)."""

    NETWORK_ACCESS_CONTROL = 3
    CMTS_MIC = 7
    MAX_CPE = 18
    TFTP_SERVER_TIMESTAMP = 19
    UPSTREAM_SERVICE_FLOW = 24
    DOWNSTREAM_SERVICE_FLOW = 25


class ServiceFlowTlv(IntEnum):
    """Service flow sub-TLVs (Annex C.2.2)."""

    REFERENCE = 1
    IDENTIFIER = 2
    SERVICE_IDENTIFIER = 3
    CLASS_NAME = 4
    QOS_PARAMETER_SET_TYPE = 6
    MAX_SUSTAINED_RATE = 8
    MAX_TRAFFIC_BURST = 9


_FLOW_TLVS = (RegTlv.UPSTREAM_SERVICE_FLOW, RegTlv.DOWNSTREAM_SERVICE_FLOW)
_REG_REQ_KNOWN = frozenset(RegTlv)
_FLOW_INT_SIZES: dict[int, int] = {
    ServiceFlowTlv.REFERENCE: 2,
    ServiceFlowTlv.IDENTIFIER: 4,
    ServiceFlowTlv.SERVICE_IDENTIFIER: 2,
    ServiceFlowTlv.QOS_PARAMETER_SET_TYPE: 1,
    ServiceFlowTlv.MAX_SUSTAINED_RATE: 4,
    ServiceFlowTlv.MAX_TRAFFIC_BURST: 4,
}
_FLOW_KNOWN = frozenset(ServiceFlowTlv)
_RNG_RSP_KNOWN = frozenset(RngRspTlv)
_RANGING_STATUSES = frozenset(RangingStatus)


@dataclass(frozen=True, slots=True)
class ServiceFlow:
    """One service flow encoding (TLV 24 if ``upstream``, else 25); 0 or "" = sub-TLV absent."""

    upstream: bool
    reference: int = 0
    sfid: int = 0
    sid: int = 0
    class_name: str = ""
    qos_set: int = 0
    max_rate_bps: int = 0
    max_burst: int = 0
    unknown: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class RngReq:
    sid: int
    downstream_channel: int = 1
    pending: int = 0


@dataclass(frozen=True, slots=True)
class RngRsp:
    sid: int
    upstream_channel: int
    status: int
    timing_adjust: int = 0
    power_adjust: int = 0


@dataclass(frozen=True, slots=True)
class RegReq:
    """REG-REQ; ``other`` holds the TLVs not named here, in order, and goes before the MIC."""

    sid: int
    service_flows: tuple[ServiceFlow, ...] = ()
    network_access: bool = True
    max_cpe: int = 1
    timestamp: int = 0
    cmts_mic: bytes = b""
    other: tuple[tuple[int, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class RegRsp:
    sid: int
    response: int
    service_flows: tuple[ServiceFlow, ...] = ()


@dataclass(frozen=True, slots=True)
class RegAck:
    sid: int
    confirmation: int


@dataclass(frozen=True, slots=True)
class DscReq:
    transaction_id: int
    service_flows: tuple[ServiceFlow, ...]


@dataclass(frozen=True, slots=True)
class DscRsp:
    transaction_id: int
    confirmation: int
    service_flows: tuple[ServiceFlow, ...] = ()


@dataclass(frozen=True, slots=True)
class DscAck:
    transaction_id: int
    confirmation: int


MgmtMessage: TypeAlias = RngReq | RngRsp | RegReq | RegRsp | RegAck | DscReq | DscRsp | DscAck

VERSIONS: dict[int, int] = {
    MgmtType.RNG_REQ: 1,
    MgmtType.RNG_RSP: 1,
    MgmtType.REG_REQ: 1,
    MgmtType.REG_RSP: 1,
    MgmtType.REG_ACK: 2,
    MgmtType.DSC_REQ: 1,
    MgmtType.DSC_RSP: 1,
    MgmtType.DSC_ACK: 1,
}
"""The management message version of each type this module decodes."""


# --- TLV framing ----------------------------------------------------------------------------


def _fixed(payload: bytes, fields: struct.Struct) -> tuple[int, ...]:
    if len(payload) < fields.size:
        raise DecodeError(LAYER, 0, "truncated", f"fixed fields need {fields.size} bytes")
    return tuple(fields.unpack_from(payload))


def _tlvs(buf: bytes, pos: int, end: int) -> list[tuple[int, int, int]]:
    """(type, value start, value end) of each TLV in ``buf[pos:end]``."""
    out: list[tuple[int, int, int]] = []
    while pos < end:
        if end - pos < _TLV_HEAD.size:
            raise DecodeError(LAYER, pos, "truncated", "TLV header cut short")
        tlv_type, length = _TLV_HEAD.unpack_from(buf, pos)
        start = pos + _TLV_HEAD.size
        if start + length > end:
            raise DecodeError(LAYER, pos + 1, "truncated", f"TLV {tlv_type} runs past its end")
        out.append((tlv_type, start, start + length))
        pos = start + length
    return out


def _once(seen: set[int], tlv_type: int, at: int) -> None:
    if tlv_type in seen:
        raise DecodeError(LAYER, at, "bad_tlv", f"TLV {tlv_type} repeated")
    seen.add(tlv_type)


def _sized(buf: bytes, tlv_type: int, start: int, end: int, size: int) -> bytes:
    if end - start != size:
        raise DecodeError(LAYER, start - 1, "bad_tlv", f"TLV {tlv_type} has {size} byte(s)")
    return bytes(buf[start:end])


def _uint(value: int, size: int, what: str, *, signed: bool = False) -> bytes:
    bits = 8 * size
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    if not low <= value <= high:
        raise ValueError(f"{what} {value} does not fit in {size} byte(s)")
    return value.to_bytes(size, "big", signed=signed)


def _tlv(tlv_type: int, value: bytes) -> bytes:
    if not 0 <= tlv_type <= 0xFF:
        raise ValueError(f"TLV type {tlv_type} does not fit in a byte")
    if len(value) > 0xFF:
        raise ValueError(f"TLV {tlv_type} value of {len(value)} bytes: at most 255")
    return _TLV_HEAD.pack(tlv_type, len(value)) + value


# --- service flows --------------------------------------------------------------------------


def _encode_class_name(name: str) -> bytes:
    if not name.isascii() or "\x00" in name or len(name) >= CLASS_NAME_MAX:
        raise ValueError("a Service Class Name is 1-15 ASCII characters without NUL")
    return name.encode("ascii") + b"\x00"


def _int_tlvs(fields: tuple[tuple[ServiceFlowTlv, int], ...]) -> list[bytes]:
    """The sub-TLVs of the non-zero integer fields."""
    return [
        _tlv(sub_type, _uint(value, _FLOW_INT_SIZES[sub_type], sub_type.name))
        for sub_type, value in fields
        if value
    ]


def _encode_flow(flow: ServiceFlow) -> bytes:
    parts = _int_tlvs(
        (
            (ServiceFlowTlv.REFERENCE, flow.reference),
            (ServiceFlowTlv.IDENTIFIER, flow.sfid),
            (ServiceFlowTlv.SERVICE_IDENTIFIER, flow.sid),
        )
    )
    if flow.class_name:
        parts.append(_tlv(ServiceFlowTlv.CLASS_NAME, _encode_class_name(flow.class_name)))
    parts += _int_tlvs(
        (
            (ServiceFlowTlv.QOS_PARAMETER_SET_TYPE, flow.qos_set),
            (ServiceFlowTlv.MAX_SUSTAINED_RATE, flow.max_rate_bps),
            (ServiceFlowTlv.MAX_TRAFFIC_BURST, flow.max_burst),
        )
    )
    for sub_type, raw in flow.unknown:
        if sub_type in _FLOW_KNOWN:
            raise ValueError(f"sub-TLV {sub_type} has its own ServiceFlow field")
        parts.append(_tlv(sub_type, raw))
    flow_type = RegTlv.UPSTREAM_SERVICE_FLOW if flow.upstream else RegTlv.DOWNSTREAM_SERVICE_FLOW
    return _tlv(flow_type, b"".join(parts))


def _decode_class_name(buf: bytes, start: int, end: int) -> str:
    raw = bytes(buf[start:end])
    # Annex C.2.2.3.4: "a null-terminated string of ASCII characters", 2 to 16 bytes.
    if not 2 <= len(raw) <= CLASS_NAME_MAX or raw[-1] != 0:
        raise DecodeError(LAYER, start - 1, "bad_tlv", "Service Class Name: 2-16 bytes, NUL last")
    name = raw[:-1]
    if not name.isascii() or 0 in name:
        raise DecodeError(LAYER, start, "bad_tlv", "Service Class Name is ASCII without NUL")
    return name.decode("ascii")


def _decode_flow(buf: bytes, start: int, end: int, upstream: bool) -> ServiceFlow:
    ints: dict[int, int] = {}
    class_name = ""
    unknown: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    for sub_type, v_start, v_end in _tlvs(buf, start, end):
        if sub_type not in _FLOW_KNOWN:
            unknown.append((sub_type, bytes(buf[v_start:v_end])))
            continue
        _once(seen, sub_type, v_start - 2)
        if sub_type == ServiceFlowTlv.CLASS_NAME:
            class_name = _decode_class_name(buf, v_start, v_end)
        else:
            raw = _sized(buf, sub_type, v_start, v_end, _FLOW_INT_SIZES[sub_type])
            ints[sub_type] = int.from_bytes(raw, "big")
    return ServiceFlow(
        upstream,
        reference=ints.get(ServiceFlowTlv.REFERENCE, 0),
        sfid=ints.get(ServiceFlowTlv.IDENTIFIER, 0),
        sid=ints.get(ServiceFlowTlv.SERVICE_IDENTIFIER, 0),
        class_name=class_name,
        qos_set=ints.get(ServiceFlowTlv.QOS_PARAMETER_SET_TYPE, 0),
        max_rate_bps=ints.get(ServiceFlowTlv.MAX_SUSTAINED_RATE, 0),
        max_burst=ints.get(ServiceFlowTlv.MAX_TRAFFIC_BURST, 0),
        unknown=tuple(unknown),
    )


def _decode_flows(buf: bytes, pos: int) -> tuple[ServiceFlow, ...]:
    """The service flows among the TLVs from ``pos`` to the end; other TLVs are ignored."""
    return tuple(
        _decode_flow(buf, start, end, tlv_type == RegTlv.UPSTREAM_SERVICE_FLOW)
        for tlv_type, start, end in _tlvs(buf, pos, len(buf))
        if tlv_type in _FLOW_TLVS
    )


def _encode_flows(flows: tuple[ServiceFlow, ...]) -> bytes:
    return b"".join(_encode_flow(flow) for flow in flows)


# --- REG-REQ and its MIC --------------------------------------------------------------------


def _reg_req_tlvs(req: RegReq) -> bytes:
    """The REG-REQ's TLVs as encoded, TLV 7 (the CMTS MIC) excluded."""
    parts = [_tlv(RegTlv.NETWORK_ACCESS_CONTROL, b"\x01" if req.network_access else b"\x00")]
    if req.max_cpe:
        parts.append(_tlv(RegTlv.MAX_CPE, _uint(req.max_cpe, 1, "max_cpe")))
    if req.timestamp:
        parts.append(_tlv(RegTlv.TFTP_SERVER_TIMESTAMP, _uint(req.timestamp, 4, "timestamp")))
    parts.append(_encode_flows(req.service_flows))
    for tlv_type, raw in req.other:
        if tlv_type in _REG_REQ_KNOWN:
            raise ValueError(f"TLV {tlv_type} has its own RegReq field")
        parts.append(_tlv(tlv_type, raw))
    return b"".join(parts)


def cmts_mic(secret: bytes, req: RegReq) -> bytes:
    """HMAC-MD5 keyed with ``secret`` over the TLVs of ``req`` but TLV 7 (module docstring)."""
    return hmac.new(secret, _reg_req_tlvs(req), "md5").digest()


def with_mic(secret: bytes, req: RegReq) -> RegReq:
    """``req`` carrying its CMTS MIC."""
    return replace(req, cmts_mic=cmts_mic(secret, req))


def verify_mic(secret: bytes, req: RegReq) -> bool:
    """Whether ``req`` carries the CMTS MIC ``secret`` gives it (compared in constant time)."""
    return hmac.compare_digest(req.cmts_mic, cmts_mic(secret, req))


def _encode_reg_req(req: RegReq) -> bytes:
    mic = b""
    if req.cmts_mic:
        if len(req.cmts_mic) != MIC_LEN:
            raise ValueError(f"a CMTS MIC has {MIC_LEN} bytes")
        mic = _tlv(RegTlv.CMTS_MIC, req.cmts_mic)
    return _uint(req.sid, 2, "sid") + _reg_req_tlvs(req) + mic


def _decode_reg_req(payload: bytes) -> RegReq:
    (sid,) = _fixed(payload, _U16)
    network_access, max_cpe, timestamp, mic = True, 0, 0, b""
    flows: list[ServiceFlow] = []
    other: list[tuple[int, bytes]] = []
    seen: set[int] = set()
    for tlv_type, start, end in _tlvs(payload, _U16.size, len(payload)):
        if tlv_type in _FLOW_TLVS:
            upstream = tlv_type == RegTlv.UPSTREAM_SERVICE_FLOW
            flows.append(_decode_flow(payload, start, end, upstream))
            continue
        if tlv_type not in _REG_REQ_KNOWN:
            other.append((tlv_type, bytes(payload[start:end])))
            continue
        _once(seen, tlv_type, start - 2)
        if tlv_type == RegTlv.NETWORK_ACCESS_CONTROL:
            value = _sized(payload, tlv_type, start, end, 1)[0]
            if value > 1:
                raise DecodeError(LAYER, start, "bad_tlv", "Network Access Control is 0 or 1")
            network_access = value == 1
        elif tlv_type == RegTlv.MAX_CPE:
            max_cpe = _sized(payload, tlv_type, start, end, 1)[0]
        elif tlv_type == RegTlv.TFTP_SERVER_TIMESTAMP:
            timestamp = int.from_bytes(_sized(payload, tlv_type, start, end, 4), "big")
        else:
            mic = _sized(payload, tlv_type, start, end, MIC_LEN)
    return RegReq(sid, tuple(flows), network_access, max_cpe, timestamp, mic, tuple(other))


# --- the other messages ---------------------------------------------------------------------


def _encode_rng_rsp(rsp: RngRsp) -> bytes:
    if rsp.status not in _RANGING_STATUSES:
        raise ValueError(f"ranging status {rsp.status} is not a RangingStatus")
    return b"".join(
        (
            _uint(rsp.sid, 2, "sid"),
            _uint(rsp.upstream_channel, 1, "upstream_channel"),
            _tlv(RngRspTlv.TIMING_ADJUST, _uint(rsp.timing_adjust, 4, "timing", signed=True)),
            _tlv(RngRspTlv.POWER_LEVEL_ADJUST, _uint(rsp.power_adjust, 1, "power", signed=True)),
            _tlv(RngRspTlv.RANGING_STATUS, bytes((rsp.status,))),
        )
    )


def _decode_rng_rsp(payload: bytes) -> RngRsp:
    sid, channel = _fixed(payload, _U16_U8)
    timing, power, status = 0, 0, None
    seen: set[int] = set()
    for tlv_type, start, end in _tlvs(payload, _U16_U8.size, len(payload)):
        if tlv_type not in _RNG_RSP_KNOWN:
            continue  # MULPI §6.4.6 defines more; the emulated link needs these three
        _once(seen, tlv_type, start - 2)
        if tlv_type == RngRspTlv.TIMING_ADJUST:
            timing = int.from_bytes(_sized(payload, tlv_type, start, end, 4), "big", signed=True)
        elif tlv_type == RngRspTlv.POWER_LEVEL_ADJUST:
            power = int.from_bytes(_sized(payload, tlv_type, start, end, 1), "big", signed=True)
        else:
            status = _sized(payload, tlv_type, start, end, 1)[0]
            if status not in _RANGING_STATUSES:
                raise DecodeError(LAYER, start, "bad_tlv", f"Ranging Status {status}")
    if status is None:
        raise DecodeError(LAYER, len(payload), "missing_tlv", "no Ranging Status (TLV 5)")
    return RngRsp(sid, channel, status, timing, power)


def _with_code(first: int, code: int, tlvs: bytes = b"") -> bytes:
    return _uint(first, 2, "SID or transaction ID") + _uint(code, 1, "code") + tlvs


def _code_and_flows(payload: bytes) -> tuple[int, int, tuple[ServiceFlow, ...]]:
    first, code = _fixed(payload, _U16_U8)
    return first, code, _decode_flows(payload, _U16_U8.size)


def _code_only(payload: bytes) -> tuple[int, int]:
    first, code = _fixed(payload, _U16_U8)
    _tlvs(payload, _U16_U8.size, len(payload))  # none used, but framing checked
    return first, code


def _decode_rng_req(payload: bytes) -> RngReq:
    sid, channel, pending = _fixed(payload, _RNG_REQ)
    return RngReq(sid, channel, pending)


def _decode_reg_rsp(payload: bytes) -> RegRsp:
    return RegRsp(*_code_and_flows(payload))


def _decode_reg_ack(payload: bytes) -> RegAck:
    return RegAck(*_code_only(payload))


def _decode_dsc_req(payload: bytes) -> DscReq:
    (transaction_id,) = _fixed(payload, _U16)
    return DscReq(transaction_id, _decode_flows(payload, _U16.size))


def _decode_dsc_rsp(payload: bytes) -> DscRsp:
    return DscRsp(*_code_and_flows(payload))


def _decode_dsc_ack(payload: bytes) -> DscAck:
    return DscAck(*_code_only(payload))


_DECODERS: dict[int, Callable[[bytes], MgmtMessage]] = {
    MgmtType.RNG_REQ: _decode_rng_req,
    MgmtType.RNG_RSP: _decode_rng_rsp,
    MgmtType.REG_REQ: _decode_reg_req,
    MgmtType.REG_RSP: _decode_reg_rsp,
    MgmtType.REG_ACK: _decode_reg_ack,
    MgmtType.DSC_REQ: _decode_dsc_req,
    MgmtType.DSC_RSP: _decode_dsc_rsp,
    MgmtType.DSC_ACK: _decode_dsc_ack,
}


def _encode_payload(msg: MgmtMessage) -> tuple[MgmtType, bytes]:
    if isinstance(msg, RngReq):
        fields = (
            _uint(msg.sid, 2, "sid"),
            _uint(msg.downstream_channel, 1, "downstream_channel"),
            _uint(msg.pending, 1, "pending"),
        )
        return MgmtType.RNG_REQ, b"".join(fields)
    if isinstance(msg, RngRsp):
        return MgmtType.RNG_RSP, _encode_rng_rsp(msg)
    if isinstance(msg, RegReq):
        return MgmtType.REG_REQ, _encode_reg_req(msg)
    if isinstance(msg, RegRsp):
        return MgmtType.REG_RSP, _with_code(msg.sid, msg.response, _encode_flows(msg.service_flows))
    if isinstance(msg, RegAck):
        return MgmtType.REG_ACK, _with_code(msg.sid, msg.confirmation)
    if isinstance(msg, DscReq):
        tlvs = _encode_flows(msg.service_flows)
        return MgmtType.DSC_REQ, _uint(msg.transaction_id, 2, "transaction_id") + tlvs
    if isinstance(msg, DscRsp):
        flows = _encode_flows(msg.service_flows)
        return MgmtType.DSC_RSP, _with_code(msg.transaction_id, msg.confirmation, flows)
    if isinstance(msg, DscAck):
        return MgmtType.DSC_ACK, _with_code(msg.transaction_id, msg.confirmation)
    raise TypeError(f"not a management message: {type(msg).__name__}")


def encode_message(msg: MgmtMessage) -> tuple[int, int, bytes]:
    """(version, type, payload) of ``msg``, for a :class:`ManagementFrame`."""
    type_, payload = _encode_payload(msg)
    return VERSIONS[type_], type_, payload


def decode_message(version: int, type_: int, payload: bytes) -> MgmtMessage:
    """The message of a management frame's ``version``, ``type_`` and ``payload``."""
    decoder = _DECODERS.get(type_)
    if decoder is None:
        raise DecodeError(LAYER, 0, "unknown_type", f"management message type {type_}")
    if version != VERSIONS[type_]:
        raise DecodeError(LAYER, 0, "bad_version", f"type {type_} has version {VERSIONS[type_]}")
    return decoder(payload)


# --- carrier frames -------------------------------------------------------------------------


def mgmt_carrier(
    dst: bytes, src: bytes, msg: MgmtMessage, *, upstream_sid: int | None = None
) -> bytes:
    """One carrier frame from ``src`` to ``dst`` carrying ``msg`` in a management frame.

    The management header's DA/SA are ``dst``/``src`` too. RNG-REQ goes behind the timing
    header, every other message behind the MAC management header. With ``upstream_sid`` the
    MAC header carries a Request EH element naming it (how upstream frames name their SID).
    """
    version, type_, payload = encode_message(msg)
    ehdr = () if upstream_sid is None else (RequestEh(0, upstream_sid),)
    frame = ManagementFrame(dst, src, version, type_, payload, ehdr, isinstance(msg, RngReq))
    return encode_carrier(dst, src, encode_frame(frame))


def parse_mgmt_carrier(frame: bytes) -> tuple[bytes, bytes, int | None, MgmtMessage]:
    """(carrier src, carrier dst, SID of the Request EH element or None, message) of ``frame``.

    Raises DecodeError with layer ``"ethernet"`` or ``"docsis"`` (offsets in ``frame``) for a
    frame that is not a carrier of a valid management frame (``"not_management"`` for another
    MAC frame), or ``"docsis_mgmt"`` (offsets in the payload) when the message does not decode.
    Which header (timing or management) carried the message, and the management header's
    DA/SA, are not checked.
    """
    dst, src, _ = decode_carrier(frame)
    mac = decode_frame(frame, ETH_HLEN)
    if not isinstance(mac, ManagementFrame):
        raise DecodeError("docsis", ETH_HLEN, "not_management", type(mac).__name__)
    return src, dst, upstream_sid(mac.ehdr), decode_message(mac.version, mac.type, mac.payload)
