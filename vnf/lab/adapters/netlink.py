"""Realize a :class:`~vnf.lab.plan.LabPlan` with pyroute2, and remove exactly what it made.

Everything is recorded in the lab's state before it is created (namespaces, root-namespace
links), so :func:`teardown` works after a crash at any point. Links inside lab namespaces
need no record: deleting a namespace deletes its interfaces, and a veth pair goes with
either end.
"""

from __future__ import annotations

import contextlib
import errno
import os
import pathlib
import signal
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from pyroute2 import IPRoute, NetNS, netns
from pyroute2.netlink.exceptions import NetlinkError

from vnf.adapters.process import in_netns, write_sysctl
from vnf.errors import Conflict, NotFound
from vnf.lab.adapters.state import Attachment, LabState, RootLink, StateStore
from vnf.lab.plan import LabPlan, LinkPlan, MacKind, make_mac
from vnf.model.addresses import mac_to_str

NETNS_DIR = pathlib.Path("/var/run/netns")
T = TypeVar("T")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@contextlib.contextmanager
def _ns(name: str | None) -> Iterator[Any]:
    ipr = NetNS(name) if name else IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


def _index(ipr: Any, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise NotFound(f"interface {ifname} not found")
    return int(found[0])


def realize(plan: LabPlan, state: LabState, store: StateStore, progress: Progress = _quiet) -> None:
    """Create namespaces, bridges, veths, addresses, sysctls and routes of ``plan``."""
    existing = set(netns.listnetns())
    for name in plan.namespaces:
        if name in existing:
            raise Conflict(f"network namespace {name} already exists (another lab of this name?)")
    state.fabric_ns = plan.fabric_ns
    state.mgmt_subnet = plan.mgmt_subnet
    state.root_mgmt_ip = plan.root_mgmt_ip
    for name in plan.namespaces:
        state.namespaces.append(name)
        store.save(state)
        netns.create(name)
    progress(f"{len(plan.namespaces)} namespaces")
    for name in plan.namespaces:
        with _ns(name) as ipr:
            ipr.link("set", index=_index(ipr, "lo"), state="up")
    with _ns(plan.fabric_ns) as fabric:
        for bridge in plan.bridges:
            fabric.link(
                "add",
                ifname=bridge.name,
                kind="bridge",
                br_stp_state=0,
                br_forward_delay=0,
                br_mcast_snooping=0,
            )
    progress(f"{len(plan.bridges)} bridges")
    set_sysctls(plan.sysctls)
    for link in plan.links:
        if link.a_ns is None:
            state.root_links.append(RootLink(link.a_ifname, link.a_mac))
            store.save(state)
        _create_link(link)
    with _ns(plan.fabric_ns) as fabric:
        for bridge in plan.bridges:
            fabric.link("set", index=_index(fabric, bridge.name), state="up")
    progress(f"{len(plan.links)} veth pairs")
    for route in plan.routes:
        with _ns(route.netns) as ipr:
            ipr.route("add", dst=route.dst, gateway=route.gateway)


def _create_link(link: LinkPlan) -> None:
    """Create the pair in the ``b`` namespace with the ``a`` end placed directly in its own."""
    peer: dict[str, Any] = {"ifname": link.a_ifname}
    if link.a_ns is not None:
        peer["net_ns_fd"] = link.a_ns
    else:
        peer["net_ns_pid"] = 1
    with _ns(link.b_ns) as b:
        b.link("add", ifname=link.b_ifname, kind="veth", peer=peer)
        b_index = _index(b, link.b_ifname)
        settings: dict[str, Any] = {"address": link.b_mac, "state": "up"}
        if link.bridge:
            settings["master"] = _index(b, link.bridge)
        b.link("set", index=b_index, **settings)
        if link.b_address:
            address, prefix = link.b_address.split("/")
            b.addr("add", index=b_index, address=address, prefixlen=int(prefix))
    with _ns(link.a_ns) as a:
        a_index = _index(a, link.a_ifname)
        a.link("set", index=a_index, address=link.a_mac, state="up")
        if link.a_address:
            address, prefix = link.a_address.split("/")
            a.addr("add", index=a_index, address=address, prefixlen=int(prefix))
    if link.a_ns is None:
        write_sysctl(None, f"net/ipv6/conf/{link.a_ifname}/disable_ipv6", "1")


def set_sysctls(sysctls: tuple[tuple[str, str, str], ...]) -> None:
    for name, key, value in sysctls:
        write_sysctl(name, key, value)


def netns_inode(name: str) -> int | None:
    try:
        return (NETNS_DIR / name).stat().st_ino
    except FileNotFoundError:
        return None


def pids_in_netns(name: str) -> list[int]:
    """PIDs whose network namespace is the named one (what ``ip netns pids`` reports)."""
    inode = netns_inode(name)
    if inode is None:
        return []
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(FileNotFoundError, PermissionError, ProcessLookupError):
            if os.stat(entry / "ns" / "net").st_ino == inode and int(entry.name) != os.getpid():
                pids.append(int(entry.name))
    return pids


def kill_netns_processes(names: list[str], deadline_s: float = 3.0) -> int:
    """SIGTERM then SIGKILL every process living in one of the lab's own namespaces."""
    victims = {pid for name in names for pid in pids_in_netns(name)}
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)  # a frozen (FREEZE fault) process must see it now
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and any(pathlib.Path(f"/proc/{p}").exists() for p in victims):
        time.sleep(0.05)
    for pid in victims:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return len(victims)


def teardown(state: LabState, progress: Progress = _quiet) -> list[str]:
    """Remove the lab's recorded namespaces and root links. Returns what was removed."""
    removed: list[str] = []
    own = [n for n in state.namespaces]
    own += [a.netns for a in state.attachments if a.created_netns]
    killed = kill_netns_processes(own)
    if killed:
        progress(f"killed {killed} leftover processes inside the lab's namespaces")
    with _ns(None) as root:
        for link in state.root_links:
            found = root.link_lookup(ifname=link.ifname)
            if not found:
                continue
            current = root.get_links(found[0])[0].get("IFLA_ADDRESS")
            if current != link.mac:
                progress(f"left {link.ifname}: its MAC {current} is not the lab's {link.mac}")
                continue
            with contextlib.suppress(NetlinkError):
                root.link("del", index=found[0])
                removed.append(link.ifname)
    existing = set(netns.listnetns())
    for name in reversed(own):
        if name in existing:
            try:
                netns.remove(name)
                removed.append(name)
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise
    return removed


def attach(
    state: LabState, store: StateStore, site: str, target_ns: str, ifname: str
) -> Attachment:
    """Give site ``site``'s access segment a spare veth end named ``ifname`` in ``target_ns``."""
    site_names = [s.get("name") for s in state.topology.get("sites", [])] or ["site1"]
    if site not in site_names:
        raise NotFound(
            f"no site {site!r} in lab {state.lab} (sites: {', '.join(map(str, site_names))})"
        )
    bridge = f"br-acc{site_names.index(site) + 1}"
    number = len(state.attachments) + 1
    fabric_ifname = f"x{number}"
    created = target_ns not in netns.listnetns()
    if target_ns in state.namespaces:
        raise Conflict(f"{target_ns} is one of the lab's own node namespaces")
    if not created:
        with _ns(target_ns) as ipr:
            if ipr.link_lookup(ifname=ifname):
                raise Conflict(f"{ifname} already exists in {target_ns}")
    record = Attachment(site, target_ns, ifname, fabric_ifname, created)
    state.attachments.append(record)
    store.save(state)
    if created:
        netns.create(target_ns)
    link = LinkPlan(
        purpose=f"attach:{site}",
        a_ns=target_ns,
        a_ifname=ifname,
        a_mac=mac_to_str(make_mac(MacKind.ATTACH, state.index, site_names.index(site) + 1, number)),
        a_address=None,
        b_ns=state.fabric_ns,
        b_ifname=fabric_ifname,
        b_mac=mac_to_str(make_mac(MacKind.FABRIC, state.index, 0xFE, number)),
        bridge=bridge,
    )
    _create_link(link)
    return record


# -- fault injection: cut the management path between two nodes ------------------------------

# Routing protocol number of the routes a LINK fault adds (rtnetlink's rtm_protocol; unused by
# the kernel and by common routing daemons), so a repair removes exactly those and nothing else.
RTPROT_VNF_FAULT = 77


def _in_ns(ns: str, work: Callable[[Any], T]) -> T:
    """``work(ipr)`` with an IPRoute opened inside ``ns`` by a helper thread (setns).

    Unlike :class:`NetNS`, this forks nothing, so a multi-threaded process (the orchestrator,
    with gRPC running) can use it."""

    def run() -> T:
        with IPRoute() as ipr:
            return work(ipr)

    return in_netns(ns, run)


def cut_path(a_ns: str, a_ip: str, b_ns: str, b_ip: str) -> None:
    """Blackhole ``b_ip``/32 inside ``a_ns`` and ``a_ip``/32 inside ``b_ns``.

    Both sit on the management bridge's /24; the /32 wins by longest prefix, so traffic
    between the two is dropped at its source in both directions while each keeps talking to
    every other node and to the root namespace. Nothing else is touched: no firewall rule, no
    link state. An existing route of ours is left as it is (a repeated cut is harmless)."""
    for ns, dst in ((a_ns, b_ip), (b_ns, a_ip)):

        def add(ipr: Any, dst: str = dst) -> None:
            try:
                ipr.route("add", dst=f"{dst}/32", type="blackhole", proto=RTPROT_VNF_FAULT)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise

        _in_ns(ns, add)


def restore_path(a_ns: str, a_ip: str, b_ns: str, b_ip: str) -> int:
    """Remove the routes :func:`cut_path` added (only ours: matched by protocol number).
    Returns how many were removed; a namespace that is gone counts as nothing to remove."""
    existing = set(netns.listnetns())
    removed = 0
    for ns, dst in ((a_ns, b_ip), (b_ns, a_ip)):
        if ns not in existing:
            continue

        def delete(ipr: Any, dst: str = dst) -> int:
            try:
                ipr.route("del", dst=f"{dst}/32", type="blackhole", proto=RTPROT_VNF_FAULT)
            except NetlinkError as exc:
                if exc.code != errno.ESRCH:
                    raise
                return 0
            return 1

        removed += _in_ns(ns, delete)
    return removed


def fault_routes(ns: str) -> list[str]:
    """Destinations of the LINK-fault routes inside ``ns`` (``a.b.c.d/32``)."""
    return _in_ns(
        ns,
        lambda ipr: [
            f"{r.get('RTA_DST')}/{r['dst_len']}"
            for r in ipr.get_routes(family=2, proto=RTPROT_VNF_FAULT)
        ],
    )
