"""From a topology to a concrete lab: names, addresses, MACs, links and node configs.

Pure: the same topology and lab index always give the same plan, so the plan can be recorded
in the lab's state file and realized (or torn down) step by step by
``vnf.lab.adapters.netlink``.

Shape of a lab ``L`` with index ``k`` (DESIGN.md §6, §8)::

    root ns ── vnf<k>-mgmt (198.19.k.1) ─┐
                                          │   namespace vnf-L-fabric
      every node ns ── mgmt0 ─────────── br-mgmt  (198.19.k.0/24, gRPC + metrics)
      dp-S-i ns ── acc0 ───────────┐
      emu-S ns  ── acc0 ───────── br-accN   (site N's access segment, PPPoE on the wire)
      dp-S-i ns ── core0 ──────────┐
      core ns   ── core0 ───────── br-core  (198.18.16.0/20: router .1, DPs .11+)
      core ns   ── srvN ══ veth ══ eth0 (srvN ns)  (198.18.(1+N).0/24)

Address plan: subscribers 100.64.0.0/10, lab fabric 198.18.0.0/15 (management in
198.19.k.0/24), nothing else; no namespace gets a route outside these.

MACs are locally administered and say what they are: ``byte0 = kind << 2 | 0x02``, then the
lab index, the site index and a 24-bit number (see :class:`MacKind`).
"""

from __future__ import annotations

import enum
import ipaddress
import os
from dataclasses import dataclass, replace

from vnf.config import (
    CableConfig,
    CpConfig,
    DpConfig,
    DpRef,
    EmulatorConfig,
    Endpoint,
    GroupConfig,
    NodeConfig,
    RateProfileConfig,
    RouterConfig,
)
from vnf.errors import ConfigError
from vnf.lab.topology import Topology
from vnf.model.addresses import mac_to_str

MGMT_SPACE = ipaddress.IPv4Network("198.19.0.0/16")
CORE_SEGMENT = ipaddress.IPv4Network("198.18.16.0/20")
SUBSCRIBER_SPACE = ipaddress.IPv4Network("100.64.0.0/10")
MAX_LABS = 256
DP_CORE_HOST_OFFSET = 11
SERVER_PORT = 5001


class MacKind(enum.IntEnum):
    MGMT = 1
    DP_ACCESS = 2
    DP_CORE = 3
    ROUTER = 4
    GROUP = 5
    EMULATOR = 6
    SERVER = 7
    CLIENT = 8
    FABRIC = 9
    ROOT = 10
    ATTACH = 11
    MODEM = 12
    CPE = 13


def make_mac(kind: MacKind, lab_index: int, site_index: int, number: int) -> bytes:
    if not 0 <= number < 1 << 24:
        raise ValueError(f"MAC number {number} out of range")
    return bytes(
        (
            (int(kind) << 2) | 0x02,
            lab_index & 0xFF,
            site_index & 0xFF,
            (number >> 16) & 0xFF,
            (number >> 8) & 0xFF,
            number & 0xFF,
        )
    )


class NodeKind(enum.StrEnum):
    CP = "cp"
    DP = "dp"
    EMULATOR = "emulator"
    ROUTER = "router"
    SERVER = "server"


@dataclass(frozen=True, slots=True)
class LinkPlan:
    """A veth pair. ``a`` is the node end; ``b`` the other end (fabric, root or a peer node).

    ``*_ns`` of ``None`` means the root namespace. When ``bridge`` is set the ``b`` end is a
    port of that bridge (in ``b_ns``).
    """

    purpose: str
    a_ns: str | None
    a_ifname: str
    a_mac: str
    a_address: str | None
    b_ns: str | None
    b_ifname: str
    b_mac: str
    b_address: str | None = None
    bridge: str | None = None


@dataclass(frozen=True, slots=True)
class BridgePlan:
    netns: str
    name: str
    purpose: str


@dataclass(frozen=True, slots=True)
class RoutePlan:
    netns: str
    dst: str
    gateway: str


@dataclass(frozen=True, slots=True)
class NodePlan:
    name: str
    kind: NodeKind
    netns: str
    site: str
    role: str
    mgmt_ip: str | None
    config: NodeConfig | None

    @property
    def endpoint(self) -> Endpoint | None:
        return Endpoint(self.mgmt_ip) if self.mgmt_ip else None


@dataclass(frozen=True, slots=True)
class LabPlan:
    lab: str
    index: int
    fabric_ns: str
    namespaces: tuple[str, ...]
    bridges: tuple[BridgePlan, ...]
    links: tuple[LinkPlan, ...]
    routes: tuple[RoutePlan, ...]
    sysctls: tuple[tuple[str, str, str], ...]  # (netns, key, value)
    nodes: tuple[NodePlan, ...]
    groups: tuple[GroupConfig, ...]
    mgmt_subnet: str
    root_mgmt_ifname: str
    root_mgmt_ip: str
    data_dir: str

    def node(self, name: str) -> NodePlan:
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def nodes_of(self, kind: NodeKind) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if n.kind is kind)

    def access_bridge(self, site: str) -> BridgePlan:
        for bridge in self.bridges:
            if bridge.purpose == f"access:{site}":
                return bridge
        raise KeyError(site)


def netns_name(lab: str, node: str) -> str:
    return f"vnf-{lab}-{node}"


def root_mgmt_ifname(index: int) -> str:
    return f"vnf{index}-mgmt"


def plan_lab(topology: Topology, index: int, data_dir: str, cookie_secret: str) -> LabPlan:
    """Derive the whole lab. ``index`` (0..255) keeps concurrent labs' root-side names apart."""
    if not 0 <= index < MAX_LABS:
        raise ConfigError("lab index", f"must be 0..{MAX_LABS - 1}")
    return _Planner(topology, index, data_dir, cookie_secret).build()


class _Planner:
    def __init__(self, topology: Topology, index: int, data_dir: str, secret: str) -> None:
        self.t = topology
        self.k = index
        self.lab = topology.name
        self.data_dir = data_dir
        self.secret = secret
        self.fabric = netns_name(self.lab, "fabric")
        self.mgmt_net = ipaddress.IPv4Network(f"198.19.{index}.0/24")
        self.next_mgmt = 2
        self.links: list[LinkPlan] = []
        self.bridges: list[BridgePlan] = [BridgePlan(self.fabric, "br-mgmt", "mgmt")]
        self.routes: list[RoutePlan] = []
        self.sysctls: list[tuple[str, str, str]] = []
        self.nodes: list[NodePlan] = []
        self.namespaces: list[str] = [self.fabric]
        self.fabric_port = 0

    # -- helpers ---------------------------------------------------------------------------

    def mac(self, kind: MacKind, site: int, number: int) -> str:
        return mac_to_str(make_mac(kind, self.k, site, number))

    def log(self, node: str) -> str:
        return f"{self.data_dir}/logs/{node}.log"

    def add_namespace(self, node: str) -> str:
        ns = netns_name(self.lab, node)
        self.namespaces.append(ns)
        self.sysctls.append((ns, "net/ipv6/conf/all/disable_ipv6", "1"))
        self.sysctls.append((ns, "net/ipv6/conf/default/disable_ipv6", "1"))
        return ns

    def mgmt_ip(self) -> str:
        if self.next_mgmt > 254:
            raise ConfigError("sites", "too many nodes for one management /24 (253 at most)")
        address = str(self.mgmt_net.network_address + self.next_mgmt)
        self.next_mgmt += 1
        return address

    def fabric_link(
        self, purpose: str, ns: str, ifname: str, mac: str, address: str | None, bridge: str
    ) -> None:
        self.fabric_port += 1
        prefix = {"mgmt": "m", "core": "c"}.get(purpose, "a")
        self.links.append(
            LinkPlan(
                purpose=purpose,
                a_ns=ns,
                a_ifname=ifname,
                a_mac=mac,
                a_address=address,
                b_ns=self.fabric,
                b_ifname=f"{prefix}{self.fabric_port}",
                b_mac=self.mac(MacKind.FABRIC, 0, self.fabric_port),
                bridge=bridge,
            )
        )

    def mgmt_link(self, ns: str, number: int) -> str:
        address = self.mgmt_ip()
        self.fabric_link(
            "mgmt",
            ns,
            "mgmt0",
            self.mac(MacKind.MGMT, 0, number),
            f"{address}/{self.mgmt_net.prefixlen}",
            "br-mgmt",
        )
        return address

    # -- the lab ---------------------------------------------------------------------------

    def build(self) -> LabPlan:
        self.sysctls.append((self.fabric, "net/ipv6/conf/all/disable_ipv6", "1"))
        self.sysctls.append((self.fabric, "net/ipv6/conf/default/disable_ipv6", "1"))
        root_ip = str(self.mgmt_net.network_address + 1)
        self.links.append(
            LinkPlan(
                purpose="mgmt",
                a_ns=None,
                a_ifname=root_mgmt_ifname(self.k),
                a_mac=self.mac(MacKind.ROOT, 0, 1),
                a_address=f"{root_ip}/{self.mgmt_net.prefixlen}",
                b_ns=self.fabric,
                b_ifname="m-root",
                b_mac=self.mac(MacKind.FABRIC, 0, 0xFFFF),
                bridge="br-mgmt",
            )
        )
        self.bridges.append(BridgePlan(self.fabric, "br-core", "core"))
        router = self.plan_router()
        groups = self.plan_groups()
        dps = self.plan_data_planes(groups)
        cps = self.plan_control_planes(groups, dps, router)
        emulators = self.plan_emulators(cps)
        self.nodes = [router, *cps, *dps, *emulators, *self.nodes]
        return LabPlan(
            lab=self.lab,
            index=self.k,
            fabric_ns=self.fabric,
            namespaces=tuple(self.namespaces),
            bridges=tuple(self.bridges),
            links=tuple(self.links),
            routes=tuple(self.routes),
            sysctls=tuple(self.sysctls),
            nodes=tuple(self.nodes),
            groups=tuple(groups),
            mgmt_subnet=str(self.mgmt_net),
            root_mgmt_ifname=root_mgmt_ifname(self.k),
            root_mgmt_ip=root_ip,
            data_dir=self.data_dir,
        )

    def plan_router(self) -> NodePlan:
        ns = self.add_namespace("core")
        self.sysctls.append((ns, "net/ipv4/ip_forward", "1"))
        self.sysctls.append((ns, "net/ipv4/conf/all/rp_filter", "0"))
        mgmt = self.mgmt_link(ns, 1)
        core_ip = CORE_SEGMENT.network_address + 1
        self.fabric_link(
            "core",
            ns,
            "core0",
            self.mac(MacKind.ROUTER, 0, 1),
            f"{core_ip}/{CORE_SEGMENT.prefixlen}",
            "br-core",
        )
        for i in range(1, self.t.core.servers + 1):
            server_ns = self.add_namespace(f"srv{i}")
            subnet = ipaddress.IPv4Network(f"198.18.{1 + i}.0/24")
            self.links.append(
                LinkPlan(
                    purpose=f"server:srv{i}",
                    a_ns=server_ns,
                    a_ifname="eth0",
                    a_mac=self.mac(MacKind.SERVER, 0, i),
                    a_address=f"{subnet.network_address + 2}/24",
                    b_ns=ns,
                    b_ifname=f"srv{i}",
                    b_mac=self.mac(MacKind.ROUTER, 0, 1 + i),
                    b_address=f"{subnet.network_address + 1}/24",
                )
            )
            self.routes.append(
                RoutePlan(server_ns, str(SUBSCRIBER_SPACE), str(subnet.network_address + 1))
            )
            self.nodes.append(
                NodePlan(f"srv{i}", NodeKind.SERVER, server_ns, "", "server", None, None)
            )
        endpoint = Endpoint(mgmt)
        config = RouterConfig(
            name="core",
            lab=self.lab,
            netns=ns,
            endpoint=endpoint,
            log_path=self.log("core"),
            core_ifname="core0",
            subscriber_space=str(SUBSCRIBER_SPACE),
            next_hop_space=str(CORE_SEGMENT),
        )
        return NodePlan("core", NodeKind.ROUTER, ns, "", "router", mgmt, config)

    def plan_groups(self) -> list[GroupConfig]:
        groups: list[GroupConfig] = []
        for site_index, site in enumerate(self.t.sites, start=1):
            prefix = site.pool.prefixlen + site.groups.bit_length() - 1
            actives = [f"dp-{site.name}-{i}" for i in range(1, site.data_plane.active + 1)]
            for i, pool in enumerate(site.pool.subnets(new_prefix=prefix)):
                group_id = len(groups) + 1
                groups.append(
                    GroupConfig(
                        group_id=group_id,
                        site=site.name,
                        virtual_mac=self.mac(MacKind.GROUP, site_index, group_id),
                        pool=str(pool),
                        dp=actives[i % len(actives)],
                    )
                )
        return groups

    def plan_data_planes(self, groups: list[GroupConfig]) -> list[NodePlan]:
        del groups  # placement lives in the CP config; a DP learns its groups at Assignment
        nodes: list[NodePlan] = []
        dp_number = 0
        for site_index, site in enumerate(self.t.sites, start=1):
            bridge = f"br-acc{site_index}"
            self.bridges.append(BridgePlan(self.fabric, bridge, f"access:{site.name}"))
            total = site.data_plane.active + site.data_plane.standby
            for i in range(1, total + 1):
                dp_number += 1
                name = f"dp-{site.name}-{i}"
                role = "active" if i <= site.data_plane.active else "standby"
                ns = self.add_namespace(name)
                mgmt = self.mgmt_link(ns, 100 + dp_number)
                access_mac = self.mac(MacKind.DP_ACCESS, site_index, i)
                core_mac = self.mac(MacKind.DP_CORE, site_index, i)
                host = DP_CORE_HOST_OFFSET + dp_number - 1
                if host >= CORE_SEGMENT.num_addresses - 1:
                    raise ConfigError("sites", "too many data-plane workers for the core segment")
                core_ip = CORE_SEGMENT.network_address + host
                # The DP answers ARP for its core address itself: no kernel address on core0.
                self.fabric_link("access", ns, "acc0", access_mac, None, bridge)
                self.fabric_link("core", ns, "core0", core_mac, None, "br-core")
                config = DpConfig(
                    name=name,
                    lab=self.lab,
                    site=site.name,
                    netns=ns,
                    endpoint=Endpoint(mgmt),
                    role=role,
                    log_path=self.log(name),
                    access_ifname="acc0",
                    core_ifname="core0",
                    access_mac=access_mac,
                    core_mac=core_mac,
                    core_ip=str(core_ip),
                    core_prefix_len=CORE_SEGMENT.prefixlen,
                    core_gateway=str(CORE_SEGMENT.network_address + 1),
                    cp_addresses=(),
                    batch_size=site.data_plane.batch_size,
                    io=site.data_plane.io,
                    cpu=_worker_cpu(site.data_plane.cpus, dp_number),
                )
                nodes.append(NodePlan(name, NodeKind.DP, ns, site.name, role, mgmt, config))
        return nodes

    def plan_control_planes(
        self, groups: list[GroupConfig], dps: list[NodePlan], router: NodePlan
    ) -> list[NodePlan]:
        cp = self.t.control_plane
        names = ["cp-a", "cp-b"][: cp.nodes]
        nodes: list[NodePlan] = []
        for i, name in enumerate(names):
            ns = self.add_namespace(name)
            mgmt = self.mgmt_link(ns, 50 + i)
            nodes.append(NodePlan(name, NodeKind.CP, ns, "", "", mgmt, None))
        cp_addresses = tuple(Endpoint(n.mgmt_ip or "").grpc for n in nodes)
        dp_refs = tuple(
            DpRef(
                name=n.name,
                site=n.site,
                role=n.role,
                core_ip=n.config.core_ip if isinstance(n.config, DpConfig) else "",
            )
            for n in dps
        )
        detect_s = cp.detect_ms / 1000.0
        # Now that the CPs' addresses are known, give them to every DP.
        for j, dp in enumerate(dps):
            assert isinstance(dp.config, DpConfig)
            dps[j] = _replace_config(
                dp, replace(dp.config, cp_addresses=cp_addresses, detect_s=detect_s)
            )
        profiles = tuple(
            RateProfileConfig(p.name, p.up_kbps, p.down_kbps, p.burst_bytes)
            for p in self.t.rate_profiles
        )
        planned = []
        for i, node in enumerate(nodes):
            role = "active" if i == 0 else "standby"
            # The pair: each CP knows the other (index 0 is cp-a); a single CP has no peer.
            peer = nodes[1 - i] if len(nodes) == 2 else None
            config = CpConfig(
                name=node.name,
                lab=self.lab,
                netns=node.netns,
                endpoint=Endpoint(node.mgmt_ip or ""),
                role=role,
                db_path=f"{self.data_dir}/{node.name}.db",
                log_path=self.log(node.name),
                cookie_secret=self.secret,
                ac_name=cp.ac_name,
                service_names=cp.service_names,
                auth_methods=cp.auth_methods,
                mru=cp.lcp.mru,
                echo_interval_s=cp.lcp.echo_interval_s,
                echo_failures=cp.lcp.echo_failures,
                interim_interval_s=cp.interim_interval_s,
                cookie_ttl_s=cp.cookie_ttl_s,
                dns=cp.dns,
                groups=tuple(groups),
                dps=dp_refs,
                rate_profiles=profiles,
                router=router.endpoint.grpc if router.endpoint else "",
                index=i,
                peer=Endpoint(peer.mgmt_ip or "").grpc if peer else "",
                peer_name=peer.name if peer else "",
                detect_s=detect_s,
                headless_timeout_s=cp.headless_timeout_s,
                hot_standby=cp.hot_standby,
                cable=CableConfig(
                    shared_secret=self.t.cable.shared_secret,
                    t4_s=3 * self.t.cable.ranging_interval_s,
                ),
            )
            planned.append(
                NodePlan(node.name, NodeKind.CP, node.netns, "", role, node.mgmt_ip, config)
            )
        return planned

    def plan_emulators(self, cps: list[NodePlan]) -> list[NodePlan]:
        del cps
        nodes: list[NodePlan] = []
        for site_index, site in enumerate(self.t.sites, start=1):
            name = f"emu-{site.name}"
            ns = self.add_namespace(name)
            mgmt = self.mgmt_link(ns, 200 + site_index)
            self.fabric_link(
                "access",
                ns,
                "acc0",
                self.mac(MacKind.EMULATOR, site_index, 1),
                None,
                f"br-acc{site_index}",
            )
            subs = site.subscribers
            config = EmulatorConfig(
                name=name,
                lab=self.lab,
                site=site.name,
                netns=ns,
                endpoint=Endpoint(mgmt),
                log_path=self.log(name),
                access_ifname="acc0",
                lab_index=self.k,
                site_index=site_index,
                subscribers=subs.pppoe,
                chap_share=subs.chap_share,
                username=subs.username,
                password=subs.password,
                server_netns=netns_name(self.lab, "srv1"),
                server_ip="198.18.2.2",
                server_port=SERVER_PORT + site_index - 1,  # one UDP port per site on the server
                dial_rate=site.dial.rate,
                max_outstanding=site.dial.max_outstanding,
                mru=self.t.control_plane.lcp.mru,
                modems=site.modems.count,
                modem_service_class=site.modems.service_class,
                cable_secret=self.t.cable.shared_secret,
                modem_ranging_interval_s=self.t.cable.ranging_interval_s,
                echo_interval_s=self.t.control_plane.lcp.echo_interval_s,
                echo_failures=self.t.control_plane.lcp.echo_failures,
            )
            nodes.append(NodePlan(name, NodeKind.EMULATOR, ns, site.name, "emulator", mgmt, config))
        return nodes


def _replace_config(node: NodePlan, config: NodeConfig) -> NodePlan:
    return replace(node, config=config)


def _worker_cpu(cpus: tuple[int, ...] | None, dp_number: int) -> int | None:
    """The CPU of the ``dp_number``-th worker (1-based) of the lab: round robin over
    ``cpus``, or over every CPU this process may use when ``cpus`` is empty; None: unpinned."""
    if cpus is None:
        return None
    choices = cpus or tuple(sorted(os.sched_getaffinity(0)))
    return choices[(dp_number - 1) % len(choices)]
