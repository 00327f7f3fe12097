"""The batch fast path through the worker: byte-exact rewrites and every verdict.

Frames are built with scapy (tests only); expected outputs are built with scapy too, so the
checksums in them are scapy's full recomputation, not ours. The builders here are shared by
the other data-plane test modules.
"""

from __future__ import annotations

import ipaddress

import pytest
from scapy.layers.inet import IP, UDP, IPOption_NOP
from scapy.layers.l2 import ARP, Ether
from scapy.layers.ppp import PPP, PPPoE, PPPoED
from scapy.packet import Raw

from data_plane.io.base import RxBatch
from data_plane.worker import Worker, WorkerConfig
from vnf.model.addresses import ip_to_int, mac_to_str
from vnf.model.group import SubscriberGroup
from vnf.model.session import RuleOp, SessionRule, TrafficEndpoint

VMAC1 = bytes.fromhex("020000000101")
VMAC2 = bytes.fromhex("020000000102")
CORE_MAC = bytes.fromhex("0200000000c1")
GW_MAC = bytes.fromhex("02000000009f")
OTHER_MAC = bytes.fromhex("0200000000ee")
CORE_IP = "198.18.0.2"
GW_IP = "198.18.0.1"
SERVER_IP = "198.18.9.9"
GROUP1 = SubscriberGroup(1, "site1", VMAC1, ipaddress.IPv4Network("100.64.0.0/24"))
GROUP2 = SubscriberGroup(2, "site1", VMAC2, ipaddress.IPv4Network("100.64.1.0/24"))


def client_mac(n: int) -> bytes:
    return bytes.fromhex(f"0200{n:08x}")


def client_ip(n: int, group: SubscriberGroup = GROUP1) -> str:
    return str(group.pool.network_address + n)


def config(gateway_mac: bytes | None = GW_MAC, **kw: object) -> WorkerConfig:
    return WorkerConfig(
        "dp-test",
        CORE_MAC,
        ip_to_int(CORE_IP),
        24,
        ip_to_int(GW_IP),
        gateway_mac=gateway_mac,
        **kw,  # type: ignore[arg-type]
    )


def make_worker(
    groups: tuple[SubscriberGroup, ...] = (GROUP1,),
    gateway_mac: bytes | None = GW_MAC,
    **kw: object,
) -> Worker:
    worker = Worker(config(gateway_mac, **kw))
    worker.assign_groups(list(groups))
    return worker


def rule(
    key: int,
    sid: int,
    n: int | None = None,
    group: SubscriberGroup = GROUP1,
    op: RuleOp = RuleOp.INSTALL,
    ip: str | None = None,
) -> SessionRule:
    """Session ``key`` with PPPoE id ``sid``, client MAC/IP number ``n`` (default: sid)."""
    n = sid if n is None else n
    endpoint = TrafficEndpoint(client_mac(n), group.virtual_mac, sid)
    return SessionRule(op, key, group.group_id, endpoint, ip_to_int(ip or client_ip(n, group)))


def ip_packet(src: str, dst: str, ttl: int = 64, size: int = 18, **kw: object) -> IP:
    return IP(src=src, dst=dst, ttl=ttl, **kw) / UDP(sport=4000, dport=5000) / (b"\xab" * size)


def up_frame(
    sid: int,
    n: int | None = None,
    *,
    vmac: bytes = VMAC1,
    src_mac: bytes | None = None,
    src_ip: str | None = None,
    ttl: int = 64,
    size: int = 18,
    group: SubscriberGroup = GROUP1,
) -> bytes:
    """A PPPoE session frame carrying IPv4 from subscriber ``n`` (default: sid)."""
    n = sid if n is None else n
    ip = ip_packet(src_ip or client_ip(n, group), SERVER_IP, ttl, size)
    eth = Ether(dst=mac_to_str(vmac), src=mac_to_str(src_mac or client_mac(n)))
    return bytes(eth / PPPoE(sessionid=sid) / PPP(proto=0x0021) / ip)


def down_frame(
    dst_ip: str, *, ttl: int = 64, size: int = 18, dst_mac: bytes = CORE_MAC, **kw: object
) -> bytes:
    eth = Ether(dst=mac_to_str(dst_mac), src=mac_to_str(GW_MAC))
    return bytes(eth / ip_packet(SERVER_IP, dst_ip, ttl, size, **kw))


def expected_up(frame: bytes) -> bytes:
    """What the core should receive for ``frame``: the IPv4 packet, TTL - 1, checksum
    recomputed by scapy, behind Ethernet [gateway, our core MAC, 0x0800]."""
    eth = Ether(dst=mac_to_str(GW_MAC), src=mac_to_str(CORE_MAC), type=0x0800)
    return bytes(eth) + _ip_after_hop(frame)


def _ip_after_hop(frame: bytes) -> bytes:
    """The IPv4 packet in ``frame`` (by its total length), TTL - 1, checksum by scapy."""
    ip = Ether(frame)[IP]
    new = IP(bytes(ip)[: ip.len])
    new.ttl -= 1
    del new.chksum
    return bytes(new)


def expected_down(frame: bytes, client: bytes, vmac: bytes, sid: int) -> bytes:
    eth = Ether(dst=mac_to_str(client), src=mac_to_str(vmac))
    return bytes(eth / PPPoE(sessionid=sid) / PPP(proto=0x0021) / Raw(_ip_after_hop(frame)))


def run_access(worker: Worker, frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    result = worker.process_access(RxBatch.of(frames))
    return result.to_core.frames(), result.punts


def run_core(worker: Worker, frames: list[bytes]) -> tuple[list[bytes], list[bytes]]:
    result = worker.process_core(RxBatch.of(frames))
    return result.to_access.frames(), result.to_core


def drops(worker: Worker) -> dict[str, int]:
    """The non-zero drop counters."""
    return {k: v for k, v in worker.counters().items() if k.startswith("drop_") and v}


@pytest.fixture
def worker() -> Worker:
    w = make_worker((GROUP1, GROUP2))
    results, _ = w.apply_rules([rule(101, 1), rule(102, 2), rule(201, 1, 7, GROUP2)])
    assert all(r.ok for r in results)
    return w


# ---- byte-exact forwarding ----------------------------------------------------------------
@pytest.mark.parametrize("ttl", [2, 64, 255])
@pytest.mark.parametrize("size", [0, 18, 1400])
def test_upstream_output_is_the_ipv4_packet_with_ttl_decremented(
    worker: Worker, ttl: int, size: int
) -> None:
    frame = up_frame(1, ttl=ttl, size=size)
    out, punts = run_access(worker, [frame])
    assert out == [expected_up(frame)]
    assert punts == []
    assert Ether(out[0])[IP].ttl == ttl - 1


def test_upstream_checksum_verifies(worker: Worker) -> None:
    frame = up_frame(2, ttl=9)
    out, _ = run_access(worker, [frame])
    ip = Ether(out[0])[IP]
    recomputed = IP(bytes(ip))
    del recomputed.chksum
    assert IP(bytes(recomputed)).chksum == ip.chksum


def test_upstream_keeps_ip_options(worker: Worker) -> None:
    ip = IP(src=client_ip(1), dst=SERVER_IP, ttl=30, options=[IPOption_NOP()] * 4) / UDP()
    eth = Ether(dst=mac_to_str(VMAC1), src=mac_to_str(client_mac(1)))
    frame = bytes(eth / PPPoE(sessionid=1) / PPP(proto=0x0021) / ip)
    assert Ether(frame)[IP].ihl == 6
    out, _ = run_access(worker, [frame])
    assert out == [expected_up(frame)]


def test_upstream_ignores_ethernet_padding_and_pppoe_trailer(worker: Worker) -> None:
    frame = up_frame(1, size=0)  # 14 + 6 + 2 + 28 = 50 bytes: padded to 60 on the wire
    padded = frame + b"\x00" * 10
    # and a PPPoE payload longer than the IP packet (bytes after the IP total length)
    body = bytearray(frame + b"\xee\xee")
    body[18:20] = (int.from_bytes(frame[18:20], "big") + 2).to_bytes(2, "big")
    out, _ = run_access(worker, [padded, bytes(body)])
    assert out == [expected_up(frame), expected_up(frame)]
    assert worker.usage() == [worker.sessions.usage_of(101)]
    usage = worker.sessions.usage_of(101)
    assert usage is not None and usage.up_bytes == 2 * 28


@pytest.mark.parametrize("size", [0, 18, 1400])
def test_downstream_output_is_the_pppoe_frame(worker: Worker, size: int) -> None:
    frame = down_frame(client_ip(2), size=size, ttl=17)
    out, to_core = run_core(worker, [frame])
    assert out == [expected_down(frame, client_mac(2), VMAC1, 2)]
    assert to_core == []
    pppoe = Ether(out[0])[PPPoE]
    assert pppoe.len == Ether(frame)[IP].len + 2


def test_downstream_finds_the_group_of_the_address(worker: Worker) -> None:
    frames = [down_frame(client_ip(7, GROUP2)), down_frame(client_ip(1))]
    out, _ = run_core(worker, frames)
    assert out == [
        expected_down(frames[0], client_mac(7), VMAC2, 1),
        expected_down(frames[1], client_mac(1), VMAC1, 1),
    ]


def test_same_session_id_in_two_groups_is_two_sessions(worker: Worker) -> None:
    a = up_frame(1)
    b = up_frame(1, 7, vmac=VMAC2, group=GROUP2)
    out, _ = run_access(worker, [a, b, a])
    assert out == [expected_up(a), expected_up(b), expected_up(a)]
    by_key = {u.session_key: u for u in worker.usage()}
    assert by_key[101].up_packets == 2 and by_key[201].up_packets == 1


def test_downstream_at_the_mru_is_forwarded_and_one_byte_more_is_too_big(worker: Worker) -> None:
    fits = down_frame(client_ip(1), size=1492 - 28)
    too_big = down_frame(client_ip(1), size=1493 - 28)
    out, _ = run_core(worker, [fits, too_big])
    assert out == [expected_down(fits, client_mac(1), VMAC1, 1)]
    assert drops(worker) == {"drop_down_too_big": 1}
    usage = worker.sessions.usage_of(101)
    assert usage is not None and usage.dropped == 1 and usage.down_bytes == 1492


def test_large_batches_beyond_the_configured_size(worker: Worker) -> None:
    frames = [up_frame(1 + i % 2, size=i % 50) for i in range(700)]
    out, _ = run_access(worker, frames)
    assert out == [expected_up(f) for f in frames]
    assert worker.counters()["forwarded_up"] == 700


# ---- upstream verdicts ----------------------------------------------------------------------
def _pppoe_raw(frame: bytes, **changes: int) -> bytes:
    """``frame`` with PPPoE header bytes replaced: vertype, code, length."""
    b = bytearray(frame)
    if "vertype" in changes:
        b[14] = changes["vertype"]
    if "code" in changes:
        b[15] = changes["code"]
    if "length" in changes:
        b[18:20] = changes["length"].to_bytes(2, "big")
    return bytes(b)


def _ip_raw(frame: bytes, offset: int, **changes: int) -> bytes:
    """``frame`` with IPv4 header fields replaced (the IP header at ``offset``)."""
    b = bytearray(frame)
    if "verihl" in changes:
        b[offset] = changes["verihl"]
    if "total" in changes:
        b[offset + 2 : offset + 4] = changes["total"].to_bytes(2, "big")
    return bytes(b)


UPSTREAM_DROPS = [
    ("runt", b"\x02\x00", "drop_up_runt"),
    ("other_unicast", up_frame(1, vmac=OTHER_MAC), "drop_up_not_for_us"),
    ("multicast", up_frame(1, vmac=bytes.fromhex("01005e000001")), "drop_up_not_for_us"),
    ("session_to_broadcast", up_frame(1, vmac=b"\xff" * 6), "drop_up_not_for_us"),
    (
        "ipv6_to_us",
        bytes(Ether(dst=mac_to_str(VMAC1), type=0x86DD) / (b"\x60" + b"\x00" * 50)),
        "drop_up_unknown_ethertype",
    ),
    (
        "arp_broadcast",
        bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / ARP(pdst=GW_IP)),
        "drop_up_unknown_ethertype",
    ),
    ("bad_ver_type", _pppoe_raw(up_frame(1), vertype=0x12), "drop_up_bad_pppoe"),
    ("bad_code", _pppoe_raw(up_frame(1), code=0x09), "drop_up_bad_pppoe"),
    ("length_past_frame", _pppoe_raw(up_frame(1), length=200), "drop_up_bad_pppoe"),
    ("length_one", _pppoe_raw(up_frame(1), length=1), "drop_up_bad_pppoe"),
    ("truncated_pppoe", up_frame(1)[:19], "drop_up_bad_pppoe"),
    ("unknown_session", up_frame(9), "drop_up_unknown_session"),
    ("other_group_session", up_frame(2, vmac=VMAC2), "drop_up_unknown_session"),
    ("spoofed_mac", up_frame(1, src_mac=client_mac(2)), "drop_up_spoofed_mac"),
    ("spoofed_ip", up_frame(1, src_ip=client_ip(2)), "drop_up_spoofed_ip"),
    ("ip_version_6", _ip_raw(up_frame(1), 22, verihl=0x65), "drop_up_bad_ipv4"),
    ("ihl_4", _ip_raw(up_frame(1), 22, verihl=0x44), "drop_up_bad_ipv4"),
    ("total_past_payload", _ip_raw(up_frame(1), 22, total=47), "drop_up_bad_ipv4"),
    ("total_below_header", _ip_raw(up_frame(1), 22, total=19), "drop_up_bad_ipv4"),
    ("short_ip", _pppoe_raw(up_frame(1), length=21), "drop_up_bad_ipv4"),
    ("ttl_1", up_frame(1, ttl=1), "drop_up_ttl_exceeded"),
    ("ttl_0", up_frame(1, ttl=0), "drop_up_ttl_exceeded"),
]


@pytest.mark.parametrize(
    ("frame", "counter"),
    [(f, c) for _, f, c in UPSTREAM_DROPS],
    ids=[i for i, _, _ in UPSTREAM_DROPS],
)
def test_upstream_drop_reasons(worker: Worker, frame: bytes, counter: str) -> None:
    good = up_frame(2)
    out, punts = run_access(worker, [good, frame, good])
    assert out == [expected_up(good), expected_up(good)]
    assert punts == []
    assert drops(worker) == {counter: 1}
    counters = worker.counters()
    assert counters["rx_access"] == 3 and counters["forwarded_up"] == 2


@pytest.mark.parametrize("ttl", [0, 1])
def test_session_drops_are_charged_to_the_session(worker: Worker, ttl: int) -> None:
    run_access(worker, [up_frame(1, ttl=ttl), up_frame(1, src_ip=client_ip(9))])
    run_core(worker, [down_frame(client_ip(1), ttl=ttl)])
    usage = worker.sessions.usage_of(101)
    assert usage is not None and usage.dropped == 3 and usage.up_packets == 0


def test_spoofed_mac_is_not_charged_to_the_session(worker: Worker) -> None:
    run_access(worker, [up_frame(1, src_mac=client_mac(5))])
    assert worker.usage() == []


def test_upstream_without_next_hop_drops(worker: Worker) -> None:
    w = make_worker(gateway_mac=None)
    w.apply_rules([rule(1, 1)])
    out, _ = run_access(w, [up_frame(1), up_frame(1)])
    assert out == []
    assert drops(w) == {"drop_up_no_next_hop": 2}


# ---- punts ----------------------------------------------------------------------------------
def _control(sid: int, proto: int, n: int = 1, vmac: bytes = VMAC1) -> bytes:
    eth = Ether(dst=mac_to_str(vmac), src=mac_to_str(client_mac(n)))
    return bytes(eth / PPPoE(sessionid=sid) / PPP(proto=proto) / b"\x01\x01\x00\x04")


@pytest.mark.parametrize("proto", [0xC021, 0xC023, 0xC223, 0x8021, 0x8057, 0x0057, 0x1234], ids=hex)
@pytest.mark.parametrize("sid", [1, 77], ids=["installed", "not_installed"])
def test_ppp_control_is_punted_whole(worker: Worker, proto: int, sid: int) -> None:
    frame = _control(sid, proto)
    out, punts = run_access(worker, [up_frame(2), frame])
    assert punts == [frame]
    assert out == [expected_up(up_frame(2))]
    assert worker.counters()["punted"] == 1
    assert drops(worker) == {}


@pytest.mark.parametrize(
    "frame",
    [
        bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=mac_to_str(client_mac(3))) / PPPoED(code=0x09)),
        bytes(Ether(dst=mac_to_str(VMAC2), src=mac_to_str(client_mac(3))) / PPPoED(code=0x19)),
        bytes(Ether(dst=mac_to_str(VMAC1), src=mac_to_str(client_mac(3))) / PPPoED(code=0xA7)),
    ],
    ids=["padi", "padr", "padt"],
)
def test_discovery_is_punted(worker: Worker, frame: bytes) -> None:
    _, punts = run_access(worker, [frame])
    assert punts == [frame]


def test_discovery_to_another_mac_is_not_for_us(worker: Worker) -> None:
    frame = bytes(Ether(dst=mac_to_str(OTHER_MAC)) / PPPoED(code=0x19))
    _, punts = run_access(worker, [frame])
    assert punts == []
    assert drops(worker) == {"drop_up_not_for_us": 1}


def test_standby_worker_punts_nothing() -> None:
    w = make_worker(groups=())
    padi = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=mac_to_str(client_mac(3))) / PPPoED())
    out, punts = run_access(w, [padi, _control(1, 0xC021), up_frame(1)])
    assert (out, punts) == ([], [])
    assert drops(w) == {"drop_up_standby": 1, "drop_up_not_for_us": 2}
    assert run_core(w, [down_frame(client_ip(1))]) == ([], [])
    assert drops(w)["drop_down_no_route"] == 1


def test_mixed_batch_keeps_order(worker: Worker) -> None:
    lcp = _control(1, 0xC021)
    padi = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=mac_to_str(client_mac(3))) / PPPoED())
    frames = [up_frame(1, size=1), lcp, up_frame(9), up_frame(2, size=2), padi, up_frame(1, size=3)]
    out, punts = run_access(worker, frames)
    assert out == [expected_up(frames[i]) for i in (0, 3, 5)]
    assert punts == [lcp, padi]
    counters = worker.counters()
    assert (counters["forwarded_up"], counters["punted"]) == (3, 2)
    assert drops(worker) == {"drop_up_unknown_session": 1}


# ---- downstream verdicts --------------------------------------------------------------------
DOWNSTREAM_DROPS = [
    ("runt", b"\x02" * 13, "drop_down_runt"),
    ("other_mac", down_frame(client_ip(1), dst_mac=OTHER_MAC), "drop_down_not_for_us"),
    ("broadcast_ip", down_frame(client_ip(1), dst_mac=b"\xff" * 6), "drop_down_not_for_us"),
    (
        "ipv6",
        bytes(Ether(dst=mac_to_str(CORE_MAC), type=0x86DD) / (b"\x60" + b"\x00" * 50)),
        "drop_down_unknown_ethertype",
    ),
    ("version_6", _ip_raw(down_frame(client_ip(1)), 14, verihl=0x65), "drop_down_bad_ipv4"),
    ("ihl_4", _ip_raw(down_frame(client_ip(1)), 14, verihl=0x44), "drop_down_bad_ipv4"),
    ("total_past_frame", _ip_raw(down_frame(client_ip(1)), 14, total=47), "drop_down_bad_ipv4"),
    ("truncated", down_frame(client_ip(1))[:30], "drop_down_bad_ipv4"),
    ("outside_pools", down_frame("100.64.9.1"), "drop_down_no_route"),
    ("core_address", down_frame(CORE_IP), "drop_down_no_route"),
    ("no_session", down_frame(client_ip(99)), "drop_down_unknown_session"),
    ("ttl_1", down_frame(client_ip(1), ttl=1), "drop_down_ttl_exceeded"),
    ("too_big", down_frame(client_ip(1), size=1480), "drop_down_too_big"),
]


@pytest.mark.parametrize(
    ("frame", "counter"),
    [(f, c) for _, f, c in DOWNSTREAM_DROPS],
    ids=[i for i, _, _ in DOWNSTREAM_DROPS],
)
def test_downstream_drop_reasons(worker: Worker, frame: bytes, counter: str) -> None:
    good = down_frame(client_ip(2))
    out, to_core = run_core(worker, [good, frame, good])
    assert out == [expected_down(good, client_mac(2), VMAC1, 2)] * 2
    assert to_core == []
    assert drops(worker) == {counter: 1}
    counters = worker.counters()
    assert counters["rx_core"] == 3 and counters["forwarded_down"] == 2


def test_counters_are_stable_keys_of_ints(worker: Worker) -> None:
    keys = set(worker.counters())
    run_access(worker, [b"\x00", up_frame(1)])
    assert set(worker.counters()) == keys
    assert all(type(v) is int for v in worker.counters().values())
    assert {"forwarded_up", "forwarded_down", "punted"} <= keys
