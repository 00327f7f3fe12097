"""DHCPv4 messages: RFC 2131 §2 (message format) and §3 (the exchanges), options from RFC 2132,
the Relay Agent Information option of RFC 3046 carried opaque, and RFC 3396 long options.

The subset a CMTS-side server and an emulated CPE need. Wire format (RFC 2131 §2, Figure 1),
carried in UDP from port 68 to 67 (BOOTREQUEST) or 67 to 68 (BOOTREPLY)::

    offset  size  field    meaning
         0     1  op       1 BOOTREQUEST, 2 BOOTREPLY
         1     1  htype    hardware address type: 1 (Ethernet), the only one accepted
         2     1  hlen     hardware address length: 6, the only one accepted
         3     1  hops     incremented by relay agents
         4     4  xid      transaction id chosen by the client
         8     2  secs     seconds since the client began acquiring or renewing
        10     2  flags    bit 15 BROADCAST (RFC 2131 §2 Figure 2), the rest MBZ
        12     4  ciaddr   client address (only in BOUND, RENEW, REBINDING)
        16     4  yiaddr   "your" address, offered or assigned by the server
        20     4  siaddr   next server (bootstrap); not the server identifier
        24     4  giaddr   relay agent address
        28    16  chaddr   client hardware address: 6 bytes, then 10 zero bytes
        44    64  sname    server host name (written as zeros, never read)
       108   128  file     boot file name (written as zeros, never read)
       236     4  cookie   99.130.83.99 (0x63825363), RFC 2131 §3
       240     -  options  code, length, value ...; PAD (0) has no length, END (255) ends them

Options read into fields (RFC 2132 section): 1 Subnet Mask (§3.3), 3 Router (§3.5), 6 Domain
Name Server (§3.8), 50 Requested IP Address (§9.1), 51 IP Address Lease Time (§9.2),
53 DHCP Message Type (§9.6, required), 54 Server Identifier (§9.7), 55 Parameter Request List
(§9.8), 56 Message (§9.9), 58 Renewal (T1) Time (§9.11), 59 Rebinding (T2) Time (§9.12),
61 Client-identifier (§9.14) and 82 Relay Agent Information (RFC 3046, raw sub-options).
Every other option is kept as ``(code, value)`` in ``other`` and re-encoded after the known
ones, in order of first appearance.

An option that appears more than once is one option whose value is the concatenation of the
instances, in order (RFC 3396 §1: agents "MUST use this method whenever they receive a DHCP
packet containing more than one occurrence of a certain type of option"); the encoder splits a
value longer than 255 bytes into consecutive instances the same way.

Left out: option overload (52, RFC 2132 §9.3) is not honoured. Its value stays in ``other`` but
options in ``sname`` and ``file`` are never parsed, and those fields are always sent as zeros.
Hardware other than Ethernet is rejected. Option 56 text is Latin-1 both ways (RFC 2132 asks
for NVT ASCII; Latin-1 maps every byte so a peer's odd text still decodes and re-encodes).

Encoded messages are zero-padded after END to the BOOTP minimum of 300 bytes (the 64-byte
``vend`` field of RFC 951; RFC 1542 §2.1 keeps that minimum for relay agents).

Addresses are host-order ``int`` (0.0.0.0 is 0) as everywhere in the project. Decoders raise only
:class:`vnf.errors.DecodeError`, layer ``"dhcp"`` (or ``"ipv4"`` / ``"udp"`` from
:func:`decode_dhcp_udp`); the encoders raise ``ValueError`` for a value with no encoding.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from vnf.codec.ipv4 import (
    IPPROTO_UDP,
    IPV4_HLEN,
    UDP_HLEN,
    build_udp_packet,
    decode_ipv4,
    decode_udp,
    udp_checksum,
)
from vnf.errors import DecodeError

BOOTREQUEST = 1
BOOTREPLY = 2
SERVER_PORT = 67
CLIENT_PORT = 68
FLAG_BROADCAST = 0x8000

HTYPE_ETHERNET = 1
HLEN_ETHERNET = 6
MAGIC_COOKIE = 0x63825363
DHCP_FIXED_LEN = 236
"""op .. file: the BOOTP fixed-format part in front of the magic cookie."""
DHCP_OPTIONS_OFFSET = DHCP_FIXED_LEN + 4
BOOTP_MIN_LEN = 300

_FIXED = struct.Struct("!BBBBIHHIIII16s192xI")
"""op .. chaddr and the cookie; ``192x`` skips sname and file (zeros when packing)."""
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_MAX_OPTION_LEN = 255
_MAX_UDP_PAYLOAD = 0xFFFF - IPV4_HLEN - UDP_HLEN


class MessageType(IntEnum):
    """RFC 2132 §9.6 DHCP Message Type values."""

    DISCOVER = 1
    OFFER = 2
    REQUEST = 3
    DECLINE = 4
    ACK = 5
    NAK = 6
    RELEASE = 7
    INFORM = 8


class DhcpOption(IntEnum):
    """Option codes this module names (RFC 2132, RFC 3046)."""

    PAD = 0
    SUBNET_MASK = 1
    ROUTER = 3
    DOMAIN_NAME_SERVER = 6
    REQUESTED_IP_ADDRESS = 50
    IP_ADDRESS_LEASE_TIME = 51
    OPTION_OVERLOAD = 52
    DHCP_MESSAGE_TYPE = 53
    SERVER_IDENTIFIER = 54
    PARAMETER_REQUEST_LIST = 55
    MESSAGE = 56
    MAXIMUM_DHCP_MESSAGE_SIZE = 57
    RENEWAL_TIME_VALUE = 58
    REBINDING_TIME_VALUE = 59
    CLIENT_IDENTIFIER = 61
    RELAY_AGENT_INFORMATION = 82
    END = 255


_MESSAGE_TYPES = frozenset(int(t) for t in MessageType)
_FIELD_OPTIONS = frozenset(
    (
        DhcpOption.SUBNET_MASK,
        DhcpOption.ROUTER,
        DhcpOption.DOMAIN_NAME_SERVER,
        DhcpOption.REQUESTED_IP_ADDRESS,
        DhcpOption.IP_ADDRESS_LEASE_TIME,
        DhcpOption.DHCP_MESSAGE_TYPE,
        DhcpOption.SERVER_IDENTIFIER,
        DhcpOption.PARAMETER_REQUEST_LIST,
        DhcpOption.MESSAGE,
        DhcpOption.RENEWAL_TIME_VALUE,
        DhcpOption.REBINDING_TIME_VALUE,
        DhcpOption.CLIENT_IDENTIFIER,
        DhcpOption.RELAY_AGENT_INFORMATION,
    )
)
"""Options held in a field of :class:`DhcpMessage`, never in ``other``."""


@dataclass(frozen=True, slots=True)
class DhcpMessage:
    """One DHCP message. A zero or empty option field means the option is absent."""

    op: int
    xid: int
    chaddr: bytes
    message_type: MessageType
    secs: int = 0
    flags: int = 0
    ciaddr: int = 0
    yiaddr: int = 0
    siaddr: int = 0
    giaddr: int = 0
    hops: int = 0
    requested_ip: int = 0
    server_id: int = 0
    lease_time: int = 0
    renewal_time: int = 0
    rebinding_time: int = 0
    subnet_mask: int = 0
    routers: tuple[int, ...] = ()
    dns: tuple[int, ...] = ()
    client_id: bytes = b""
    parameter_list: bytes = b""
    message: str = ""
    relay_agent: bytes = b""
    other: tuple[tuple[int, bytes], ...] = ()


# --- encoding ------------------------------------------------------------------------------


def _put(out: list[bytes], code: int, value: bytes) -> None:
    """One option; a value over 255 bytes becomes consecutive instances (RFC 3396)."""
    if not value:
        out.append(bytes((code, 0)))
        return
    for start in range(0, len(value), _MAX_OPTION_LEN):
        chunk = value[start : start + _MAX_OPTION_LEN]
        out.append(bytes((code, len(chunk))))
        out.append(chunk)


def _put_u32(out: list[bytes], code: int, value: int) -> None:
    if value:
        _put(out, code, _U32.pack(value))


def _put_addresses(out: list[bytes], code: int, addresses: tuple[int, ...]) -> None:
    if addresses:
        _put(out, code, b"".join(_U32.pack(a) for a in addresses))


def _encode_options(msg: DhcpMessage) -> list[bytes]:
    if msg.message_type not in _MESSAGE_TYPES:
        raise ValueError(f"unknown DHCP message type {msg.message_type!r}")
    if len(msg.client_id) == 1:
        # RFC 2132 §9.14: "The minimum length is 2" (a type octet and at least one more).
        raise ValueError("a client identifier has at least 2 bytes")
    out = [bytes((DhcpOption.DHCP_MESSAGE_TYPE, 1, msg.message_type))]
    _put_u32(out, DhcpOption.SUBNET_MASK, msg.subnet_mask)
    _put_addresses(out, DhcpOption.ROUTER, msg.routers)
    _put_addresses(out, DhcpOption.DOMAIN_NAME_SERVER, msg.dns)
    _put_u32(out, DhcpOption.REQUESTED_IP_ADDRESS, msg.requested_ip)
    _put_u32(out, DhcpOption.IP_ADDRESS_LEASE_TIME, msg.lease_time)
    _put_u32(out, DhcpOption.SERVER_IDENTIFIER, msg.server_id)
    _put_u32(out, DhcpOption.RENEWAL_TIME_VALUE, msg.renewal_time)
    _put_u32(out, DhcpOption.REBINDING_TIME_VALUE, msg.rebinding_time)
    for option, raw in (
        (DhcpOption.PARAMETER_REQUEST_LIST, msg.parameter_list),
        (DhcpOption.MESSAGE, msg.message.encode("latin-1")),
        (DhcpOption.CLIENT_IDENTIFIER, msg.client_id),
        (DhcpOption.RELAY_AGENT_INFORMATION, msg.relay_agent),
    ):
        if raw:
            _put(out, option, raw)
    seen: set[int] = set()
    for code, value in msg.other:
        if not 0 < code < DhcpOption.END or code in _FIELD_OPTIONS:
            raise ValueError(f"option {code} cannot go in DhcpMessage.other")
        if code in seen:
            raise ValueError(f"option {code} twice in DhcpMessage.other: join the values")
        seen.add(code)
        _put(out, code, bytes(value))
    return out


def encode_dhcp(msg: DhcpMessage) -> bytes:
    """The DHCP message (the UDP payload), zero-padded to at least 300 bytes."""
    if msg.op not in (BOOTREQUEST, BOOTREPLY):
        raise ValueError(f"op is BOOTREQUEST (1) or BOOTREPLY (2), not {msg.op}")
    if len(msg.chaddr) != HLEN_ETHERNET:
        raise ValueError(f"chaddr is a 6-byte Ethernet address, not {len(msg.chaddr)} bytes")
    try:
        parts = [
            _FIXED.pack(
                msg.op,
                HTYPE_ETHERNET,
                HLEN_ETHERNET,
                msg.hops,
                msg.xid,
                msg.secs,
                msg.flags,
                msg.ciaddr,
                msg.yiaddr,
                msg.siaddr,
                msg.giaddr,
                msg.chaddr,
                MAGIC_COOKIE,
            ),
            *_encode_options(msg),
            bytes((DhcpOption.END,)),
        ]
    except struct.error as exc:
        raise ValueError(f"a DHCP field is out of range: {exc}") from exc
    data = b"".join(parts)
    if len(data) < BOOTP_MIN_LEN:
        data += bytes(BOOTP_MIN_LEN - len(data))
    return data


# --- decoding ------------------------------------------------------------------------------


def _collect_options(data: bytes, pos: int) -> dict[int, tuple[int, bytes]]:
    """``code -> (offset of its first instance, value)``, repeated instances joined in order."""
    values: dict[int, list[bytes]] = {}
    first: dict[int, int] = {}
    end = len(data)
    while pos < end:
        code = data[pos]
        if code == DhcpOption.PAD:
            pos += 1
            continue
        if code == DhcpOption.END:
            break
        if pos + 1 >= end:
            raise DecodeError("dhcp", pos, "truncated", f"option {code} has no length")
        start = pos + 2
        stop = start + data[pos + 1]
        if stop > end:
            raise DecodeError("dhcp", pos + 1, "truncated", f"option {code} runs past the end")
        if code in values:
            values[code].append(data[start:stop])
        else:
            values[code] = [data[start:stop]]
            first[code] = pos
        pos = stop
    # An absent END is tolerated: the options stop where the data does.
    return {code: (first[code], b"".join(parts)) for code, parts in values.items()}


def _bad_option(offset: int, code: int, value: bytes, expected: str) -> DecodeError:
    return DecodeError(
        "dhcp", offset, "bad_option", f"option {code} has {len(value)} bytes, not {expected}"
    )


def _take_u32(options: dict[int, tuple[int, bytes]], code: int) -> int:
    found = options.pop(code, None)
    if found is None:
        return 0
    offset, value = found
    if len(value) != 4:
        raise _bad_option(offset, code, value, "4")
    return int.from_bytes(value, "big")


def _take_addresses(options: dict[int, tuple[int, bytes]], code: int) -> tuple[int, ...]:
    found = options.pop(code, None)
    if found is None:
        return ()
    offset, value = found
    # RFC 2132 §3.5, §3.8: "The minimum length ... is 4 octets, and the length MUST always be
    # a multiple of 4."
    if not value or len(value) % 4:
        raise _bad_option(offset, code, value, "a non-zero multiple of 4")
    return tuple(int.from_bytes(value[i : i + 4], "big") for i in range(0, len(value), 4))


def _take_bytes(options: dict[int, tuple[int, bytes]], code: int, minimum: int) -> bytes:
    found = options.pop(code, None)
    if found is None:
        return b""
    offset, value = found
    if len(value) < minimum:
        raise _bad_option(offset, code, value, f"at least {minimum}")
    return value


def decode_dhcp(data: bytes, offset: int = 0) -> DhcpMessage:
    """Decode the DHCP message that starts at ``offset`` and runs to the end of ``data``.

    Bytes after END (the padding up to 300 bytes) are ignored; sname and file are not read.
    """
    if offset < 0 or len(data) - offset < DHCP_OPTIONS_OFFSET:
        raise DecodeError("dhcp", offset, "truncated")
    (op, htype, hlen, hops, xid, secs, flags, ciaddr, yiaddr, siaddr, giaddr, chaddr, cookie) = (
        _FIXED.unpack_from(data, offset)
    )
    if op not in (BOOTREQUEST, BOOTREPLY):
        raise DecodeError("dhcp", offset, "bad_op", f"op {op}")
    if htype != HTYPE_ETHERNET or hlen != HLEN_ETHERNET:
        raise DecodeError("dhcp", offset + 1, "bad_htype", f"htype {htype} hlen {hlen}")
    if cookie != MAGIC_COOKIE:
        raise DecodeError("dhcp", offset + DHCP_FIXED_LEN, "bad_cookie", f"{cookie:#010x}")
    options = _collect_options(data, offset + DHCP_OPTIONS_OFFSET)
    found = options.pop(DhcpOption.DHCP_MESSAGE_TYPE, None)
    if found is None:
        # RFC 2131 §3: "DHCP messages ... MUST include the DHCP message type option".
        raise DecodeError("dhcp", offset + DHCP_OPTIONS_OFFSET, "missing_message_type")
    type_offset, type_value = found
    if len(type_value) != 1:
        raise _bad_option(type_offset, DhcpOption.DHCP_MESSAGE_TYPE, type_value, "1")
    if type_value[0] not in _MESSAGE_TYPES:
        raise DecodeError("dhcp", type_offset + 2, "bad_option", f"message type {type_value[0]}")
    # Read in the order the fields are declared; each helper pops what it reads.
    requested_ip = _take_u32(options, DhcpOption.REQUESTED_IP_ADDRESS)
    server_id = _take_u32(options, DhcpOption.SERVER_IDENTIFIER)
    lease_time = _take_u32(options, DhcpOption.IP_ADDRESS_LEASE_TIME)
    renewal_time = _take_u32(options, DhcpOption.RENEWAL_TIME_VALUE)
    rebinding_time = _take_u32(options, DhcpOption.REBINDING_TIME_VALUE)
    subnet_mask = _take_u32(options, DhcpOption.SUBNET_MASK)
    routers = _take_addresses(options, DhcpOption.ROUTER)
    dns = _take_addresses(options, DhcpOption.DOMAIN_NAME_SERVER)
    # RFC 2132 §9.14: client identifier "minimum length is 2"; §9.8, §9.9: minimum 1.
    client_id = _take_bytes(options, DhcpOption.CLIENT_IDENTIFIER, 2)
    parameter_list = _take_bytes(options, DhcpOption.PARAMETER_REQUEST_LIST, 1)
    message = _take_bytes(options, DhcpOption.MESSAGE, 1).decode("latin-1")
    relay_agent = _take_bytes(options, DhcpOption.RELAY_AGENT_INFORMATION, 1)
    return DhcpMessage(
        op=op,
        xid=xid,
        chaddr=chaddr[:HLEN_ETHERNET],
        message_type=MessageType(type_value[0]),
        secs=secs,
        flags=flags,
        ciaddr=ciaddr,
        yiaddr=yiaddr,
        siaddr=siaddr,
        giaddr=giaddr,
        hops=hops,
        requested_ip=requested_ip,
        server_id=server_id,
        lease_time=lease_time,
        renewal_time=renewal_time,
        rebinding_time=rebinding_time,
        subnet_mask=subnet_mask,
        routers=routers,
        dns=dns,
        client_id=client_id,
        parameter_list=parameter_list,
        message=message,
        relay_agent=relay_agent,
        other=tuple((code, value) for code, (_, value) in options.items()),
    )


# --- in IPv4/UDP ---------------------------------------------------------------------------


def encode_dhcp_udp(msg: DhcpMessage, src_ip: int, dst_ip: int) -> bytes:
    """An IPv4 packet (TTL 64, ident 0, DF clear) carrying ``msg`` in UDP with a checksum.

    BOOTREQUEST goes from port 68 to 67, BOOTREPLY from 67 to 68 (RFC 2131 §4.1).
    """
    for name, address in (("src_ip", src_ip), ("dst_ip", dst_ip)):
        if not 0 <= address <= 0xFFFFFFFF:
            raise ValueError(f"{name} {address} is not an IPv4 address")
    payload = encode_dhcp(msg)
    if len(payload) > _MAX_UDP_PAYLOAD:
        raise ValueError(f"a {len(payload)}-byte DHCP message does not fit in one IPv4 packet")
    sport, dport = (
        (CLIENT_PORT, SERVER_PORT) if msg.op == BOOTREQUEST else (SERVER_PORT, CLIENT_PORT)
    )
    packet = build_udp_packet(src_ip, dst_ip, sport, dport, payload)
    checksum = udp_checksum(src_ip, dst_ip, packet[IPV4_HLEN:])
    return packet[: IPV4_HLEN + 6] + _U16.pack(checksum) + packet[IPV4_HLEN + 8 :]


def decode_dhcp_udp(packet: bytes) -> tuple[int, int, DhcpMessage]:
    """``(src_ip, dst_ip, message)`` from an IPv4 packet carrying DHCP in UDP.

    Checks in order: the IPv4 header and its checksum (layer ``"ipv4"``), not a fragment
    (``"fragmented"``), protocol UDP (``"not_udp"``), the UDP header (layer ``"udp"``),
    destination port 67 or 68 (``"not_dhcp"``), the UDP checksum unless it is 0
    (``"bad_checksum"``), then the message itself (layer ``"dhcp"``). Error offsets count from
    the packet's start. Bytes after the IPv4 Total Length or the UDP Length (link padding) are
    ignored.
    """
    header = decode_ipv4(packet)
    if header.flags_fragment & 0x3FFF:  # MF set or a fragment offset: no whole datagram here
        raise DecodeError("ipv4", 6, "fragmented")
    if header.protocol != IPPROTO_UDP:
        raise DecodeError("ipv4", 9, "not_udp", f"protocol {header.protocol}")
    hlen = header.header_length
    datagram = packet[: header.total_length]
    udp = decode_udp(datagram, hlen)
    if udp.dport not in (SERVER_PORT, CLIENT_PORT):
        raise DecodeError("udp", hlen + 2, "not_dhcp", f"port {udp.dport}")
    end = hlen + udp.length
    if udp.checksum:
        zeroed = datagram[hlen : hlen + 6] + b"\x00\x00" + datagram[hlen + UDP_HLEN : end]
        if udp_checksum(header.src, header.dst, zeroed) != udp.checksum:
            raise DecodeError("udp", hlen + 6, "bad_checksum")
    return header.src, header.dst, decode_dhcp(datagram[:end], hlen + UDP_HLEN)


def is_dhcp_to_server(packet: bytes | memoryview, offset: int = 0) -> bool:
    """True for an IPv4 packet at ``offset`` that is UDP to port 67 (no checksum verified).

    The data plane's punt test: never raises, whatever the input. Non-first fragments are
    False (what sits where the port would be is not a UDP header).
    """
    if offset < 0 or len(packet) - offset < IPV4_HLEN:
        return False
    version_ihl = packet[offset]
    hlen = (version_ihl & 0x0F) * 4
    if version_ihl >> 4 != 4 or hlen < IPV4_HLEN or packet[offset + 9] != IPPROTO_UDP:
        return False
    if packet[offset + 6] & 0x1F or packet[offset + 7]:
        return False
    port = offset + hlen + 2
    if len(packet) < port + 2:
        return False
    return (packet[port] << 8 | packet[port + 1]) == SERVER_PORT
