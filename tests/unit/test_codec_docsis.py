"""DOCSIS MAC frame codec (vnf.codec.docsis).

scapy (2.x, as installed) has no DOCSIS layer (``scapy.contrib.docsis`` does not exist), so the
cross-checks with scapy are on what it does know: the Ethernet frame inside a Packet PDU, the
802.3 + LLC layout of the management message header, and the Ethernet carrier.
"""

from __future__ import annotations

import binascii
import struct
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import LLC, Dot3, Ether
from scapy.packet import Raw

from vnf.codec.docsis import (
    CARRIER_ETHERTYPE,
    EhElement,
    EhType,
    FcParm,
    FcType,
    MacFrame,
    ManagementFrame,
    MgmtType,
    OtherFrame,
    PacketFrame,
    RequestEh,
    RequestFrame,
    crc16_x25,
    decode_carrier,
    decode_frame,
    encode_carrier,
    encode_ehdr,
    encode_frame,
    mac_frame_length,
    upstream_sid,
)
from vnf.codec.ethernet import ETH_HLEN, EtherType
from vnf.errors import DecodeError

CM_MAC = bytes.fromhex("020000000a01")
CMTS_MAC = bytes.fromhex("020000000001")
CPE_MAC = bytes.fromhex("020000001001")
SID = 0x0123


def reference_crc16(data: bytes) -> int:
    """X.25 CRC from the stdlib's CRC-CCITT (XMODEM form: MSB first, no complement): reflect
    every input byte, preset 0xFFFF, reflect the 16-bit result, complement it."""
    reflected = bytes(int(f"{b:08b}"[::-1], 2) for b in data)
    return int(f"{binascii.crc_hqx(reflected, 0xFFFF):016b}"[::-1], 2) ^ 0xFFFF


def assemble(fc: int, mac_parm: int, ehdr: bytes, body: bytes, length: int | None = None) -> bytes:
    """A MAC frame put together field by field, HCS from ``reference_crc16``."""
    size = len(ehdr) + len(body) if length is None else length
    head = bytes((fc, mac_parm)) + size.to_bytes(2, "big") + ehdr
    return head + struct.pack("<H", reference_crc16(head)) + body


def with_crc(data: bytes) -> bytes:
    return data + struct.pack("<I", zlib.crc32(data))


def mgmt_body(version: int, type_: int, payload: bytes, llc: bytes = b"\x00\x00\x03") -> bytes:
    head = CMTS_MAC + CM_MAC + (6 + len(payload)).to_bytes(2, "big") + llc
    return with_crc(head + bytes((version, type_, 0)) + payload)


UP_PDU = bytes(
    Ether(dst="02:00:00:00:00:01", src="02:00:00:00:10:01")
    / IP(src="100.64.0.23", dst="198.18.0.53", id=1)
    / UDP(sport=40000, dport=53)
    / Raw(b"vnf")
)

# Provenance: assembled field by field as in the module docstring (MULPI §6.2 / §6.4 layout),
# HCS from reference_crc16 (binascii.crc_hqx), CRCs from zlib.crc32, inner Ethernet frames
# built with scapy Ether/IP/UDP; cross-checked with Wireshark's HCS convention (low byte first).
FIXTURES: dict[str, tuple[str, MacFrame]] = {
    "packet_upstream": (
        "0104003513000123127302000000000102000000100108004500001f000100004011502f64400017c612"
        "00359c400035000b5c55766e6640c238a8",
        PacketFrame(CMTS_MAC, CPE_MAC, EtherType.IPV4, UP_PDU[14:], (RequestEh(0, SID),)),
    ),
    "packet_downstream": (
        "000000305dcd02000000100102000000000108004500001e000200004011502fc612003564400017003"
        "59c40000ac95a6f6b29719d7a",
        PacketFrame(
            CPE_MAC,
            CMTS_MAC,
            EtherType.IPV4,
            bytes.fromhex("4500001e000200004011502fc61200356440001700359c40000ac95a6f6b"),
        ),
    ),
    "rng_req_timing": (
        "c000001cea1d020000000001020000000a01000a000003010400000001006ec9b0ef",
        ManagementFrame(
            CMTS_MAC, CM_MAC, 1, MgmtType.RNG_REQ, bytes.fromhex("00000100"), timing=True
        ),
    ),
    "reg_req_with_ehdr": (
        "c3040021130001233e4f020000000001020000000a01000b000003010600012303010184b2a296",
        ManagementFrame(
            CMTS_MAC,
            CM_MAC,
            1,
            MgmtType.REG_REQ,
            bytes.fromhex("0123030101"),
            (RequestEh(0, SID),),
        ),
    ),
    "request": ("c40a0123d0cc", RequestFrame(SID, 10)),
    "queue_depth_request": ("c8040001238da6", RequestFrame(SID, 1024, queue_depth=True)),
}


def fixture(name: str) -> bytes:
    return bytes.fromhex(FIXTURES[name][0])


def reason_of(buf: bytes, offset: int = 0) -> str:
    with pytest.raises(DecodeError) as err:
        decode_frame(buf, offset)
    assert err.value.layer == "docsis"
    return err.value.reason


# --- HCS ----------------------------------------------------------------------------------


def test_hcs_check_value() -> None:
    # The X.25 / CRC-16/IBM-SDLC check value.
    assert crc16_x25(b"123456789") == 0x906E
    assert crc16_x25(b"") == 0x0000


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_hcs_matches_stdlib_reference(data: bytes) -> None:
    assert crc16_x25(data) == reference_crc16(data)


@settings(deadline=None)
@given(st.binary(max_size=100))
def test_hcs_low_byte_first_leaves_x25_residue(data: bytes) -> None:
    # RFC 1662 §C.2: over data + FCS (low byte first) the register ends at 0xF0B8.
    assert crc16_x25(data + struct.pack("<H", crc16_x25(data))) == 0xF0B8 ^ 0xFFFF


def test_ethernet_crc_byte_order_leaves_802_3_residue() -> None:
    pdu = fixture("packet_downstream")[6:]
    assert zlib.crc32(pdu) == 0x2144DF1C  # CRC-32 over frame + FCS, FCS in wire order


# --- fixtures and round trips -------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_round_trip(name: str) -> None:
    frame, expected = fixture(name), FIXTURES[name][1]
    assert decode_frame(frame) == expected
    assert encode_frame(expected) == frame
    assert mac_frame_length(frame) == len(frame)
    assert decode_frame(b"\xee" * 3 + frame + b"\x00" * 9, 3) == expected


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_truncation_is_a_decode_error(name: str) -> None:
    frame = fixture(name)
    for length in range(len(frame)):
        assert reason_of(frame[:length]) in ("truncated", "length_overrun")
        with pytest.raises(DecodeError):
            mac_frame_length(frame[:length])


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_every_single_bit_error_is_detected(name: str) -> None:
    frame = bytearray(fixture(name))
    for bit in range(len(frame) * 8):
        frame[bit // 8] ^= 0x80 >> (bit % 8)
        with pytest.raises(DecodeError):
            decode_frame(bytes(frame))
        frame[bit // 8] ^= 0x80 >> (bit % 8)


REQUEST_PAIR = encode_frame(RequestFrame(1, 2)) + encode_frame(RequestFrame(2, 3))

ROUND_TRIPS: dict[str, MacFrame] = {
    "packet_no_ehdr": PacketFrame(CPE_MAC, CMTS_MAC, 0x86DD, b"\x60" + bytes(47)),
    "packet_empty_payload": PacketFrame(CPE_MAC, CMTS_MAC, 0x0800, b""),
    "packet_ehdr": PacketFrame(
        CMTS_MAC,
        CPE_MAC,
        0x0800,
        b"x" * 1500,
        (EhElement(EhType.NULL, b""), RequestEh(255, 0x3FFF), EhElement(EhType.DPV, b"\x01" * 5)),
    ),
    "mgmt": ManagementFrame(CM_MAC, CMTS_MAC, 4, MgmtType.REG_RSP_MP, b"\x01\x02\x03"),
    "mgmt_empty": ManagementFrame(CM_MAC, CMTS_MAC, 1, MgmtType.REG_ACK, b""),
    "timing_ehdr": ManagementFrame(
        CMTS_MAC, CM_MAC, 5, MgmtType.B_INIT_RNG_REQ, b"\x00", (RequestEh(1, 7),), timing=True
    ),
    "request_max": RequestFrame(0x3FFF, 255),
    "queue_depth_max": RequestFrame(0x3FFF, 0xFFFF, queue_depth=True),
    "concatenation": OtherFrame(FcType.MAC_SPECIFIC, FcParm.CONCATENATION, 2, REQUEST_PAIR),
    "fragmentation": OtherFrame(
        FcType.MAC_SPECIFIC,
        FcParm.FRAGMENTATION,
        0,
        with_crc(b"fragment"),
        (EhElement(EhType.BP_UP, bytes.fromhex("1001233020")),),
    ),
    "isolation_pdu": OtherFrame(FcType.ISOLATION_PACKET, 0, 0, with_crc(UP_PDU)),
    "reserved_packet_parm": OtherFrame(FcType.PACKET, 1, 0x55, b""),
}


@pytest.mark.parametrize("name", sorted(ROUND_TRIPS))
def test_round_trip(name: str) -> None:
    frame = ROUND_TRIPS[name]
    encoded = encode_frame(frame)
    assert decode_frame(encoded) == frame
    assert encode_frame(decode_frame(encoded)) == encoded
    assert mac_frame_length(encoded) == len(encoded)


def test_concatenated_frames_are_walked_with_mac_frame_length() -> None:
    outer = decode_frame(encode_frame(ROUND_TRIPS["concatenation"]))
    assert isinstance(outer, OtherFrame) and outer.mac_parm == 2  # CNT
    frames, pos = [], 0
    while pos < len(outer.body):
        frames.append(decode_frame(outer.body, pos))
        pos += mac_frame_length(outer.body, pos)
    assert frames == [RequestFrame(1, 2), RequestFrame(2, 3)]


def test_unknown_eh_elements_are_kept_byte_for_byte() -> None:
    # NULL, ack requested, BP_UP, DS EHDR, reserved 10, reserved 14 with EH_LEN 15
    elements = ["00", "220123", "3410012300", "8501020304ff", "a199", "ef" + bytes(range(15)).hex()]
    ehdr = bytes.fromhex("".join(elements))
    frame = assemble(0x01, len(ehdr), ehdr, with_crc(UP_PDU))
    decoded = decode_frame(frame)
    assert isinstance(decoded, PacketFrame)
    assert [e.type for e in decoded.ehdr if isinstance(e, EhElement)] == [0, 2, 3, 8, 10, 14]
    assert decoded.ehdr[-1] == EhElement(14, bytes(range(15)))
    assert encode_frame(decoded) == frame
    assert encode_ehdr(decoded.ehdr) == ehdr


def test_upstream_sid() -> None:
    up, down = decode_frame(fixture("packet_upstream")), decode_frame(fixture("packet_downstream"))
    assert isinstance(up, PacketFrame) and isinstance(down, PacketFrame)
    assert upstream_sid(up.ehdr) == SID
    assert upstream_sid(down.ehdr) is None
    assert upstream_sid((EhElement(EhType.DS_SERVICE, b"\x00"), RequestEh(3, 9))) == 9


def test_reserved_mac_parm_and_rsvd_are_ignored() -> None:
    body = bytearray(mgmt_body(1, MgmtType.RNG_RSP, b"\x00\x01"))
    body[19] = 0xAA  # RSVD
    body[-4:] = struct.pack("<I", zlib.crc32(bytes(body[:-4])))
    frame = assemble(0xC2, 0x7F, b"", bytes(body))
    decoded = decode_frame(frame)
    assert decoded == ManagementFrame(CMTS_MAC, CM_MAC, 1, MgmtType.RNG_RSP, b"\x00\x01")


# --- malformed frames ---------------------------------------------------------------------


def test_hcs_mismatch() -> None:
    frame = bytearray(fixture("packet_downstream"))
    frame[5] ^= 0x01
    assert reason_of(bytes(frame)) == "bad_hcs"
    request = bytearray(fixture("request"))
    request[1] ^= 0x40
    assert reason_of(bytes(request)) == "bad_hcs"


@pytest.mark.parametrize("name", ["packet_upstream", "packet_downstream", "rng_req_timing"])
def test_crc_mismatch(name: str) -> None:
    frame = bytearray(fixture(name))
    frame[-1] ^= 0x01
    assert reason_of(bytes(frame)) == "bad_crc"
    frame[-1] ^= 0x01
    frame[-10] ^= 0x10  # payload
    assert reason_of(bytes(frame)) == "bad_crc"


MALFORMED = {
    "len_longer_than_data": (assemble(0x00, 0, b"", with_crc(UP_PDU), 99), "length_overrun"),
    "len_shorter_than_ehdr": (assemble(0x01, 4, bytes.fromhex("13000123"), b"", 2), "bad_len"),
    "ehdr_on_elen_0": (assemble(0x01, 0, b"", with_crc(UP_PDU)), "bad_elen"),
    "elen_over_240": (assemble(0x01, 241, bytes(241), with_crc(UP_PDU)), "bad_elen"),
    "ehdr_truncated": (assemble(0x01, 8, b"\x00" * 8, b"")[:9], "truncated"),
    "eh_overrun": (assemble(0x01, 3, bytes.fromhex("250000"), with_crc(UP_PDU)), "eh_overrun"),
    "extended_eh": (assemble(0x01, 2, bytes.fromhex("f100"), with_crc(UP_PDU)), "unsupported_eh"),
    "request_eh_len_2": (assemble(0x01, 3, bytes.fromhex("120001"), b""), "bad_eh_len"),
    "null_eh_with_value": (assemble(0x01, 2, bytes.fromhex("0100"), b""), "bad_eh_len"),
    "request_eh_sid_15_bits": (assemble(0x01, 4, bytes.fromhex("13004000"), b""), "bad_sid"),
    "pdu_17_bytes": (assemble(0x00, 0, b"", with_crc(bytes(13))), "pdu_truncated"),
    "pdu_missing": (assemble(0x00, 0, b"", b""), "pdu_truncated"),
    "mgmt_23_bytes": (assemble(0xC2, 0, b"", bytes(23)), "mgmt_truncated"),
    "mgmt_bad_llc": (assemble(0xC2, 0, b"", mgmt_body(1, 4, b"", b"\xaa\xaa\x03")), "bad_llc"),
    "mgmt_bad_msg_len": (
        assemble(0xC2, 0, b"", mgmt_body(1, 4, b"ab")[:-4] + b"c" + b"\x00" * 4),
        "bad_msg_len",
    ),
    "request_ehdr_on": (
        b"\xc5\x00\x01\x23" + struct.pack("<H", reference_crc16(b"\xc5\x00\x01\x23")),
        "bad_ehdr_on",
    ),
    "request_sid_16_bits": (
        b"\xc4\x00\xc1\x23" + struct.pack("<H", reference_crc16(b"\xc4\x00\xc1\x23")),
        "bad_sid",
    ),
    "empty": (b"", "truncated"),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed(name: str) -> None:
    frame, reason = MALFORMED[name]
    assert reason_of(frame) == reason


def test_negative_offset_and_offset_past_end() -> None:
    frame = fixture("request")
    assert reason_of(frame, -1) == "truncated"
    assert reason_of(frame, len(frame)) == "truncated"


ENCODE_MISUSE: dict[str, MacFrame] = {
    "sid_over_14_bits": RequestFrame(0x4000, 0),
    "request_eh_sid": PacketFrame(CPE_MAC, CMTS_MAC, 0x0800, b"", (RequestEh(0, 0x4000),)),
    "short_mac": PacketFrame(CPE_MAC[:5], CMTS_MAC, 0x0800, b""),
    "mgmt_long_mac": ManagementFrame(CM_MAC + b"\x00", CMTS_MAC, 1, 4, b""),
    "eh_value_16": PacketFrame(CPE_MAC, CMTS_MAC, 0, b"", (EhElement(2, bytes(16)),)),
    "raw_request_eh": PacketFrame(CPE_MAC, CMTS_MAC, 0, b"", (EhElement(1, bytes(3)),)),
    "raw_extended_eh": PacketFrame(CPE_MAC, CMTS_MAC, 0, b"", (EhElement(15, b""),)),
    "null_eh_value": PacketFrame(CPE_MAC, CMTS_MAC, 0, b"", (EhElement(0, b"\x00"),)),
    "ehdr_over_240": PacketFrame(CPE_MAC, CMTS_MAC, 0, b"", (EhElement(2, bytes(15)),) * 16),
    "len_over_65535": OtherFrame(FcType.ISOLATION_PACKET, 0, 0, bytes(65536)),
    "mac_parm_with_ehdr": OtherFrame(FcType.RESERVED, 0, 1, b"", (EhElement(2, b""),)),
    "other_as_packet": OtherFrame(FcType.PACKET, 0, 0, b""),
    "other_as_mgmt": OtherFrame(FcType.MAC_SPECIFIC, FcParm.MAC_MANAGEMENT, 0, b""),
    "other_as_request": OtherFrame(FcType.MAC_SPECIFIC, FcParm.QUEUE_DEPTH_REQUEST, 0, b""),
    "fc_parm_6_bits": OtherFrame(FcType.RESERVED, 0x20, 0, b""),
}


@pytest.mark.parametrize("name", sorted(ENCODE_MISUSE))
def test_encode_misuse_raises_value_error(name: str) -> None:
    with pytest.raises(ValueError):
        encode_frame(ENCODE_MISUSE[name])


# --- carrier ------------------------------------------------------------------------------


def test_carrier_ethertype_is_local_experimental_2() -> None:
    assert CARRIER_ETHERTYPE == 0x88B6
    assert CARRIER_ETHERTYPE != EtherType.LOCAL_EXPERIMENTAL  # 0x88B5: data plane claims


@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_carrier_round_trip_pads_and_trims(name: str) -> None:
    mac = fixture(name)
    frame = encode_carrier(CMTS_MAC, CM_MAC, mac)
    assert len(frame) == max(60, ETH_HLEN + len(mac))
    assert frame[ETH_HLEN + len(mac) :] == bytes(len(frame) - ETH_HLEN - len(mac))
    assert decode_carrier(frame) == (CMTS_MAC, CM_MAC, mac)
    assert decode_carrier(frame + b"\xff" * 10) == (CMTS_MAC, CM_MAC, mac)
    assert decode_frame(frame, ETH_HLEN) == FIXTURES[name][1]
    for length in range(ETH_HLEN + len(mac)):
        with pytest.raises(DecodeError):
            decode_carrier(frame[:length])


def test_carrier_errors() -> None:
    mac = fixture("rng_req_timing")
    with pytest.raises(DecodeError) as err:
        decode_carrier(encode_carrier(CMTS_MAC, CM_MAC, mac)[:13])
    assert (err.value.layer, err.value.reason) == ("ethernet", "truncated")
    wrong = bytes(Ether(dst=CMTS_MAC, src=CM_MAC, type=0x88B5) / Raw(mac))
    with pytest.raises(DecodeError) as err:
        decode_carrier(wrong)
    assert (err.value.layer, err.value.reason) == ("ethernet", "bad_ethertype")
    with pytest.raises(ValueError):
        encode_carrier(CMTS_MAC[:5], CM_MAC, mac)


# --- scapy cross-checks (scapy knows Ethernet and 802.3/LLC, not DOCSIS) ------------------


def test_scapy_dissects_the_carrier_and_builds_one_we_decode() -> None:
    mac = fixture("request")
    pkt = Ether(encode_carrier(CMTS_MAC, CM_MAC, mac))
    assert (pkt.dst, pkt.src, pkt.type) == ("02:00:00:00:00:01", "02:00:00:00:0a:01", 0x88B6)
    assert bytes(pkt.payload)[: len(mac)] == mac
    built = bytes(Ether(dst="02:00:00:00:0a:01", src="02:00:00:00:00:01", type=0x88B6) / Raw(mac))
    assert decode_carrier(built) == (CM_MAC, CMTS_MAC, mac)


def test_scapy_dissects_the_ethernet_frame_in_a_packet_pdu() -> None:
    ehdr = (EhElement(EhType.NULL, b""), RequestEh(0, SID), EhElement(EhType.DPV, bytes(5)))
    encoded = encode_frame(PacketFrame(CMTS_MAC, CPE_MAC, 0x0800, UP_PDU[14:], ehdr))
    pdu = encoded[6 + 11 : -4]  # after the header and its 11-byte EHDR, before the CRC
    assert pdu == UP_PDU
    pkt = Ether(pdu)
    assert (pkt[IP].src, pkt[UDP].dport, bytes(pkt[UDP].payload)) == ("100.64.0.23", 53, b"vnf")


def test_management_header_is_scapy_dot3_llc() -> None:
    frame = ManagementFrame(CMTS_MAC, CM_MAC, 4, MgmtType.REG_REQ_MP, b"\x01\x23\x01\x00")
    ours = encode_frame(frame)[6:-4]
    theirs = (
        Dot3(dst="02:00:00:00:00:01", src="02:00:00:00:0a:01")
        / LLC(dsap=0, ssap=0, ctrl=3)
        / Raw(bytes((4, MgmtType.REG_REQ_MP, 0)) + b"\x01\x23\x01\x00")
    )
    assert ours == bytes(theirs)


# --- properties ---------------------------------------------------------------------------

macs = st.binary(min_size=6, max_size=6)
eh_elements = st.one_of(
    st.builds(RequestEh, st.integers(0, 255), st.integers(0, 0x3FFF)),
    st.builds(EhElement, st.integers(2, 14), st.binary(max_size=15)),
    st.just(EhElement(0, b"")),
)
ehdrs = st.lists(eh_elements, max_size=8).map(tuple)
OTHER_FCS = [
    (t, p)
    for t in range(4)
    for p in range(32)
    if not (t == 0 and p == 0) and not (t == 3 and p in (0, 1, 2, 4))
]


@st.composite
def other_frames(draw: st.DrawFn) -> OtherFrame:
    fc_type, fc_parm = draw(st.sampled_from(OTHER_FCS))
    ehdr = draw(ehdrs)
    mac_parm = 0 if ehdr else draw(st.integers(0, 255))
    return OtherFrame(fc_type, fc_parm, mac_parm, draw(st.binary(max_size=100)), ehdr)


frames = st.one_of(
    st.builds(PacketFrame, macs, macs, st.integers(0, 0xFFFF), st.binary(max_size=200), ehdrs),
    st.builds(
        ManagementFrame,
        macs,
        macs,
        st.integers(0, 255),
        st.integers(0, 255),
        st.binary(max_size=200),
        ehdrs,
        st.booleans(),
    ),
    st.builds(RequestFrame, st.integers(0, 0x3FFF), st.integers(0, 255), st.just(False)),
    st.builds(RequestFrame, st.integers(0, 0x3FFF), st.integers(0, 0xFFFF), st.just(True)),
    other_frames(),
)


@pytest.mark.property
@settings(deadline=None)
@given(frame=frames, padding=st.binary(max_size=20))
def test_round_trip_property(frame: MacFrame, padding: bytes) -> None:
    encoded = encode_frame(frame)
    assert decode_frame(encoded + padding) == frame
    assert mac_frame_length(encoded + padding) == len(encoded)
    assert decode_carrier(encode_carrier(CMTS_MAC, CM_MAC, encoded) + padding)[2] == encoded


@st.composite
def hcs_valid_bytes(draw: st.DrawFn) -> bytes:
    """Headers with a right HCS, so that EHDR, PDU and management checks get exercised."""
    fc = draw(st.integers(0, 255))
    if fc & 1:
        ehdr = draw(st.binary(max_size=24))
        mac_parm = len(ehdr)
    else:
        ehdr, mac_parm = b"", draw(st.integers(0, 255))
    body = draw(st.binary(max_size=80))
    length = draw(st.one_of(st.just(len(ehdr) + len(body)), st.integers(0, 0xFFFF)))
    return assemble(fc, mac_parm, ehdr, body, length)


inputs = st.one_of(
    st.binary(max_size=120),
    hcs_valid_bytes(),
    st.builds(lambda b: b[:-1] + bytes([b[-1] ^ 1]) if b else b, hcs_valid_bytes()),
)


@pytest.mark.property
@settings(deadline=None, max_examples=500)
@given(data=inputs)
def test_decoder_totality(data: bytes) -> None:
    try:
        decoded = decode_frame(data)
    except DecodeError as exc:
        assert exc.layer == "docsis"
        assert exc.reason and exc.reason == exc.reason.lower() and " " not in exc.reason
        assert 0 <= exc.offset <= max(len(data), 1)
    else:
        assert decode_frame(encode_frame(decoded)) == decoded
    for decoder in (mac_frame_length, decode_carrier):
        try:
            decoder(data)
        except DecodeError as exc:
            assert exc.layer in ("docsis", "ethernet")
