"""The vectorized fast path against a per-packet reference written from the specification.

The reference below reads each frame with plain byte indexing, in the precedence order the
specification gives, and rewrites it by concatenating bytes; the checksum update is RFC
1624 eqn. 3 with the general ~m + m' terms, DOCSIS's HCS and CRC-32 are computed whole
(``crc16_x25``, ``zlib.crc32``). Random PPPoE sessions and cable modems (QoS-free: policing
depends on the batch, ``test_qos.py`` covers it), random batches of good, control and
malformed frames (byte flips, truncation, padding, one field off) go through both; outputs,
punts, counters and usage must be identical.
"""

from __future__ import annotations

import ipaddress
import struct
import zlib
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_plane.io.base import RxBatch
from data_plane.worker import Worker, WorkerConfig
from vnf.codec.docsis import PacketFrame, RequestEh, crc16_x25, encode_carrier, encode_frame
from vnf.model.addresses import ip_to_int
from vnf.model.group import SubscriberGroup
from vnf.model.session import AccessType, RuleOp, SessionRule, TrafficEndpoint, Usage

pytestmark = pytest.mark.property

CORE_MAC = bytes.fromhex("0200000000c1")
GW_MAC = bytes.fromhex("02000000009f")
OTHER_MAC = bytes.fromhex("0200000000ee")
BROADCAST = b"\xff" * 6
GROUPS = [
    SubscriberGroup(5, "s", bytes.fromhex("020000000105"), ipaddress.IPv4Network("100.64.0.0/26")),
    SubscriberGroup(9, "s", bytes.fromhex("020000000109"), ipaddress.IPv4Network("100.64.1.0/26")),
]
CORE_IP, GW_IP, SERVER_IP = "198.18.0.2", "198.18.0.1", "198.18.7.7"
MRU = 1492


DOCSIS_MTU = 1500


def client_mac(n: int) -> bytes:
    return bytes.fromhex(f"0200000a{n:04x}")


def cm_mac(n: int) -> bytes:
    return bytes.fromhex(f"0200000b{n:04x}")


def cpe_mac(n: int) -> bytes:
    return bytes.fromhex(f"0a00000c{n:04x}")


def checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: int, dst: int, ttl: int, size: int, ihl: int = 5, tos: int = 0) -> bytes:
    options = b"\x01" * (4 * (ihl - 5)) if ihl > 5 else b""
    total = 20 + len(options) + size
    header = (
        struct.pack(
            "!BBHHHBBH4s4s",
            0x40 | ihl,
            tos,
            total,
            7,
            0,
            ttl,
            17,
            0,
            src.to_bytes(4, "big"),
            dst.to_bytes(4, "big"),
        )
        + options
    )
    header = header[:10] + checksum(header).to_bytes(2, "big") + header[12:]
    return header + bytes((i * 7) & 0xFF for i in range(size))


# ---- the reference ------------------------------------------------------------------------------
def ones_add(a: int, b: int) -> int:
    s = a + b
    return (s & 0xFFFF) + (s >> 16)


def after_hop(ip: bytes) -> bytes:
    """TTL - 1, checksum by RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m')."""
    old_word = ip[8] << 8 | ip[9]
    new_word = (ip[8] - 1) << 8 | ip[9]
    hc = ip[10] << 8 | ip[11]
    new = ~ones_add(ones_add(~hc & 0xFFFF, ~old_word & 0xFFFF), new_word) & 0xFFFF
    return ip[:8] + bytes([ip[8] - 1]) + ip[9:10] + new.to_bytes(2, "big") + ip[12:]


@dataclass
class RefSession:
    key: int
    group: int
    sid: int
    mac: bytes
    ip: int
    up_packets: int = 0
    up_bytes: int = 0
    down_packets: int = 0
    down_bytes: int = 0
    dropped: int = 0
    cpe: bytes = b""
    """A cable modem's CPE (``mac`` is the CM's, ``sid`` its SID); empty for PPPoE."""

    def usage(self) -> Usage:
        return Usage(
            self.key,
            self.up_packets,
            self.up_bytes,
            self.down_packets,
            self.down_bytes,
            self.dropped,
        )


@dataclass
class Reference:
    groups: list[SubscriberGroup]
    gateway_known: bool
    sessions: dict[int, RefSession] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def count(self, name: str) -> None:
        self.counters[name] = self.counters.get(name, 0) + 1

    def find(self, group: int, sid: int, docsis: bool = False) -> RefSession | None:
        return next(
            (
                s
                for s in self.sessions.values()
                if (s.group, s.sid, bool(s.cpe)) == (group, sid, docsis)
            ),
            None,
        )

    def access(self, frame: bytes) -> tuple[str, bytes | None]:
        """(outcome, output) for one frame from the ACCESS port."""
        if len(frame) < 14:
            return "drop_up_runt", None
        dst, src, ethertype = frame[0:6], frame[6:12], int.from_bytes(frame[12:14], "big")
        group = next((g for g in self.groups if g.virtual_mac == dst), None)
        if group is None and dst != BROADCAST:
            return "drop_up_not_for_us", None
        standby = not self.groups
        if ethertype == 0x8863:
            return ("drop_up_standby", None) if standby else ("punted", frame)
        # MULPI §6.2.1: FC_TYPE 11, FC_PARM 0 (timing) or 1 (MAC management), EHDR_ON either
        if ethertype == 0x88B6 and len(frame) >= 20 and frame[14] in (0xC0, 0xC1, 0xC2, 0xC3):
            return ("drop_up_standby", None) if standby else ("punted", frame)
        if ethertype not in (0x8864, 0x88B6):
            return "drop_up_unknown_ethertype", None
        if group is None:
            return "drop_up_not_for_us", None
        if ethertype == 0x88B6:
            return self._cable(frame, group)
        if len(frame) < 20 or frame[14] != 0x11 or frame[15] != 0:
            return "drop_up_bad_pppoe", None
        sid, plen = int.from_bytes(frame[16:18], "big"), int.from_bytes(frame[18:20], "big")
        if plen < 2 or 20 + plen > len(frame):
            return "drop_up_bad_pppoe", None
        if frame[20:22] != b"\x00\x21":
            return "punted", frame
        session = self.find(group.group_id, sid)
        if session is None:
            return "drop_up_unknown_session", None
        if src != session.mac:
            return "drop_up_spoofed_mac", None
        ip = frame[22 : 20 + plen]
        verdict = self._check_ipv4(ip)
        if verdict is None and int.from_bytes(ip[12:16], "big") != session.ip:
            verdict = "spoofed_ip"
        if verdict is None and ip[8] <= 1:
            verdict = "ttl_exceeded"
        if verdict is None and not self.gateway_known:
            verdict = "no_next_hop"
        if verdict is not None:
            session.dropped += 1
            return f"drop_up_{verdict}", None
        total = int.from_bytes(ip[2:4], "big")
        session.up_packets += 1
        session.up_bytes += total
        return "forwarded_up", GW_MAC + CORE_MAC + b"\x08\x00" + after_hop(ip[:total])

    def _cable(self, frame: bytes, group: SubscriberGroup) -> tuple[str, bytes | None]:
        """A DOCSIS carrier to ``group``, past the management punt."""
        if len(frame) >= 20 and frame[14] in (0xC4, 0xC8):  # request frames
            return "drop_up_docsis_request", None
        if len(frame) < 24:
            return "drop_up_bad_docsis", None
        fc, elen, eh, sid_hi = frame[14], frame[15], frame[18], frame[20]
        if fc != 0x01 or elen != 4 or eh != 0x13 or sid_hi >> 6:
            return "drop_up_bad_docsis", None
        if frame[22:24] != struct.pack("<H", crc16_x25(frame[14:22])):
            return "drop_up_bad_docsis", None
        mac_len = int.from_bytes(frame[16:18], "big")
        if mac_len < 4 + 18 or 20 + mac_len > len(frame):
            return "drop_up_bad_docsis", None
        pdu = frame[24 : 20 + mac_len]
        data, fcs = pdu[:-4], pdu[-4:]
        pdu_type, ip = int.from_bytes(data[12:14], "big"), data[14:]
        if pdu_type == 0x0806 or (pdu_type == 0x0800 and self._is_dhcp(ip)):
            return "punted", frame
        session = self.find(group.group_id, int.from_bytes(frame[20:22], "big"), docsis=True)
        if session is None:
            return "drop_up_unknown_sid", None
        if frame[6:12] != session.mac:
            return "drop_up_spoofed_mac", None
        if data[6:12] != session.cpe:
            return "drop_up_spoofed_cpe_mac", None
        if data[0:6] != group.virtual_mac:
            return "drop_up_pdu_not_for_us", None
        verdict = None
        if struct.pack("<I", zlib.crc32(data)) != fcs:
            verdict = "bad_crc"
        elif pdu_type != 0x0800:
            return "drop_up_unknown_ethertype", None
        else:
            verdict = self._session_checks(ip, session)
        if verdict is not None:
            session.dropped += 1
            return f"drop_up_{verdict}", None
        total = int.from_bytes(ip[2:4], "big")
        session.up_packets += 1
        session.up_bytes += total
        return "forwarded_up", GW_MAC + CORE_MAC + b"\x08\x00" + after_hop(ip[:total])

    def _session_checks(self, ip: bytes, session: RefSession) -> str | None:
        verdict = self._check_ipv4(ip)
        if verdict is None and int.from_bytes(ip[12:16], "big") != session.ip:
            verdict = "spoofed_ip"
        if verdict is None and ip[8] <= 1:
            verdict = "ttl_exceeded"
        if verdict is None and not self.gateway_known:
            verdict = "no_next_hop"
        return verdict

    @staticmethod
    def _is_dhcp(ip: bytes) -> bool:
        """RFC 2131: to UDP port 67; the ports of the first fragment, inside the PDU."""
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[0] & 0xF < 5:
            return False
        ihl4 = (ip[0] & 0xF) * 4
        if ihl4 + 4 > len(ip) or ip[9] != 17 or int.from_bytes(ip[6:8], "big") & 0x1FFF:
            return False
        return int.from_bytes(ip[ihl4 + 2 : ihl4 + 4], "big") == 67

    @staticmethod
    def _check_ipv4(ip: bytes) -> str | None:
        if len(ip) < 20 or ip[0] >> 4 != 4 or ip[0] & 0xF < 5:
            return "bad_ipv4"
        total = int.from_bytes(ip[2:4], "big")
        if total < (ip[0] & 0xF) * 4 or total > len(ip):
            return "bad_ipv4"
        return None

    def core(self, frame: bytes) -> tuple[str, bytes | None]:
        if len(frame) < 14:
            return "drop_down_runt", None
        dst, ethertype = frame[0:6], int.from_bytes(frame[12:14], "big")
        if ethertype == 0x0806 and dst in (CORE_MAC, BROADCAST):
            return "arp_in", None
        if dst != CORE_MAC:
            return "drop_down_not_for_us", None
        if ethertype != 0x0800:
            return "drop_down_unknown_ethertype", None
        ip = frame[14:]
        if self._check_ipv4(ip) is not None:
            return "drop_down_bad_ipv4", None
        address = ipaddress.IPv4Address(ip[16:20])
        group = next((g for g in self.groups if address in g.pool), None)
        if group is None:
            return "drop_down_no_route", None
        session = next((s for s in self.sessions.values() if s.ip == int(address)), None)
        if session is None:
            return "drop_down_unknown_session", None
        total = int.from_bytes(ip[2:4], "big")
        if ip[8] <= 1 or total > (DOCSIS_MTU if session.cpe else MRU):
            session.dropped += 1
            return ("drop_down_ttl_exceeded" if ip[8] <= 1 else "drop_down_too_big"), None
        session.down_packets += 1
        session.down_bytes += total
        if session.cpe:
            pdu = session.cpe + group.virtual_mac + b"\x08\x00" + after_hop(ip[:total])
            pdu += struct.pack("<I", zlib.crc32(pdu))
            head = b"\x00\x00" + len(pdu).to_bytes(2, "big")
            head += struct.pack("<H", crc16_x25(head))
            return "forwarded_down", session.mac + group.virtual_mac + b"\x88\xb6" + head + pdu
        pppoe = b"\x11\x00" + session.sid.to_bytes(2, "big") + (total + 2).to_bytes(2, "big")
        header = session.mac + group.virtual_mac + b"\x88\x64" + pppoe + b"\x00\x21"
        return "forwarded_down", header + after_hop(ip[:total])


# ---- strategies ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Scenario:
    groups: list[SubscriberGroup]
    sessions: list[RefSession]
    gateway_known: bool


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    groups = draw(st.sampled_from([GROUPS, GROUPS[:1], GROUPS, []]))
    sessions: list[RefSession] = []
    ips: set[int] = set()
    taken: set[tuple[int, int, bool]] = set()
    for key in range(1, draw(st.integers(0, 12)) + 1):
        if not groups:
            break
        g = draw(st.sampled_from(groups))
        sid = draw(st.integers(1, 8))
        ip = int(g.pool.network_address) + draw(st.integers(1, 40))
        docsis = draw(st.booleans())
        if (g.group_id, sid, docsis) in taken or ip in ips:
            continue
        taken.add((g.group_id, sid, docsis))
        ips.add(ip)
        n = draw(st.integers(1, 9))
        if docsis:
            session = RefSession(key, g.group_id, sid, cm_mac(n), ip, cpe=cpe_mac(n))
        else:
            session = RefSession(key, g.group_id, sid, client_mac(n), ip)
        sessions.append(session)
    return Scenario(groups, sessions, draw(st.sampled_from([True, True, False])))


def _nudge(draw: st.DrawFn, body: bytearray, offset: int) -> None:
    """Move the 16-bit length at ``offset`` by a little (the off-by-one frames)."""
    if len(body) >= offset + 2 and draw(st.integers(0, 5)) == 0:
        value = int.from_bytes(body[offset : offset + 2], "big") + draw(st.integers(-3, 3))
        body[offset : offset + 2] = (value & 0xFFFF).to_bytes(2, "big")


def _mutate(draw: st.DrawFn, frame: bytes, clean: bool, lengths: tuple[int, ...]) -> bytes:
    """Flip bytes, nudge the length fields at ``lengths``, truncate, pad."""
    if clean:
        return frame
    body = bytearray(frame)
    for offset in lengths:
        _nudge(draw, body, offset)
    for _ in range(draw(st.sampled_from([0, 0, 0, 0, 1, 2]))):
        if body:
            body[draw(st.integers(0, min(len(body), 48) - 1))] = draw(st.integers(0, 255))
    if draw(st.integers(0, 9)) == 0:
        body = body[: draw(st.integers(0, len(body)))]
    return bytes(body) + b"\x00" * draw(st.sampled_from([0, 0, 0, 6, 12]))


# One field off in an otherwise valid frame: (offset, kind, value). "set" writes bytes,
# "add16" moves a 16-bit field, "cut" drops bytes at the end.
Tweak = tuple[int, str, object]
UP_TWEAKS: list[Tweak] = [
    (0, "set", OTHER_MAC), (0, "set", BROADCAST), (0, "set", GROUPS[1].virtual_mac),
    (0, "set", GROUPS[0].virtual_mac), (6, "set", client_mac(99)), (12, "set", b"\x88\x63"),
    (14, "set", b"\x12"), (15, "set", b"\x01"), (16, "add16", 1), (18, "add16", -1),
    (18, "add16", -2), (18, "add16", 1), (20, "set", b"\x00\x23"), (22, "set", b"\x55"),
    (22, "set", b"\x44"), (24, "add16", 1), (24, "add16", 2), (24, "add16", -1),
    (24, "set", b"\x00\x13"), (24, "set", b"\x00\x14"), (30, "set", b"\x01"),
    (30, "set", b"\x02"), (36, "add16", 1), (0, "cut", 1), (0, "cut", 3),
]  # fmt: skip
DOWN_TWEAKS: list[Tweak] = [
    (0, "set", OTHER_MAC), (0, "set", BROADCAST), (12, "set", b"\x08\x06"),
    (12, "set", b"\x08\x01"), (14, "set", b"\x65"), (14, "set", b"\x44"), (16, "add16", 1),
    (16, "add16", -1), (16, "set", b"\x00\x13"), (22, "set", b"\x01"), (22, "set", b"\x02"),
    (32, "add16", 1), (32, "add16", -1), (30, "set", b"\x64\x41"), (0, "cut", 1),
]  # fmt: skip


def _apply(frame: bytes, tweak: Tweak) -> bytes:
    offset, kind, value = tweak
    body = bytearray(frame)
    if kind == "cut":
        assert isinstance(value, int)
        return bytes(body[:-value])
    if kind == "add16":
        assert isinstance(value, int)
        moved = int.from_bytes(body[offset : offset + 2], "big") + value
        body[offset : offset + 2] = (moved & 0xFFFF).to_bytes(2, "big")
    else:
        assert isinstance(value, bytes)
        body[offset : offset + len(value)] = value
    return bytes(body)


def _tweak(draw: st.DrawFn, frame: bytes, tweaks: list[Tweak]) -> bytes:
    return _apply(frame, draw(st.sampled_from(tweaks)))


# DOCSIS upstream (offsets in the carrier frame; negative ones count from the end, where the
# PDU's CRC is: these frames are never padded). "xor" flips bits. A tweak in the MAC header
# may come with its HCS recomputed (:func:`with_hcs`), to reach the checks behind the HCS.
CABLE_TWEAKS: list[Tweak] = [
    (0, "set", OTHER_MAC), (0, "set", BROADCAST), (0, "set", GROUPS[1].virtual_mac),
    (6, "set", cm_mac(99)), (12, "set", b"\x88\x64"), (14, "set", b"\x00"),
    (14, "set", b"\xc4"), (14, "set", b"\xc8"), (14, "set", b"\xc2"), (14, "set", b"\xc1"),
    (14, "set", b"\x03"), (14, "set", b"\x81"), (15, "set", b"\x05"), (16, "add16", 1),
    (16, "add16", -1), (16, "add16", -4), (16, "add16", -40), (16, "set", b"\x00\x15"),
    (18, "set", b"\x12"), (18, "set", b"\x23"), (19, "set", b"\x07"), (20, "add16", 1),
    (20, "set", b"\x40"), (20, "set", b"\x00\x00"), (22, "xor", b"\x01"), (23, "xor", b"\x80"),
    (24, "set", OTHER_MAC), (24, "set", BROADCAST), (30, "set", cpe_mac(99)),
    (36, "set", b"\x86\xdd"), (36, "set", b"\x08\x06"), (38, "set", b"\x55"),
    (38, "set", b"\x44"), (38, "set", b"\x46"), (40, "add16", 1), (40, "add16", -1),
    (40, "set", b"\x00\x13"), (44, "set", b"\x00\x01"), (46, "set", b"\x01"),
    (46, "set", b"\x02"), (47, "set", b"\x06"), (50, "add16", 1), (60, "set", b"\x00\x43"),
    (-1, "xor", b"\x01"), (-4, "xor", b"\x20"), (-5, "xor", b"\xff"), (0, "cut", 1),
    (0, "cut", 5),
]  # fmt: skip


def with_hcs(frame: bytes) -> bytes:
    """``frame`` with the HCS of its (Request EH) MAC header recomputed."""
    if len(frame) < 24:
        return frame
    return frame[:22] + struct.pack("<H", crc16_x25(frame[14:22])) + frame[24:]


def _apply_cable(frame: bytes, tweak: Tweak, fix_hcs: bool) -> bytes:
    offset, kind, value = tweak
    if kind == "xor":
        assert isinstance(value, bytes)
        body = bytearray(frame)
        body[offset] ^= value[0]
        return bytes(body)
    out = _apply(frame, tweak)
    return with_hcs(out) if fix_hcs and 14 <= offset < 22 else out


def cable_frame(
    dst: bytes, cm: bytes, sid: int, pdu_dst: bytes, cpe: bytes, ethertype: int, payload: bytes
) -> bytes:
    """A carrier frame with a Packet PDU naming ``sid`` (built by the codec)."""
    pdu = PacketFrame(pdu_dst, cpe, ethertype, payload, (RequestEh(sid & 0xFF, sid),))
    return encode_carrier(dst, cm, encode_frame(pdu))


def _to_port(ip: bytes, port: int) -> bytes:
    """``ip`` (UDP) with its destination port set to ``port``."""
    at = (ip[0] & 0x0F) * 4 + 2
    return ip[:at] + port.to_bytes(2, "big") + ip[at + 2 :]


def cable_frames(s: Scenario, clean: bool) -> st.SearchStrategy[bytes]:
    """Upstream DOCSIS carriers: modems' packets, management, requests, DHCP, ARP."""
    modems = [x for x in s.sessions if x.cpe]

    @st.composite
    def frame(draw: st.DrawFn) -> bytes:
        kinds = ["modem"] * 6 if modems else ["packet"]
        kinds += ["packet", "management", "request", "dhcp", "arp"] if not clean else []
        kind = draw(st.sampled_from(kinds))
        vmacs = [g.virtual_mac for g in GROUPS]
        dst = draw(st.sampled_from(vmacs * 4 + [BROADCAST, OTHER_MAC]))
        n = draw(st.integers(1, 9))
        cm, cpe, sid = cm_mac(n), cpe_mac(n), draw(st.integers(0, 9))
        if kind == "management":
            mgmt = bytes((draw(st.sampled_from([0xC0, 0xC1, 0xC2, 0xC3])), 0, 0, 8))
            body = mgmt + struct.pack("<H", crc16_x25(mgmt)) + bytes(8)
            return _mutate(draw, encode_carrier(dst, cm, body), clean, ())
        if kind == "request":
            head = bytes((draw(st.sampled_from([0xC4, 0xC8])), 3)) + sid.to_bytes(2, "big")
            return encode_carrier(dst, cm, head + struct.pack("<H", crc16_x25(head)))
        g = draw(st.sampled_from(GROUPS))
        src_ip = int(g.pool.network_address) + draw(st.integers(1, 40))
        ttl, ihl = draw(TTLS), draw(st.sampled_from([5, 5, 5, 6, 4]))
        pdu_dst = dst
        if kind == "modem":
            x = draw(st.sampled_from(modems))
            dst = pdu_dst = _vmac(x.group)
            cm, cpe, sid, src_ip = x.mac, x.cpe, x.sid, x.ip
            if clean:
                ttl, ihl = 64, 5
        size = draw(st.integers(0, 120))
        payload = ipv4(src_ip, ip_to_int(SERVER_IP), ttl, size, ihl, size % 3)
        ethertype = 0x0800
        if kind == "dhcp":
            payload, pdu_dst = _to_port(payload, 67), draw(st.sampled_from([dst, BROADCAST]))
        elif kind == "arp":
            ethertype, payload, pdu_dst = 0x0806, bytes(28), BROADCAST
        padding = bytes(draw(st.sampled_from([0, 0, 0, 3, 18]))) if not clean else b""
        frame = cable_frame(dst, cm, sid, pdu_dst, cpe, ethertype, payload + padding)
        if not clean and draw(st.booleans()):
            return _apply_cable(frame, draw(st.sampled_from(CABLE_TWEAKS)), draw(st.booleans()))
        return _mutate(draw, frame, clean, (16, 40))

    return frame()


def _vmac(group_id: int) -> bytes:
    return next(g.virtual_mac for g in GROUPS if g.group_id == group_id)


TTLS = st.sampled_from([64, 64, 64, 0, 1, 2, 255])


def access_frames(s: Scenario, clean: bool) -> st.SearchStrategy[bytes]:
    """PPPoE frames (a third DOCSIS ones: :func:`cable_frames`)."""
    pppoe = [x for x in s.sessions if not x.cpe]

    @st.composite
    def frame(draw: st.DrawFn) -> bytes:
        kinds = ["session"] * 6 if pppoe else ["ipv4"]
        kinds += ["ipv4", "control", "discovery", "garbage"] if not clean else []
        kind = draw(st.sampled_from(kinds))
        if kind == "garbage":
            return draw(st.binary(max_size=60))
        dst = draw(st.sampled_from([g.virtual_mac for g in GROUPS] * 4 + [BROADCAST, OTHER_MAC]))
        src = client_mac(draw(st.integers(1, 9)))
        if kind == "discovery":
            padi = dst + src + b"\x88\x63\x11\x09\x00\x00\x00\x04\x01\x01\0\0"
            return _mutate(draw, padi, clean, ())
        sid = draw(st.integers(0, 9))
        g = draw(st.sampled_from(GROUPS))
        src_ip = int(g.pool.network_address) + draw(st.integers(1, 40))
        ttl, ihl = draw(TTLS), draw(st.sampled_from([5, 5, 5, 6, 4]))
        if kind == "session":
            x = draw(st.sampled_from(pppoe))
            dst, src, sid, src_ip = _vmac(x.group), x.mac, x.sid, x.ip
            if clean:
                ttl, ihl = 64, 5
            elif draw(st.integers(0, 5)) == 0:
                src = client_mac(draw(st.integers(1, 9)))
            elif draw(st.integers(0, 5)) == 0:
                src_ip += 1
        if kind == "control":
            ppp = draw(st.sampled_from([0xC021, 0xC023, 0xC223, 0x8021, 0x8057])).to_bytes(2, "big")
            payload = ppp + b"\x01\x01\x00\x04"
        else:
            size = draw(st.integers(0, 120))
            payload = b"\x00\x21" + ipv4(src_ip, ip_to_int(SERVER_IP), ttl, size, ihl, size % 3)
        header = b"\x11\x00" + sid.to_bytes(2, "big") + len(payload).to_bytes(2, "big")
        frame = dst + src + b"\x88\x64" + header + payload
        if kind == "session" and not clean and draw(st.booleans()):
            return _tweak(draw, frame, UP_TWEAKS)
        return _mutate(draw, frame, clean, (18, 24))

    return st.one_of(frame(), frame(), cable_frames(s, clean))


def core_frames(s: Scenario, clean: bool) -> st.SearchStrategy[bytes]:
    @st.composite
    def frame(draw: st.DrawFn) -> bytes:
        if not clean and draw(st.integers(0, 9)) == 0:
            return draw(st.binary(max_size=60))
        dst = draw(st.sampled_from([CORE_MAC] * 6 + [BROADCAST, OTHER_MAC]))
        ethertype = draw(st.sampled_from([b"\x08\x00"] * 8 + [b"\x86\xdd"]))
        g = draw(st.sampled_from(GROUPS))
        dst_ip = int(g.pool.network_address) + draw(st.integers(0, 70))
        size = draw(st.sampled_from([0, 18, 100, 1464, 1471, 1472, 1473, 1479, 1480, 1481]))
        ttl, ihl = draw(TTLS), draw(st.sampled_from([5, 5, 5, 7, 3]))
        tweak = False
        if s.sessions and (clean or draw(st.booleans())):
            dst_ip = draw(st.sampled_from(s.sessions)).ip
            tweak = not clean and draw(st.booleans())
            if clean or tweak:
                dst, ethertype, ttl, ihl, size = CORE_MAC, b"\x08\x00", 64, 5, min(size, 1472)
        frame = dst + GW_MAC + ethertype + ipv4(ip_to_int(SERVER_IP), dst_ip, ttl, size, ihl)
        return _tweak(draw, frame, DOWN_TWEAKS) if tweak else _mutate(draw, frame, clean, (16,))

    return frame()


@dataclass(frozen=True)
class Round:
    access: list[bytes]
    core: list[bytes]
    chunk: int
    """Frames per batch: 1 sends every frame alone, so each takes the gate on its own."""
    remove: int
    """A session key to remove afterwards (if installed)."""


@st.composite
def cases(draw: st.DrawFn) -> tuple[Scenario, list[Round]]:
    """A scenario and 1-3 rounds of frames (some all clean, to take the gate's fast branch)."""
    s = draw(scenarios())
    rounds = []
    for _ in range(draw(st.integers(1, 3))):
        clean = draw(st.integers(0, 3)) == 0
        access = draw(st.lists(access_frames(s, clean), max_size=40))
        core = draw(st.lists(core_frames(s, clean), max_size=40))
        chunk = draw(st.sampled_from([1, 3, 64]))
        rounds.append(Round(access, core, chunk, draw(st.integers(0, 20))))
    return s, rounds


def _batches(frames: list[bytes], chunk: int) -> list[RxBatch]:
    return [RxBatch.of(frames[i : i + chunk]) for i in range(0, len(frames), chunk)]


# ---- the property ------------------------------------------------------------------------------
def _worker(s: Scenario, per_frame_limit: int = 16) -> Worker:
    cfg = WorkerConfig(
        "prop",
        CORE_MAC,
        ip_to_int(CORE_IP),
        24,
        ip_to_int(GW_IP),
        gateway_mac=GW_MAC if s.gateway_known else None,
        batch_size=16,
        per_frame_limit=per_frame_limit,
    )
    worker = Worker(cfg)
    worker.assign_groups(s.groups)
    rules = [SessionRule(RuleOp.INSTALL, x.key, x.group, _endpoint(s, x), x.ip) for x in s.sessions]
    results, _ = worker.apply_rules(rules)
    assert all(r.ok for r in results)
    return worker


def _endpoint(s: Scenario, x: RefSession) -> TrafficEndpoint:
    vmac = next(g.virtual_mac for g in s.groups if g.group_id == x.group)
    if x.cpe:
        return TrafficEndpoint(x.mac, vmac, cm_sid=x.sid, access=AccessType.DOCSIS, cpe_mac=x.cpe)
    return TrafficEndpoint(x.mac, vmac, x.sid)


SKIP = {"arp_replied", "arp_learned", "arp_ignored", "drop_down_bad_arp"}


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@pytest.mark.parametrize("per_frame_limit", [0, 1000], ids=["vectorized", "per_frame"])
@given(case=cases())
def test_batch_path_equals_per_packet_reference(
    per_frame_limit: int, case: tuple[Scenario, list[Round]]
) -> None:
    """Frames that miss the gate are judged all at once (limit 0) or one by one."""
    scenario, rounds = case
    worker = _worker(scenario, per_frame_limit)
    ref = Reference(scenario.groups, scenario.gateway_known)
    ref.sessions = {s.key: RefSession(**vars(s)) for s in scenario.sessions}
    for r in rounds:
        forwarded, punts = [], []
        for batch in _batches(r.access, r.chunk):
            result = worker.process_access(batch)
            forwarded += result.to_core.frames()
            punts += result.punts
        outcomes = [ref.access(f) for f in r.access]
        assert forwarded == [o for n, o in outcomes if n == "forwarded_up"]
        assert punts == [o for n, o in outcomes if n == "punted"]
        for name, _ in outcomes:
            ref.count(name)

        forwarded = []
        for batch in _batches(r.core, r.chunk):
            forwarded += worker.process_core(batch).to_access.frames()
        outcomes = [ref.core(f) for f in r.core]
        assert forwarded == [o for n, o in outcomes if n == "forwarded_down"]
        for name, _ in outcomes:
            ref.count(name)

        if r.remove in ref.sessions:  # a session removed between batches, on both sides
            gone = ref.sessions.pop(r.remove)
            removal = SessionRule(RuleOp.REMOVE, r.remove, 0, TrafficEndpoint(b"", b""))
            assert worker.apply_rules([removal])[1] == [gone.usage()]

    got = {k: v for k, v in worker.counters().items() if v and k not in SKIP}
    got.pop("rx_access", None)
    got.pop("rx_core", None)
    assert got == ref.counters
    expected_usage = sorted((s.usage() for s in ref.sessions.values()), key=lambda u: u.session_key)
    got_usage = sorted(worker.usage(changed_only=False), key=lambda u: u.session_key)
    assert got_usage == expected_usage


@settings(max_examples=500, deadline=None)
@given(
    st.integers(2, 255),
    st.integers(5, 15),
    st.integers(0, 0xFFFF),
    st.binary(min_size=60, max_size=60),
)
def test_incremental_checksum_equals_recomputation(
    ttl: int, ihl: int, ident: int, rest: bytes
) -> None:
    """RFC 1624: for a header with a correct checksum, the fast path's update after TTL - 1
    equals a full recomputation (including the 0x0000 / 0xFFFF corner)."""
    header = bytearray(rest[: 4 * ihl])
    header[0] = 0x40 | ihl
    header[2:4] = (4 * ihl).to_bytes(2, "big")
    header[4:6] = ident.to_bytes(2, "big")
    header[8] = ttl
    header[16:20] = (int(GROUPS[0].pool.network_address) + 1).to_bytes(4, "big")
    header[10:12] = b"\x00\x00"
    header[10:12] = checksum(bytes(header)).to_bytes(2, "big")
    frame = CORE_MAC + GW_MAC + b"\x08\x00" + bytes(header)
    worker = _worker(
        Scenario(
            GROUPS[:1],
            [RefSession(1, 5, 1, client_mac(1), int.from_bytes(header[16:20], "big"))],
            True,
        )
    )
    out = worker.process_core(RxBatch.of([frame])).to_access.frames()
    assert len(out) == 1
    new = bytearray(out[0][22:])
    assert new[8] == ttl - 1
    expected = bytearray(new)
    expected[10:12] = b"\x00\x00"
    assert new[10:12] == checksum(bytes(expected)).to_bytes(2, "big")


# ---- near misses: one field off, through the gate and through the verdicts ---------------------
NEAR = Scenario(
    GROUPS[:1],
    [RefSession(1, 5, 3, client_mac(3), int(GROUPS[0].pool.network_address) + 3)],
    True,
)
GOOD_UP = (
    GROUPS[0].virtual_mac + client_mac(3) + b"\x88\x64\x11\x00\x00\x03"
    + (48).to_bytes(2, "big") + b"\x00\x21"
    + ipv4(NEAR.sessions[0].ip, ip_to_int(SERVER_IP), 64, 26)
)  # fmt: skip
GOOD_DOWN = (
    CORE_MAC + GW_MAC + b"\x08\x00" + ipv4(ip_to_int(SERVER_IP), NEAR.sessions[0].ip, 64, 26)
)


PATHS = [(True, 16), (False, 16), (False, 0)]
PATH_IDS = ["gate", "per_frame", "vectorized"]


@pytest.mark.parametrize("tweak", [None, *UP_TWEAKS], ids=str)
@pytest.mark.parametrize(("alone", "limit"), PATHS, ids=PATH_IDS)
def test_upstream_near_misses(tweak: Tweak | None, alone: bool, limit: int) -> None:
    """Alone in its batch a frame meets the gate; beside a runt, the per-frame checks or
    (limit 0) the vectorized ones."""
    frame = GOOD_UP if tweak is None else _apply(GOOD_UP, tweak)
    worker, ref = _worker(NEAR, limit), Reference(NEAR.groups, True)
    ref.sessions = {s.key: RefSession(**vars(s)) for s in NEAR.sessions}
    frames = [frame] if alone else [frame, b"\x00"]
    result = worker.process_access(RxBatch.of(frames))
    outcome, output = ref.access(frame)
    assert result.to_core.frames() == ([output] if outcome == "forwarded_up" else [])
    assert result.punts == ([output] if outcome == "punted" else [])
    assert worker.counters()[outcome] == 1


@pytest.mark.parametrize("tweak", [None, *DOWN_TWEAKS], ids=str)
@pytest.mark.parametrize(("alone", "limit"), PATHS, ids=PATH_IDS)
def test_downstream_near_misses(tweak: Tweak | None, alone: bool, limit: int) -> None:
    frame = GOOD_DOWN if tweak is None else _apply(GOOD_DOWN, tweak)
    worker, ref = _worker(NEAR, limit), Reference(NEAR.groups, True)
    ref.sessions = {s.key: RefSession(**vars(s)) for s in NEAR.sessions}
    frames = [frame] if alone else [frame, b"\x00"]
    result = worker.process_core(RxBatch.of(frames))
    outcome, output = ref.core(frame)
    assert result.to_access.frames() == ([output] if outcome == "forwarded_down" else [])
    assert worker.counters()[outcome] == 1


# DOCSIS: a modem with the same number as NEAR's PPPoE session (SID 3, group 5) beside it.
NEAR_CABLE = Scenario(
    GROUPS[:1],
    [
        NEAR.sessions[0],
        RefSession(2, 5, 3, cm_mac(3), int(GROUPS[0].pool.network_address) + 4, cpe=cpe_mac(3)),
    ],
    True,
)
GOOD_CABLE = cable_frame(
    GROUPS[0].virtual_mac,
    cm_mac(3),
    3,
    GROUPS[0].virtual_mac,
    cpe_mac(3),
    0x0800,
    ipv4(NEAR_CABLE.sessions[1].ip, ip_to_int(SERVER_IP), 64, 26),
)
GOOD_CABLE_DOWN = (
    CORE_MAC + GW_MAC + b"\x08\x00" + ipv4(ip_to_int(SERVER_IP), NEAR_CABLE.sessions[1].ip, 64, 26)
)


@pytest.mark.parametrize("fix_hcs", [False, True], ids=["hcs_as_is", "hcs_fixed"])
@pytest.mark.parametrize("tweak", [None, *CABLE_TWEAKS], ids=str)
@pytest.mark.parametrize(("alone", "limit"), PATHS, ids=PATH_IDS)
def test_cable_upstream_near_misses(
    tweak: Tweak | None, fix_hcs: bool, alone: bool, limit: int
) -> None:
    frame = GOOD_CABLE if tweak is None else _apply_cable(GOOD_CABLE, tweak, fix_hcs)
    worker, ref = _worker(NEAR_CABLE, limit), Reference(NEAR_CABLE.groups, True)
    ref.sessions = {s.key: RefSession(**vars(s)) for s in NEAR_CABLE.sessions}
    frames = [frame] if alone else [frame, b"\x00"]
    result = worker.process_access(RxBatch.of(frames))
    outcome, output = ref.access(frame)
    assert result.to_core.frames() == ([output] if outcome == "forwarded_up" else [])
    assert result.punts == ([output] if outcome == "punted" else [])
    assert worker.counters()[outcome] == 1
    assert sorted(worker.usage(changed_only=False), key=lambda u: u.session_key) == [
        s.usage() for s in ref.sessions.values()
    ]


@pytest.mark.parametrize("tweak", [None, *DOWN_TWEAKS], ids=str)
@pytest.mark.parametrize(("alone", "limit"), PATHS, ids=PATH_IDS)
def test_cable_downstream_near_misses(tweak: Tweak | None, alone: bool, limit: int) -> None:
    frame = GOOD_CABLE_DOWN if tweak is None else _apply(GOOD_CABLE_DOWN, tweak)
    worker, ref = _worker(NEAR_CABLE, limit), Reference(NEAR_CABLE.groups, True)
    ref.sessions = {s.key: RefSession(**vars(s)) for s in NEAR_CABLE.sessions}
    frames = [frame] if alone else [frame, b"\x00"]
    result = worker.process_core(RxBatch.of(frames))
    outcome, output = ref.core(frame)
    assert result.to_access.frames() == ([output] if outcome == "forwarded_down" else [])
    assert worker.counters()[outcome] == 1


# ---- corrupted DOCSIS frames: never raise, never forward ----------------------------------------
@st.composite
def corrupted_cable(draw: st.DrawFn) -> bytes:
    """A modem's good frame with its HCS, its PDU's CRC (or any PDU byte after the headers),
    its LEN or its SID changed; LEN and SID changes keep a wrong HCS or get a right one."""
    x = draw(st.sampled_from(NEAR_CABLE.sessions[1:]))
    size = draw(st.integers(0, 1400))
    ip = ipv4(x.ip, ip_to_int(SERVER_IP), draw(st.integers(2, 255)), size)
    frame = bytearray(
        cable_frame(GROUPS[0].virtual_mac, x.mac, x.sid, GROUPS[0].virtual_mac, x.cpe, 0x800, ip)
    )
    what = draw(st.sampled_from(["hcs", "crc", "pdu", "len", "sid"]))
    if what == "hcs":
        frame[draw(st.sampled_from([22, 23]))] ^= draw(st.integers(1, 255))
    elif what == "crc":
        frame[draw(st.integers(len(frame) - 4, len(frame) - 1))] ^= draw(st.integers(1, 255))
    elif what == "pdu":
        frame[draw(st.integers(38, len(frame) - 5))] ^= draw(st.integers(1, 255))
    else:
        at = 16 if what == "len" else 20
        old = int.from_bytes(frame[at : at + 2], "big")
        new = draw(st.integers(0, 0xFFFF).filter(lambda v: v != old))
        frame[at : at + 2] = new.to_bytes(2, "big")
        if draw(st.booleans()):
            frame = bytearray(with_hcs(bytes(frame)))
    if draw(st.booleans()):
        frame = frame[: draw(st.integers(0, len(frame)))]
    return bytes(frame)


@settings(max_examples=300, deadline=None)
@pytest.mark.parametrize("limit", [16, 0], ids=["per_frame", "vectorized"])
@given(bad=st.lists(corrupted_cable(), min_size=1, max_size=20))
def test_corrupted_docsis_frames_never_raise_and_never_forward(
    limit: int, bad: list[bytes]
) -> None:
    worker = _worker(NEAR_CABLE, limit)
    result = worker.process_access(RxBatch.of([GOOD_CABLE, *bad, GOOD_CABLE]))
    assert result.to_core.count == 2
    assert result.to_core.rows.tolist() == [0, len(bad) + 1]
    assert result.punts == []
