"""The worker around the fast path: rules between batches, usage, ARP, claims, memory ports."""

from __future__ import annotations

import select

import numpy as np
import pytest
from scapy.layers.l2 import ARP, Ether
from scapy.layers.ppp import PPPoED

from data_plane.io.base import RxBatch, TxBatch, send_tx
from data_plane.io.memory import MemoryPort, memory_pair
from data_plane.worker import CLAIM_MAGIC, WorkerConfig
from tests.unit.test_fastpath import (
    CORE_IP,
    CORE_MAC,
    GROUP1,
    GROUP2,
    GW_IP,
    GW_MAC,
    OTHER_MAC,
    VMAC1,
    VMAC2,
    client_ip,
    client_mac,
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
from vnf.errors import ConfigError
from vnf.model.addresses import ip_to_int, mac_to_str
from vnf.model.session import RuleOp, RuleResult, Usage


# ---- configuration ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"core_mac": b"\x01" * 6}, "core_mac"),
        ({"gateway_ip": ip_to_int("198.18.1.1")}, "gateway_ip"),
        ({"gateway_ip": ip_to_int(CORE_IP)}, "gateway_ip"),
        ({"core_prefix_len": 0}, "core_prefix_len"),
        ({"mru": 1500}, "mru"),
        ({"gateway_mac": b"\xff" * 6}, "gateway_mac"),
    ],
)
def test_bad_configuration_is_rejected(change: dict[str, object], field: str) -> None:
    base: dict[str, object] = {
        "name": "w",
        "core_mac": CORE_MAC,
        "core_ip": ip_to_int(CORE_IP),
        "core_prefix_len": 24,
        "gateway_ip": ip_to_int(GW_IP),
    }
    with pytest.raises(ConfigError) as err:
        WorkerConfig(**{**base, **change})  # type: ignore[arg-type]
    assert err.value.field == field


# ---- rules between batches ----------------------------------------------------------------------
def test_rules_take_effect_between_batches() -> None:
    w = make_worker()
    frame = up_frame(3)
    assert run_access(w, [frame]) == ([], [])
    results, final = w.apply_rules([rule(30, 3)])
    assert results == [RuleResult(30, True)] and final == []
    assert run_access(w, [frame])[0] == [expected_up(frame)]
    assert w.session_count == 1 and w.session_keys() == [30]

    results, final = w.apply_rules([rule(30, 3, op=RuleOp.REMOVE)])
    assert results == [RuleResult(30, True)]
    assert final == [Usage(30, up_packets=1, up_bytes=46)]
    assert run_access(w, [frame]) == ([], [])
    assert run_core(w, [down_frame(client_ip(3))]) == ([], [])
    assert drops(w) == {"drop_up_unknown_session": 2, "drop_down_unknown_session": 1}

    # the same subscriber comes back as a new session (keys are never reused)
    assert w.apply_rules([rule(31, 3)])[0] == [RuleResult(31, True)]
    assert run_access(w, [frame])[0] == [expected_up(frame)]
    assert w.usage() == [Usage(31, up_packets=1, up_bytes=46)]


def test_usage_is_cumulative_and_only_for_changed_sessions() -> None:
    w = make_worker()
    w.apply_rules([rule(1, 1), rule(2, 2), rule(3, 3)])
    assert w.usage() == []
    run_access(w, [up_frame(1), up_frame(2), up_frame(1)])
    run_core(w, [down_frame(client_ip(2), size=100)])
    assert w.usage() == [Usage(1, 2, 92), Usage(2, 1, 46, 1, 128)]
    assert w.usage() == []
    run_access(w, [up_frame(1)])
    assert w.usage() == [Usage(1, 3, 138)]
    every = w.usage(changed_only=False)
    assert [u.session_key for u in every] == [1, 2, 3]
    assert every[2] == Usage(3)


def test_group_leaving_reports_final_usage_and_stops_forwarding() -> None:
    w = make_worker((GROUP1, GROUP2))
    w.apply_rules([rule(1, 1), rule(2, 2, group=GROUP2)])
    run_access(w, [up_frame(1)])
    assert w.assign_groups([GROUP2]) == [Usage(1, 1, 46)]
    assert not w.is_standby and w.session_count == 1
    assert run_access(w, [up_frame(1)]) == ([], [])
    assert drops(w) == {"drop_up_not_for_us": 1}
    assert w.assign_groups([]) == [Usage(2)]
    assert w.is_standby


def test_prepared_groups_take_rules_but_forward_and_punt_nothing_until_claimed() -> None:
    """A hot standby (or a move's target) holds groups prepared: flooded frames reach it,
    and it must not forward them a second time, nor punt discovery to the CP."""
    w = make_worker(())
    w.assign_groups([GROUP1, GROUP2], prepared={GROUP1.group_id, GROUP2.group_id})
    assert w.is_standby and w.groups.serving == 0
    results, _ = w.apply_rules([rule(1, 1), rule(2, 2, group=GROUP2)])
    assert all(r.ok for r in results) and w.session_count == 2
    padi = bytes(Ether(dst="ff:ff:ff:ff:ff:ff", src=mac_to_str(client_mac(5))) / PPPoED())
    assert run_access(w, [up_frame(1), padi]) == ([], [])
    assert run_core(w, [down_frame(client_ip(1))]) == ([], [])
    assert drops(w) == {
        "drop_up_not_for_us": 1,
        "drop_up_standby": 1,
        "drop_down_no_route": 1,
    }
    # Claiming one group keeps its sessions and counters in place and forwards at once;
    # the other stays prepared.
    assert w.assign_groups([GROUP1, GROUP2], prepared={GROUP2.group_id}) == []
    assert w.session_count == 2 and not w.is_standby
    frame = up_frame(1)
    assert run_access(w, [frame])[0] == [expected_up(frame)]
    assert len(run_core(w, [down_frame(client_ip(1), size=100)])[0]) == 1
    assert run_access(w, [up_frame(2, vmac=VMAC2)]) == ([], [])
    assert w.usage() == [Usage(1, 1, 46, 1, 128)]
    _, punts = run_access(w, [padi])
    assert punts == [padi]


# ---- ARP on the core port -----------------------------------------------------------------------
def _arp(op: int, src_mac: bytes, psrc: str, pdst: str, dst: bytes = b"\xff" * 6) -> bytes:
    eth = Ether(dst=mac_to_str(dst), src=mac_to_str(src_mac))
    return bytes(eth / ARP(op=op, hwsrc=mac_to_str(src_mac), psrc=psrc, pdst=pdst))


def test_arp_request_for_our_address_is_answered() -> None:
    w = make_worker()
    asker = bytes.fromhex("020000000077")
    out, to_core = run_core(w, [_arp(1, asker, "198.18.0.50", CORE_IP)])
    assert out == []
    expected = Ether(dst=mac_to_str(asker), src=mac_to_str(CORE_MAC)) / ARP(
        op=2, hwsrc=mac_to_str(CORE_MAC), psrc=CORE_IP, hwdst=mac_to_str(asker), pdst="198.18.0.50"
    )
    assert to_core == [bytes(expected)]
    counters = w.counters()
    assert (counters["arp_in"], counters["arp_replied"]) == (1, 1)


def test_next_hop_is_learned_from_the_gateway() -> None:
    w = make_worker(gateway_mac=None)
    w.apply_rules([rule(1, 1)])
    frame = up_frame(1)
    assert run_access(w, [frame])[0] == []
    assert w.gateway_mac is None
    # the gateway asks for us: we answer and learn it
    out, to_core = run_core(w, [_arp(1, GW_MAC, GW_IP, CORE_IP)])
    assert len(to_core) == 1 and Ether(to_core[0])[ARP].op == 2
    assert w.gateway_mac == GW_MAC
    assert run_access(w, [frame])[0] == [expected_up(frame)]
    # a reply from a new gateway MAC moves the next hop
    new_mac = bytes.fromhex("02000000009e")
    run_core(w, [_arp(2, new_mac, GW_IP, CORE_IP, dst=CORE_MAC)])
    out, _ = run_access(w, [frame])
    assert out[0][:6] == new_mac
    assert w.counters()["arp_learned"] == 2


def test_arp_we_do_not_need_is_ignored_or_dropped() -> None:
    w = make_worker()
    frames = [
        _arp(1, OTHER_MAC, "198.18.0.60", "198.18.0.61"),  # not about us
        _arp(2, OTHER_MAC, GW_IP, CORE_IP, dst=CORE_MAC),  # static gateway MAC: not overridden
        _arp(1, OTHER_MAC, "198.18.0.60", CORE_IP, dst=OTHER_MAC),  # unicast to someone else
        bytes(Ether(dst="ff:ff:ff:ff:ff:ff", type=0x0806) / (b"\x00\x01\x86\xdd" + b"\x00" * 24)),
    ]
    out, to_core = run_core(w, frames)
    assert (out, to_core) == ([], [])
    assert w.gateway_mac == GW_MAC
    counters = w.counters()
    assert counters["arp_ignored"] == 2
    assert counters["drop_down_bad_arp"] == 1
    assert counters["drop_down_not_for_us"] == 1


def test_arp_requests_for_the_gateway_are_paced() -> None:
    w = make_worker(gateway_mac=None, arp_retry_s=1.0, arp_refresh_s=30.0)
    first = w.arp_request_if_needed(100.0)
    assert first is not None
    req = Ether(first)
    assert req.dst == "ff:ff:ff:ff:ff:ff" and req.src == mac_to_str(CORE_MAC)
    assert (req[ARP].op, req[ARP].psrc, req[ARP].pdst) == (1, CORE_IP, GW_IP)
    assert w.arp_request_if_needed(100.5) is None
    assert w.arp_request_if_needed(101.0) is not None
    run_core(w, [_arp(2, GW_MAC, GW_IP, CORE_IP, dst=CORE_MAC)])
    assert w.arp_request_if_needed(102.0) is None
    refresh = w.arp_request_if_needed(131.0)
    assert refresh is not None and Ether(refresh).dst == mac_to_str(GW_MAC)
    assert make_worker().arp_request_if_needed(0.0) is None  # static gateway MAC


# ---- frames the worker originates ---------------------------------------------------------------
def test_claim_frames_announce_each_group_mac() -> None:
    w = make_worker((GROUP2, GROUP1))
    claims = [Ether(f) for f in w.claim_frames()]
    assert [(c.dst, c.src, c.type) for c in claims] == [
        ("ff:ff:ff:ff:ff:ff", mac_to_str(VMAC1), 0x88B5),
        ("ff:ff:ff:ff:ff:ff", mac_to_str(GROUP2.virtual_mac), 0x88B5),
    ]
    assert bytes(claims[0].payload) == CLAIM_MAGIC + (1).to_bytes(4, "big")
    assert make_worker(()).claim_frames() == []


def test_announce_frame_is_a_gratuitous_arp() -> None:
    arp = Ether(make_worker().announce_frame())[ARP]
    assert (arp.op, arp.psrc, arp.pdst, arp.hwsrc) == (1, CORE_IP, CORE_IP, mac_to_str(CORE_MAC))


# ---- the in-memory backend ----------------------------------------------------------------------
def _readable(port: MemoryPort) -> bool:
    poller = select.poll()
    poller.register(port.fileno(), select.POLLIN)
    return bool(poller.poll(0))


def test_memory_pair_carries_batches_and_signals_readiness() -> None:
    a, b = memory_pair()
    try:
        assert not _readable(b)
        a.send(b"\x01" * 60)
        buf = np.zeros((4, 128), dtype=np.uint8)
        buf[1, 10:20] = np.arange(10, dtype=np.uint8)
        buf[3, 0:5] = 7
        sent = send_tx(a, TxBatch(buf, np.array([1, 3]), np.array([10, 0]), np.array([10, 5])))
        assert sent == 2 and _readable(b)
        batch = RxBatch(capacity=2)
        assert b.recv_batch(batch) == 2
        assert batch.frames() == [b"\x01" * 60, bytes(range(10))]
        assert _readable(b)
        assert b.recv_batch(batch) == 1 and batch.frames() == [b"\x07" * 5]
        assert not _readable(b)
        assert b.recv_batch(batch) == 0
    finally:
        a.close()
        b.close()


def test_memory_port_bounds_its_queue_and_truncates_like_a_socket() -> None:
    port = MemoryPort(depth=2)
    assert port.inject([b"a" * 10, b"b" * 3000, b"c"]) == 2
    assert port.rx_dropped == 1
    batch = RxBatch(capacity=8)
    port.recv_batch(batch)
    assert [len(f) for f in batch.frames()] == [10, batch.max_frame]
    assert port.rx_truncated == 1
    port.send(b"x")
    assert port.take_sent() == [b"x"] and port.take_sent() == []
    port.close()


def test_batch_shapes_are_checked() -> None:
    with pytest.raises(ValueError):
        RxBatch(headroom=8)
    with pytest.raises(ValueError):
        RxBatch(row=100)
    with pytest.raises(ValueError):
        RxBatch(capacity=0)


def test_worker_between_memory_ports_end_to_end() -> None:
    """Subscriber ⇄ [access] worker [core] ⇄ router, as the runtime wires it."""
    w = make_worker()
    w.apply_rules([rule(1, 1), rule(2, 2)])
    subscriber, access = memory_pair("subscriber", "access")
    core, router = memory_pair("core", "router")
    up = [up_frame(1), up_frame(2, size=300), up_frame(9)]
    subscriber.inject([])  # nothing from the wire on the subscriber's own end
    for frame in up:
        subscriber.send(frame)
    rx = w.new_batch()
    assert access.recv_batch(rx) == 3
    result = w.process_access(rx)
    assert send_tx(core, result.to_core) == 2
    down = [down_frame(client_ip(2)), _arp(1, GW_MAC, GW_IP, CORE_IP)]
    for frame in down:
        router.send(frame)
    rx_core = w.new_batch()
    assert core.recv_batch(rx_core) == 2
    back = w.process_core(rx_core)
    send_tx(access, back.to_access)
    for frame in back.to_core:
        core.send(frame)

    got = RxBatch(8)
    router.recv_batch(got)
    assert got.frames()[:2] == [expected_up(up[0]), expected_up(up[1])]
    assert Ether(got.frames()[2])[ARP].op == 2
    subscriber.recv_batch(got)
    assert got.frames() == [expected_down(down[0], client_mac(2), VMAC1, 2)]
    for port in (subscriber, access, core, router):
        port.close()
