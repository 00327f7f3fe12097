from __future__ import annotations

import pytest

from tests.helpers_ppp import AC_MAC, CLIENT_MAC, fixture
from vnf.codec.ethernet import (
    ETH_HLEN,
    EthernetHeader,
    EtherType,
    decode_ethernet,
    encode_ethernet,
    peek_ethertype,
)
from vnf.errors import DecodeError


def test_decode_header_of_scapy_frame() -> None:
    frame = fixture("padi")
    header = decode_ethernet(frame)
    assert header == EthernetHeader(b"\xff" * 6, CLIENT_MAC, EtherType.PPPOE_DISCOVERY)
    assert encode_ethernet(header.dst, header.src, header.ethertype) == frame[:ETH_HLEN]


def test_decode_at_offset_and_peek() -> None:
    frame = b"\x00" * 3 + encode_ethernet(AC_MAC, CLIENT_MAC, EtherType.PPPOE_SESSION)
    assert decode_ethernet(frame, 3).src == CLIENT_MAC
    assert peek_ethertype(frame[3:]) == EtherType.PPPOE_SESSION
    assert peek_ethertype(b"\x00" * 13) == -1


@pytest.mark.parametrize("length", [0, 1, 13])
def test_truncated(length: int) -> None:
    with pytest.raises(DecodeError) as err:
        decode_ethernet(b"\x00" * length)
    assert (err.value.layer, err.value.reason) == ("ethernet", "truncated")


def test_encode_rejects_bad_mac_length() -> None:
    with pytest.raises(ValueError):
        encode_ethernet(b"\x00" * 5, CLIENT_MAC, EtherType.IPV4)
