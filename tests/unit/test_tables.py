"""Group and session tables: placement, rule errors, counters that follow a session."""

from __future__ import annotations

import dataclasses
import ipaddress

import numpy as np
import pytest

from data_plane.tables import NO_ROUTE, NO_SESSION, GroupTable, RuleError, SessionTable
from tests.unit.test_fastpath import GROUP1, GROUP2, VMAC1, client_mac, rule
from vnf.errors import ConfigError, Overloaded
from vnf.model.addresses import ip_to_int
from vnf.model.group import SubscriberGroup
from vnf.model.session import (
    AccessType,
    Qos,
    RuleOp,
    RuleResult,
    SessionRule,
    TrafficEndpoint,
    Usage,
)


def group(gid: int, mac_last: int, pool: str) -> SubscriberGroup:
    return SubscriberGroup(gid, "s", bytes([2, 0, 0, 0, 9, mac_last]), ipaddress.IPv4Network(pool))


@pytest.fixture
def table() -> SessionTable:
    t = SessionTable(GroupTable(max_groups=4))
    t.assign_groups([GROUP1, GROUP2])
    return t


def u64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.uint64)


# ---- groups -------------------------------------------------------------------------------------
def test_groups_get_slots_and_keep_them_while_they_stay() -> None:
    groups = GroupTable(max_groups=4)
    a, b, c = (
        group(10, 1, "100.64.0.0/24"),
        group(20, 2, "100.64.1.0/24"),
        group(30, 3, "100.64.2.0/24"),
    )
    groups.commit(groups.plan([a, b]))
    sa, sb = groups.slot_of(10), groups.slot_of(20)
    plan = groups.plan([c, b])
    assert plan.removed_slots == {sa}
    groups.commit(plan)
    assert groups.slot_of(20) == sb
    assert groups.slot_of(10) is None
    assert groups.slot_of(30) == sa  # the freed slot is reused
    assert sorted(g.group_id for g in groups) == [20, 30]


def test_a_changed_group_counts_as_removed() -> None:
    groups = GroupTable()
    a = group(10, 1, "100.64.0.0/24")
    groups.commit(groups.plan([a]))
    moved = dataclasses.replace(a, pool=ipaddress.IPv4Network("100.64.8.0/24"))
    assert groups.plan([moved]).removed_slots == {groups.slot_of(10)}


@pytest.mark.parametrize(
    ("groups", "error"),
    [
        ([group(1, 1, "100.64.0.0/24"), group(1, 2, "100.64.1.0/24")], ConfigError),
        ([group(1, 1, "100.64.0.0/24"), group(2, 1, "100.64.1.0/24")], ConfigError),
        ([group(1, 1, "100.64.0.0/23"), group(2, 2, "100.64.1.0/24")], ConfigError),
        (
            [
                SubscriberGroup(
                    1, "s", b"\x03" + b"\x00" * 5, ipaddress.IPv4Network("100.64.0.0/24")
                )
            ],
            ConfigError,
        ),
        ([group(1, 1, "100.64.0.0/10")], ConfigError),
        ([group(i, i, f"100.64.{i}.0/24") for i in range(5)], Overloaded),
    ],
    ids=["dup_id", "dup_mac", "overlap", "multicast_mac", "pool_too_big", "too_many"],
)
def test_impossible_assignments_raise_before_changing_anything(
    table: SessionTable, groups: list[SubscriberGroup], error: type[Exception]
) -> None:
    assert table.install(rule(1, 1)).ok
    with pytest.raises(error):
        table.assign_groups(groups)
    assert table.groups.slot_of(1) is not None and len(table) == 1


def test_mac_lookup_is_vectorized() -> None:
    groups = GroupTable(max_groups=8)
    gs = [group(i, i, f"100.64.{i}.0/24") for i in range(1, 6)]
    groups.commit(groups.plan(gs))
    macs = u64(*(int.from_bytes(g.virtual_mac, "big") for g in gs), 0x020000000999, 0xFFFFFFFFFFFF)
    base, ours = groups.lookup_macs(macs)
    assert ours.tolist() == [True] * 5 + [False, False]
    expected = [groups.slot_of(g.group_id) << 16 for g in gs]  # type: ignore[operator]
    assert np.broadcast_to(base, macs.shape)[:5].tolist() == expected


@pytest.mark.parametrize("count", [1, 3])
def test_ip_lookup_lands_in_the_pool_or_a_gap(count: int) -> None:
    groups = GroupTable(max_groups=4)
    gs = [group(i, i, f"100.64.{2 * i}.0/24") for i in range(count)]
    groups.commit(groups.plan(gs))
    table = SessionTable(groups)
    table.assign_groups(gs)
    probes = [
        "0.0.0.0",
        "100.64.0.0",
        "100.64.0.255",
        "100.64.1.0",
        "100.64.4.17",
        "255.255.255.255",
    ]
    index = groups.lookup_ips(u64(*(ip_to_int(p) for p in probes)))
    kinds = table.ip_slot[index].tolist()
    in_pool = [ipaddress.IPv4Address(p) in g.pool for p in probes for g in gs]
    expected = [
        NO_SESSION if any(in_pool[i * count : (i + 1) * count]) else NO_ROUTE
        for i in range(len(probes))
    ]
    assert kinds == expected
    for p, i in zip(probes, index.tolist(), strict=True):
        for g in gs:
            if ipaddress.IPv4Address(p) in g.pool:
                assert i == groups.pool_index(groups.slot_of(g.group_id) or 0, ip_to_int(p))


# ---- rules --------------------------------------------------------------------------------------
def test_install_places_the_session(table: SessionTable) -> None:
    assert table.install(rule(7, 0x1234, 5)).ok
    slot = table.slot_of(7)
    assert slot == (table.groups.slot_of(1) or 0) << 16 | 0x1234
    assert table.valid[slot] and table.client_mac[slot] == int.from_bytes(client_mac(5), "big")
    assert table.ipv4[slot] == ip_to_int("100.64.0.5")
    assert bytes(table.encap[slot]) == client_mac(5) + VMAC1 + bytes.fromhex("88641100123400000021")
    assert len(table) == 1 and 7 in table and table.session_keys() == [7]


def _bad(
    op: RuleOp = RuleOp.INSTALL, group: int = 1, ip: str = "100.64.0.9", **kw: object
) -> SessionRule:
    """Key 9 in group 1 with PPPoE id 1 and client 1, with one thing changed."""
    endpoint = dataclasses.replace(TrafficEndpoint(client_mac(1), VMAC1, 1), **kw)  # type: ignore[arg-type]
    return SessionRule(op, 9, group, endpoint, ip_to_int(ip))


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (_bad(group=99), RuleError.UNKNOWN_GROUP),
        (_bad(pppoe_session_id=0), RuleError.BAD_SESSION_ID),
        (_bad(pppoe_session_id=0xFFFF), RuleError.BAD_SESSION_ID),
        (_bad(pppoe_session_id=0x10000), RuleError.BAD_SESSION_ID),
        (_bad(client_mac=b"\x01" * 6), RuleError.BAD_CLIENT_MAC),
        (_bad(client_mac=b"\x02"), RuleError.BAD_CLIENT_MAC),
        (_bad(ac_mac=client_mac(3)), RuleError.AC_MAC_MISMATCH),
        (_bad(access=3), RuleError.UNSUPPORTED_ACCESS),
        (_bad(ip="100.64.1.9"), RuleError.IP_OUTSIDE_POOL),
        (_bad(ip="0.0.0.0"), RuleError.IP_OUTSIDE_POOL),
        (_bad(pppoe_session_id=2, ip="100.64.0.1"), RuleError.IP_TAKEN),
        (_bad(), RuleError.SLOT_TAKEN),
        (_bad(RuleOp.MODIFY), RuleError.UNKNOWN_SESSION_KEY),
        (_bad(RuleOp.REMOVE), RuleError.UNKNOWN_SESSION_KEY),
    ],
)
def test_rule_errors_are_results_not_exceptions(
    table: SessionTable, bad: SessionRule, error: str
) -> None:
    assert table.install(rule(1, 1)).ok  # holds slot (group 1, id 1) and 100.64.0.1
    results, final = table.apply([bad])
    assert results == [RuleResult(9, False, error)]
    assert final == [] and len(table) == 1 and 9 not in table


def _count(table: SessionTable, key: int, packets: int) -> None:
    slot = table.slot_of(key)
    assert slot is not None
    table.up_packets[slot] += packets
    table.up_bytes[slot] += 100 * packets
    table.dirty[slot] = True


def test_remove_returns_final_usage_and_frees_slot_and_address(table: SessionTable) -> None:
    table.install(rule(1, 1))
    _count(table, 1, 3)
    results, final = table.apply([rule(1, 1, op=RuleOp.REMOVE)])
    assert results[0].ok and final == [Usage(1, 3, 300)]
    assert len(table) == 0 and not table.valid.any()
    assert table.install(rule(2, 1)).ok  # same slot and address, new key
    assert table.usage_of(2) == Usage(2)
    assert table.usage() == []


def test_install_replay_keeps_counters(table: SessionTable) -> None:
    table.install(rule(1, 1))
    _count(table, 1, 2)
    assert table.install(rule(1, 1)).ok
    assert table.usage_of(1) == Usage(1, 2, 200)


def test_modify_moves_counters_with_the_session(table: SessionTable) -> None:
    table.install(rule(1, 1))
    old = table.slot_of(1)
    _count(table, 1, 4)
    moved = rule(1, 9, 1, op=RuleOp.MODIFY, ip="100.64.0.77")
    assert table.modify(moved).ok
    new = table.slot_of(1)
    assert new != old and old is not None and new is not None
    assert not table.valid[old] and table.up_packets[old] == 0
    assert table.usage() == [Usage(1, 4, 400)]
    assert table.rule(1) == moved
    # the old address and slot are free, the new ones taken
    index = table.groups.lookup_ips(u64(ip_to_int("100.64.0.1"), ip_to_int("100.64.0.77")))
    assert table.ip_slot[index].tolist() == [NO_SESSION, new]
    assert table.install(rule(2, 1)).ok


def test_modify_into_another_sessions_slot_fails_and_changes_nothing(table: SessionTable) -> None:
    table.install(rule(1, 1))
    table.install(rule(2, 2))
    result = table.modify(rule(1, 2, 1, op=RuleOp.MODIFY))
    assert result.error == RuleError.SLOT_TAKEN
    assert table.slot_of(1) == (table.groups.slot_of(1) or 0) << 16 | 1


def test_usage_changed_only_and_all(table: SessionTable) -> None:
    table.install(rule(1, 1))
    table.install(rule(2, 2))
    assert table.usage() == []
    _count(table, 2, 1)
    assert table.usage() == [Usage(2, 1, 100)]
    assert table.usage() == []
    _count(table, 2, 1)
    assert table.usage() == [Usage(2, 2, 200)]  # cumulative
    assert sorted(table.usage(changed_only=False), key=lambda u: u.session_key) == [
        Usage(1),
        Usage(2, 2, 200),
    ]


def test_groups_leaving_take_their_sessions(table: SessionTable) -> None:
    table.install(rule(1, 1))
    table.install(rule(2, 5, group=GROUP2))
    _count(table, 2, 1)
    final = table.assign_groups([GROUP2])
    assert final == [Usage(1)]
    assert table.session_keys() == [2]
    # group 2 kept its slot and session; its address still finds the session
    index = table.groups.lookup_ips(u64(ip_to_int("100.64.1.5"), ip_to_int("100.64.0.1")))
    assert table.ip_slot[index].tolist() == [table.slot_of(2), NO_ROUTE]
    assert table.usage() == [Usage(2, 1, 100)]
    assert table.assign_groups([]) == [Usage(2, 1, 100)]
    assert len(table) == 0


# ---- DOCSIS rules and QoS -------------------------------------------------------------------
CPE = bytes.fromhex("0a00000000c1")
NO_QOS = Qos()


def _cable(
    key: int = 9,
    sid: int = 1,
    ip: str = "100.64.0.9",
    op: RuleOp = RuleOp.INSTALL,
    qos: Qos = NO_QOS,
    **kw: object,
) -> SessionRule:
    """Key 9 in group 1: a modem (client 1) with SID ``sid`` and CPE ``CPE``."""
    endpoint = TrafficEndpoint(
        client_mac(1), VMAC1, cm_sid=sid, access=AccessType.DOCSIS, cpe_mac=CPE
    )
    endpoint = dataclasses.replace(endpoint, **kw)  # type: ignore[arg-type]
    return SessionRule(op, key, 1, endpoint, ip_to_int(ip), qos)


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (_cable(sid=0), RuleError.BAD_SID),
        (_cable(sid=0x4000), RuleError.BAD_SID),
        (_cable(client_mac=b"\x01" * 6), RuleError.BAD_CLIENT_MAC),
        (_cable(cpe_mac=b""), RuleError.BAD_CPE_MAC),
        (_cable(cpe_mac=b"\xff" * 6), RuleError.BAD_CPE_MAC),
        (_cable(ac_mac=client_mac(3)), RuleError.AC_MAC_MISMATCH),
        (dataclasses.replace(_cable(), group=99), RuleError.UNKNOWN_GROUP),
        (_cable(ip="100.64.1.9"), RuleError.IP_OUTSIDE_POOL),
        (_cable(sid=2, ip="100.64.0.1"), RuleError.IP_TAKEN),
        (_cable(key=8, sid=7, ip="100.64.0.8"), RuleError.SLOT_TAKEN),
    ],
)
def test_docsis_rule_errors(table: SessionTable, bad: SessionRule, error: str) -> None:
    assert table.install(rule(1, 1)).ok  # PPPoE id 1 and 100.64.0.1
    assert table.install(_cable(key=7, sid=7, ip="100.64.0.7")).ok
    results, _ = table.apply([bad])
    assert results == [RuleResult(bad.session_key, False, error)]
    assert len(table) == 2


def test_docsis_sessions_live_in_their_own_region(table: SessionTable) -> None:
    """A PPPoE session id and a SID of the same number in one group are two slots."""
    assert table.install(rule(1, 5)).ok
    assert table.install(_cable(sid=5)).ok
    gslot = table.groups.slot_of(1) or 0
    pppoe, docsis = table.slot_of(1), table.slot_of(9)
    assert pppoe == gslot << 16 | 5
    assert docsis == table.docsis_base + (gslot << 14 | 5) == table.docsis_slot(gslot, 5)
    assert table.docsis_base == (table.groups.max_groups + 1) << 16
    assert table.valid[[pppoe, docsis]].all() and table.docsis_sessions == 1
    assert table.cpe_mac[docsis] == int.from_bytes(CPE, "big")
    assert bytes(table.docsis_encap[docsis - table.docsis_base]) == (
        client_mac(1) + VMAC1 + b"\x88\xb6" + bytes(6) + CPE + VMAC1 + b"\x08\x00"
    )
    # the MAC lookup's base finds the DOCSIS slot too
    base, _ = table.groups.lookup_macs(u64(int.from_bytes(VMAC1, "big")))
    assert table.docsis_base + (int(np.broadcast_to(base, (1,))[0]) >> 2 | 5) == docsis
    index = table.groups.lookup_ips(u64(ip_to_int("100.64.0.9")))
    assert table.ip_slot[index].tolist() == [docsis]
    assert table.remove(9)[0].ok and table.docsis_sessions == 0 and not table.valid[docsis]


def test_modify_between_access_types_moves_counters(table: SessionTable) -> None:
    table.install(rule(9, 3, 1, ip="100.64.0.9"))
    _count(table, 9, 2)
    assert table.modify(_cable(op=RuleOp.MODIFY, sid=3)).ok
    slot = table.slot_of(9)
    assert slot is not None and slot >= table.docsis_base and table.docsis_sessions == 1
    assert table.usage_of(9) == Usage(9, 2, 200)
    assert not table.valid[(table.groups.slot_of(1) or 0) << 16 | 3]


def test_qos_buckets_follow_the_rule(table: SessionTable) -> None:
    assert table.install(_cable(qos=Qos(up_kbps=8_000, down_kbps=0, burst_bytes=1000))).ok
    slot = table.slot_of(9)
    assert slot is not None
    up, down = table.qos_up, table.qos_down
    assert up.limited[slot] and not down.limited[slot] and (up.count, down.count) == (1, 0)
    # 8 Mbit/s = 1 MB/s: 10 ms of it (10 000 bytes) beats 3044 and the burst of 1000
    assert up.depth[slot] == up.tokens[slot] == 10_000
    assert up.rate[slot] == pytest.approx(1e6 / 1e9)
    up.tokens[slot] = 4_000.0
    # a slower rate: the depth shrinks to the DOCSIS default burst and clamps the tokens
    slower = _cable(op=RuleOp.MODIFY, qos=Qos(up_kbps=800, down_kbps=64, burst_bytes=0))
    assert table.modify(slower).ok
    assert up.depth[slot] == up.tokens[slot] == 3044
    assert down.limited[slot] and down.tokens[slot] == 3044
    # a move to another slot takes the buckets along
    moved = dataclasses.replace(slower, endpoint=dataclasses.replace(slower.endpoint, cm_sid=4))
    assert table.modify(moved).ok
    new = table.slot_of(9)
    assert new is not None and new != slot
    assert up.limited[new] and not up.limited[slot] and up.count == 1
    assert table.remove(9)[0].ok
    assert not up.limited[new] and up.tokens[new] == 0 and (up.count, down.count) == (0, 0)
