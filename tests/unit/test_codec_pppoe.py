from __future__ import annotations

import pytest

from tests.helpers_ppp import AC_MAC, CLIENT_MAC, fixture
from vnf.codec.ppp import PppProtocol
from vnf.codec.pppoe import (
    PPPOE_HLEN,
    DiscoveryFrame,
    DiscoveryPacket,
    PppFrame,
    PppoeCode,
    Tag,
    TagType,
    decode_discovery,
    decode_discovery_frame,
    decode_session_frame,
    encode_discovery,
    encode_discovery_frame,
    encode_session_frame,
)
from vnf.errors import DecodeError

HOST_UNIQ = b"\x01\x02\x03\x04"
COOKIE = b"C" * 29

DISCOVERY_FIXTURES = {
    "padi": DiscoveryFrame(
        b"\xff" * 6,
        CLIENT_MAC,
        DiscoveryPacket(
            PppoeCode.PADI,
            0,
            (Tag(TagType.SERVICE_NAME, b""), Tag(TagType.HOST_UNIQ, HOST_UNIQ)),
        ),
    ),
    "pado": DiscoveryFrame(
        CLIENT_MAC,
        AC_MAC,
        DiscoveryPacket(
            PppoeCode.PADO,
            0,
            (
                Tag(TagType.AC_NAME, b"vnf-ac"),
                Tag(TagType.SERVICE_NAME, b""),
                Tag(TagType.AC_COOKIE, COOKIE),
                Tag(TagType.HOST_UNIQ, HOST_UNIQ),
                Tag(TagType.RELAY_SESSION_ID, b"relay-1"),
            ),
        ),
    ),
    "padr": DiscoveryFrame(
        AC_MAC,
        CLIENT_MAC,
        DiscoveryPacket(
            PppoeCode.PADR,
            0,
            (
                Tag(TagType.SERVICE_NAME, b""),
                Tag(TagType.HOST_UNIQ, HOST_UNIQ),
                Tag(TagType.AC_COOKIE, COOKIE),
                Tag(TagType.RELAY_SESSION_ID, b"relay-1"),
            ),
        ),
    ),
    "pads": DiscoveryFrame(
        CLIENT_MAC,
        AC_MAC,
        DiscoveryPacket(
            PppoeCode.PADS,
            0x0010,
            (Tag(TagType.SERVICE_NAME, b""), Tag(TagType.HOST_UNIQ, HOST_UNIQ)),
        ),
    ),
    "pads_error": DiscoveryFrame(
        CLIENT_MAC,
        AC_MAC,
        DiscoveryPacket(
            PppoeCode.PADS,
            0,
            (Tag(TagType.SERVICE_NAME, b""), Tag(TagType.AC_SYSTEM_ERROR, b"no resources")),
        ),
    ),
    "padt": DiscoveryFrame(
        CLIENT_MAC,
        AC_MAC,
        DiscoveryPacket(PppoeCode.PADT, 0x0010, (Tag(TagType.GENERIC_ERROR, b"admin reset"),)),
    ),
}


@pytest.mark.parametrize("name", sorted(DISCOVERY_FIXTURES))
def test_discovery_fixture_round_trip(name: str) -> None:
    frame = fixture(name)
    expected = DISCOVERY_FIXTURES[name]
    assert decode_discovery_frame(frame) == expected
    assert encode_discovery_frame(expected.dst, expected.src, expected.packet) == frame
    assert encode_discovery(expected.packet) == frame[14:]
    assert decode_discovery(frame, 14) == expected.packet


def test_ethernet_padding_is_ignored() -> None:
    frame = fixture("padi_padded")
    assert len(frame) == 60
    decoded = decode_discovery_frame(frame)
    assert decoded.packet.tags == (Tag(TagType.SERVICE_NAME, b""),)
    assert encode_discovery_frame(decoded.dst, decoded.src, decoded.packet) == frame[:24]


def test_tag_lookup_first_occurrence_and_all_values() -> None:
    pkt = DiscoveryPacket(
        PppoeCode.PADO,
        0,
        (Tag(TagType.SERVICE_NAME, b"a"), Tag(TagType.SERVICE_NAME, b"b")),
    )
    assert pkt.tag(TagType.SERVICE_NAME) == b"a"
    assert pkt.tag(TagType.AC_NAME) is None
    assert pkt.tag_values(TagType.SERVICE_NAME) == (b"a", b"b")


def test_tags_after_end_of_list_are_ignored() -> None:
    body = bytes.fromhex("010100000000000001020003") + b"xyz"
    buf = bytes((0x11, 0x09, 0, 0, 0, len(body))) + body
    assert decode_discovery(buf).tags == (Tag(TagType.SERVICE_NAME, b""),)


def test_ppp_max_payload_tag_is_kept() -> None:
    pkt = DiscoveryPacket(PppoeCode.PADI, 0, (Tag(TagType.PPP_MAX_PAYLOAD, b"\x05\xdc"),))
    assert decode_discovery(encode_discovery(pkt)).tag(TagType.PPP_MAX_PAYLOAD) == b"\x05\xdc"


@pytest.mark.parametrize(
    ("buf", "reason"),
    [
        (b"\x11\x09\x00", "truncated"),
        (b"\x21\x09\x00\x00\x00\x00", "bad_version"),
        (b"\x12\x09\x00\x00\x00\x00", "bad_type"),
        (b"\x11\x00\x00\x00\x00\x00", "bad_code"),
        (b"\x11\x42\x00\x00\x00\x00", "bad_code"),
        (b"\x11\x09\x00\x00\x00\x05\x01\x01", "length_overrun"),
        (b"\x11\x09\x00\x00\x00\x03\x01\x01\x00", "tag_overrun"),
        (b"\x11\x09\x00\x00\x00\x05\x01\x01\x00\x02\x41", "tag_overrun"),
    ],
)
def test_discovery_decode_errors(buf: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_discovery(buf)
    assert err.value.layer == "pppoe"
    assert err.value.reason == reason


def test_discovery_frame_with_wrong_ethertype() -> None:
    with pytest.raises(DecodeError) as err:
        decode_discovery_frame(fixture("lcp_conf_req"))
    assert err.value.reason == "bad_ethertype"


def test_session_fixture_round_trip() -> None:
    frame = fixture("lcp_conf_req")
    decoded = decode_session_frame(frame)
    assert decoded == PppFrame(
        CLIENT_MAC,
        AC_MAC,
        0x0010,
        PppProtocol.LCP,
        bytes.fromhex("01010013010405d40305c22305050611111111"),
    )
    rebuilt = encode_session_frame(
        decoded.dst, decoded.src, decoded.session_id, decoded.protocol, decoded.payload
    )
    assert rebuilt == frame


def test_session_frame_padding_ignored() -> None:
    frame = fixture("lcp_term_ack") + b"\x00" * 20
    assert decode_session_frame(frame).payload == bytes.fromhex("06090004")


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (bytes(12) + b"\x88\x64" + b"\x11\x00\x00\x01", "truncated"),
        (bytes(12) + b"\x88\x63" + b"\x11\x00\x00\x01\x00\x02\xc0\x21", "bad_ethertype"),
        (bytes(12) + b"\x88\x64" + b"\x11\x09\x00\x01\x00\x02\xc0\x21", "bad_code"),
        (bytes(12) + b"\x88\x64" + b"\x11\x00\x00\x01\x00\x01\xc0", "bad_length"),
        (bytes(12) + b"\x88\x64" + b"\x11\x00\x00\x01\x00\x09\xc0\x21", "length_overrun"),
        (bytes(12) + b"\x88\x64" + b"\x10\x00\x00\x01\x00\x02\xc0\x21", "bad_type"),
    ],
)
def test_session_decode_errors(frame: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_session_frame(frame)
    assert err.value.reason == reason


def test_header_length_constant() -> None:
    assert PPPOE_HLEN == 6
