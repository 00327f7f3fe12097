"""Fault injection on a running lab, for the CLI and the benchmarks: resolve a target, fail it
through the orchestrator, watch the control plane take over, measure the traffic gap.

Every function returns a dataclass and prints nothing; ``cli.py`` only parses and prints.
Targets ``cp-active`` / ``cp-standby`` are resolved by asking each CP's Management.GetStatus
for its role. A takeover is read from the (new) active CP's ``CpStatus.takeovers``: the first
one stamped at or after the fault (same machine, same wall clock) is this fault's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vnf.api import orchestrator_pb2
from vnf.errors import Conflict, NotFound
from vnf.lab.adapters.clients import CpView, LabClient
from vnf.lab.adapters.lifecycle import orchestrator_stub
from vnf.lab.adapters.operations import start_traffic, traffic_rows, wait_traffic

Progress = Callable[[str], None]

CP_ROLES = {"cp-active": "active", "cp-standby": "standby"}
KINDS = {
    "kill": orchestrator_pb2.FAULT_KIND_KILL,
    "freeze": orchestrator_pb2.FAULT_KIND_FREEZE,
    "link": orchestrator_pb2.FAULT_KIND_LINK,
}
POLL_S = 0.05
FAULT_TIMEOUT_S = 30.0


def _quiet(_: str) -> None:
    return None


@dataclass
class FaultResult:
    """What the orchestrator did."""

    kind: str  # kill, freeze, link
    node: str
    peer: str
    hold: bool
    pid: int
    at_wall: float
    detail: str


@dataclass
class CpSnapshot:
    """The CPs' roles and the active CP's session count at one moment."""

    roles: dict[str, str]  # CP name -> role ("unreachable" when it did not answer)
    active: str  # "" when no CP reports itself active
    sessions: int  # on the active CP
    epoch: int


@dataclass
class TakeoverResult:
    observed: bool
    summary: str  # one line: what happened, or what the status shows when nothing did
    kind: str = ""
    from_node: str = ""
    to_node: str = ""
    detection_ms: float = 0.0
    takeover_ms: float = 0.0
    carried: int = 0  # sessions the takeover carried over (the CP's own figure)
    groups: int = 0
    epoch: int = 0
    active_cp: str = ""
    sessions_before: int = 0  # on the active CP before the fault
    sessions_after: int = 0  # on the active CP once the takeover is reported
    waited_s: float = 0.0


@dataclass
class GapRow:
    """Traffic through the fault, one direction, merged over the emulators."""

    direction: str
    flows: int
    sent: int
    received: int
    lost: int
    loss_pct: float
    max_gap_ms: float  # the longest forwarding gap of any flow (sequence numbers)
    p99_gap_ms: float  # p99 over flows of each flow's longest gap
    max_arrival_gap_ms: float  # the longest gap between arrivals, receiver jitter included


@dataclass
class FailOutcome:
    fault: FaultResult
    before: CpSnapshot
    takeover: TakeoverResult | None  # None when not waited for
    traffic: list[GapRow] = field(default_factory=list)
    traffic_s: float = 0.0
    injected_after_s: float = 0.0


# -- targets ---------------------------------------------------------------------------------


def snapshot(client: LabClient) -> CpSnapshot:
    return _snapshot(client.cp_statuses())


def _snapshot(views: list[CpView]) -> CpSnapshot:
    roles = {v.node.name: v.role for v in views}
    active = [v for v in views if v.status is not None and v.status.role == "active"]
    if not active:
        return CpSnapshot(roles, "", 0, 0)
    best = max(active, key=lambda v: int(v.status.epoch))
    return CpSnapshot(roles, best.node.name, int(best.status.sessions), int(best.status.epoch))


def resolve(client: LabClient, target: str, kind: str = "") -> str:
    """A node name for ``target``: ``cp-active`` / ``cp-standby`` by the role each CP reports,
    anything else must name a node of the lab (of ``kind`` when given)."""
    if target in CP_ROLES:
        role = CP_ROLES[target]
        views = client.cp_statuses()
        if not views:
            raise NotFound(f"lab {client.lab} has no control plane")
        matching = [v for v in views if v.status is not None and v.status.role == role]
        if not matching:
            seen = ", ".join(f"{v.node.name} {v.role}" for v in views)
            raise NotFound(f"no control plane reports itself {role} ({seen})")
        return max(matching, key=lambda v: int(v.status.epoch)).node.name
    return node_name(client, target, kind)


def node_name(client: LabClient, name: str, kind: str = "") -> str:
    nodes = [n for n in client.state.nodes if not kind or n.kind == kind]
    if any(n.name == name for n in nodes):
        return name
    what = {"dp": "data-plane worker", "cp": "control plane"}.get(kind, "node")
    known = ", ".join(n.name for n in nodes) or "none"
    raise NotFound(f"no {what} named {name!r} in lab {client.lab} ({known})")


def held_cp(client: LabClient) -> str:
    """The CP held down by a KILL fault (what ``vnf repair cp-active|cp-standby`` repairs)."""
    cps = {n.name for n in client.nodes("cp")}
    held = [f["node"] for f in active_faults(client) if f["kind"] == "kill" and f["node"] in cps]
    if not held:
        raise Conflict("no control plane is held down (vnf fail cp-active --hold does that)")
    if len(held) > 1:
        raise Conflict(f"several CPs are held down ({', '.join(held)}): vnf repair node NAME")
    return str(held[0])


def active_faults(client: LabClient) -> list[dict[str, Any]]:
    """Held kills, freezes and link cuts, as the orchestrator recorded them."""
    return client.store.faults(client.lab)


# -- inject and repair -----------------------------------------------------------------------


def inject(
    client: LabClient, kind: str, node: str, peer: str = "", hold: bool = False
) -> FaultResult:
    return _call(client, "Fail", kind, node, peer, hold)


def repair(client: LabClient, kind: str, node: str, peer: str = "") -> FaultResult:
    return _call(client, "Repair", kind, node, peer, False)


def _call(
    client: LabClient, method: str, kind: str, node: str, peer: str, hold: bool
) -> FaultResult:
    request = orchestrator_pb2.Fault(kind=KINDS[kind], node=node, peer=peer, hold=hold)
    channel, stub = orchestrator_stub(client.store, client.lab)
    with channel:
        reply = getattr(stub, method)(request, timeout=FAULT_TIMEOUT_S)
    # The orchestrator names a link by the order it was cut in; keep the two ends paired.
    other = (peer if reply.node == node else node) if peer else ""
    return FaultResult(kind, reply.node, other, hold, reply.pid, reply.at_wall, reply.detail)


# -- what the control plane did --------------------------------------------------------------


def find_takeover(views: list[CpView], since_wall: float) -> tuple[CpView, Any] | None:
    """The most recent takeover stamped at or after ``since_wall`` on any CP that answered,
    the active CP's first."""
    found: list[tuple[int, float, CpView, Any]] = []
    for view in views:
        if view.status is None:
            continue
        rank = 1 if view.status.role == "active" else 0
        for t in view.status.takeovers:
            if t.at_wall >= since_wall:
                found.append((rank, t.at_wall, view, t))
    if not found:
        return None
    _, _, view, takeover = max(found, key=lambda x: (x[0], x[1]))
    return view, takeover


def describe_no_takeover(before: CpSnapshot, after: CpSnapshot, waited_s: float) -> str:
    """``no takeover within 10 s: cp-a active, cp-b still standby``."""
    parts = []
    for name, role in after.roles.items():
        still = "still " if before.roles.get(name) == role else ""
        parts.append(f"{name} {still}{role}")
    return f"no takeover within {waited_s:g} s: " + (", ".join(parts) or "no control plane")


def wait_for_takeover(
    client: LabClient, since_wall: float, before: CpSnapshot, wait_s: float
) -> TakeoverResult:
    """Poll every CP's status until one reports a takeover stamped at or after the fault."""
    started = time.monotonic()
    end = started + wait_s
    while True:
        views = client.cp_statuses(timeout_s=1.0)
        found = find_takeover(views, since_wall)
        if found is not None:
            view, t = found
            return TakeoverResult(
                observed=True,
                summary=(
                    f"{t.kind} {t.from_node} -> {t.to_node}: detection {t.detection_ms:.1f} ms, "
                    f"takeover {t.takeover_ms:.1f} ms, epoch {t.epoch}"
                ),
                kind=t.kind,
                from_node=t.from_node,
                to_node=t.to_node,
                detection_ms=t.detection_ms,
                takeover_ms=t.takeover_ms,
                carried=t.sessions,
                groups=t.groups,
                epoch=t.epoch,
                active_cp=view.node.name,
                sessions_before=before.sessions,
                sessions_after=int(view.status.sessions),
                waited_s=time.monotonic() - started,
            )
        if time.monotonic() >= end:
            after = _snapshot(views)
            return TakeoverResult(
                observed=False,
                summary=describe_no_takeover(before, after, wait_s),
                active_cp=after.active,
                sessions_before=before.sessions,
                sessions_after=after.sessions,
                epoch=after.epoch,
                waited_s=time.monotonic() - started,
            )
        time.sleep(POLL_S)


# -- the whole act ---------------------------------------------------------------------------


def fail(
    client: LabClient,
    kind: str,
    node: str,
    peer: str = "",
    hold: bool = False,
    wait_s: float = 10.0,
    traffic_pps: int = 0,
    traffic_s: float = 6.0,
    frame_size: int = 128,
    progress: Progress = _quiet,
    traffic_sessions: int = 0,
) -> FailOutcome:
    """Fail ``node`` (already resolved), optionally one third into a traffic run of
    ``traffic_s`` seconds at ``traffic_pps`` per session and direction; then wait up to
    ``wait_s`` for the takeover and for the traffic run to finish."""
    before = snapshot(client)
    injected_after = 0.0
    if traffic_pps:
        start_traffic(
            client,
            traffic_s,
            traffic_pps,
            frame_size,
            progress=progress,
            max_sessions=traffic_sessions,
        )
        injected_after = traffic_s / 3
        # Not a synchronisation: the schedule of the experiment (fault one third in).
        time.sleep(injected_after)
    result = inject(client, kind, node, peer, hold)
    progress(result.detail)
    takeover = wait_for_takeover(client, result.at_wall, before, wait_s) if wait_s > 0 else None
    rows: list[GapRow] = []
    if traffic_pps:
        reports = wait_traffic(client, traffic_s)
        rows = [
            GapRow(
                r["direction"],
                r["flows"],
                r["sent"],
                r["received"],
                r["lost"],
                r["loss_pct"],
                r["max_gap_ms"],
                r["p99_gap_ms"],
                r["max_arrival_gap_ms"],
            )
            for r in traffic_rows(reports)
        ]
    return FailOutcome(
        result, before, takeover, rows, traffic_s if traffic_pps else 0.0, injected_after
    )
