"""DOCSIS-like sessions through the worker's batch fast path: byte-exact rewrites, every
verdict, punts, mixed PPPoE + DOCSIS batches, counters.

Frames are built with the project's DOCSIS codec (``vnf.codec.docsis``, itself checked
against scapy and an independent CRC in ``test_codec_docsis.py``) around IPv4/UDP packets
from ``vnf.codec.ipv4``; expected IPv4 packets after the hop are scapy's recomputation.
The verdict tests run every frame beside a good one through the per-frame exception path
and, with ``per_frame_limit=0``, the vectorized one.
"""

from __future__ import annotations

import random
import struct
import zlib

import numpy as np
import pytest
from scapy.layers.inet import IP
from scapy.layers.l2 import Ether

from data_plane.cable import docsis_downstream_hcs, docsis_upstream_hcs
from data_plane.io.base import RxBatch
from data_plane.worker import Worker
from tests.unit.test_fastpath import (
    CORE_MAC,
    GROUP1,
    GROUP2,
    GW_MAC,
    OTHER_MAC,
    SERVER_IP,
    VMAC1,
    VMAC2,
    _control,
    client_ip,
    down_frame,
    drops,
    expected_down,
    expected_up,
    make_worker,
    rule,
    run_access,
    run_core,
    up_frame,
)
from vnf.codec.docsis import (
    EhElement,
    ManagementFrame,
    OtherFrame,
    PacketFrame,
    RequestEh,
    RequestFrame,
    crc16_x25,
    decode_carrier,
    decode_frame,
    encode_carrier,
    encode_frame,
)
from vnf.codec.ipv4 import build_udp_packet
from vnf.model.addresses import ip_to_int
from vnf.model.group import SubscriberGroup
from vnf.model.session import AccessType, Qos, RuleOp, SessionRule, TrafficEndpoint, Usage

BROADCAST = b"\xff" * 6
MULTICAST = bytes.fromhex("01005e000001")
NO_QOS = Qos()


def cm_mac(n: int) -> bytes:
    return bytes.fromhex(f"0201{n:08x}")


def cpe_mac(n: int) -> bytes:
    return bytes.fromhex(f"0a02{n:08x}")


def cable_rule(
    key: int,
    sid: int,
    n: int | None = None,
    group: SubscriberGroup = GROUP1,
    op: RuleOp = RuleOp.INSTALL,
    qos: Qos = NO_QOS,
) -> SessionRule:
    """Modem ``key`` with SID ``sid``, CM/CPE MAC and CPE address number ``n`` (default:
    20 + sid, clear of the PPPoE fixture's addresses)."""
    n = 20 + sid if n is None else n
    endpoint = TrafficEndpoint(
        cm_mac(n), group.virtual_mac, cm_sid=sid, access=AccessType.DOCSIS, cpe_mac=cpe_mac(n)
    )
    return SessionRule(op, key, group.group_id, endpoint, ip_to_int(client_ip(n, group)), qos)


def ipv4_udp(src: str, dst: str, size: int = 18, ttl: int = 64, dport: int = 5000) -> bytes:
    return build_udp_packet(ip_to_int(src), ip_to_int(dst), 4000, dport, b"\xab" * size, ttl)


def carrier(dst: bytes, src: bytes, mac_frame: object) -> bytes:
    return encode_carrier(dst, src, encode_frame(mac_frame))  # type: ignore[arg-type]


def cable_up(
    sid: int,
    n: int | None = None,
    *,
    vmac: bytes = VMAC1,
    cm: bytes | None = None,
    cpe: bytes | None = None,
    pdu_dst: bytes | None = None,
    packet: bytes | None = None,
    ethertype: int = 0x0800,
    src_ip: str | None = None,
    ttl: int = 64,
    size: int = 18,
    group: SubscriberGroup = GROUP1,
    mini_slots: int = 0,
) -> bytes:
    """An upstream carrier frame: a Packet PDU with a Request EH naming ``sid``, carrying
    IPv4/UDP from the CPE of modem number ``n`` (default: 20 + sid) to the server."""
    n = 20 + sid if n is None else n
    if packet is None:
        packet = ipv4_udp(src_ip or client_ip(n, group), SERVER_IP, size, ttl)
    pdu = PacketFrame(
        pdu_dst or vmac, cpe or cpe_mac(n), ethertype, packet, (RequestEh(mini_slots, sid),)
    )
    return carrier(vmac, cm or cm_mac(n), pdu)


def inner_ip(frame: bytes) -> bytes:
    """The IPv4 packet in an upstream DOCSIS carrier frame (by its total length)."""
    total = int.from_bytes(frame[40:42], "big")
    return frame[38 : 38 + total]


def after_hop(ip: bytes) -> bytes:
    """``ip`` with TTL - 1 and the checksum recomputed by scapy."""
    new = IP(ip)
    new.ttl -= 1
    del new.chksum
    return bytes(new)


def expected_cable_up(frame: bytes) -> bytes:
    return GW_MAC + CORE_MAC + b"\x08\x00" + after_hop(inner_ip(frame))


def expected_cable_down(frame: bytes, n: int, vmac: bytes = VMAC1) -> bytes:
    """The downstream carrier for core frame ``frame`` to modem number ``n``."""
    ip = after_hop(bytes(Ether(frame)[IP])[: Ether(frame)[IP].len])
    pdu = PacketFrame(cpe_mac(n), vmac, 0x0800, ip)
    return encode_carrier(cm_mac(n), vmac, encode_frame(pdu))


def with_header(frame: bytes, *, length: int | None = None, eh: bytes | None = None) -> bytes:
    """``frame`` with MAC header fields replaced and the HCS recomputed (a valid HCS on an
    invalid header)."""
    b = bytearray(frame)
    if length is not None:
        b[16:18] = length.to_bytes(2, "big")
    if eh is not None:
        b[18:22] = eh
    b[22:24] = struct.pack("<H", crc16_x25(bytes(b[14:22])))
    return bytes(b)


@pytest.fixture(params=[16, 0], ids=["per_frame", "vectorized"])
def worker(request: pytest.FixtureRequest) -> Worker:
    """Groups 1 and 2; PPPoE sessions 101, 102 (group 1), 201 (group 2); modems 301 (SID
    1, number 21), 302 (SID 2, number 22) in group 1 and 401 (SID 1, number 41) in group
    2. Exceptions judged one by one or (limit 0) all at once."""
    w = make_worker((GROUP1, GROUP2), per_frame_limit=request.param)
    rules = [rule(101, 1), rule(102, 2), rule(201, 1, 7, GROUP2)]
    rules += [cable_rule(301, 1), cable_rule(302, 2), cable_rule(401, 1, 41, GROUP2)]
    results, _ = w.apply_rules(rules)
    assert all(r.ok for r in results)
    return w


# ---- the header checksum tables -------------------------------------------------------------
def test_hcs_tables_equal_crc16_x25_on_random_headers() -> None:
    rng = random.Random(7)
    cases = [
        (rng.randrange(1 << 16), rng.randrange(256), rng.randrange(1 << 14)) for _ in range(2000)
    ]
    cases += [(0, 0, 0), (0xFFFF, 0xFF, 0x3FFF)]
    lens, slots, sids = (np.array(c, dtype=np.uint64) for c in zip(*cases, strict=True))
    got = docsis_upstream_hcs(lens, slots, sids).tolist()
    for (mac_len, mini, sid), hcs in zip(cases, got, strict=True):
        header = bytes((0x01, 4)) + mac_len.to_bytes(2, "big") + bytes((0x13, mini))
        wire = struct.pack("<H", crc16_x25(header + sid.to_bytes(2, "big")))
        assert hcs == int.from_bytes(wire, "big")
    down = docsis_downstream_hcs(lens).view(np.uint8).reshape(-1, 2)
    for (mac_len, _, _), pair in zip(cases, down.tolist(), strict=True):
        assert bytes(pair) == struct.pack("<H", crc16_x25(b"\x00\x00" + mac_len.to_bytes(2, "big")))


# ---- byte-exact forwarding --------------------------------------------------------------------
@pytest.mark.parametrize("ttl", [2, 64, 255])
@pytest.mark.parametrize("size", [0, 18, 1400, 1472])
def test_upstream_output_is_the_cpe_packet_with_ttl_decremented(
    worker: Worker, ttl: int, size: int
) -> None:
    frame = cable_up(1, ttl=ttl, size=size, mini_slots=ttl)
    out, punts = run_access(worker, [frame])
    assert out == [expected_cable_up(frame)]
    assert punts == []
    ip = Ether(out[0])[IP]
    assert ip.ttl == ttl - 1
    recomputed = IP(bytes(ip))
    del recomputed.chksum
    assert IP(bytes(recomputed)).chksum == ip.chksum


def test_upstream_allows_ethernet_padding_inside_the_pdu(worker: Worker) -> None:
    packet = ipv4_udp(client_ip(21), SERVER_IP, size=0)  # 28 bytes: the PDU pads to 46
    padded = cable_up(1, packet=packet + bytes(18))
    out, _ = run_access(worker, [padded])
    assert out == [expected_cable_up(padded)]
    assert worker.sessions.usage_of(301) == Usage(301, up_packets=1, up_bytes=28)


@pytest.mark.parametrize("size", [0, 18, 1400, 1472])
def test_downstream_output_is_a_valid_docsis_carrier(worker: Worker, size: int) -> None:
    frame = down_frame(client_ip(22), size=size, ttl=17)
    out, to_core = run_core(worker, [frame])
    assert to_core == []
    assert out == [expected_cable_down(frame, 22)]
    dst, src, mac_frame = decode_carrier(out[0])
    assert (dst, src) == (cm_mac(22), VMAC1)
    pdu = decode_frame(mac_frame)  # checks the HCS and the PDU's CRC-32
    assert isinstance(pdu, PacketFrame)
    assert (pdu.dst, pdu.src, pdu.ethertype, pdu.ehdr) == (cpe_mac(22), VMAC1, 0x0800, ())
    assert IP(pdu.payload).ttl == 16
    assert len(out[0]) == 34 + 28 + size + 4
    assert int.from_bytes(out[0][16:18], "big") == 14 + 28 + size + 4


def test_downstream_docsis_mtu_is_1500(worker: Worker) -> None:
    """PPPoE sessions stop at the MRU (1492); a CPE takes a full Ethernet MTU."""
    fits = down_frame(client_ip(21), size=1500 - 28)
    too_big = down_frame(client_ip(21), size=1501 - 28)
    out, _ = run_core(worker, [fits, too_big])
    assert out == [expected_cable_down(fits, 21)]
    assert drops(worker) == {"drop_down_too_big": 1}
    assert worker.sessions.usage_of(301) == Usage(301, down_packets=1, down_bytes=1500, dropped=1)


def test_downstream_finds_modems_of_every_group(worker: Worker) -> None:
    frames = [down_frame(client_ip(41, GROUP2)), down_frame(client_ip(21))]
    out, _ = run_core(worker, frames)
    assert out == [expected_cable_down(frames[0], 41, VMAC2), expected_cable_down(frames[1], 21)]


# ---- mixed batches, regions, counters --------------------------------------------------------
def test_mixed_upstream_batch_keeps_order(worker: Worker) -> None:
    lcp = _control(1, 0xC021)
    dhcp = cable_up(5, packet=ipv4_udp("0.0.0.0", "255.255.255.255", dport=67), pdu_dst=BROADCAST)
    frames = [
        up_frame(1, size=1),
        cable_up(1, size=2),
        lcp,
        cable_up(2, size=3),
        up_frame(2, size=4),
        dhcp,
        cable_up(1, 41, vmac=VMAC2, group=GROUP2, size=5),
        cable_up(9),
    ]
    out, punts = run_access(worker, frames)
    assert out == [
        expected_up(frames[0]),
        expected_cable_up(frames[1]),
        expected_cable_up(frames[3]),
        expected_up(frames[4]),
        expected_cable_up(frames[6]),
    ]
    assert punts == [lcp, dhcp]
    counters = worker.counters()
    assert (counters["forwarded_up"], counters["punted"]) == (5, 2)
    assert drops(worker) == {"drop_up_unknown_sid": 1}


def test_mixed_downstream_batch_keeps_order(worker: Worker) -> None:
    frames = [
        down_frame(client_ip(1), size=1),
        down_frame(client_ip(21), size=2),
        down_frame(client_ip(99), size=3),
        down_frame(client_ip(2), size=4),
        down_frame(client_ip(41, GROUP2), size=5),
        down_frame(client_ip(7, GROUP2), size=6),
        down_frame(client_ip(22), size=7),
    ]
    out, _ = run_core(worker, frames)
    assert out == [
        expected_down(frames[0], bytes.fromhex("020000000001"), VMAC1, 1),
        expected_cable_down(frames[1], 21),
        expected_down(frames[3], bytes.fromhex("020000000002"), VMAC1, 2),
        expected_cable_down(frames[4], 41, VMAC2),
        expected_down(frames[5], bytes.fromhex("020000000007"), VMAC2, 1),
        expected_cable_down(frames[6], 22),
    ]
    assert drops(worker) == {"drop_down_unknown_session": 1}


@pytest.mark.parametrize("count", [1, 3, 300])
def test_all_docsis_batches(worker: Worker, count: int) -> None:
    """Batches of DOCSIS frames only, every one forwarded (the DOCSIS gate's own exit)."""
    up = [cable_up(1 + i % 2, size=i % 40) for i in range(count)]
    out, _ = run_access(worker, up)
    assert out == [expected_cable_up(f) for f in up]
    down = [down_frame(client_ip(21 + i % 2), size=i % 40) for i in range(count)]
    back, _ = run_core(worker, down)
    assert back == [expected_cable_down(f, 21 + i % 2) for i, f in enumerate(down)]
    assert worker.counters()["forwarded_up"] == worker.counters()["forwarded_down"] == count


def test_pppoe_session_id_and_sid_of_one_number_coexist(worker: Worker) -> None:
    """PPPoE session 1 (key 101) and SID 1 (key 301) of group 1: two slots, two sessions."""
    a, b = up_frame(1), cable_up(1)
    out, _ = run_access(worker, [a, b, b])
    assert out == [expected_up(a), expected_cable_up(b), expected_cable_up(b)]
    down = [down_frame(client_ip(1)), down_frame(client_ip(21))]
    run_core(worker, down)
    by_key = {u.session_key: u for u in worker.usage()}
    assert by_key[101] == Usage(101, 1, 46, 1, 46)
    assert by_key[301] == Usage(301, 2, 92, 1, 46)


def test_usage_counts_ip_bytes_and_removal_reports_it(worker: Worker) -> None:
    run_access(worker, [cable_up(2, size=100), cable_up(2, size=0)])
    run_core(worker, [down_frame(client_ip(22), size=10)])
    assert worker.usage() == [Usage(302, 2, 128 + 28, 1, 38)]
    results, final = worker.apply_rules([cable_rule(302, 2, op=RuleOp.REMOVE)])
    assert results[0].ok and final == [Usage(302, 2, 156, 1, 38)]
    assert run_access(worker, [cable_up(2)]) == ([], [])
    assert drops(worker) == {"drop_up_unknown_sid": 1}


# ---- punts ---------------------------------------------------------------------------------
def _management(dst: bytes, timing: bool, sid: int = 0) -> bytes:
    frame = ManagementFrame(dst, cm_mac(21), 1, 4 if timing else 15, b"\x01\x02", (), timing)
    if sid:
        frame = ManagementFrame(dst, cm_mac(21), 1, 4, b"\x01\x02", (RequestEh(0, sid),), timing)
    return carrier(dst, cm_mac(21), frame)


@pytest.mark.parametrize(
    "frame",
    [
        _management(BROADCAST, timing=True),
        _management(VMAC1, timing=True, sid=1),
        _management(VMAC2, timing=False),
        cable_up(1, packet=ipv4_udp(client_ip(21), "198.18.0.1", dport=67)),
        cable_up(9, packet=ipv4_udp("0.0.0.0", "255.255.255.255", dport=67), pdu_dst=BROADCAST),
        cable_up(1, ethertype=0x0806, packet=bytes(28), pdu_dst=BROADCAST),
        cable_up(77, ethertype=0x0806, packet=bytes(28), cm=cm_mac(3)),
    ],
    ids=[
        "rng_req_broadcast",
        "rng_req_sid",
        "dsc_rsp",
        "dhcp_renew",
        "dhcp_discover",
        "arp",
        "arp_no_session",
    ],
)
def test_management_dhcp_and_arp_are_punted_whole(worker: Worker, frame: bytes) -> None:
    out, punts = run_access(worker, [cable_up(2), frame])
    assert punts == [frame]
    assert out == [expected_cable_up(cable_up(2))]
    assert worker.counters()["punted"] == 1
    assert drops(worker) == {}


def test_standby_worker_punts_no_docsis() -> None:
    w = make_worker(groups=())
    frames = [_management(BROADCAST, timing=True), _management(VMAC1, timing=False), cable_up(1)]
    assert run_access(w, frames) == ([], [])
    assert drops(w) == {"drop_up_standby": 1, "drop_up_not_for_us": 2}


# ---- upstream verdicts ----------------------------------------------------------------------
def _flip(frame: bytes, at: int) -> bytes:
    b = bytearray(frame)
    b[at] ^= 0x5A
    return bytes(b)


GOOD = cable_up(1)
_LEN = int.from_bytes(GOOD[16:18], "big")
_PACKET = ipv4_udp(client_ip(21), SERVER_IP)


def _pdu(*ehdr: RequestEh | EhElement) -> bytes:
    """Modem 21's carrier of an empty Packet PDU with the EHDR ``ehdr``."""
    return carrier(VMAC1, cm_mac(21), PacketFrame(VMAC1, cpe_mac(21), 0x0800, b"", ehdr))


UPSTREAM_DROPS = [
    ("packet_to_broadcast", cable_up(1, vmac=BROADCAST), "drop_up_not_for_us"),
    ("to_another_mac", cable_up(1, vmac=OTHER_MAC), "drop_up_not_for_us"),
    ("management_to_another_mac", _management(OTHER_MAC, timing=False), "drop_up_not_for_us"),
    ("request", carrier(VMAC1, cm_mac(21), RequestFrame(1, 12)), "drop_up_docsis_request"),
    (
        "queue_depth_request",
        carrier(VMAC1, cm_mac(21), RequestFrame(1, 1200, queue_depth=True)),
        "drop_up_docsis_request",
    ),
    ("truncated_header", GOOD[:23], "drop_up_bad_docsis"),
    ("bad_hcs", _flip(GOOD, 22), "drop_up_bad_docsis"),
    ("hcs_of_another_sid", _flip(GOOD, 21), "drop_up_bad_docsis"),
    ("len_past_frame", with_header(GOOD, length=len(GOOD) - 19), "drop_up_bad_docsis"),
    ("pdu_under_18", with_header(GOOD, length=4 + 17), "drop_up_bad_docsis"),
    ("sid_over_14_bits", with_header(GOOD, eh=b"\x13\x00\x40\x01"), "drop_up_bad_docsis"),
    ("no_ehdr", _pdu(), "drop_up_bad_docsis"),
    ("other_eh", _pdu(EhElement(2, b"\x01")), "drop_up_bad_docsis"),
    ("two_elements", _pdu(RequestEh(0, 1), EhElement(0, b"")), "drop_up_bad_docsis"),
    (
        "isolation_pdu",
        carrier(VMAC1, cm_mac(21), OtherFrame(2, 0, 0, bytes(30), (RequestEh(0, 1),))),
        "drop_up_bad_docsis",
    ),
    ("unknown_sid", cable_up(9), "drop_up_unknown_sid"),
    ("sid_of_another_group", cable_up(2, 22, vmac=VMAC2, group=GROUP2), "drop_up_unknown_sid"),
    ("spoofed_cm_mac", cable_up(1, cm=cm_mac(22)), "drop_up_spoofed_mac"),
    ("spoofed_cpe_mac", cable_up(1, cpe=cpe_mac(22)), "drop_up_spoofed_cpe_mac"),
    ("pdu_to_another_mac", cable_up(1, pdu_dst=OTHER_MAC), "drop_up_pdu_not_for_us"),
    ("pdu_multicast", cable_up(1, pdu_dst=MULTICAST), "drop_up_pdu_not_for_us"),
    ("bad_crc", _flip(GOOD, 70), "drop_up_bad_crc"),
    ("bad_crc_itself", _flip(GOOD, 20 + _LEN - 1), "drop_up_bad_crc"),
    (
        "pdu_ipv6",
        cable_up(1, ethertype=0x86DD, packet=b"\x60" + bytes(40)),
        "drop_up_unknown_ethertype",
    ),
    ("ip_version_6", cable_up(1, packet=b"\x65" + _PACKET[1:]), "drop_up_bad_ipv4"),
    ("ihl_4", cable_up(1, packet=b"\x44" + _PACKET[1:]), "drop_up_bad_ipv4"),
    ("total_past_pdu", cable_up(1, packet=_PACKET[:-1]), "drop_up_bad_ipv4"),
    ("short_ip", cable_up(1, packet=_PACKET[:19]), "drop_up_bad_ipv4"),
    ("spoofed_ip", cable_up(1, src_ip=client_ip(22)), "drop_up_spoofed_ip"),
    ("ttl_1", cable_up(1, ttl=1), "drop_up_ttl_exceeded"),
    ("ttl_0", cable_up(1, ttl=0), "drop_up_ttl_exceeded"),
]


@pytest.mark.parametrize(
    ("frame", "counter"),
    [(f, c) for _, f, c in UPSTREAM_DROPS],
    ids=[i for i, _, _ in UPSTREAM_DROPS],
)
def test_upstream_drop_reasons(worker: Worker, frame: bytes, counter: str) -> None:
    good = cable_up(2)
    out, punts = run_access(worker, [good, frame, up_frame(2), good])
    assert out == [expected_cable_up(good), expected_up(up_frame(2)), expected_cable_up(good)]
    assert punts == []
    assert drops(worker) == {counter: 1}
    counters = worker.counters()
    assert counters["rx_access"] == 4 and counters["forwarded_up"] == 3


CHARGED = {"drop_up_bad_crc", "drop_up_bad_ipv4", "drop_up_spoofed_ip", "drop_up_ttl_exceeded"}


@pytest.mark.parametrize(
    ("frame", "counter"),
    [(f, c) for i, f, c in UPSTREAM_DROPS if i.startswith(("bad_crc", "spoofed", "ttl", "ip_"))],
)
def test_session_drops_are_charged_only_after_the_mac_checks(
    worker: Worker, frame: bytes, counter: str
) -> None:
    run_access(worker, [frame])
    usage = worker.sessions.usage_of(301)
    assert usage is not None and usage.dropped == (counter in CHARGED)


def test_upstream_without_next_hop_drops_and_charges(worker: Worker) -> None:
    w = make_worker(gateway_mac=None)
    w.apply_rules([cable_rule(1, 1)])
    assert run_access(w, [cable_up(1), cable_up(1)]) == ([], [])
    assert drops(w) == {"drop_up_no_next_hop": 2}
    assert w.usage() == [Usage(1, dropped=2)]


def test_counters_name_every_new_verdict(worker: Worker) -> None:
    keys = set(worker.counters())
    new = {"bad_docsis", "docsis_request", "unknown_sid", "spoofed_cpe_mac", "pdu_not_for_us"}
    new |= {"bad_crc", "rate_limited"}
    assert {f"drop_up_{name}" for name in new} <= keys
    assert "drop_down_rate_limited" in keys


def test_a_crc_flood_is_judged_with_one_crc_per_frame(worker: Worker) -> None:
    """Many frames missing the gate at once (the vectorized path even with the per-frame
    limit): every verdict still right, the good frames still forwarded."""
    bad = [_flip(cable_up(1), 70)] * 40
    good = cable_up(2)
    out, _ = run_access(worker, [good, *bad, good])
    assert out == [expected_cable_up(good)] * 2
    assert drops(worker) == {"drop_up_bad_crc": 40}


def test_crc_residue_is_the_crc_of_data_and_fcs() -> None:
    data = b"any pdu bytes"
    assert zlib.crc32(data + struct.pack("<I", zlib.crc32(data))) == 0x2144DF1C


def test_batches_with_a_small_row_never_overrun_it() -> None:
    """A DOCSIS frame that fills a narrow row: too big for the CRC behind it downstream."""
    w = make_worker()
    w.apply_rules([cable_rule(1, 1)])
    batch = RxBatch(4, row=128)
    fits = down_frame(client_ip(21), size=128 - 24 - 14 - 28 - 4)
    too_big = down_frame(client_ip(21), size=128 - 24 - 14 - 28)
    batch.fill([fits, too_big])
    out = w.process_core(batch).to_access.frames()
    assert out == [expected_cable_down(fits, 21)]
    assert drops(w) == {"drop_down_too_big": 1}
