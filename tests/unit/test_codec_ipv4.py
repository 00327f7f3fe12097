from __future__ import annotations

import pytest

from tests.helpers_ppp import fixture
from vnf.codec.ipv4 import (
    IPPROTO_UDP,
    IPv4Header,
    UdpFlow,
    UdpHeader,
    build_udp_packet,
    decode_ipv4,
    decode_udp,
    encode_ipv4,
    encode_udp,
    internet_checksum,
    udp_checksum,
)
from vnf.codec.pppoe import decode_session_frame
from vnf.errors import DecodeError
from vnf.model.addresses import ip_to_int

SUB = ip_to_int("100.64.0.23")
SERVER = ip_to_int("198.18.0.10")


def test_internet_checksum_rfc1071_example() -> None:
    # RFC 1071 §3: words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d.
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0x220D


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0xFFFF),
        (b"\x00\x00", 0xFFFF),
        (b"\xff\xff", 0x0000),
        (b"\x12", 0xEDFF),
        (b"\xff\xff\xff\xff", 0x0000),
    ],
)
def test_internet_checksum_edges(data: bytes, expected: int) -> None:
    assert internet_checksum(data) == expected


def test_build_udp_packet_matches_scapy_byte_for_byte() -> None:
    expected = fixture("ipv4_udp")
    built = build_udp_packet(SUB, SERVER, 40000, 9, b"vnf-traffic-0001", ttl=64, ident=7)
    assert built == expected
    assert UdpFlow(SUB, SERVER, 40000, 9).build(b"vnf-traffic-0001", ident=7) == expected


def test_decode_ipv4_and_udp_of_scapy_packet() -> None:
    packet = fixture("ipv4_udp")
    header = decode_ipv4(packet)
    assert (header.src, header.dst, header.protocol, header.ttl, header.ident) == (
        SUB,
        SERVER,
        IPPROTO_UDP,
        64,
        7,
    )
    assert header.total_length == len(packet)
    assert encode_ipv4(header) == packet[:20]
    udp = decode_udp(packet, header.header_length)
    assert udp == UdpHeader(40000, 9, 8 + 16, 0)
    assert encode_udp(udp) == packet[20:28]


def test_udp_checksum_matches_scapy() -> None:
    packet = fixture("ipv4_udp_csum")
    header = decode_ipv4(packet)
    udp = decode_udp(packet, 20)
    zeroed = packet[20:26] + b"\x00\x00" + packet[28:]
    assert udp_checksum(header.src, header.dst, zeroed) == udp.checksum
    assert udp.checksum != 0


def test_session_frame_carries_scapy_ipv4() -> None:
    frame = decode_session_frame(fixture("session_ipv4"))
    assert frame.protocol == 0x0021
    assert frame.payload == fixture("ipv4_udp")


def test_build_udp_checksum_valid_for_many_inputs() -> None:
    for ident in (0, 1, 0x7FFF, 0xFFFF):
        for size in (0, 1, 18, 1400):
            packet = build_udp_packet(
                0xFFFFFFFF, 0xFFFFFFFE, 65535, 65535, b"\xff" * size, 255, ident
            )
            assert internet_checksum(packet[:20]) == 0
            assert decode_ipv4(packet).total_length == 28 + size


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda p: p[:19], "truncated"),
        (lambda p: b"\x65" + p[1:], "bad_version"),
        (lambda p: b"\x44" + p[1:], "bad_ihl"),
        (lambda p: p[:2] + b"\x00\x10" + p[4:], "bad_length"),
        (lambda p: p[:2] + b"\x01\x00" + p[4:], "length_overrun"),
        (lambda p: p[:8] + b"\x3f" + p[9:], "bad_checksum"),
    ],
)
def test_ipv4_decode_errors(mutate: object, reason: str) -> None:
    packet = fixture("ipv4_udp")
    with pytest.raises(DecodeError) as err:
        decode_ipv4(mutate(packet))  # type: ignore[operator]
    assert (err.value.layer, err.value.reason) == ("ipv4", reason)


def test_checksum_not_verified_on_request() -> None:
    packet = fixture("ipv4_udp")
    broken = packet[:8] + b"\x3f" + packet[9:]
    assert decode_ipv4(broken, verify_checksum=False).ttl == 0x3F


@pytest.mark.parametrize(
    ("buf", "reason"),
    [
        (b"\x00" * 7, "truncated"),
        (b"\x00\x01\x00\x02\x00\x07\x00\x00", "bad_length"),
        (b"\x00\x01\x00\x02\x00\x09\x00\x00", "length_overrun"),
    ],
)
def test_udp_decode_errors(buf: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_udp(buf)
    assert (err.value.layer, err.value.reason) == ("udp", reason)


def test_encode_ipv4_computes_checksum() -> None:
    header = IPv4Header(src=SUB, dst=SERVER, protocol=17, total_length=28, ttl=1, ident=9)
    assert internet_checksum(encode_ipv4(header)) == 0
