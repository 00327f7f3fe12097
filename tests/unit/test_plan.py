"""The lab plan: names, addresses and MACs stay inside the address plan, and are unique."""

from __future__ import annotations

import ipaddress
import os

from vnf.config import CpConfig, DpConfig, EmulatorConfig, dumps, loads
from vnf.lab.plan import NodeKind, plan_lab
from vnf.lab.subscribers import lab_subscribers
from vnf.lab.topology import default_topology, parse_topology

FABRIC = ipaddress.IPv4Network("198.18.0.0/15")


def _plan(index: int = 7):  # type: ignore[no-untyped-def]
    return plan_lab(default_topology(), index, "/tmp/vnf-test", "00" * 16)


def test_every_address_is_in_the_address_plan() -> None:
    plan = _plan()
    for link in plan.links:
        for address in (link.a_address, link.b_address):
            if address:
                assert ipaddress.IPv4Interface(address).ip in FABRIC, address
    for route in plan.routes:
        assert ipaddress.IPv4Network(route.dst).subnet_of(ipaddress.IPv4Network("100.64.0.0/10"))
        assert ipaddress.IPv4Address(route.gateway) in FABRIC


def test_names_and_macs_are_unique_and_short() -> None:
    plan = _plan()
    assert len(set(plan.namespaces)) == len(plan.namespaces)
    macs = [m for link in plan.links for m in (link.a_mac, link.b_mac)]
    macs += [g.virtual_mac for g in plan.groups]
    assert len(set(macs)) == len(macs)
    for link in plan.links:
        assert len(link.a_ifname) <= 15 and len(link.b_ifname) <= 15
        for mac in (link.a_mac, link.b_mac):
            first = int(mac[:2], 16)
            assert first & 0x02 and not first & 0x01  # locally administered unicast


def test_labs_with_different_indexes_do_not_collide_in_the_root_namespace() -> None:
    a, b = _plan(1), _plan(2)
    assert a.root_mgmt_ifname != b.root_mgmt_ifname
    assert not ipaddress.IPv4Network(a.mgmt_subnet).overlaps(ipaddress.IPv4Network(b.mgmt_subnet))


def test_default_lab_nodes_roles_and_group_placement() -> None:
    plan = _plan()
    dps = plan.nodes_of(NodeKind.DP)
    assert [d.role for d in dps] == ["active", "active", "standby"]
    assert [(c.name, c.role) for c in plan.nodes_of(NodeKind.CP)] == [
        ("cp-a", "active"),
        ("cp-b", "standby"),
    ]
    served = {g.dp for g in plan.groups}
    assert served == {"dp-site1-1", "dp-site1-2"}  # the standby serves nothing
    pools = [ipaddress.IPv4Network(g.pool) for g in plan.groups]
    assert all(p.subnet_of(ipaddress.IPv4Network("100.64.0.0/16")) for p in pools)
    assert sum(p.num_addresses for p in pools) == 65536


def test_node_configs_round_trip_through_json() -> None:
    plan = _plan()
    for node in plan.nodes:
        config = node.config
        if config is None:
            continue
        assert loads(type(config), dumps(config)) == config
    cp = plan.node("cp-a").config
    assert isinstance(cp, CpConfig)
    cp_b = plan.node("cp-b").config
    assert isinstance(cp_b, CpConfig)
    dp = plan.node("dp-site1-1").config
    assert isinstance(dp, DpConfig) and dp.cp_addresses == (cp.endpoint.grpc, cp_b.endpoint.grpc)
    assert isinstance(plan.node("emu-site1").config, EmulatorConfig)


def test_lab_subscribers_split_chap_and_pap_and_are_unique() -> None:
    subs = lab_subscribers(200, 0.5, "user{n:05d}@{site}", "pw-{n}", "site1", 3, 1)
    assert sum(s.auth == "chap" for s in subs) == 100
    assert len({s.mac for s in subs}) == len({s.username for s in subs}) == 200
    assert subs[0].username == "user00001@site1"


def test_many_sites_plan() -> None:
    sites = [
        {"name": f"s{i}", "pool": f"100.{64 + i}.0.0/16", "subscribers": {"pppoe": 1}}
        for i in range(10)
    ]
    plan = plan_lab(parse_topology({"sites": sites}), 0, "/tmp/x", "00")
    assert len(plan.nodes_of(NodeKind.DP)) == 30
    assert len({b.name for b in plan.bridges}) == len(plan.bridges)


def test_each_sites_emulator_has_its_own_server_port() -> None:
    sites = [
        {"name": f"s{i}", "pool": f"100.{64 + i}.0.0/16", "subscribers": {"pppoe": 1}}
        for i in range(3)
    ]
    plan = plan_lab(parse_topology({"sites": sites}), 0, "/tmp/x", "00")
    ports = [n.config.server_port for n in plan.nodes_of(NodeKind.EMULATOR)]  # type: ignore[union-attr]
    assert len(set(ports)) == 3


def test_the_cp_pair_knows_each_other() -> None:
    plan = _plan()
    a, b = plan.node("cp-a").config, plan.node("cp-b").config
    assert isinstance(a, CpConfig) and isinstance(b, CpConfig)
    assert (a.index, a.peer, a.peer_name) == (0, b.endpoint.grpc, "cp-b")
    assert (b.index, b.peer, b.peer_name) == (1, a.endpoint.grpc, "cp-a")
    assert a.peer != b.peer
    for config in (a, b):
        assert config.detect_s == 0.2
        assert config.headless_timeout_s == 120.0


def test_detection_and_headless_settings_reach_every_cp_and_dp() -> None:
    topology = parse_topology(
        {"control_plane": {"detect_ms": 400, "headless_timeout_s": 0}, "sites": [{}]}
    )
    plan = plan_lab(topology, 0, "/tmp/x", "00")
    for node in plan.nodes_of(NodeKind.CP):
        assert isinstance(node.config, CpConfig)
        assert (node.config.detect_s, node.config.headless_timeout_s) == (0.4, 0.0)
    for node in plan.nodes_of(NodeKind.DP):
        assert isinstance(node.config, DpConfig)
        assert node.config.detect_s == 0.4
        assert len(node.config.cp_addresses) == 2


def test_data_plane_io_batch_and_cpu_pinning_reach_the_workers() -> None:
    def dps(data_plane: dict[str, object]) -> list[DpConfig]:
        topology = parse_topology({"sites": [{"data_plane": data_plane}]})
        nodes = plan_lab(topology, 0, "/tmp/x", "00").nodes_of(NodeKind.DP)
        return [n.config for n in nodes if isinstance(n.config, DpConfig)]

    default = dps({})
    assert {dp.io for dp in default} == {"mmsg"} and {dp.batch_size for dp in default} == {256}
    assert {dp.cpu for dp in default} == {None}
    auto = dps({"cpus": "auto"})
    usable = sorted(os.sched_getaffinity(0))
    assert [dp.cpu for dp in auto] == [usable[i % len(usable)] for i in range(len(auto))]
    chosen = dps({"io": "ring", "batch_size": 1024, "cpus": [3], "active": 2, "standby": 1})
    assert [(dp.io, dp.batch_size, dp.cpu) for dp in chosen] == [("ring", 1024, 3)] * 3
    assert [dp.cpu for dp in dps({"cpus": [0, 1], "active": 3, "standby": 0})] == [0, 1, 0]


def test_a_single_cp_has_no_peer() -> None:
    plan = plan_lab(parse_topology({"control_plane": {"nodes": 1}}), 0, "/tmp/x", "00")
    (cp,) = plan.nodes_of(NodeKind.CP)
    assert isinstance(cp.config, CpConfig)
    assert (cp.name, cp.config.index, cp.config.peer, cp.config.peer_name) == ("cp-a", 0, "", "")
    dp = plan.node("dp-site1-1").config
    assert isinstance(dp, DpConfig) and dp.cp_addresses == (cp.config.endpoint.grpc,)
