"""DOCSIS MAC management message payloads (vnf.codec.docsis_mgmt).

scapy has no DOCSIS layer, so the byte-exact expectations here are written by hand from the
field tables in the module docstring (MULPI §6.4, Annex C TLVs), one field per line.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnf.codec.docsis import (
    ManagementFrame,
    MgmtType,
    PacketFrame,
    RequestEh,
    crc16_x25,
    decode_frame,
    encode_carrier,
    encode_frame,
)
from vnf.codec.docsis_mgmt import (
    RFC868_EPOCH_OFFSET,
    VERSIONS,
    Confirmation,
    DscAck,
    DscReq,
    DscRsp,
    MgmtMessage,
    QosSet,
    RangingStatus,
    RegAck,
    RegReq,
    RegRsp,
    RngReq,
    RngRsp,
    ServiceFlow,
    cmts_mic,
    decode_message,
    encode_message,
    mgmt_carrier,
    parse_mgmt_carrier,
    verify_mic,
    with_mic,
)
from vnf.codec.ethernet import ETH_HLEN
from vnf.errors import DecodeError

CM_MAC = bytes.fromhex("020000000a01")
CMTS_MAC = bytes.fromhex("020000000001")
SID = 0x0123
SECRET = b"cmts shared secret"

UP_FLOW = ServiceFlow(
    True, reference=1, sid=SID, class_name="up", qos_set=QosSet(7), max_rate_bps=1_000_000
)
DOWN_FLOW = ServiceFlow(
    False, reference=2, class_name="down", qos_set=7, max_rate_bps=20_000_000, max_burst=3044
)
REG_REQ = RegReq(
    SID,
    (UP_FLOW, DOWN_FLOW),
    network_access=True,
    max_cpe=2,
    timestamp=3_900_000_000,
    cmts_mic=bytes(range(16)),
    other=((43, bytes.fromhex("0803001000")),),
)
REG_REQ_TLVS = "".join(
    (
        "030101",  # 3 Network Access Control: 1
        "120102",  # 18 Max Number of CPEs: 2
        "1304e8754700",  # 19 TFTP Server Timestamp: 3900000000
        "1816",  # 24 upstream service flow, 22 bytes:
        "01020001",  # 1 reference 1
        "03020123",  # 3 SID 0x0123
        "0403757000",  # 4 class name "up" NUL
        "060107",  # 6 QoS set: provisioned | admitted | active
        "0804000f4240",  # 8 max sustained rate 1 000 000
        "191a",  # 25 downstream service flow, 26 bytes:
        "01020002",  # 1 reference 2
        "0405646f776e00",  # 4 class name "down" NUL
        "060107",  # 6 QoS set 7
        "080401312d00",  # 8 max sustained rate 20 000 000
        "090400000be4",  # 9 max burst 3044
        "2b050803001000",  # 43 kept in `other`
    )
)
REG_REQ_HEX = "0123" + REG_REQ_TLVS + "0710" + bytes(range(16)).hex()  # MIC last

# (message, version, type, payload hex), each payload written by hand from the tables.
ENCODINGS: dict[str, tuple[MgmtMessage, int, int, str]] = {
    "rng_req": (RngReq(SID, downstream_channel=3), 1, 4, "01230300"),
    "rng_req_initial": (RngReq(0, 1, 5), 1, 4, "00000105"),
    "rng_rsp": (
        RngRsp(SID, 2, RangingStatus.SUCCESS, timing_adjust=-2, power_adjust=4),
        1,
        5,
        "0123020104fffffffe020104050103",
    ),
    "rng_rsp_abort": (
        RngRsp(0x3FFF, 255, RangingStatus.ABORT, timing_adjust=0x7FFFFFFF, power_adjust=-128),
        1,
        5,
        "3fffff01047fffffff020180050102",
    ),
    "reg_req": (REG_REQ, 1, 6, REG_REQ_HEX),
    "reg_req_minimal": (
        RegReq(SID, network_access=False, max_cpe=0),
        1,
        6,
        "0123030100",
    ),
    "reg_rsp": (
        RegRsp(SID, Confirmation.OK, (ServiceFlow(True, reference=1, sfid=0x10, sid=SID),)),
        1,
        7,
        "012300180e0102000102040000001003020123",
    ),
    "reg_ack": (RegAck(SID, Confirmation.OK), 2, 14, "012300"),
    "reg_ack_reject": (RegAck(SID, Confirmation.REJECT_AUTHENTICATION_FAILURE), 2, 14, "01230b"),
    "dsc_req": (
        DscReq(7, (ServiceFlow(False, sfid=0x11, max_rate_bps=8000),)),
        1,
        18,
        "0007190c020400000011080400001f40",
    ),
    "dsc_rsp": (DscRsp(7, Confirmation.REJECT_SERVICE_FLOW_NOT_FOUND), 1, 19, "000706"),
    "dsc_ack": (DscAck(7, Confirmation.OK), 1, 20, "000700"),
}


def reason_of(version: int, type_: int, payload: bytes | str) -> str:
    raw = bytes.fromhex(payload) if isinstance(payload, str) else payload
    with pytest.raises(DecodeError) as err:
        decode_message(version, type_, raw)
    assert err.value.layer == "docsis_mgmt"
    return err.value.reason


# --- encodings and round trips --------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_byte_exact_encoding(name: str) -> None:
    msg, version, type_, payload = ENCODINGS[name]
    assert encode_message(msg) == (version, type_, bytes.fromhex(payload))


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_decode_of_the_hand_written_bytes(name: str) -> None:
    msg, version, type_, payload = ENCODINGS[name]
    assert decode_message(version, type_, bytes.fromhex(payload)) == msg


def test_versions_follow_the_table() -> None:
    assert VERSIONS == {4: 1, 5: 1, 6: 1, 7: 1, 14: 2, 18: 1, 19: 1, 20: 1}
    assert (MgmtType.DSC_REQ, MgmtType.DSC_RSP, MgmtType.DSC_ACK) == (18, 19, 20)


ROUND_TRIPS: dict[str, MgmtMessage] = {
    "flow_unknown_sub_tlvs": RegRsp(
        SID,
        Confirmation.OK,
        (ServiceFlow(True, sfid=1, unknown=((200, b"\x01\x02"), (17, b""), (255, bytes(200)))),),
    ),
    "reg_req_unknown_tlvs_in_order": RegReq(
        SID, other=((200, b"z"), (1, b"\x00\x00\x00\x01"), (0, b""), (43, b"a"))
    ),
    "reg_req_downstream_sid_kept": RegReq(SID, (ServiceFlow(False, sid=SID),)),
    "reg_req_long_class_name": RegReq(SID, (ServiceFlow(True, class_name="x" * 15),)),
    "reg_req_max_fields": RegReq(
        0xFFFF,
        (ServiceFlow(True, 0xFFFF, 0xFFFFFFFF, 0xFFFF, "~", 255, 0xFFFFFFFF, 0xFFFFFFFF),),
        max_cpe=255,
        timestamp=0xFFFFFFFF,
    ),
    "empty_flow": DscReq(1, (ServiceFlow(True), ServiceFlow(False))),
    "dsc_req_no_flows": DscReq(0xFFFF, ()),
    "dsc_rsp_flows": DscRsp(1, Confirmation.OK, (UP_FLOW, DOWN_FLOW)),
    "rng_rsp_continue": RngRsp(SID, 1, RangingStatus.CONTINUE),
    "reg_rsp_other_code": RegRsp(SID, 200),
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS) + sorted(ENCODINGS))
def test_round_trip(name: str) -> None:
    msg = ROUND_TRIPS[name] if name in ROUND_TRIPS else ENCODINGS[name][0]
    assert decode_message(*encode_message(msg)) == msg


def test_tlvs_a_message_does_not_use_are_ignored() -> None:
    # 99 unknown (with a sub-TLV-looking value) before the flows, after them a bare TLV 3.
    assert decode_message(1, 7, bytes.fromhex("0123006302aabb180401020009030101")) == (
        RegRsp(SID, 0, (ServiceFlow(True, reference=9),))
    )
    assert decode_message(1, 5, bytes.fromhex("0123010300050101630101")) == RngRsp(
        SID, 1, RangingStatus.CONTINUE
    )
    assert decode_message(2, 14, bytes.fromhex("012300180401020001")) == RegAck(SID, 0)
    assert decode_message(1, 20, bytes.fromhex("0001001b0100")) == DscAck(1, 0)
    assert decode_message(1, 18, bytes.fromhex("00011b0100")) == DscReq(1, ())
    # RNG-REQ has no TLVs: bytes after its four are ignored.
    assert decode_message(1, 4, bytes.fromhex("0123010099")) == RngReq(SID, 1, 0)


def test_reg_req_defaults_when_tlvs_are_absent() -> None:
    # No TLV 3: network access enabled (the DOCSIS default); no 18/19: 0; no 7: no MIC.
    assert decode_message(1, 6, bytes.fromhex("0123")) == RegReq(
        SID, network_access=True, max_cpe=0, timestamp=0, cmts_mic=b""
    )


def test_timestamp_is_rfc868() -> None:
    assert RFC868_EPOCH_OFFSET == 2208988800  # RFC 868: 1970-01-01 is 2,208,988,800 s
    req = RegReq(SID, timestamp=1_700_000_000 + RFC868_EPOCH_OFFSET)
    assert decode_message(*encode_message(req)) == req


def test_enums() -> None:
    assert [int(s) for s in RangingStatus] == [1, 2, 3]
    assert [int(c) for c in Confirmation] == list(range(13))
    assert QosSet.PROVISIONED | QosSet.ADMITTED | QosSet.ACTIVE == 7


# --- decode errors --------------------------------------------------------------------------

MALFORMED: dict[str, tuple[int, int, str, str]] = {
    "type_map": (1, 3, "", "unknown_type"),
    "type_99": (1, 99, "0123", "unknown_type"),
    "type_negative": (1, -1, "0123", "unknown_type"),
    "reg_ack_v1": (1, 14, "012300", "bad_version"),
    "rng_req_v2": (2, 4, "01230100", "bad_version"),
    "dsc_req_v0": (0, 18, "0001", "bad_version"),
    "rng_req_3_bytes": (1, 4, "012303", "truncated"),
    "rng_rsp_2_bytes": (1, 5, "0123", "truncated"),
    "reg_req_1_byte": (1, 6, "01", "truncated"),
    "reg_rsp_empty": (1, 7, "", "truncated"),
    "reg_ack_2_bytes": (2, 14, "0123", "truncated"),
    "dsc_rsp_2_bytes": (1, 19, "0007", "truncated"),
    "dsc_ack_1_byte": (1, 20, "00", "truncated"),
    "tlv_header_cut": (1, 5, "01230105010301", "truncated"),
    "tlv_past_payload": (1, 6, "01230301011205", "truncated"),
    "sub_tlv_past_flow": (1, 6, "01231803010200030101", "truncated"),
    "sub_tlv_header_cut": (1, 18, "0001190101", "truncated"),
    "reg_ack_tlv_past_payload": (2, 14, "0123000102", "truncated"),
    "dsc_ack_tlv_header_cut": (1, 20, "00010001", "truncated"),
    "rng_rsp_no_status": (1, 5, "012301010400000000", "missing_tlv"),
    "rng_rsp_no_tlvs": (1, 5, "012301", "missing_tlv"),
    "rng_rsp_status_4": (1, 5, "012301050104", "bad_tlv"),
    "rng_rsp_status_0": (1, 5, "012301050100", "bad_tlv"),
    "rng_rsp_status_2_bytes": (1, 5, "01230105020003", "bad_tlv"),
    "rng_rsp_timing_2_bytes": (1, 5, "01230101020000050103", "bad_tlv"),
    "rng_rsp_power_empty": (1, 5, "0123010200050103", "bad_tlv"),
    "rng_rsp_status_twice": (1, 5, "012301050103050103", "bad_tlv"),
    "network_access_2": (1, 6, "0123030102", "bad_tlv"),
    "network_access_2_bytes": (1, 6, "012303020001", "bad_tlv"),
    "network_access_twice": (1, 6, "0123030101030101", "bad_tlv"),
    "max_cpe_empty": (1, 6, "01231200", "bad_tlv"),
    "timestamp_3_bytes": (1, 6, "01231303000001", "bad_tlv"),
    "mic_15_bytes": (1, 6, "0123070f" + "00" * 15, "bad_tlv"),
    "mic_twice": (1, 6, "0123" + ("0710" + "00" * 16) * 2, "bad_tlv"),
    "flow_reference_1_byte": (1, 6, "01231803010101", "bad_tlv"),
    "flow_sfid_2_bytes": (1, 7, "012300190402020001", "bad_tlv"),
    "flow_qos_2_bytes": (1, 18, "0001190406020007", "bad_tlv"),
    "flow_rate_3_bytes": (1, 19, "00010019050803000001", "bad_tlv"),
    "flow_burst_5_bytes": (1, 19, "000100190709050000000001", "bad_tlv"),
    "flow_reference_twice": (1, 6, "012318080102000101020002", "bad_tlv"),
    "class_name_no_nul": (1, 6, "0123180404027570", "bad_tlv"),
    "class_name_not_ascii": (1, 6, "012318050403c3a900", "bad_tlv"),
    "class_name_inner_nul": (1, 6, "01231806040475007000", "bad_tlv"),
    "class_name_nul_only": (1, 6, "01231803040100", "bad_tlv"),
    "class_name_empty": (1, 6, "012318020400", "bad_tlv"),
    "class_name_17_bytes": (1, 6, "012318130411" + "61" * 16 + "00", "bad_tlv"),
    "class_name_twice": (1, 6, "012318080402610004026200", "bad_tlv"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed(name: str) -> None:
    version, type_, payload, reason = MALFORMED[name]
    assert reason_of(version, type_, payload) == reason


def test_error_offsets_point_into_the_payload() -> None:
    with pytest.raises(DecodeError) as err:
        decode_message(1, 6, bytes.fromhex("01230301011205"))
    assert err.value.offset == 6  # the length byte of TLV 18
    with pytest.raises(DecodeError) as err:
        decode_message(1, 6, bytes.fromhex("01231803010101"))
    assert err.value.offset == 5  # the length byte of sub-TLV 1


def reg_req_tlv_ends(payload: bytes) -> set[int]:
    """Payload offsets where a top-level TLV of a REG-REQ ends (the SID ends at 2)."""
    ends, pos = {2}, 2
    while pos < len(payload):
        pos += 2 + payload[pos + 1]
        ends.add(pos)
    return ends


def test_every_truncation_of_a_reg_req_is_a_decode_error() -> None:
    payload = bytes.fromhex(REG_REQ_HEX)
    ends = reg_req_tlv_ends(payload)
    assert len(ends) == 8
    for cut in range(len(payload)):
        if cut in ends:
            # A cut between TLVs leaves a shorter, valid REG-REQ.
            assert isinstance(decode_message(1, 6, payload[:cut]), RegReq)
        else:
            assert reason_of(1, 6, payload[:cut]) == "truncated", cut


ENCODE_MISUSE: dict[str, MgmtMessage] = {
    "sid_17_bits": RngReq(0x10000),
    "negative_sid": RegAck(-1, 0),
    "channel_256": RngReq(SID, 256),
    "status_4": RngRsp(SID, 1, 4),
    "timing_over_31_bits": RngRsp(SID, 1, 3, timing_adjust=1 << 31),
    "power_minus_129": RngRsp(SID, 1, 3, power_adjust=-129),
    "mic_15_bytes": RegReq(SID, cmts_mic=bytes(15)),
    "max_cpe_256": RegReq(SID, max_cpe=256),
    "timestamp_33_bits": RegReq(SID, timestamp=1 << 32),
    "other_known_tlv": RegReq(SID, other=((24, b""),)),
    "other_mic": RegReq(SID, other=((7, bytes(16)),)),
    "other_value_256": RegReq(SID, other=((43, bytes(256)),)),
    "other_type_256": RegReq(SID, other=((256, b""),)),
    "unknown_known_sub_tlv": DscReq(1, (ServiceFlow(True, unknown=((4, b"a\x00"),)),)),
    "class_name_16": DscReq(1, (ServiceFlow(True, class_name="x" * 16),)),
    "class_name_not_ascii": DscReq(1, (ServiceFlow(True, class_name="é"),)),
    "class_name_nul": DscReq(1, (ServiceFlow(True, class_name="a\x00b"),)),
    "negative_sfid": DscRsp(1, 0, (ServiceFlow(True, sfid=-1),)),
    "rate_33_bits": DscRsp(1, 0, (ServiceFlow(True, max_rate_bps=1 << 32),)),
    "qos_256": DscRsp(1, 0, (ServiceFlow(True, qos_set=256),)),
    "flow_over_255_bytes": DscReq(1, (ServiceFlow(True, unknown=((99, bytes(254)),)),)),
    "code_256": DscAck(1, 256),
}


@pytest.mark.parametrize("name", sorted(ENCODE_MISUSE))
def test_encode_misuse_raises_value_error(name: str) -> None:
    with pytest.raises(ValueError):
        encode_message(ENCODE_MISUSE[name])


# --- CMTS MIC -------------------------------------------------------------------------------


def test_mic_is_hmac_md5_over_the_tlvs_before_tlv_7() -> None:
    expected = hmac.new(SECRET, bytes.fromhex(REG_REQ_TLVS), hashlib.md5).digest()
    assert cmts_mic(SECRET, REG_REQ) == expected
    signed = with_mic(SECRET, REG_REQ)
    assert signed == replace(REG_REQ, cmts_mic=expected)
    assert encode_message(signed)[2] == bytes.fromhex("0123" + REG_REQ_TLVS + "0710") + expected


def test_mic_excludes_tlv_7() -> None:
    for mic in (b"", bytes(16), b"\xff" * 16):
        assert cmts_mic(SECRET, replace(REG_REQ, cmts_mic=mic)) == cmts_mic(SECRET, REG_REQ)


def test_mic_verifies_with_the_right_secret_only() -> None:
    signed = decode_message(*encode_message(with_mic(SECRET, REG_REQ)))
    assert isinstance(signed, RegReq)
    assert verify_mic(SECRET, signed)
    assert not verify_mic(SECRET + b"x", signed)
    assert not verify_mic(b"", signed)
    assert not verify_mic(SECRET, replace(signed, cmts_mic=b""))


FIELD_CHANGES: dict[str, RegReq] = {
    "sid_is_not_a_tlv_but_flows_are": replace(REG_REQ, service_flows=(UP_FLOW,)),
    "network_access": replace(REG_REQ, network_access=False),
    "max_cpe": replace(REG_REQ, max_cpe=3),
    "timestamp": replace(REG_REQ, timestamp=REG_REQ.timestamp + 1),
    "flow_rate": replace(REG_REQ, service_flows=(replace(UP_FLOW, max_rate_bps=1), DOWN_FLOW)),
    "flow_order": replace(REG_REQ, service_flows=(DOWN_FLOW, UP_FLOW)),
    "other": replace(REG_REQ, other=((43, bytes.fromhex("0803001001")),)),
}


@pytest.mark.parametrize("name", sorted(FIELD_CHANGES))
def test_mic_changes_with_every_field(name: str) -> None:
    assert cmts_mic(SECRET, FIELD_CHANGES[name]) != cmts_mic(SECRET, REG_REQ)


def test_mic_fails_when_any_tlv_byte_changes() -> None:
    payload = encode_message(with_mic(SECRET, REG_REQ))[2]
    mic_at = len(payload) - 18
    for at in range(2, mic_at):
        for flip in (0x01, 0x80):
            changed = bytearray(payload)
            changed[at] ^= flip
            try:
                decoded = decode_message(1, 6, bytes(changed))
            except DecodeError:
                continue  # rejected before the MIC is even looked at
            assert isinstance(decoded, RegReq)
            assert not verify_mic(SECRET, decoded), (at, flip)


# --- carrier frames -------------------------------------------------------------------------

CARRIER_CASES: dict[str, tuple[MgmtMessage, int | None, int]] = {
    "rng_req_upstream": (RngReq(0), 0x0001, 0xC1),
    "rng_req_no_sid": (RngReq(SID), None, 0xC0),
    "rng_rsp": (RngRsp(SID, 1, RangingStatus.SUCCESS), None, 0xC2),
    "reg_req_upstream": (with_mic(SECRET, REG_REQ), SID, 0xC3),
    "reg_rsp": (RegRsp(SID, 0, (UP_FLOW,)), None, 0xC2),
    "reg_ack_upstream": (RegAck(SID, 0), SID, 0xC3),
    "dsc_req_upstream": (DscReq(5, (DOWN_FLOW,)), SID, 0xC3),
    "dsc_rsp": (DscRsp(5, 0, (DOWN_FLOW,)), None, 0xC2),
    "dsc_ack_max_sid": (DscAck(5, 0), 0x3FFF, 0xC3),
}


@pytest.mark.parametrize("name", sorted(CARRIER_CASES))
def test_carrier_round_trip(name: str) -> None:
    msg, sid, fc = CARRIER_CASES[name]
    upstream = sid is not None
    dst, src = (CMTS_MAC, CM_MAC) if upstream else (CM_MAC, CMTS_MAC)
    frame = mgmt_carrier(dst, src, msg, upstream_sid=sid)
    assert frame[:14] == dst + src + b"\x88\xb6"
    assert len(frame) >= 60
    assert parse_mgmt_carrier(frame) == (src, dst, sid, msg)

    # The timing header (FC_PARM 0) for RNG-REQ only, EHDR_ON with the Request EH.
    assert frame[ETH_HLEN] == fc
    elen = frame[ETH_HLEN + 1] if fc & 1 else 0
    hcs_at = ETH_HLEN + 4 + elen
    assert struct.unpack_from("<H", frame, hcs_at)[0] == crc16_x25(frame[ETH_HLEN:hcs_at])
    mac = decode_frame(frame, ETH_HLEN)  # checks HCS and CRC
    version, type_, payload = encode_message(msg)
    ehdr = (RequestEh(0, sid),) if upstream else ()
    assert mac == ManagementFrame(dst, src, version, type_, payload, ehdr, isinstance(msg, RngReq))


def test_parse_ignores_carrier_padding_and_reports_the_carrier_addresses() -> None:
    frame = mgmt_carrier(CMTS_MAC, CM_MAC, RegAck(SID, 0), upstream_sid=SID)
    assert parse_mgmt_carrier(frame + bytes(30)) == (CM_MAC, CMTS_MAC, SID, RegAck(SID, 0))


def carrier_of(mac: bytes) -> bytes:
    return encode_carrier(CMTS_MAC, CM_MAC, mac)


def parse_error(frame: bytes) -> tuple[str, str]:
    with pytest.raises(DecodeError) as err:
        parse_mgmt_carrier(frame)
    return err.value.layer, err.value.reason


def test_parse_errors() -> None:
    good = mgmt_carrier(CMTS_MAC, CM_MAC, RegAck(SID, 0), upstream_sid=SID)
    assert parse_error(good[:10]) == ("ethernet", "truncated")
    assert parse_error(good[:12] + b"\x88\xb5" + good[14:]) == ("ethernet", "bad_ethertype")
    assert parse_error(good[:14]) == ("docsis", "truncated")
    bad_hcs = bytearray(good)
    bad_hcs[ETH_HLEN + 4] ^= 0xFF  # inside the EHDR
    assert parse_error(bytes(bad_hcs)) == ("docsis", "bad_hcs")
    packet = encode_frame(PacketFrame(CMTS_MAC, CM_MAC, 0x0800, bytes(20)))
    assert parse_error(carrier_of(packet)) == ("docsis", "not_management")
    unknown = encode_frame(ManagementFrame(CMTS_MAC, CM_MAC, 1, MgmtType.MAP, b""))
    assert parse_error(carrier_of(unknown)) == ("docsis_mgmt", "unknown_type")
    wrong_version = encode_frame(ManagementFrame(CMTS_MAC, CM_MAC, 1, 14, b"\x01\x23\x00"))
    assert parse_error(carrier_of(wrong_version)) == ("docsis_mgmt", "bad_version")


def test_mgmt_crc_error_is_a_docsis_error() -> None:
    mac = bytearray(encode_frame(ManagementFrame(CMTS_MAC, CM_MAC, 2, 14, b"\x01\x23\x00")))
    mac[-5] ^= 0x01  # last payload byte: CRC no longer matches
    assert parse_error(carrier_of(bytes(mac))) == ("docsis", "bad_crc")


def test_upstream_sid_must_fit_the_request_eh() -> None:
    with pytest.raises(ValueError):
        mgmt_carrier(CMTS_MAC, CM_MAC, RngReq(0), upstream_sid=0x4000)


# --- properties -----------------------------------------------------------------------------

u8, u16, u32 = st.integers(0, 0xFF), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF)
class_names = st.text(st.characters(min_codepoint=1, max_codepoint=127), max_size=15)
raw_tlvs = st.lists(st.tuples(u8, st.binary(max_size=20)), max_size=3)
flows = st.builds(
    ServiceFlow,
    st.booleans(),
    u16,
    u32,
    u16,
    class_names,
    u8,
    u32,
    u32,
    raw_tlvs.map(lambda ts: tuple(t for t in ts if t[0] not in (1, 2, 3, 4, 6, 8, 9))),
)
flow_tuples = st.lists(flows, max_size=3).map(tuple)
messages = st.one_of(
    st.builds(RngReq, u16, u8, u8),
    st.builds(
        RngRsp,
        u16,
        u8,
        st.sampled_from(RangingStatus),
        st.integers(-(1 << 31), (1 << 31) - 1),
        st.integers(-128, 127),
    ),
    st.builds(
        RegReq,
        u16,
        flow_tuples,
        st.booleans(),
        u8,
        u32,
        st.one_of(st.just(b""), st.binary(min_size=16, max_size=16)),
        raw_tlvs.map(lambda ts: tuple(t for t in ts if t[0] not in (3, 7, 18, 19, 24, 25))),
    ),
    st.builds(RegRsp, u16, u8, flow_tuples),
    st.builds(RegAck, u16, u8),
    st.builds(DscReq, u16, flow_tuples),
    st.builds(DscRsp, u16, u8, flow_tuples),
    st.builds(DscAck, u16, u8),
)


@pytest.mark.property
@settings(deadline=None)
@given(msg=messages, sid=st.one_of(st.none(), st.integers(0, 0x3FFF)))
def test_round_trip_property(msg: MgmtMessage, sid: int | None) -> None:
    assert decode_message(*encode_message(msg)) == msg
    assert parse_mgmt_carrier(mgmt_carrier(CMTS_MAC, CM_MAC, msg, upstream_sid=sid)) == (
        CM_MAC,
        CMTS_MAC,
        sid,
        msg,
    )


TLV_TYPES = st.sampled_from((1, 2, 3, 4, 5, 6, 7, 8, 9, 18, 19, 24, 25, 43))
# Mostly the sizes the known TLVs have, so that decoding gets past the length checks.
values = st.one_of(
    st.sampled_from((1, 2, 4, 16)).flatmap(lambda n: st.binary(min_size=n, max_size=n)),
    st.binary(max_size=18),
)
# Now and then one TLV with a wrong length byte.
wrong_lengths = st.one_of(st.just(()), st.just(()), st.tuples(st.integers(0, 60)))


def tlv_bytes(tlvs: list[tuple[int, bytes]], lengths: tuple[int, ...]) -> bytes:
    """TLVs, the first ``len(lengths)`` with the given length bytes instead of their own."""
    out = b""
    for i, (tlv_type, value) in enumerate(tlvs):
        length = lengths[i] if i < len(lengths) else len(value)
        out += bytes((tlv_type, length)) + value
    return out


sub_tlvs = st.builds(tlv_bytes, st.lists(st.tuples(TLV_TYPES, values), max_size=4), wrong_lengths)
tlv_runs = st.builds(
    tlv_bytes,
    st.lists(st.tuples(TLV_TYPES, st.one_of(values, sub_tlvs)), max_size=4),
    wrong_lengths,
)
payloads = st.one_of(
    st.binary(max_size=60),
    # 2 or 3 bytes: the fixed fields of every type but RNG-REQ
    st.builds(lambda head, tlvs: head + tlvs, st.binary(min_size=2, max_size=3), tlv_runs),
)


@pytest.mark.property
@settings(deadline=None, max_examples=500)
@given(
    version_type=st.one_of(
        st.sampled_from(sorted((v, t) for t, v in VERSIONS.items())),
        st.tuples(st.integers(-1, 256), u8),
    ),
    payload=payloads,
)
def test_decoder_totality(version_type: tuple[int, int], payload: bytes) -> None:
    version, type_ = version_type
    try:
        decoded = decode_message(version, type_, payload)
    except DecodeError as exc:
        assert exc.layer == "docsis_mgmt"
        assert exc.reason in ("unknown_type", "bad_version", "truncated", "bad_tlv", "missing_tlv")
        assert 0 <= exc.offset <= len(payload)
    else:
        assert decode_message(*encode_message(decoded)) == decoded
