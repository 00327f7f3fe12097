"""ARP codec (RFC 826, Ethernet/IPv4): byte-exact against scapy, errors by reason."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.l2 import ARP, Ether

from vnf.codec.arp import (
    ARP_LEN,
    ArpOp,
    ArpPacket,
    decode_arp,
    encode_arp,
    encode_arp_frame,
    reply_to,
    request,
)
from vnf.errors import DecodeError
from vnf.model.addresses import ip_to_int

MAC_A = bytes.fromhex("02000000000a")
MAC_B = bytes.fromhex("02000000000b")
IP_A = "198.18.0.1"
IP_B = "198.18.0.2"


def test_decodes_a_scapy_request() -> None:
    wire = bytes(ARP(op=1, hwsrc="02:00:00:00:00:0a", psrc=IP_A, pdst=IP_B))
    assert decode_arp(wire) == ArpPacket(
        ArpOp.REQUEST, MAC_A, ip_to_int(IP_A), b"\x00" * 6, ip_to_int(IP_B)
    )


def test_decodes_at_an_offset_and_ignores_padding() -> None:
    frame = bytes(Ether() / ARP(op=2, hwsrc="02:00:00:00:00:0b", psrc=IP_B)) + b"\x00" * 18
    pkt = decode_arp(frame, 14)
    assert pkt.op is ArpOp.REPLY and pkt.sender_mac == MAC_B


def test_encodes_what_scapy_builds() -> None:
    pkt = ArpPacket(ArpOp.REPLY, MAC_B, ip_to_int(IP_B), MAC_A, ip_to_int(IP_A))
    expected = ARP(op=2, hwsrc="02:00:00:00:00:0b", psrc=IP_B, hwdst="02:00:00:00:00:0a", pdst=IP_A)
    assert encode_arp(pkt) == bytes(expected)
    assert len(encode_arp(pkt)) == ARP_LEN


def test_frame_is_dissected_by_scapy() -> None:
    frame = encode_arp_frame(b"\xff" * 6, MAC_A, request(MAC_A, ip_to_int(IP_A), ip_to_int(IP_B)))
    parsed = Ether(frame)
    assert parsed.type == 0x0806 and parsed.dst == "ff:ff:ff:ff:ff:ff"
    assert (parsed[ARP].op, parsed[ARP].psrc, parsed[ARP].pdst) == (1, IP_A, IP_B)
    assert parsed[ARP].hwdst == "00:00:00:00:00:00"


def test_reply_swaps_the_fields() -> None:
    req = request(MAC_A, ip_to_int(IP_A), ip_to_int(IP_B))
    assert reply_to(req, MAC_B) == ArpPacket(
        ArpOp.REPLY, MAC_B, ip_to_int(IP_B), MAC_A, ip_to_int(IP_A)
    )
    assert request(MAC_A, 5, 5).is_gratuitous


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (bytes(ARP())[:27], "truncated"),
        (b"\x00\x06" + bytes(ARP())[2:], "bad_hardware_type"),
        (bytes(ARP())[:2] + b"\x86\xdd" + bytes(ARP())[4:], "bad_protocol_type"),
        (bytes(ARP())[:4] + b"\x08\x04" + bytes(ARP())[6:], "bad_address_length"),
        (bytes(ARP())[:6] + b"\x00\x03" + bytes(ARP())[8:], "bad_opcode"),
    ],
)
def test_errors_name_their_reason(wire: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_arp(wire)
    assert err.value.layer == "arp" and err.value.reason == reason


def test_encode_rejects_bad_macs() -> None:
    with pytest.raises(ValueError, match="6 bytes"):
        encode_arp(ArpPacket(ArpOp.REQUEST, b"\x02", 0, MAC_A, 0))


@pytest.mark.property
@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40), st.integers(min_value=0, max_value=40))
def test_decoder_totality(data: bytes, offset: int) -> None:
    try:
        pkt = decode_arp(data, offset)
    except DecodeError:
        return
    assert encode_arp(pkt) == data[offset : offset + ARP_LEN]
