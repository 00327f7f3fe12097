from __future__ import annotations

import hashlib

import pytest

from tests.helpers_ppp import fixture
from vnf.codec.ppp import (
    CHAP_MD5,
    ChapCode,
    ChapStatus,
    ChapValue,
    ControlCode,
    ControlPacket,
    IpcpOption,
    LcpOption,
    Option,
    PapCode,
    PapReply,
    PapRequest,
    PppProtocol,
    chap_md5,
    decode_chap,
    decode_control,
    decode_options,
    decode_pap,
    encode_chap,
    encode_control,
    encode_options,
    encode_pap,
)
from vnf.codec.pppoe import decode_session_frame
from vnf.errors import DecodeError


def ppp_of(name: str) -> tuple[int, bytes]:
    frame = decode_session_frame(fixture(name))
    return frame.protocol, frame.payload


LCP_REQUEST_OPTIONS = (
    Option(LcpOption.MRU, b"\x05\xd4"),
    Option(LcpOption.AUTH_PROTOCOL, b"\xc2\x23\x05"),
    Option(LcpOption.MAGIC_NUMBER, b"\x11\x11\x11\x11"),
)

CONTROL_FIXTURES: dict[str, tuple[int, ControlPacket]] = {
    "lcp_conf_req": (
        PppProtocol.LCP,
        ControlPacket(ControlCode.CONFIGURE_REQUEST, 1, encode_options(LCP_REQUEST_OPTIONS)),
    ),
    "lcp_conf_ack": (
        PppProtocol.LCP,
        ControlPacket(ControlCode.CONFIGURE_ACK, 1, encode_options(LCP_REQUEST_OPTIONS)),
    ),
    "lcp_conf_nak": (
        PppProtocol.LCP,
        ControlPacket(ControlCode.CONFIGURE_NAK, 7, b"\x01\x04\x05\xd4"),
    ),
    "lcp_conf_rej": (
        PppProtocol.LCP,
        ControlPacket(ControlCode.CONFIGURE_REJECT, 7, b"\x02\x06\x00\x00\x00\x00"),
    ),
    "lcp_term_req": (PppProtocol.LCP, ControlPacket(ControlCode.TERMINATE_REQUEST, 9, b"bye")),
    "lcp_term_ack": (PppProtocol.LCP, ControlPacket(ControlCode.TERMINATE_ACK, 9, b"")),
    "lcp_echo_req": (
        PppProtocol.LCP,
        ControlPacket(ControlCode.ECHO_REQUEST, 3, b"\x11\x11\x11\x11"),
    ),
    "lcp_echo_reply": (
        PppProtocol.LCP,
        ControlPacket(ControlCode.ECHO_REPLY, 3, b"\x22\x22\x22\x22"),
    ),
    "lcp_code_reject": (
        PppProtocol.LCP,
        ControlPacket(ControlCode.CODE_REJECT, 4, b"\x0c\x03\x00\x06xy"),
    ),
    "lcp_protocol_reject": (
        PppProtocol.LCP,
        ControlPacket(
            ControlCode.PROTOCOL_REJECT,
            5,
            b"\x80\x57" + bytes.fromhex("0101000a010a0000000000000001"),
        ),
    ),
    "ipcp_conf_req": (
        PppProtocol.IPCP,
        ControlPacket(
            ControlCode.CONFIGURE_REQUEST,
            1,
            encode_options(
                [
                    Option(IpcpOption.IP_ADDRESS, bytes(4)),
                    Option(IpcpOption.PRIMARY_DNS, bytes(4)),
                    Option(IpcpOption.SECONDARY_DNS, bytes(4)),
                ]
            ),
        ),
    ),
    "ipcp_conf_nak": (
        PppProtocol.IPCP,
        ControlPacket(
            ControlCode.CONFIGURE_NAK,
            1,
            encode_options(
                [
                    Option(IpcpOption.IP_ADDRESS, bytes((100, 64, 0, 23))),
                    Option(IpcpOption.PRIMARY_DNS, bytes((198, 18, 0, 53))),
                    Option(IpcpOption.SECONDARY_DNS, bytes((198, 18, 0, 54))),
                ]
            ),
        ),
    ),
}


@pytest.mark.parametrize("name", sorted(CONTROL_FIXTURES))
def test_control_fixture_round_trip(name: str) -> None:
    protocol, payload = ppp_of(name)
    expected_protocol, expected = CONTROL_FIXTURES[name]
    assert protocol == expected_protocol
    assert decode_control(payload) == expected
    assert encode_control(expected) == payload


def test_lcp_options_of_scapy_request() -> None:
    _, payload = ppp_of("lcp_conf_req")
    options = decode_options(decode_control(payload).data)
    assert options == LCP_REQUEST_OPTIONS
    assert encode_options(options) == decode_control(payload).data


def test_control_padding_outside_length_is_ignored() -> None:
    assert decode_control(b"\x06\x09\x00\x04PAD") == ControlPacket(6, 9, b"")


def test_unknown_control_codes_decode() -> None:
    assert decode_control(b"\x0c\x01\x00\x05z").code == 12


@pytest.mark.parametrize(
    ("buf", "reason"),
    [
        (b"\x01\x01\x00", "truncated"),
        (b"\x01\x01\x00\x03", "bad_length"),
        (b"\x01\x01\x00\x09abc", "length_overrun"),
    ],
)
def test_control_decode_errors(buf: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_control(buf, layer="lcp")
    assert (err.value.layer, err.value.reason) == ("lcp", reason)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x01", "option_overrun"),
        (b"\x01\x01", "bad_length"),
        (b"\x01\x04\x05", "option_overrun"),
        (b"\x05\x06\x00\x00\x00\x01\x01", "option_overrun"),
    ],
)
def test_option_decode_errors(data: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_options(data)
    assert err.value.reason == reason


PAP_FIXTURES: dict[str, PapRequest | PapReply] = {
    "pap_req": PapRequest(1, b"alice", b"wonderland"),
    "pap_ack": PapReply(PapCode.AUTHENTICATE_ACK, 1, b"welcome"),
    "pap_nak": PapReply(PapCode.AUTHENTICATE_NAK, 1, b"bad credentials"),
}


@pytest.mark.parametrize("name", sorted(PAP_FIXTURES))
def test_pap_fixture_round_trip(name: str) -> None:
    protocol, payload = ppp_of(name)
    assert protocol == PppProtocol.PAP
    assert decode_pap(payload) == PAP_FIXTURES[name]
    assert encode_pap(PAP_FIXTURES[name]) == payload


@pytest.mark.parametrize(
    ("buf", "reason"),
    [
        (b"\x01\x01\x00\x04", "truncated"),
        (b"\x01\x01\x00\x06\x05a", "length_overrun"),
        (b"\x01\x01\x00\x07\x01a\x03", "length_overrun"),
        (b"\x02\x01\x00\x06\x05a", "length_overrun"),
        (b"\x07\x01\x00\x04", "bad_code"),
    ],
)
def test_pap_decode_errors(buf: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_pap(buf)
    assert (err.value.layer, err.value.reason) == ("pap", reason)


def test_pap_reply_without_message_length_is_empty() -> None:
    assert decode_pap(b"\x02\x05\x00\x04") == PapReply(2, 5, b"")


CHALLENGE = bytes(range(16))
CHAP_FIXTURES: dict[str, ChapValue | ChapStatus] = {
    "chap_challenge": ChapValue(ChapCode.CHALLENGE, 0x2A, CHALLENGE, b"vnf"),
    "chap_response": ChapValue(
        ChapCode.RESPONSE, 0x2A, hashlib.md5(b"\x2awonderland" + CHALLENGE).digest(), b"alice"
    ),
    "chap_success": ChapStatus(ChapCode.SUCCESS, 0x2A, b"welcome"),
    "chap_failure": ChapStatus(ChapCode.FAILURE, 0x2A, b"bad credentials"),
}


@pytest.mark.parametrize("name", sorted(CHAP_FIXTURES))
def test_chap_fixture_round_trip(name: str) -> None:
    protocol, payload = ppp_of(name)
    assert protocol == PppProtocol.CHAP
    assert decode_chap(payload) == CHAP_FIXTURES[name]
    assert encode_chap(CHAP_FIXTURES[name]) == payload


def test_chap_md5_is_rfc1994_md5_of_id_secret_challenge() -> None:
    expected = bytes.fromhex("0bf175e539dde27bf75374f19ad0223f")  # computed in the fixture
    assert chap_md5(0x2A, b"wonderland", CHALLENGE) == expected
    assert chap_md5(0x2B, b"wonderland", CHALLENGE) != expected
    assert CHAP_MD5 == 5


@pytest.mark.parametrize(
    ("buf", "reason"),
    [
        (b"\x01\x01\x00\x04", "truncated"),
        (b"\x02\x01\x00\x06\x10a", "length_overrun"),
        (b"\x05\x01\x00\x04", "bad_code"),
    ],
)
def test_chap_decode_errors(buf: bytes, reason: str) -> None:
    with pytest.raises(DecodeError) as err:
        decode_chap(buf)
    assert (err.value.layer, err.value.reason) == ("chap", reason)


def test_wire_codes_match_rfcs() -> None:
    assert [c.value for c in ControlCode] == list(range(1, 12))
    assert PppProtocol.LCP == 0xC021 and PppProtocol.IPCP == 0x8021
    assert IpcpOption.PRIMARY_DNS == 129 and IpcpOption.SECONDARY_NBNS == 132
    assert LcpOption.ACFC == 8
