"""Codec properties: decoder totality (bytes -> value or DecodeError) and round trips."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vnf.codec.ethernet import decode_ethernet
from vnf.codec.ipv4 import (
    build_udp_packet,
    decode_ipv4,
    decode_udp,
    internet_checksum,
)
from vnf.codec.ppp import (
    ChapStatus,
    ChapValue,
    ControlPacket,
    Option,
    PapReply,
    PapRequest,
    decode_chap,
    decode_control,
    decode_options,
    decode_pap,
    encode_chap,
    encode_control,
    encode_options,
    encode_pap,
)
from vnf.codec.pppoe import (
    DiscoveryPacket,
    Tag,
    decode_discovery,
    decode_discovery_frame,
    decode_session_frame,
    encode_discovery,
    encode_discovery_frame,
    encode_session_frame,
)
from vnf.errors import DecodeError

pytestmark = pytest.mark.property

DECODERS: dict[str, Callable[[bytes], object]] = {
    "ethernet": decode_ethernet,
    "discovery": decode_discovery,
    "discovery_frame": decode_discovery_frame,
    "session_frame": decode_session_frame,
    "control": decode_control,
    "options": decode_options,
    "pap": decode_pap,
    "chap": decode_chap,
    "ipv4": decode_ipv4,
    "udp": decode_udp,
}

# Inputs that get past the first checks more often than uniform bytes would.
PREFIXES = [
    b"",
    b"\x11\x09\x00\x00",
    b"\x11\x00",
    b"\x01\x01\x00",
    b"\x02\x01\x00",
    b"\x45\x00\x00",
    bytes(12) + b"\x88\x63\x11",
    bytes(12) + b"\x88\x64\x11\x00",
]
inputs = st.builds(lambda p, b: p + b, st.sampled_from(PREFIXES), st.binary(max_size=80))


@pytest.mark.parametrize("name", sorted(DECODERS))
@settings(deadline=None, max_examples=300)
@given(data=inputs)
def test_decoder_totality(name: str, data: bytes) -> None:
    try:
        DECODERS[name](data)
    except DecodeError as exc:
        assert exc.reason and exc.reason == exc.reason.lower() and " " not in exc.reason
        assert 0 <= exc.offset <= max(len(data), 1) + 16


macs = st.binary(min_size=6, max_size=6)
tags = st.lists(st.builds(Tag, st.integers(1, 0xFFFF), st.binary(max_size=40)), max_size=6).map(
    tuple
)


@settings(deadline=None)
@given(code=st.sampled_from([0x07, 0x09, 0x19, 0x65, 0xA7]), sid=st.integers(0, 0xFFFF), tags=tags)
def test_discovery_round_trip(code: int, sid: int, tags: tuple[Tag, ...]) -> None:
    pkt = DiscoveryPacket(code, sid, tags)
    assert decode_discovery(encode_discovery(pkt)) == pkt


@settings(deadline=None)
@given(dst=macs, src=macs, tags=tags, padding=st.binary(max_size=30))
def test_discovery_frame_round_trip_ignores_padding(
    dst: bytes, src: bytes, tags: tuple[Tag, ...], padding: bytes
) -> None:
    pkt = DiscoveryPacket(0x09, 0, tags)
    frame = encode_discovery_frame(dst, src, pkt)
    decoded = decode_discovery_frame(frame + padding)
    assert (decoded.dst, decoded.src, decoded.packet) == (dst, src, pkt)


@settings(deadline=None)
@given(
    dst=macs,
    src=macs,
    sid=st.integers(0, 0xFFFF),
    protocol=st.integers(0, 0xFFFF),
    payload=st.binary(max_size=100),
    padding=st.binary(max_size=30),
)
def test_session_frame_round_trip(
    dst: bytes, src: bytes, sid: int, protocol: int, payload: bytes, padding: bytes
) -> None:
    frame = encode_session_frame(dst, src, sid, protocol, payload)
    decoded = decode_session_frame(frame + padding)
    assert (decoded.dst, decoded.src, decoded.session_id) == (dst, src, sid)
    assert (decoded.protocol, decoded.payload) == (protocol, payload)


@settings(deadline=None)
@given(code=st.integers(0, 255), ident=st.integers(0, 255), data=st.binary(max_size=100))
def test_control_round_trip(code: int, ident: int, data: bytes) -> None:
    pkt = ControlPacket(code, ident, data)
    assert decode_control(encode_control(pkt)) == pkt


@settings(deadline=None)
@given(st.lists(st.builds(Option, st.integers(0, 255), st.binary(max_size=20)), max_size=8))
def test_options_round_trip(options: list[Option]) -> None:
    assert decode_options(encode_options(options)) == tuple(options)


short = st.binary(max_size=255)


@settings(deadline=None)
@given(
    st.one_of(
        st.builds(PapRequest, st.integers(0, 255), short, short),
        st.builds(PapReply, st.sampled_from([2, 3]), st.integers(0, 255), short),
    )
)
def test_pap_round_trip(pkt: PapRequest | PapReply) -> None:
    assert decode_pap(encode_pap(pkt)) == pkt


@settings(deadline=None)
@given(
    st.one_of(
        st.builds(ChapValue, st.sampled_from([1, 2]), st.integers(0, 255), short, short),
        st.builds(ChapStatus, st.sampled_from([3, 4]), st.integers(0, 255), short),
    )
)
def test_chap_round_trip(pkt: ChapValue | ChapStatus) -> None:
    assert decode_chap(encode_chap(pkt)) == pkt


@settings(deadline=None)
@given(st.binary(max_size=200).map(lambda b: b + b"\x00" if len(b) % 2 else b))
def test_checksum_of_data_plus_checksum_is_zero(data: bytes) -> None:
    checksum = internet_checksum(data)
    assert 0 <= checksum <= 0xFFFF
    assert internet_checksum(data + checksum.to_bytes(2, "big")) == 0


def _reference_checksum(data: bytes) -> int:
    """RFC 1071 the slow way, word by word with end-around carry."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) | data[i + 1]
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_checksum_matches_reference(data: bytes) -> None:
    assert internet_checksum(data) == _reference_checksum(data)


@settings(deadline=None)
@given(
    src=st.integers(0, 2**32 - 1),
    dst=st.integers(0, 2**32 - 1),
    sport=st.integers(0, 65535),
    dport=st.integers(0, 65535),
    payload=st.binary(max_size=200),
    ttl=st.integers(0, 255),
    ident=st.integers(0, 65535),
)
def test_build_udp_packet_decodes(
    src: int, dst: int, sport: int, dport: int, payload: bytes, ttl: int, ident: int
) -> None:
    packet = build_udp_packet(src, dst, sport, dport, payload, ttl, ident)
    header = decode_ipv4(packet)
    assert (header.src, header.dst, header.ttl, header.ident) == (src, dst, ttl, ident)
    udp = decode_udp(packet, 20)
    assert (udp.sport, udp.dport, udp.length) == (sport, dport, 8 + len(payload))
    assert packet[28:] == payload
