"""DHCPv4 codec: round trips, byte-exact agreement with scapy (tests only), every DecodeError
reason, the IPv4/UDP wrapping and the data plane's punt test."""

from __future__ import annotations

import dataclasses
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp import BOOTP, DHCP
from scapy.layers.inet import ICMP, IP, TCP, UDP
from scapy.packet import Packet

from vnf.codec.dhcp import (
    BOOTP_MIN_LEN,
    BOOTREPLY,
    BOOTREQUEST,
    CLIENT_PORT,
    FLAG_BROADCAST,
    MAGIC_COOKIE,
    SERVER_PORT,
    DhcpMessage,
    MessageType,
    decode_dhcp,
    decode_dhcp_udp,
    encode_dhcp,
    encode_dhcp_udp,
    is_dhcp_to_server,
)
from vnf.codec.ipv4 import build_udp_packet
from vnf.errors import DecodeError
from vnf.model.addresses import int_to_ip, ip_to_int

CLIENT_MAC = bytes.fromhex("020000000001")
SERVER = ip_to_int("100.64.0.1")
GATEWAY = ip_to_int("100.64.0.1")
YIADDR = ip_to_int("100.64.0.10")
RELAY = ip_to_int("198.18.0.1")
DNS2 = ip_to_int("198.18.0.53")
MASK = ip_to_int("255.192.0.0")
CLIENT_ID = b"\x01" + CLIENT_MAC
PARAMS = bytes((1, 3, 6, 51, 54))
# RFC 3046 §2.0 sub-options: Agent Circuit ID "cm01", Agent Remote ID (a MAC).
RELAY_INFO = b"\x01\x04cm01\x02\x06" + CLIENT_MAC
XID = 0x3903F326


def pad300(data: bytes) -> bytes:
    return data + bytes(max(0, BOOTP_MIN_LEN - len(data)))


# --- the five exchanges of RFC 2131 §3.1, built with scapy and with our dataclass ------------

# Options are listed in the encoder's order so that the bytes agree exactly.
CASES: dict[str, tuple[Packet, DhcpMessage]] = {
    "discover": (
        BOOTP(op=1, xid=XID, secs=3, flags=FLAG_BROADCAST, chaddr=CLIENT_MAC)
        / DHCP(
            options=[
                ("message-type", "discover"),
                ("requested_addr", "100.64.0.10"),
                ("param_req_list", list(PARAMS)),
                ("client_id", CLIENT_ID),
                ("hostname", b"cpe-1"),
                "end",
            ]
        ),
        DhcpMessage(
            BOOTREQUEST,
            XID,
            CLIENT_MAC,
            MessageType.DISCOVER,
            secs=3,
            flags=FLAG_BROADCAST,
            requested_ip=YIADDR,
            parameter_list=PARAMS,
            client_id=CLIENT_ID,
            other=((12, b"cpe-1"),),
        ),
    ),
    "offer": (
        BOOTP(
            op=2,
            xid=XID,
            hops=1,
            yiaddr="100.64.0.10",
            siaddr="100.64.0.1",
            giaddr="198.18.0.1",
            chaddr=CLIENT_MAC,
        )
        / DHCP(
            options=[
                ("message-type", "offer"),
                ("subnet_mask", "255.192.0.0"),
                ("router", "100.64.0.1"),
                ("name_server", "100.64.0.1", "198.18.0.53"),
                ("lease_time", 3600),
                ("server_id", "100.64.0.1"),
                ("renewal_time", 1800),
                ("rebinding_time", 3150),
                ("relay_agent_information", RELAY_INFO),
                "end",
            ]
        ),
        DhcpMessage(
            BOOTREPLY,
            XID,
            CLIENT_MAC,
            MessageType.OFFER,
            hops=1,
            yiaddr=YIADDR,
            siaddr=SERVER,
            giaddr=RELAY,
            subnet_mask=MASK,
            routers=(GATEWAY,),
            dns=(SERVER, DNS2),
            lease_time=3600,
            server_id=SERVER,
            renewal_time=1800,
            rebinding_time=3150,
            relay_agent=RELAY_INFO,
        ),
    ),
    "request": (
        BOOTP(op=1, xid=XID, secs=4, hops=1, giaddr="198.18.0.1", chaddr=CLIENT_MAC)
        / DHCP(
            options=[
                ("message-type", "request"),
                ("requested_addr", "100.64.0.10"),
                ("server_id", "100.64.0.1"),
                ("param_req_list", list(PARAMS)),
                ("client_id", CLIENT_ID),
                ("relay_agent_information", RELAY_INFO),
                "end",
            ]
        ),
        DhcpMessage(
            BOOTREQUEST,
            XID,
            CLIENT_MAC,
            MessageType.REQUEST,
            secs=4,
            hops=1,
            giaddr=RELAY,
            requested_ip=YIADDR,
            server_id=SERVER,
            parameter_list=PARAMS,
            client_id=CLIENT_ID,
            relay_agent=RELAY_INFO,
        ),
    ),
    "ack": (
        BOOTP(op=2, xid=XID, flags=FLAG_BROADCAST, yiaddr="100.64.0.10", chaddr=CLIENT_MAC)
        / DHCP(
            options=[
                ("message-type", "ack"),
                ("subnet_mask", "255.192.0.0"),
                ("router", "100.64.0.1"),
                ("name_server", "198.18.0.53"),
                ("lease_time", 86400),
                ("server_id", "100.64.0.1"),
                "end",
            ]
        ),
        DhcpMessage(
            BOOTREPLY,
            XID,
            CLIENT_MAC,
            MessageType.ACK,
            flags=FLAG_BROADCAST,
            yiaddr=YIADDR,
            subnet_mask=MASK,
            routers=(GATEWAY,),
            dns=(DNS2,),
            lease_time=86400,
            server_id=SERVER,
        ),
    ),
    "nak": (
        BOOTP(op=2, xid=XID, chaddr=CLIENT_MAC)
        / DHCP(
            options=[
                ("message-type", "nak"),
                ("server_id", "100.64.0.1"),
                ("error_message", b"requested address not available"),
                "end",
            ]
        ),
        DhcpMessage(
            BOOTREPLY,
            XID,
            CLIENT_MAC,
            MessageType.NAK,
            server_id=SERVER,
            message="requested address not available",
        ),
    ),
}


def scapy_options(pkt: Packet) -> dict[str, object]:
    """scapy's DHCP options as ``name -> value`` (a tuple when the option has several)."""
    out: dict[str, object] = {}
    for item in pkt[DHCP].options:
        if isinstance(item, tuple):
            out[item[0]] = item[1] if len(item) == 2 else tuple(item[1:])
    return out


def expected_scapy_options(msg: DhcpMessage) -> dict[str, object]:
    """What scapy should read from ``encode_dhcp(msg)``."""
    out: dict[str, object] = {"message-type": int(msg.message_type)}
    for name, value in (
        ("subnet_mask", msg.subnet_mask),
        ("requested_addr", msg.requested_ip),
        ("server_id", msg.server_id),
    ):
        if value:
            out[name] = str(int_to_ip(value))
    for name, addresses in (("router", msg.routers), ("name_server", msg.dns)):
        if len(addresses) == 1:
            out[name] = str(int_to_ip(addresses[0]))
        elif addresses:
            out[name] = tuple(str(int_to_ip(a)) for a in addresses)
    for name, seconds in (
        ("lease_time", msg.lease_time),
        ("renewal_time", msg.renewal_time),
        ("rebinding_time", msg.rebinding_time),
    ):
        if seconds:
            out[name] = seconds
    if msg.parameter_list:
        out["param_req_list"] = list(msg.parameter_list)
    if msg.message:
        out["error_message"] = msg.message.encode()
    if msg.client_id:
        out["client_id"] = msg.client_id
    if msg.relay_agent:
        out["relay_agent_information"] = msg.relay_agent
    if msg.other:
        out["hostname"] = dict(msg.other)[12]
    return out


def check_scapy_bootp(pkt: Packet, msg: DhcpMessage) -> None:
    bootp = pkt[BOOTP]
    assert (bootp.op, bootp.htype, bootp.hlen, bootp.hops) == (msg.op, 1, 6, msg.hops)
    assert (bootp.xid, bootp.secs, int(bootp.flags)) == (msg.xid, msg.secs, msg.flags)
    assert bootp.chaddr == msg.chaddr + bytes(10)
    for field in ("ciaddr", "yiaddr", "siaddr", "giaddr"):
        assert getattr(bootp, field) == str(int_to_ip(getattr(msg, field))), field
    assert bootp.options == struct.pack("!I", MAGIC_COOKIE)
    assert scapy_options(pkt) == expected_scapy_options(msg)


@pytest.mark.parametrize("name", CASES)
def test_decode_reads_every_field_of_scapy_message(name: str) -> None:
    pkt, expected = CASES[name]
    assert decode_dhcp(bytes(pkt)) == expected


@pytest.mark.parametrize("name", CASES)
def test_encode_is_byte_exact_with_scapy(name: str) -> None:
    pkt, msg = CASES[name]
    # scapy does not pad to 300 bytes; we do, with zeros after END (the offer needs none).
    assert encode_dhcp(msg) == pad300(bytes(pkt))


@pytest.mark.parametrize("name", CASES)
def test_scapy_dissects_encode_dhcp(name: str) -> None:
    _, msg = CASES[name]
    check_scapy_bootp(BOOTP(encode_dhcp(msg)), msg)


@pytest.mark.parametrize("name", CASES)
def test_scapy_dissects_encode_dhcp_udp(name: str) -> None:
    _, msg = CASES[name]
    src, dst = (RELAY, SERVER) if msg.op == BOOTREQUEST else (SERVER, RELAY)
    packet = encode_dhcp_udp(msg, src, dst)
    pkt = IP(packet)
    assert (pkt.src, pkt.dst) == (str(int_to_ip(src)), str(int_to_ip(dst)))
    assert (pkt.ttl, int(pkt.flags), pkt.frag, pkt.proto, pkt.len) == (64, 0, 0, 17, len(packet))
    ports = (CLIENT_PORT, SERVER_PORT) if msg.op == BOOTREQUEST else (SERVER_PORT, CLIENT_PORT)
    assert (pkt[UDP].sport, pkt[UDP].dport) == ports
    assert pkt[UDP].len == len(packet) - 20
    # scapy recomputes both checksums when they are deleted: ours must be the same.
    rebuilt = IP(packet)
    del rebuilt.chksum
    del rebuilt[UDP].chksum
    assert bytes(rebuilt) == packet
    assert pkt[UDP].chksum != 0
    check_scapy_bootp(pkt, msg)
    assert decode_dhcp_udp(packet) == (src, dst, msg)


# --- round trips, size, order -----------------------------------------------------------------

FULL = DhcpMessage(
    BOOTREPLY,
    0xFFFFFFFF,
    CLIENT_MAC,
    MessageType.ACK,
    secs=0xFFFF,
    flags=FLAG_BROADCAST,
    ciaddr=ip_to_int("100.64.0.11"),
    yiaddr=YIADDR,
    siaddr=SERVER,
    giaddr=RELAY,
    hops=255,
    requested_ip=YIADDR,
    server_id=SERVER,
    lease_time=0xFFFFFFFF,
    renewal_time=1800,
    rebinding_time=3150,
    subnet_mask=MASK,
    routers=(GATEWAY, RELAY),
    dns=(SERVER, DNS2),
    client_id=CLIENT_ID,
    parameter_list=PARAMS,
    message="bonjour, café",
    relay_agent=RELAY_INFO,
    other=((12, b"cpe-1"), (60, b"docsis3.1"), (43, b"")),
)


@pytest.mark.parametrize("message_type", list(MessageType))
def test_round_trip_each_message_type(message_type: MessageType) -> None:
    op = BOOTREQUEST if message_type in (1, 3, 4, 7, 8) else BOOTREPLY
    for msg in (
        DhcpMessage(op, 7, CLIENT_MAC, message_type),
        dataclasses.replace(FULL, op=op, message_type=message_type),
    ):
        data = encode_dhcp(msg)
        assert decode_dhcp(data) == msg
        assert encode_dhcp(decode_dhcp(data)) == data


def test_bootp_minimum_is_300_bytes() -> None:
    small = encode_dhcp(DhcpMessage(BOOTREQUEST, 1, CLIENT_MAC, MessageType.DISCOVER))
    assert len(small) == BOOTP_MIN_LEN
    assert small[240:244] == b"\x35\x01\x01\xff" and small[244:] == bytes(56)
    big = encode_dhcp(dataclasses.replace(FULL, other=((12, b"h" * 100),)))
    assert len(big) > BOOTP_MIN_LEN and big[-1] == 0xFF  # no padding after END when over 300


def option_codes(data: bytes) -> list[int]:
    codes, pos = [], 240
    while True:
        codes.append(data[pos])
        if data[pos] == 255:
            return codes
        pos += 2 + data[pos + 1]


def test_option_order() -> None:
    expected = [53, 1, 3, 6, 50, 51, 54, 58, 59, 55, 56, 61, 82, 12, 60, 43, 255]
    assert option_codes(encode_dhcp(FULL)) == expected


def test_fixed_fields_are_where_rfc_2131_puts_them() -> None:
    data = encode_dhcp(FULL)
    assert data[:4] == bytes((2, 1, 6, 255))
    assert data[4:8] == b"\xff\xff\xff\xff" and data[8:10] == b"\xff\xff"
    assert data[10:12] == b"\x80\x00"
    assert data[16:20] == bytes((100, 64, 0, 10)) and data[24:28] == bytes((198, 18, 0, 1))
    assert data[28:44] == CLIENT_MAC + bytes(10)
    assert data[44:236] == bytes(192)  # sname and file
    assert data[236:240] == bytes((99, 130, 83, 99))


def test_long_options_are_split_and_joined_rfc_3396() -> None:
    routers = tuple(ip_to_int("100.64.1.0") + i for i in range(70))  # 280 bytes
    msg = dataclasses.replace(FULL, routers=routers, other=((43, bytes(range(256)) * 2),))
    data = encode_dhcp(msg)
    codes = option_codes(data)
    assert codes.count(3) == 2 and codes.count(43) == 3
    assert decode_dhcp(data) == msg


# --- decoding details ---------------------------------------------------------------------------


def raw(
    options: bytes, *, op: int = 2, htype: int = 1, hlen: int = 6, cookie: int = MAGIC_COOKIE
) -> bytes:
    """A message built by hand: the fixed part, the cookie and ``options`` as given."""
    fixed = struct.pack(
        "!BBBBIHHIIII16s192xI", op, htype, hlen, 0, XID, 0, 0, 0, 0, 0, 0, CLIENT_MAC, cookie
    )
    return fixed + options


ACK_TYPE = b"\x35\x01\x05"


def test_pad_skipped_end_optional_and_bytes_after_end_ignored() -> None:
    lease = b"\x33\x04\x00\x00\x0e\x10"
    expected = DhcpMessage(BOOTREPLY, XID, CLIENT_MAC, MessageType.ACK, lease_time=3600)
    assert decode_dhcp(raw(b"\x00\x00" + ACK_TYPE + b"\x00" + lease + b"\xff")) == expected
    assert decode_dhcp(raw(ACK_TYPE + lease)) == expected  # no END
    assert decode_dhcp(raw(ACK_TYPE + lease + b"\xff\x01\x09garbage")) == expected


def test_repeated_options_are_concatenated() -> None:
    routers = b"\x03\x04" + bytes((100, 64, 0, 1)) + b"\x03\x04" + bytes((100, 64, 0, 2))
    other = b"\x0c\x02cp\x3c\x01x\x0c\x03e-1"
    msg = decode_dhcp(raw(ACK_TYPE + routers + other + b"\xff"))
    assert msg.routers == (ip_to_int("100.64.0.1"), ip_to_int("100.64.0.2"))
    assert msg.other == ((12, b"cpe-1"), (60, b"x"))


def test_option_overload_is_kept_but_sname_and_file_are_not_read() -> None:
    data = bytearray(raw(ACK_TYPE + b"\x34\x01\x03\xff"))
    data[44:48] = b"\x33\x04\x00\x00"  # an "option" in sname
    msg = decode_dhcp(bytes(data))
    assert msg.other == ((52, b"\x03"),) and msg.lease_time == 0


def test_decode_at_an_offset_reports_absolute_offsets() -> None:
    data = encode_dhcp(FULL)
    assert decode_dhcp(b"\xaa" * 14 + data, 14) == FULL
    bad = bytearray(b"\xaa" * 14 + data)
    bad[14 + 236] ^= 1
    with pytest.raises(DecodeError) as info:
        decode_dhcp(bytes(bad), 14)
    assert (info.value.reason, info.value.offset) == ("bad_cookie", 14 + 236)


@pytest.mark.parametrize(
    ("data", "reason", "offset"),
    [
        pytest.param(raw(ACK_TYPE)[:239], "truncated", 0, id="short-fixed-part"),
        pytest.param(b"", "truncated", 0, id="empty"),
        pytest.param(raw(ACK_TYPE + b"\x33\x04\x00\x00"), "truncated", 244, id="option-overrun"),
        pytest.param(raw(ACK_TYPE + b"\x33"), "truncated", 243, id="option-without-length"),
        pytest.param(raw(ACK_TYPE + b"\xff", cookie=0x63825364), "bad_cookie", 236, id="cookie"),
        pytest.param(raw(ACK_TYPE + b"\xff", htype=6), "bad_htype", 1, id="htype"),
        pytest.param(raw(ACK_TYPE + b"\xff", hlen=16), "bad_htype", 1, id="hlen"),
        pytest.param(raw(ACK_TYPE + b"\xff", op=0), "bad_op", 0, id="op-0"),
        pytest.param(raw(ACK_TYPE + b"\xff", op=3), "bad_op", 0, id="op-3"),
        pytest.param(raw(b"\xff"), "missing_message_type", 240, id="no-options"),
        pytest.param(raw(b"\x33\x04\x00\x00\x0e\x10"), "missing_message_type", 240, id="no-53"),
        pytest.param(raw(b"\x35\x02\x05\x00\xff"), "bad_option", 240, id="53-length"),
        pytest.param(raw(b"\x35\x01\x09\xff"), "bad_option", 242, id="53-unknown"),
        pytest.param(raw(b"\x35\x01\x00\xff"), "bad_option", 242, id="53-zero"),
        pytest.param(raw(ACK_TYPE + ACK_TYPE + b"\xff"), "bad_option", 240, id="53-twice"),
        pytest.param(raw(ACK_TYPE + b"\x32\x03\x64\x40\x00\xff"), "bad_option", 243, id="50-3"),
        pytest.param(raw(ACK_TYPE + b"\x36\x00\xff"), "bad_option", 243, id="54-empty"),
        pytest.param(raw(ACK_TYPE + b"\x01\x05" + bytes(5)), "bad_option", 243, id="1-5"),
        pytest.param(raw(ACK_TYPE + b"\x03\x06" + bytes(6)), "bad_option", 243, id="3-6"),
        pytest.param(raw(ACK_TYPE + b"\x06\x00\xff"), "bad_option", 243, id="6-empty"),
        pytest.param(raw(ACK_TYPE + b"\x3d\x01\x01\xff"), "bad_option", 243, id="61-1"),
        pytest.param(raw(ACK_TYPE + b"\x37\x00\xff"), "bad_option", 243, id="55-empty"),
        pytest.param(raw(ACK_TYPE + b"\x38\x00\xff"), "bad_option", 243, id="56-empty"),
        pytest.param(raw(ACK_TYPE + b"\x52\x00\xff"), "bad_option", 243, id="82-empty"),
        pytest.param(
            raw(ACK_TYPE + b"\x33\x04\x00\x00\x0e\x10" * 2), "bad_option", 243, id="51-twice"
        ),
    ],
)
def test_decode_error_reasons(data: bytes, reason: str, offset: int) -> None:
    with pytest.raises(DecodeError) as info:
        decode_dhcp(data)
    assert (info.value.layer, info.value.reason, info.value.offset) == ("dhcp", reason, offset)


def test_every_truncation_of_an_ack_raises_only_decode_error() -> None:
    data = encode_dhcp(FULL)
    end = data.rindex(b"\xff")  # the END option; zeros after it are padding
    for n in range(len(data)):
        try:
            msg = decode_dhcp(data[:n])
        except DecodeError as exc:
            expected = "missing_message_type" if n == 240 else "truncated"
            assert (exc.layer, exc.reason) == ("dhcp", expected)
        else:
            assert n >= 243  # cut between options: what is left decodes, END is optional
            if n > end:
                assert msg == FULL


@pytest.mark.parametrize(
    ("msg", "match"),
    [
        (dataclasses.replace(FULL, chaddr=CLIENT_MAC[:5]), "chaddr"),
        (dataclasses.replace(FULL, chaddr=CLIENT_MAC + bytes(10)), "chaddr"),
        (dataclasses.replace(FULL, op=3), "op"),
        (dataclasses.replace(FULL, xid=1 << 32), "out of range"),
        (dataclasses.replace(FULL, secs=-1), "out of range"),
        (dataclasses.replace(FULL, lease_time=1 << 32), "out of range"),
        (dataclasses.replace(FULL, routers=(-1,)), "out of range"),
        (dataclasses.replace(FULL, message_type=9), "message type"),  # type: ignore[arg-type]
        (dataclasses.replace(FULL, client_id=b"\x01"), "client identifier"),
        (dataclasses.replace(FULL, message="\u2603"), "latin-1"),
        (dataclasses.replace(FULL, other=((0, b"x"),)), "other"),
        (dataclasses.replace(FULL, other=((255, b"x"),)), "other"),
        (dataclasses.replace(FULL, other=((53, b"\x05"),)), "other"),
        (dataclasses.replace(FULL, other=((12, b"a"), (12, b"b"))), "twice"),
    ],
)
def test_encode_rejects_values_without_an_encoding(msg: DhcpMessage, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        encode_dhcp(msg)


# --- in IPv4/UDP ---------------------------------------------------------------------------------

DISCOVER = CASES["discover"][1]
BROADCAST = ip_to_int("255.255.255.255")


def test_udp_round_trip_and_ports() -> None:
    request = encode_dhcp_udp(DISCOVER, 0, BROADCAST)
    assert request[20:24] == struct.pack("!HH", 68, 67)
    assert decode_dhcp_udp(request) == (0, BROADCAST, DISCOVER)
    reply = encode_dhcp_udp(FULL, SERVER, RELAY)
    assert reply[20:24] == struct.pack("!HH", 67, 68)
    assert decode_dhcp_udp(reply + b"\x00" * 6) == (SERVER, RELAY, FULL)  # link padding


def test_udp_checksum_zero_is_accepted() -> None:
    packet = build_udp_packet(RELAY, SERVER, 67, 67, encode_dhcp(DISCOVER))
    assert packet[26:28] == b"\x00\x00"
    assert decode_dhcp_udp(packet) == (RELAY, SERVER, DISCOVER)


def test_encode_dhcp_udp_rejects_bad_addresses() -> None:
    with pytest.raises(ValueError, match="src_ip"):
        encode_dhcp_udp(DISCOVER, -1, SERVER)
    with pytest.raises(ValueError, match="dst_ip"):
        encode_dhcp_udp(DISCOVER, 0, 1 << 32)


def flip(data: bytes, index: int) -> bytes:
    return data[:index] + bytes((data[index] ^ 0x01,)) + data[index + 1 :]


def udp_with_checksum(dport: int, payload: bytes) -> bytes:
    return bytes(IP(src="198.18.0.1", dst="100.64.0.1") / UDP(sport=68, dport=dport) / payload)


VALID = encode_dhcp_udp(DISCOVER, RELAY, SERVER)


@pytest.mark.parametrize(
    ("packet", "layer", "reason"),
    [
        pytest.param(VALID[:19], "ipv4", "truncated", id="ipv4-short"),
        pytest.param(flip(VALID, 10), "ipv4", "bad_checksum", id="ipv4-checksum"),
        pytest.param(VALID[:-1], "ipv4", "length_overrun", id="ipv4-total-length"),
        pytest.param(
            bytes(IP(src="198.18.0.1", dst="100.64.0.1", flags="MF") / UDP(dport=67) / b"x"),
            "ipv4",
            "fragmented",
            id="fragment",
        ),
        pytest.param(
            bytes(IP(src="198.18.0.1", dst="100.64.0.1") / ICMP()), "ipv4", "not_udp", id="icmp"
        ),
        pytest.param(
            bytes(IP(src="198.18.0.1", dst="100.64.0.1") / TCP(dport=67)),
            "ipv4",
            "not_udp",
            id="tcp",
        ),
        pytest.param(udp_with_checksum(53, encode_dhcp(DISCOVER)), "udp", "not_dhcp", id="dns"),
        pytest.param(flip(VALID, 27), "udp", "bad_checksum", id="udp-checksum"),
        pytest.param(flip(VALID, 300), "udp", "bad_checksum", id="payload-bit"),
        pytest.param(
            bytes(IP(src="198.18.0.1", dst="100.64.0.1") / UDP(dport=67, len=7)),
            "udp",
            "bad_length",
            id="udp-length",
        ),
        pytest.param(
            udp_with_checksum(67, raw(ACK_TYPE, cookie=1)), "dhcp", "bad_cookie", id="cookie"
        ),
        pytest.param(udp_with_checksum(68, b"\x01" * 100), "dhcp", "truncated", id="short"),
    ],
)
def test_decode_dhcp_udp_errors(packet: bytes, layer: str, reason: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode_dhcp_udp(packet)
    assert (info.value.layer, info.value.reason) == (layer, reason)


def test_decode_dhcp_udp_offsets_count_from_the_packet() -> None:
    with pytest.raises(DecodeError) as info:
        decode_dhcp_udp(udp_with_checksum(67, raw(ACK_TYPE, cookie=1)))
    assert info.value.offset == 20 + 8 + 236


def test_is_dhcp_to_server() -> None:
    frame = b"\x00" * 14 + VALID
    assert is_dhcp_to_server(VALID)
    assert is_dhcp_to_server(frame, 14)
    assert is_dhcp_to_server(memoryview(frame), 14)
    assert is_dhcp_to_server(flip(VALID, 10))  # no checksum verification: a cheap test
    assert not is_dhcp_to_server(encode_dhcp_udp(FULL, SERVER, RELAY))  # to port 68
    assert not is_dhcp_to_server(udp_with_checksum(53, b"x"))
    assert not is_dhcp_to_server(bytes(IP(src="198.18.0.1", dst="100.64.0.1") / TCP(dport=67)))
    fragment = IP(src="198.18.0.1", dst="100.64.0.1", frag=3) / UDP(dport=67)
    assert not is_dhcp_to_server(bytes(fragment))
    assert not is_dhcp_to_server(b"\x60" + VALID[1:])  # version 6
    assert not is_dhcp_to_server(b"\x44" + VALID[1:])  # IHL 4
    assert not is_dhcp_to_server(VALID, -1)
    assert not is_dhcp_to_server(VALID, len(VALID) + 5)


def test_is_dhcp_to_server_never_raises_on_short_input() -> None:
    with_options = b"\x4f" + VALID[1:]  # IHL 15: the UDP header would be at byte 60
    for n in range(24):
        assert not is_dhcp_to_server(VALID[:n])
        assert not is_dhcp_to_server(memoryview(VALID)[:n])
    assert is_dhcp_to_server(VALID[:24])
    for n in range(64):
        assert not is_dhcp_to_server(with_options[:n])


# --- properties ------------------------------------------------------------------------------


def check_total(data: bytes) -> None:
    try:
        msg = decode_dhcp(data)
    except DecodeError as exc:
        assert exc.layer == "dhcp"
        assert exc.reason == exc.reason.lower() and " " not in exc.reason
        assert 0 <= exc.offset <= len(data)
    else:
        assert decode_dhcp(encode_dhcp(msg)) == msg


@pytest.mark.property
@settings(deadline=None, max_examples=300)
@given(
    st.one_of(
        st.binary(max_size=400),
        st.binary(max_size=160).map(lambda b: raw(b)),
        st.binary(max_size=160).map(lambda b: raw(ACK_TYPE + b)),
    )
)
def test_decoder_totality_random_bytes(data: bytes) -> None:
    check_total(data)


ENCODED_FULL = encode_dhcp(FULL)


@pytest.mark.property
@settings(deadline=None, max_examples=300)
@given(
    st.lists(
        st.tuples(st.integers(0, len(ENCODED_FULL) - 1), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    ),
    st.integers(0, len(ENCODED_FULL)),
)
def test_decoder_totality_corrupted_message(edits: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(ENCODED_FULL)
    for index, value in edits:
        data[index] = value
    check_total(bytes(data))
    check_total(bytes(data[:cut]))


u32 = st.integers(0, 0xFFFFFFFF)
known = {1, 3, 6, 50, 51, 53, 54, 55, 56, 58, 59, 61, 82}
messages = st.builds(
    DhcpMessage,
    op=st.sampled_from((BOOTREQUEST, BOOTREPLY)),
    xid=u32,
    chaddr=st.binary(min_size=6, max_size=6),
    message_type=st.sampled_from(list(MessageType)),
    secs=st.integers(0, 0xFFFF),
    flags=st.integers(0, 0xFFFF),
    ciaddr=u32,
    yiaddr=u32,
    siaddr=u32,
    giaddr=u32,
    hops=st.integers(0, 255),
    requested_ip=u32,
    server_id=u32,
    lease_time=u32,
    renewal_time=u32,
    rebinding_time=u32,
    subnet_mask=u32,
    routers=st.lists(u32, max_size=70).map(tuple),
    dns=st.lists(u32, max_size=4).map(tuple),
    client_id=st.one_of(st.just(b""), st.binary(min_size=2, max_size=300)),
    parameter_list=st.binary(max_size=20),
    message=st.text(st.characters(max_codepoint=255), max_size=300),
    relay_agent=st.binary(max_size=40),
    other=st.dictionaries(
        st.integers(1, 254).filter(lambda c: c not in known), st.binary(max_size=300), max_size=4
    ).map(lambda d: tuple(d.items())),
)


@pytest.mark.property
@settings(deadline=None, max_examples=200)
@given(messages)
def test_round_trip_property(msg: DhcpMessage) -> None:
    data = encode_dhcp(msg)
    assert len(data) >= BOOTP_MIN_LEN
    assert decode_dhcp(data) == msg
    assert decode_dhcp_udp(encode_dhcp_udp(msg, RELAY, SERVER)) == (RELAY, SERVER, msg)
