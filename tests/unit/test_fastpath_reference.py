"""The batch fast path against the per-packet reference (:mod:`data_plane.reference`), byte
for byte.

Random workers — one to three subscriber groups with random virtual MACs and pools in
100.64.0.0/10 (sometimes one of them only held, prepared; sometimes none: a standby), PPPoE
sessions and cable modems with random client, CM and CPE MACs, session ids and SIDs over
their whole ranges, addresses anywhere in their pools, no QoS; a random MRU and row size; the
gateway's MAC static or learned by ARP — take random batches from both ports: good data
frames of random sizes (IPv4 payload 0..1450 bytes, options, PPPoE trailers, Ethernet
padding), and every kind of miss (unknown and foreign sessions, spoofed MACs and addresses,
TTL 0 and 1, bad PPPoE and DOCSIS headers, bad HCS and CRC, wrong lengths, truncations,
control, discovery, management, DHCP and ARP frames, bandwidth requests, garbage). Every
batch must equal the reference: the forwarded frames and the rows they come from, the punts,
the verdict counters and every session's packets, bytes and drops. Each property runs with
the misses judged all at once (``per_frame_limit=0``), with the default limit and one by one;
batches are cut in chunks of 1 to 64 frames, and some are received into a buffer full of
stale bytes (a batch reused), which no verdict or output may depend on.

A frame is drawn as (kind, seed): hypothesis picks the kind and shrinks the lists; the seed
drives a ``random.Random`` that builds the frame (a failing example prints the pairs).

The reference itself is anchored to scapy (PPPoE up and down, checksums recomputed by scapy).
"""

from __future__ import annotations

import ipaddress
import random
import struct
from dataclasses import dataclass, field

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scapy.layers.inet import IP, UDP, IPOption_NOP, IPOption_RR
from scapy.layers.l2 import Ether
from scapy.layers.ppp import PPP, PPPoE
from scapy.packet import Raw

from data_plane.fastpath import PER_FRAME_LIMIT
from data_plane.io.base import HEADROOM, RxBatch
from data_plane.reference import (
    ReferenceBatch,
    access_batch,
    after_hop,
    core_batch,
    forward_access,
    forward_core,
)
from data_plane.verdicts import DOCSIS_MTU, MAX_MRU, Down, Up, classify_access
from data_plane.worker import Worker, WorkerConfig
from vnf.codec.arp import ArpOp, ArpPacket, encode_arp_frame, request
from vnf.codec.docsis import (
    ManagementFrame,
    PacketFrame,
    RequestEh,
    RequestFrame,
    crc16_x25,
    encode_carrier,
    encode_frame,
)
from vnf.codec.ipv4 import internet_checksum
from vnf.model.addresses import ip_to_int, mac_to_str
from vnf.model.group import SubscriberGroup
from vnf.model.session import AccessType, RuleOp, SessionRule, TrafficEndpoint, Usage

pytestmark = pytest.mark.property

CORE_MAC = bytes.fromhex("0200000000c1")
GW_MAC = bytes.fromhex("02000000009f")
OTHER_MAC = bytes.fromhex("0200000000ee")
BROADCAST = b"\xff" * 6
MULTICAST = bytes.fromhex("01005e000001")
CORE_IP, GW_IP = ip_to_int("198.18.0.2"), ip_to_int("198.18.0.1")
SUBSCRIBERS = ipaddress.IPv4Network("100.64.0.0/10")
FABRIC = ipaddress.IPv4Network("198.18.0.0/15")
PHANTOM = SubscriberGroup(0, "none", OTHER_MAC, ipaddress.IPv4Network("100.127.255.0/24"))
"""Stands in for a group when the worker holds none (its frames are nobody's)."""
MODES = {"vectorized": 0, "default": PER_FRAME_LIMIT, "per_frame": 1 << 30}
ARP_HANDLING = {"arp_replied", "arp_learned", "arp_ignored", "drop_down_bad_arp"}
"""What the worker makes of the ARP frames the fast path hands it: not the reference's."""
CONTROL_PROTOCOLS = [0xC021, 0xC023, 0xC223, 0x8021, 0x8057, 0x0057, 0x0000, 0x0020, 0x2100]
SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


# ---- scenarios: groups and sessions ---------------------------------------------------------
@dataclass(frozen=True)
class Sub:
    """One subscriber session: a PPPoE client, or (``docsis``) a cable modem and its CPE."""

    key: int
    group: SubscriberGroup
    docsis: bool
    ident: int
    """PPPoE session id, or SID."""
    mac: bytes
    """The client's MAC, or the CM's."""
    cpe: bytes
    ip: int

    def rule(self, op: RuleOp = RuleOp.INSTALL) -> SessionRule:
        vmac = self.group.virtual_mac
        if self.docsis:
            access = AccessType.DOCSIS
            ep = TrafficEndpoint(self.mac, vmac, cm_sid=self.ident, access=access, cpe_mac=self.cpe)
        else:
            ep = TrafficEndpoint(self.mac, vmac, self.ident)
        return SessionRule(op, self.key, self.group.group_id, ep, self.ip)


@dataclass(frozen=True)
class Scenario:
    groups: tuple[SubscriberGroup, ...]
    prepared: frozenset[int]
    subs: tuple[Sub, ...]
    gateway: bool
    """A static gateway MAC; otherwise learned from the gateway's ARP (core frames)."""
    mru: int
    row: int

    @property
    def served(self) -> list[Sub]:
        return [x for x in self.subs if x.group.group_id not in self.prepared]

    @property
    def docsis_mtu(self) -> int:
        """The fast path's DOCSIS MTU: 1500, as long as the PDU's CRC fits the row."""
        return min(DOCSIS_MTU, self.row - HEADROOM - 14 - 4)


def unicast_macs() -> st.SearchStrategy[bytes]:
    return st.binary(min_size=6, max_size=6).map(lambda b: bytes((b[0] & 0xFE,)) + b[1:])


@st.composite
def scenarios(draw: st.DrawFn, *, serving: bool = False) -> Scenario:
    """Groups, sessions and settings; ``serving``: at least one served session and a known
    gateway (for batches that must all forward)."""
    count = draw(st.sampled_from([1, 2, 3]) if serving else st.sampled_from([1, 2, 3, 1, 0]))
    blocks = draw(
        st.lists(st.integers(0, (1 << 14) - 1), min_size=count, max_size=count, unique=True)
    )
    vmacs = draw(st.lists(unicast_macs(), min_size=count, max_size=count, unique=True))
    ids = draw(st.lists(st.integers(1, 1 << 20), min_size=count, max_size=count, unique=True))
    groups = []
    for block, vmac, gid in zip(blocks, vmacs, ids, strict=True):
        prefix = draw(st.integers(24, 30))
        network = int(SUBSCRIBERS.network_address) + (block << 8)
        groups.append(SubscriberGroup(gid, "site", vmac, ipaddress.IPv4Network((network, prefix))))
    prepared: frozenset[int] = frozenset()
    if count >= 2 and draw(st.integers(0, 3)) == 0:
        prepared = frozenset({groups[-1].group_id})
    subs: list[Sub] = []
    macs: list[bytes] = []
    taken: set[tuple[int, bool, int]] = set()
    ips: set[int] = set()
    least = 1 if serving else 0
    key_lists = st.lists(st.integers(1, (1 << 64) - 1), min_size=least, max_size=12, unique=True)
    keys = draw(key_lists if groups else st.just([]))
    for key in keys:
        g = draw(st.sampled_from(groups[:1] if serving and not subs else groups))
        docsis = draw(st.booleans())
        top = 0x3FFF if docsis else 0xFFFE
        ident = draw(st.one_of(st.integers(1, 3), st.integers(1, top)))
        ip = int(g.pool.network_address) + draw(st.integers(0, g.pool.num_addresses - 1))
        reuse = bool(macs) and draw(st.booleans())  # a MAC two sessions share
        mac = draw(st.sampled_from(macs)) if reuse else draw(unicast_macs())
        cpe = draw(unicast_macs()) if docsis else b""
        if (g.group_id, docsis, ident) in taken or ip in ips:
            continue
        taken.add((g.group_id, docsis, ident))
        ips.add(ip)
        macs.append(mac)
        subs.append(Sub(key, g, docsis, ident, mac, cpe, ip))
    mru = draw(st.sampled_from([MAX_MRU, MAX_MRU, 1480, 576, 68]))
    row = draw(st.sampled_from([2048, 2048, 2048, 1024, 256]))
    gateway = serving or draw(st.sampled_from([True, True, False]))
    return Scenario(tuple(groups), prepared, tuple(subs), gateway, mru, row)


def make_worker(s: Scenario, per_frame_limit: int) -> Worker:
    cfg = WorkerConfig(
        "reference",
        CORE_MAC,
        CORE_IP,
        24,
        GW_IP,
        gateway_mac=GW_MAC if s.gateway else None,
        batch_size=8,
        mru=s.mru,
        per_frame_limit=per_frame_limit,
    )
    worker = Worker(cfg)
    worker.assign_groups(list(s.groups), s.prepared)
    results, _ = worker.apply_rules([x.rule() for x in s.subs])
    assert all(r.ok for r in results), results
    return worker


# ---- frame builders ------------------------------------------------------------------------
def ipv4(
    src: int,
    dst: int,
    payload: bytes,
    *,
    ttl: int = 64,
    options: bytes = b"",
    tos: int = 0,
    ident: int = 0,
    frag: int = 0,
    proto: int = 17,
) -> bytes:
    """An IPv4 packet with a right header checksum (``options``: a multiple of 4 bytes)."""
    ihl = 5 + len(options) // 4
    total = 4 * ihl + len(payload)
    fields = (0x40 | ihl, tos, total, ident, frag, ttl, proto, 0, src, dst)
    header = bytearray(struct.pack("!BBHHHBBHII", *fields) + options)
    header[10:12] = internet_checksum(bytes(header)).to_bytes(2, "big")
    return bytes(header) + payload


def payload_size(rng: random.Random, cap: int) -> int:
    """Mostly small, often anything up to ``cap``, sometimes a boundary."""
    r = rng.random()
    if r < 0.5:
        return rng.randint(0, min(40, cap))
    if r < 0.85:
        return rng.randint(0, cap)
    return rng.choice([0, 1, 25, 26, cap - 1, cap]) if cap > 0 else 0


def packet(
    rng: random.Random,
    src: int,
    dst: int,
    *,
    clean: bool = False,
    cap: int = 1450,
    ttl: int | None = None,
    total: int | None = None,
) -> bytes:
    """A random IPv4 packet (payload up to ``cap`` bytes, or sized to ``total``); ``clean``:
    no options, as the gates take it."""
    options = b""
    if not clean and rng.random() < 0.25:
        options = rng.randbytes(4 * rng.randint(1, 10))
    size = payload_size(rng, cap) if total is None else max(0, total - 20 - len(options))
    payload = bytearray(rng.randbytes(size))
    proto = rng.choice([17, 17, 6, 1, rng.randrange(256)])
    if proto == 17 and payload[2:4] == b"\x00\x43":
        payload[3] = 0x44  # to the DHCP server port (DOCSIS punts that) only when asked
    frag = rng.choice([0, 0, 0x4000, rng.randrange(0x10000)])
    return ipv4(
        src,
        dst,
        bytes(payload),
        ttl=rng.randint(2, 255) if ttl is None else ttl,
        options=options,
        tos=rng.randrange(256),
        ident=rng.randrange(0x10000),
        frag=frag,
        proto=proto,
    )


def set16(data: bytes, at: int, value: int) -> bytes:
    return data[:at] + (value & 0xFFFF).to_bytes(2, "big") + data[at + 2 :]


def fix_checksum(ip: bytes) -> bytes:
    ihl4 = max(20, (ip[0] & 0x0F) * 4)
    header = bytearray(ip[:ihl4])
    header[10:12] = b"\x00\x00"
    header[10:12] = internet_checksum(bytes(header)).to_bytes(2, "big")
    return bytes(header) + ip[ihl4:]


def broken_ipv4(rng: random.Random, ip: bytes, how: str) -> bytes:
    """``ip`` with one header field wrong (checksum fixed or not)."""
    ihl4 = (ip[0] & 0x0F) * 4
    total = int.from_bytes(ip[2:4], "big")
    if how == "total_long":
        out = set16(ip, 2, total + rng.choice([1, 2, 3, 50]))
    elif how == "total_short":
        out = set16(ip, 2, rng.choice([0, 19, ihl4 - 1, ihl4, total - 1, rng.randrange(total + 1)]))
    elif how == "ihl":
        out = bytes((0x40 | rng.randint(0, 4),)) + ip[1:]
    elif how == "version":
        out = bytes((rng.choice([0, 6, 5, 15]) << 4 | (ip[0] & 0x0F),)) + ip[1:]
    elif how == "bad_checksum":
        return ip[:10] + bytes((ip[10] ^ rng.randint(1, 255),)) + ip[11:]
    else:
        raise AssertionError(how)
    return fix_checksum(out) if rng.random() < 0.5 else out


def on_the_wire(rng: random.Random, frame: bytes, clean: bool = False) -> bytes:
    """Padded to 60 bytes (or not: a veth does not pad); some driver junk after it."""
    if len(frame) < 60 and rng.random() < 0.5:
        frame += bytes(60 - len(frame))
    if not clean and rng.random() < 0.2:
        frame += rng.randbytes(rng.randint(1, 24))
    return frame


def flip(rng: random.Random, frame: bytes) -> bytes:
    if not frame:
        return frame
    at = rng.randrange(min(len(frame), 64))
    return frame[:at] + bytes((frame[at] ^ rng.randint(1, 255),)) + frame[at + 1 :]


def truncate(rng: random.Random, frame: bytes) -> bytes:
    return frame[: rng.choice([rng.randrange(max(1, len(frame))), 13, 19, 21, 23, 33, 37, 41])]


def pppoe(
    dst: bytes,
    src: bytes,
    session_id: int,
    body: bytes,
    *,
    proto: int = 0x0021,
    ver_type: int = 0x11,
    code: int = 0,
    length: int | None = None,
) -> bytes:
    """A PPPoE session frame; LENGTH is the PPP protocol and ``body`` unless given."""
    payload = proto.to_bytes(2, "big") + body
    plen = len(payload) if length is None else length
    head = struct.pack("!BBHH", ver_type, code, session_id, plen & 0xFFFF)
    return dst + src + b"\x88\x64" + head + payload


def cable(
    dst: bytes,
    cm: bytes,
    sid: int,
    pdu_dst: bytes,
    cpe: bytes,
    payload: bytes,
    *,
    ethertype: int = 0x0800,
    mini_slots: int = 0,
) -> bytes:
    """An upstream carrier: a Packet PDU with a Request EH naming ``sid`` (the codec's)."""
    pdu = PacketFrame(pdu_dst, cpe, ethertype, payload, (RequestEh(mini_slots, sid),))
    return encode_carrier(dst, cm, encode_frame(pdu))


def with_hcs(frame: bytes) -> bytes:
    """``frame`` with the HCS of its 8-byte (Request EH) MAC header recomputed."""
    if len(frame) < 24:
        return frame
    return frame[:22] + struct.pack("<H", crc16_x25(frame[14:22])) + frame[24:]


def server(rng: random.Random) -> int:
    return int(FABRIC.network_address) + rng.randrange(FABRIC.num_addresses)


def random_mac(rng: random.Random) -> bytes:
    return bytes((rng.randrange(256) & 0xFE,)) + rng.randbytes(5)


def group_macs(s: Scenario) -> list[bytes]:
    return [g.virtual_mac for g in s.groups] or [OTHER_MAC]


def pick(rng: random.Random, s: Scenario, docsis: bool) -> Sub:
    """A session of the kind asked for (served or held), or a made-up one nobody holds."""
    mine = [x for x in s.subs if x.docsis == docsis]
    if mine and rng.random() < 0.9:
        return rng.choice(mine)
    g = rng.choice(s.groups) if s.groups else PHANTOM
    ident = rng.randint(1, 0x3FFF if docsis else 0xFFFE)
    ip = int(g.pool.network_address) + rng.randrange(g.pool.num_addresses)
    return Sub(0, g, docsis, ident, random_mac(rng), random_mac(rng), ip)


# ---- upstream frames --------------------------------------------------------------------------
PPPOE_FAULTS = [
    "none", "unknown_session", "other_group", "sid_as_session_id", "spoofed_mac",
    "spoofed_ip", "ttl", "ver_type", "code", "length_long", "length_short", "total_long",
    "total_short", "ihl", "version", "bad_checksum", "control", "truncate", "to_other",
    "flip", "trailer",
]  # fmt: skip
DOCSIS_FAULTS = [
    "none", "unknown_sid", "other_group", "session_id_as_sid", "spoofed_cm", "spoofed_cpe",
    "pdu_dst", "bad_hcs", "bad_crc", "crc_itself", "len", "elen", "sid_high", "fc", "dhcp",
    "dhcp_fragment", "arp", "ipv6", "ttl", "spoofed_ip", "total_long", "total_short", "ihl",
    "version", "bad_checksum", "truncate", "to_other", "flip", "pdu_padding",
]  # fmt: skip
OTHER_UP = [
    "runt", "garbage", "garbage_to_us", "discovery", "arp", "ipv4", "claim", "request",
    "management", "management_short",
]  # fmt: skip
UP_KINDS = (
    ["pppoe:none"] * 10
    + ["docsis:none"] * 10
    + [f"pppoe:{f}" for f in PPPOE_FAULTS[1:]]
    + [f"docsis:{f}" for f in DOCSIS_FAULTS[1:]]
    + OTHER_UP
)


def build_up(s: Scenario, kind: str, seed: int) -> bytes:
    """An ACCESS-port frame of ``kind`` (``pppoe:fault``, ``docsis:fault`` or another)."""
    rng = random.Random(seed)
    family, _, fault = kind.partition(":")
    if family == "pppoe":
        return pppoe_up(rng, s, fault)
    if family == "docsis":
        return docsis_up(rng, s, fault)
    return other_up(rng, s, family)


def pppoe_up(
    rng: random.Random, s: Scenario, fault: str, clean: bool = False, x: Sub | None = None
) -> bytes:
    """A PPPoE frame of session ``x`` (default: one picked) with ``fault``."""
    x = x or pick(rng, s, docsis=False)
    dst, src, session_id, src_ip = x.group.virtual_mac, x.mac, x.ident, x.ip
    if fault == "unknown_session":
        session_id = rng.choice([rng.randint(0, 0xFFFF), (session_id + 1) & 0xFFFF, 0xFFFF])
    elif fault == "other_group":
        dst = rng.choice(group_macs(s))
    elif fault == "sid_as_session_id":
        y = pick(rng, s, docsis=True)
        dst, src, session_id, src_ip = y.group.virtual_mac, y.mac, y.ident, y.ip
    elif fault == "spoofed_mac":
        src = random_mac(rng)
    elif fault == "spoofed_ip":
        src_ip = rng.choice([src_ip + 1, src_ip ^ 0x100, server(rng)]) & 0xFFFF_FFFF
    cap = min(1450, s.row - HEADROOM - 90)
    ttl = rng.choice([0, 1]) if fault == "ttl" else None
    ip = packet(rng, src_ip, server(rng), clean=clean, cap=cap, ttl=ttl)
    if fault in ("total_long", "total_short", "ihl", "version", "bad_checksum"):
        ip = broken_ipv4(rng, ip, fault)
    body, proto, length = ip, 0x0021, None
    if fault == "trailer":
        body += rng.randbytes(rng.randint(1, 8))
    elif fault == "control":
        proto = rng.choice([*CONTROL_PROTOCOLS, rng.randrange(0x10000)])
        body = rng.randbytes(rng.randint(0, 30))
    elif fault == "length_long":
        length = len(body) + 2 + rng.choice([1, 2, 3, 40])
    elif fault == "length_short":
        length = rng.choice([0, 1, 2, 3, 21, 22, len(body) + 1, rng.randrange(len(body) + 2)])
    ver_type, code = 0x11, 0
    if fault == "ver_type":
        ver_type = rng.choice([0x10, 0x12, 0x21, 0x01, rng.randrange(256)])
    elif fault == "code":
        code = rng.choice([0x09, 0xA7, rng.randint(1, 255)])
    if fault == "to_other":
        dst = rng.choice([OTHER_MAC, BROADCAST, MULTICAST, random_mac(rng)])
    frame = pppoe(dst, src, session_id, body, proto=proto, ver_type=ver_type, code=code)
    if length is not None:
        frame = set16(frame, 18, length)
    if fault == "truncate":
        return truncate(rng, frame)
    frame = on_the_wire(rng, frame, clean)
    return flip(rng, frame) if fault == "flip" else frame


def docsis_up(
    rng: random.Random, s: Scenario, fault: str, clean: bool = False, x: Sub | None = None
) -> bytes:
    """A carrier frame of modem ``x`` (default: one picked) with ``fault``."""
    x = x or pick(rng, s, docsis=True)
    dst, cm, sid, cpe, src_ip = x.group.virtual_mac, x.mac, x.ident, x.cpe, x.ip
    pdu_dst, ethertype = dst, 0x0800
    if fault == "unknown_sid":
        sid = rng.choice([rng.randint(0, 0x3FFF), (sid + 1) & 0x3FFF])
    elif fault == "other_group":
        dst = pdu_dst = rng.choice(group_macs(s))
    elif fault == "session_id_as_sid":
        y = pick(rng, s, docsis=False)
        dst, cm, sid, src_ip = y.group.virtual_mac, y.mac, y.ident & 0x3FFF, y.ip
        pdu_dst = dst
    elif fault == "spoofed_cm":
        cm = random_mac(rng)
    elif fault == "spoofed_cpe":
        cpe = random_mac(rng)
    elif fault == "pdu_dst":
        pdu_dst = rng.choice([OTHER_MAC, BROADCAST, MULTICAST, *group_macs(s)])
    elif fault == "spoofed_ip":
        src_ip = rng.choice([src_ip + 1, 0, server(rng)]) & 0xFFFF_FFFF
    cap = min(1450, s.row - HEADROOM - 90)
    ttl = rng.choice([0, 1]) if fault == "ttl" else None
    ip = packet(rng, src_ip, server(rng), clean=clean, cap=cap, ttl=ttl)
    if fault in ("total_long", "total_short", "ihl", "version", "bad_checksum"):
        ip = broken_ipv4(rng, ip, fault)
    elif fault in ("dhcp", "dhcp_fragment"):
        dhcp = struct.pack("!HHHH", 68, 67, 8 + 20, 0) + rng.randbytes(20)
        frag = 0 if fault == "dhcp" else rng.choice([1, 0x2001, 0x00FF])
        to = rng.choice([0xFFFF_FFFF, server(rng)])
        ip = ipv4(rng.choice([0, src_ip]), to, dhcp, frag=frag, ttl=rng.randint(0, 255))
        pdu_dst = rng.choice([pdu_dst, BROADCAST])
    elif fault == "arp":
        ethertype, ip, pdu_dst = 0x0806, rng.randbytes(28), rng.choice([BROADCAST, pdu_dst])
    elif fault == "ipv6":
        ethertype, ip = 0x86DD, b"\x60" + rng.randbytes(rng.randint(19, 60))
    if fault == "pdu_padding":
        ip += rng.randbytes(rng.randint(1, 30))
    if fault == "to_other":
        dst = rng.choice([OTHER_MAC, BROADCAST, MULTICAST, random_mac(rng)])
    frame = cable(
        dst, cm, sid, pdu_dst, cpe, ip, ethertype=ethertype, mini_slots=rng.randrange(256)
    )
    return docsis_broken(rng, frame, fault, clean)


def docsis_broken(rng: random.Random, frame: bytes, fault: str, clean: bool) -> bytes:
    """The header and CRC faults of a built carrier frame."""
    b = bytearray(frame)
    end = 20 + int.from_bytes(frame[16:18], "big")  # the PDU's end, CRC included
    fix = rng.random() < 0.8
    if fault == "bad_hcs":
        b[rng.choice([22, 23])] ^= rng.randint(1, 255)
    elif fault == "bad_crc":
        b[rng.randrange(24, end - 4)] ^= rng.randint(1, 255)
    elif fault == "crc_itself":
        b[rng.randrange(end - 4, end)] ^= rng.randint(1, 255)
    elif fault == "len":
        delta = rng.choice([-1, 1, -4, 4, -40, 200, -(end - 20) + rng.randint(0, 30)])
        b[16:18] = ((end - 20 + delta) & 0xFFFF).to_bytes(2, "big")
    elif fault == "elen":
        b[15] = rng.choice([0, 3, 5, 8, rng.randrange(256)])
    elif fault == "sid_high":
        b[20] |= rng.choice([0x40, 0x80, 0xC0])
    elif fault == "fc":
        b[14] = rng.choice([0x00, 0x03, 0x81, 0x41, 0xC5, 0xC9, rng.randrange(256)])
    changed_header = fault in ("len", "elen", "sid_high", "fc")
    out = with_hcs(bytes(b)) if changed_header and fix else bytes(b)
    if fault == "truncate":
        return truncate(rng, out)
    if fault == "flip":
        return flip(rng, out)
    return out if clean else on_the_wire(rng, out)


def other_up(rng: random.Random, s: Scenario, kind: str) -> bytes:
    """Frames that name no session: runts, garbage, discovery, management, requests."""
    dst = rng.choice([*group_macs(s), BROADCAST, OTHER_MAC])
    src = random_mac(rng)
    if kind == "runt":
        return rng.randbytes(rng.randint(0, 13))
    if kind == "garbage":
        return rng.randbytes(rng.randint(14, 100))
    if kind == "garbage_to_us":
        ethertype = rng.choice([b"\x88\x64", b"\x88\xb6", rng.randbytes(2)])
        return dst + src + ethertype + rng.randbytes(rng.randint(0, 70))
    if kind == "discovery":
        code = rng.choice([0x09, 0x19, 0xA7, rng.randrange(256)])
        tags = b"\x01\x01\x00\x00"
        body = struct.pack("!BBHH", 0x11, code, rng.choice([0, 1]), len(tags)) + tags
        return on_the_wire(rng, dst + src + b"\x88\x63" + body)
    if kind == "arp":
        arp = request(src, rng.randrange(1 << 32), GW_IP)
        return on_the_wire(rng, encode_arp_frame(BROADCAST, src, arp))
    if kind == "ipv4":
        return on_the_wire(rng, dst + src + b"\x08\x00" + packet(rng, 0, server(rng), cap=60))
    if kind == "claim":
        return on_the_wire(rng, BROADCAST + src + b"\x88\xb5vnf-claim" + rng.randbytes(4))
    if kind == "request":
        req = RequestFrame(rng.randint(0, 0x3FFF), rng.randrange(256), rng.random() < 0.5)
        return encode_carrier(dst, src, encode_frame(req))
    timing = rng.random() < 0.5
    ehdr = (RequestEh(0, rng.randint(1, 0x3FFF)),) if rng.random() < 0.3 else ()
    mgmt = ManagementFrame(dst, src, 1, rng.randrange(256), rng.randbytes(8), ehdr, timing)
    frame = encode_carrier(dst, src, encode_frame(mgmt))
    return frame[: rng.randint(14, 19)] if kind == "management_short" else frame


# ---- downstream frames ----------------------------------------------------------------------
SUB_FAULTS = [
    "none", "ttl", "options", "too_big", "at_limit", "bad_checksum", "total_long",
    "total_short", "ihl", "version", "truncate", "to_other", "ethertype", "flip",
]  # fmt: skip
OTHER_DOWN = [
    "no_session", "outside", "core_address", "arp_request", "arp_reply", "arp_garbage",
    "runt", "garbage",
]  # fmt: skip
DOWN_KINDS = ["sub:none"] * 16 + [f"sub:{f}" for f in SUB_FAULTS[1:]] + OTHER_DOWN


def build_down(s: Scenario, kind: str, seed: int) -> bytes:
    """A CORE-port frame of ``kind``."""
    rng = random.Random(seed)
    family, _, fault = kind.partition(":")
    if family == "sub":
        return sub_down(rng, s, fault)
    return other_down(rng, s, family)


def core_frame(rng: random.Random, ip: bytes, clean: bool = False) -> bytes:
    src = rng.choice([GW_MAC, random_mac(rng)])
    return on_the_wire(rng, CORE_MAC + src + b"\x08\x00" + ip, clean)


def sub_down(
    rng: random.Random, s: Scenario, fault: str, clean: bool = False, x: Sub | None = None
) -> bytes:
    """A core frame to session ``x``'s address (default: one picked) with ``fault``."""
    x = x or pick(rng, s, docsis=rng.random() < 0.5)
    limit = s.docsis_mtu if x.docsis else s.mru
    cap = min(1450, s.row - HEADROOM - 60, limit - 20)
    ttl = rng.choice([0, 1]) if fault == "ttl" else None
    total = None
    if fault == "too_big":
        total = limit + rng.choice([1, 2, 8, 20])
    elif fault == "at_limit":
        total = limit + rng.choice([0, 0, -1, 1])
    ip = packet(
        rng, server(rng), x.ip, clean=clean or fault != "options", cap=cap, ttl=ttl, total=total
    )
    if fault in ("total_long", "total_short", "ihl", "version", "bad_checksum"):
        ip = broken_ipv4(rng, ip, fault)
    frame = core_frame(rng, ip, clean)
    if fault == "truncate":
        return truncate(rng, frame)
    if fault == "to_other":
        return rng.choice([OTHER_MAC, BROADCAST, MULTICAST, GW_MAC]) + frame[6:]
    if fault == "ethertype":
        return frame[:12] + rng.choice([b"\x86\xdd", b"\x88\x64", rng.randbytes(2)]) + frame[14:]
    return flip(rng, frame) if fault == "flip" else frame


def other_down(rng: random.Random, s: Scenario, kind: str) -> bytes:
    g = rng.choice(s.groups) if s.groups else PHANTOM
    if kind == "no_session":
        address = int(g.pool.network_address) + rng.randrange(g.pool.num_addresses)
        return core_frame(rng, packet(rng, server(rng), address, cap=60))
    if kind == "outside":
        address = rng.choice(
            [server(rng), rng.randrange(1 << 32), int(g.pool.broadcast_address) + 1]
        )
        return core_frame(rng, packet(rng, server(rng), address & 0xFFFF_FFFF, cap=60))
    if kind == "core_address":
        return core_frame(rng, packet(rng, server(rng), CORE_IP, cap=60))
    dst = rng.choice([CORE_MAC, BROADCAST, OTHER_MAC])
    if kind == "arp_request":
        target = rng.choice([CORE_IP, GW_IP, server(rng)])
        return on_the_wire(rng, encode_arp_frame(dst, GW_MAC, request(GW_MAC, GW_IP, target)))
    if kind == "arp_reply":
        reply = ArpPacket(ArpOp.REPLY, GW_MAC, GW_IP, CORE_MAC, CORE_IP)
        return on_the_wire(rng, encode_arp_frame(dst, GW_MAC, reply))
    if kind == "arp_garbage":
        return dst + GW_MAC + b"\x08\x06" + rng.randbytes(rng.randint(0, 40))
    if kind == "runt":
        return rng.randbytes(rng.randint(0, 13))
    return rng.randbytes(rng.randint(14, 100))


# ---- comparing a batch --------------------------------------------------------------------------
def counter_name(verdict: Up | Down) -> str:
    """The :meth:`Worker.counters` key that counts ``verdict``."""
    # Not a dict: Up.FORWARD == Down.FORWARD == 0 as ints.
    named: list[tuple[Up | Down, str]] = [
        (Up.FORWARD, "forwarded_up"),
        (Up.PUNT, "punted"),
        (Down.FORWARD, "forwarded_down"),
        (Down.ARP, "arp_in"),
    ]
    for v, name in named:
        if type(v) is type(verdict) and v == verdict:
            return name
    way = "up" if isinstance(verdict, Up) else "down"
    return f"drop_{way}_{verdict.name.lower()}"


@dataclass
class Snapshot:
    counters: dict[str, int]
    usage: dict[int, Usage]

    @classmethod
    def of(cls, worker: Worker) -> Snapshot:
        keys = worker.session_keys()
        usage = {k: u for k in keys if (u := worker.sessions.usage_of(k)) is not None}
        return cls(worker.counters(), usage)

    def since(self, before: Snapshot) -> tuple[dict[str, int], dict[int, Usage]]:
        """Non-zero counter deltas (the ARP handling's left out) and per-session deltas."""
        counters = {
            k: v - before.counters.get(k, 0)
            for k, v in self.counters.items()
            if v != before.counters.get(k, 0) and k not in ARP_HANDLING
        }
        usage = {}
        for key, new in self.usage.items():
            old = before.usage.get(key, Usage(key))
            delta = Usage(
                key,
                new.up_packets - old.up_packets,
                new.up_bytes - old.up_bytes,
                new.down_packets - old.down_packets,
                new.down_bytes - old.down_bytes,
                new.dropped - old.dropped,
            )
            if delta != Usage(key):
                usage[key] = delta
        return counters, usage


def expected_counters(ref: ReferenceBatch[Up] | ReferenceBatch[Down], rx: str) -> dict[str, int]:
    counts = {counter_name(v): n for v, n in ref.counts.items() if n}
    if ref.verdicts:
        counts[rx] = len(ref.verdicts)
    return counts


def describe(frames: list[bytes], ref: ReferenceBatch[Up] | ReferenceBatch[Down]) -> str:
    """Every frame of a batch with the reference's verdict (for a failure's message)."""
    lines = [
        f"{i}: {v.name} {f.hex()}"
        for i, (f, v) in enumerate(zip(frames, ref.verdicts, strict=True))
    ]
    return "\n".join(lines)


def new_batch(frames: list[bytes], row: int, stale: int | None) -> tuple[RxBatch, list[bytes]]:
    """A batch holding ``frames`` (truncated to the row, as a socket would), received into
    a buffer of stale bytes when ``stale`` seeds them; and copies of what it holds."""
    batch = RxBatch(max(1, len(frames)), row)
    if stale is not None:
        junk = random.Random(stale).randbytes(batch.buf.size)
        batch.buf[:] = np.frombuffer(junk, dtype=np.uint8).reshape(batch.buf.shape)
    batch.fill(frames)
    return batch, batch.frames()


def next_hop(worker: Worker) -> bytes | None:
    mac = worker.gateway_mac
    return None if mac is None else mac + CORE_MAC + b"\x08\x00"


def check_access(worker: Worker, frames: list[bytes], row: int, stale: int | None) -> None:
    batch, held = new_batch(frames, row, stale)
    ref = access_batch(held, worker.sessions, next_hop(worker))
    before = Snapshot.of(worker)
    result = worker.process_access(batch)
    why = describe(held, ref)
    assert ref.refused == [], why
    assert result.to_core.rows.tolist() == ref.forwarded, why
    assert result.to_core.frames() == ref.outputs, why
    assert result.punts == ref.handed_on, why
    counters, usage = Snapshot.of(worker).since(before)
    assert counters == expected_counters(ref, "rx_access"), why
    assert usage == ref.usage, why


def check_core(worker: Worker, frames: list[bytes], s: Scenario, stale: int | None) -> None:
    batch, held = new_batch(frames, s.row, stale)
    ref = core_batch(held, worker.sessions, CORE_MAC, s.mru, s.docsis_mtu)
    before = Snapshot.of(worker)
    result = worker.process_core(batch)
    why = describe(held, ref)
    assert ref.refused == [], why
    assert result.to_access.rows.tolist() == ref.forwarded, why
    assert result.to_access.frames() == ref.outputs, why
    assert result.punts == []
    counters, usage = Snapshot.of(worker).since(before)
    assert counters == expected_counters(ref, "rx_core"), why
    assert usage == ref.usage, why


def chunks(frames: list[bytes], size: int) -> list[list[bytes]]:
    return [frames[i : i + size] for i in range(0, len(frames), size)]


# ---- the properties ---------------------------------------------------------------------------
Spec = tuple[str, int]
"""(kind, seed) of one frame."""


@dataclass(frozen=True)
class Round:
    access: list[Spec]
    core: list[Spec]
    chunk: int
    stale: int | None
    remove: int = field(default=-1)
    """Index of a session removed after the round (-1: none)."""


def specs(kinds: list[str], max_size: int) -> st.SearchStrategy[list[Spec]]:
    seeds = st.integers(0, (1 << 32) - 1)
    return st.lists(st.tuples(st.sampled_from(kinds), seeds), max_size=max_size)


def rounds(count: int = 3, max_size: int = 24) -> st.SearchStrategy[list[Round]]:
    one = st.builds(
        Round,
        specs(UP_KINDS, max_size),
        specs(DOWN_KINDS, max_size),
        st.sampled_from([64, 1, 3, 17]),
        st.one_of(st.none(), st.integers(0, 1000)),
        st.integers(-1, 12),
    )
    return st.lists(one, min_size=1, max_size=count)


@SETTINGS
@pytest.mark.parametrize("limit", MODES.values(), ids=MODES.keys())
@given(s=scenarios(), plan=rounds())
def test_batches_equal_the_reference(limit: int, s: Scenario, plan: list[Round]) -> None:
    """Mixed batches from both ports, round after round (a session removed in between; an
    unknown gateway learned from its ARP on the core port): every batch equals the
    reference."""
    worker = make_worker(s, limit)
    for r in plan:
        for part in chunks([build_up(s, k, seed) for k, seed in r.access], r.chunk):
            check_access(worker, part, s.row, r.stale)
        for part in chunks([build_down(s, k, seed) for k, seed in r.core], r.chunk):
            check_core(worker, part, s, r.stale)
        if 0 <= r.remove < len(s.subs) and s.subs[r.remove].key in worker.sessions:
            results, _ = worker.apply_rules([s.subs[r.remove].rule(RuleOp.REMOVE)])
            assert results[0].ok


@st.composite
def clean_batches(draw: st.DrawFn) -> tuple[Scenario, list[bytes], list[bytes], int | None]:
    """Served sessions' good frames only, both ways: every one forwards (the gates)."""
    s = draw(scenarios(serving=True))
    served = s.served
    assert served
    seeds = st.lists(st.integers(0, (1 << 32) - 1), min_size=1, max_size=40)
    up, down = [], []
    for seed in draw(seeds):
        rng = random.Random(seed)
        x = rng.choice(served)
        build = docsis_up if x.docsis else pppoe_up
        up.append(build(rng, s, "none", True, x))
    for seed in draw(seeds):
        rng = random.Random(seed)
        down.append(sub_down(rng, s, "none", True, rng.choice(served)))
    return s, up, down, draw(st.one_of(st.none(), st.integers(0, 1000)))


@SETTINGS
@pytest.mark.parametrize("limit", MODES.values(), ids=MODES.keys())
@given(case=clean_batches())
def test_all_valid_batches_forward_everything_as_the_reference(
    limit: int, case: tuple[Scenario, list[bytes], list[bytes], int | None]
) -> None:
    s, up, down, stale = case
    worker = make_worker(s, limit)
    check_access(worker, up, s.row, stale)
    check_core(worker, down, s, stale)
    counters = worker.counters()
    assert (counters["forwarded_up"], counters["forwarded_down"]) == (len(up), len(down))


# ---- the reference alone: total, and anchored to scapy ----------------------------------------
@pytest.fixture(scope="module")
def anchor() -> Worker:
    """One group, PPPoE session 0x1234 (key 7) of client 02:..:01 at 100.64.3.9."""
    group = SubscriberGroup(
        3, "site", bytes.fromhex("020000000103"), ipaddress.IPv4Network("100.64.3.0/24")
    )
    s = Scenario(
        (group,),
        frozenset(),
        (
            Sub(
                7, group, False, 0x1234, bytes.fromhex("020000000001"), b"", ip_to_int("100.64.3.9")
            ),
        ),
        True,
        MAX_MRU,
        2048,
    )
    return make_worker(s, PER_FRAME_LIMIT)


ANCHOR_OPTIONS: list[list[object]] = [
    [],
    [IPOption_NOP()] * 4,
    [IPOption_RR(routers=["198.18.0.1"])],
]


@pytest.mark.parametrize("options", ANCHOR_OPTIONS, ids=["plain", "nops", "record_route"])
@pytest.mark.parametrize("ttl", [2, 64, 255])
def test_reference_upstream_equals_scapy(anchor: Worker, options: list[object], ttl: int) -> None:
    ip = IP(src="100.64.3.9", dst="198.18.7.7", ttl=ttl, id=0xBEEF, options=options)
    pkt = Ether(dst="02:00:00:00:01:03", src="02:00:00:00:00:01") / PPPoE(sessionid=0x1234)
    pkt = pkt / PPP(proto=0x0021) / ip / UDP(sport=1, dport=2) / Raw(b"x" * 9)
    frame = bytes(pkt) + bytes(12)  # Ethernet padding
    verdict, out = forward_access(frame, anchor.sessions, GW_MAC + CORE_MAC + b"\x08\x00")
    hopped = IP(bytes(pkt[IP]))
    hopped.ttl -= 1
    del hopped.chksum  # scapy recomputes it
    expected = Ether(dst=mac_to_str(GW_MAC), src=mac_to_str(CORE_MAC), type=0x0800) / hopped
    assert (verdict, out) == (Up.FORWARD, bytes(expected))


@pytest.mark.parametrize("options", ANCHOR_OPTIONS, ids=["plain", "nops", "record_route"])
def test_reference_downstream_equals_scapy(anchor: Worker, options: list[object]) -> None:
    ip = IP(src="198.18.7.7", dst="100.64.3.9", ttl=9, tos=0x10, options=options)
    pkt = Ether(dst=mac_to_str(CORE_MAC), src=mac_to_str(GW_MAC)) / ip / UDP() / Raw(b"y" * 30)
    verdict, out = forward_core(bytes(pkt), anchor.sessions, CORE_MAC, MAX_MRU)
    hopped = IP(bytes(pkt[IP]))
    hopped.ttl -= 1
    del hopped.chksum
    eth = Ether(dst="02:00:00:00:00:01", src="02:00:00:00:01:03")
    expected = eth / PPPoE(sessionid=0x1234) / PPP(proto=0x0021) / hopped
    assert (verdict, out) == (Down.FORWARD, bytes(expected))
    assert out is not None and Ether(out)[PPPoE].len == Ether(out)[IP].len + 2


@settings(max_examples=300, deadline=None)
@given(
    header=st.binary(min_size=60, max_size=60),
    ihl=st.integers(5, 15),
    ttl=st.integers(1, 255),
    right=st.booleans(),
)
def test_after_hop_recomputes_the_checksum_and_keeps_an_error(
    header: bytes, ihl: int, ttl: int, right: bool
) -> None:
    """A right checksum is scapy's recomputation after the hop; a wrong one stays as wrong
    (the one's complement sum of the header is kept)."""
    ip = bytearray(header[: 4 * ihl])
    ip[0], ip[8] = 0x40 | ihl, ttl
    ip[2:4] = (4 * ihl).to_bytes(2, "big")
    if right:  # options scapy can parse (NOP), a right checksum
        ip[20:] = b"\x01" * (4 * ihl - 20)
        ip = bytearray(fix_checksum(bytes(ip)))
    out = after_hop(bytes(ip))
    assert out[8] == ttl - 1 and out[:8] == ip[:8] and out[12:] == ip[12:]
    assert internet_checksum(out) == internet_checksum(bytes(ip))
    if right:
        recomputed = IP(out)
        del recomputed.chksum
        assert bytes(IP(bytes(recomputed))) == out


@settings(max_examples=200, deadline=None)
@given(
    prefix=st.sampled_from([b"", bytes.fromhex("020000000103"), CORE_MAC, BROADCAST]),
    body=st.binary(max_size=80),
)
def test_the_reference_never_raises(anchor: Worker, prefix: bytes, body: bytes) -> None:
    frame = prefix + body
    verdict, out = forward_access(frame, anchor.sessions, GW_MAC + CORE_MAC + b"\x08\x00")
    assert isinstance(verdict, Up) and (out is not None) == (verdict in (Up.FORWARD, Up.PUNT))
    down, out = forward_core(frame, anchor.sessions, CORE_MAC, MAX_MRU)
    assert isinstance(down, Down) and (out is not None) == (down in (Down.FORWARD, Down.ARP))


def test_classify_access_takes_all_of_a_short_frame(anchor: Worker) -> None:
    """Its docstring allows the whole of a frame shorter than 48 bytes: a PPPoE payload
    with no room for an IPv4 header is bad_ipv4 without reading one (it raised
    IndexError)."""
    # PPPoE session 0x1234 of the right client, LENGTH 2: the PPP protocol 0x0021 and no IPv4.
    frame = bytes.fromhex("02000000010302000000000188641100123400020021")
    assert classify_access(frame, len(frame), anchor.sessions) is Up.BAD_IPV4


def test_reference_docsis_downstream_is_the_codecs_carrier_unpadded() -> None:
    """The carrier the reference builds is ``encode_carrier``'s, without its padding to 60
    bytes (a 20-byte packet gives 58 bytes, as the fast path sends it)."""
    group = SubscriberGroup(
        4, "site", bytes.fromhex("020000000104"), ipaddress.IPv4Network("100.64.4.0/24")
    )
    sub = Sub(
        9,
        group,
        True,
        0x155,
        bytes.fromhex("020100000009"),
        bytes.fromhex("0a0200000009"),
        ip_to_int("100.64.4.5"),
    )
    worker = make_worker(Scenario((group,), frozenset(), (sub,), True, MAX_MRU, 2048), 0)
    for size in (0, 1, 2, 40):
        ip = ipv4(ip_to_int("198.18.7.7"), sub.ip, bytes(size), ttl=5, proto=6)
        frame = CORE_MAC + GW_MAC + b"\x08\x00" + ip
        verdict, out = forward_core(frame, worker.sessions, CORE_MAC, MAX_MRU)
        pdu = PacketFrame(sub.cpe, group.virtual_mac, 0x0800, after_hop(ip))
        codec = encode_carrier(sub.mac, group.virtual_mac, encode_frame(pdu))
        assert verdict is Down.FORWARD and out is not None
        assert len(out) == 38 + len(ip) and codec[: len(out)] == out
        assert codec[len(out) :] == bytes(len(codec) - len(out))
        assert worker.process_core(RxBatch.of([frame])).to_access.frames() == [out]
