"""Failover benchmark: each Q.3957-style case several times on a real lab, as distributions.

    python -m bench.run --only failover [--quick]

One lab: the CP pair, one site with one active DP and one standby (so the killed DP carries
every session), ``subscribers`` sessions up. Each round starts a traffic run on ``flows`` of
the sessions at ``pps`` per flow and direction (the per-flow gap's resolution is 1/pps),
injects the fault a third into it, and records what follows. The default, 50 flows x 50 pps
(2,500 pps each way), stays below what a 2-vCPU machine running the emulator, both DPs, the
router and both CPs forwards without queueing; at 200 flows its steady-state latency p99 is
already 40-70 ms and the gaps measure that backlog as much as the failover. Records:

* detection and takeover time, as the CP that took over measured them (``Takeover``);
* the forwarding gap: per direction, the longest gap of any flow and the p99 over flows of
  each flow's longest gap, from the verifier's sequence numbers (the send-time span of the
  packets that never arrived, plus one interval); packets lost; and, for comparison, the
  longest gap between arrivals, which adds the receiver's queueing jitter;
* sessions flapped: sessions whose (user, address, PPPoE id) changed or vanished.

Between rounds the lab heals (the orchestrator restarts the killed node; the standby CP
resyncs; the killed DP comes back as the standby) before the next fault.
"""

from __future__ import annotations

import secrets
import statistics
import time
from typing import Any

from vnf.api import common_pb2, management_pb2
from vnf.lab.adapters import faults, lifecycle
from vnf.lab.adapters.clients import LabClient
from vnf.lab.adapters.operations import dial_and_wait, start_traffic, traffic_rows, wait_traffic
from vnf.lab.adapters.state import StateStore
from vnf.lab.topology import parse_topology

CASES = ("cp_kill", "cp_freeze", "cp_switchover", "dp_kill")


def run(
    subscribers: int = 1000,
    rounds: int = 5,
    flows: int = 50,
    pps: int = 50,
    seconds: float = 4.5,
    cases: tuple[str, ...] = CASES,
) -> dict[str, Any]:
    name = f"fo{secrets.token_hex(2)}"
    raw = {
        "name": name,
        "sites": [
            {
                "name": "site1",
                "data_plane": {"active": 1, "standby": 1},
                "groups": 4,
                "subscribers": {"pppoe": subscribers},
                "modems": {"count": 0},
                "dial": {"autostart": False},
            }
        ],
    }
    lifecycle.up(parse_topology(raw), raw, "", timeout_s=120)
    results: dict[str, list[dict[str, Any]]] = {case: [] for case in cases}
    try:
        with LabClient(StateStore(), name) as client:
            outcome = dial_and_wait(client, max_outstanding=500, timeout_s=180)
            if outcome.up != subscribers:
                raise RuntimeError(f"only {outcome.up} of {subscribers} sessions came up")
        for case in cases:
            for _ in range(rounds):
                # A fresh client each round: the active CP may have changed.
                with LabClient(StateStore(), name) as fresh:
                    _heal(fresh, subscribers)
                with LabClient(StateStore(), name) as fresh:
                    results[case].append(_round(fresh, case, flows, pps, seconds))
    finally:
        lifecycle.down(name, cleanup=True)
    return {
        "subscribers": subscribers,
        "traffic": {"flows": flows, "pps_per_flow_and_direction": pps, "seconds": seconds},
        "rounds": rounds,
        "cases": {case: _summary(rows) for case, rows in results.items()},
        "raw": results,
    }


def _round(client: LabClient, case: str, flows: int, pps: int, seconds: float) -> dict[str, Any]:
    before = _sessions(client)
    snap = faults.snapshot(client)
    start_traffic(client, seconds, pps, 128, max_sessions=flows)
    # The experiment's schedule (fault a third into the run), not a synchronisation.
    time.sleep(seconds / 3)
    detection = takeover = -1.0
    if case == "cp_switchover":
        reply = client.management().Switchover(
            management_pb2.SwitchoverRequest(timeout_s=5.0), timeout=10
        )
        detection, takeover = 0.0, reply.duration_ms
    else:
        kind, node = {
            "cp_kill": ("kill", snap.active),
            "cp_freeze": ("freeze", snap.active),
            "dp_kill": ("kill", _serving_dp(client)),
        }[case]
        fault = faults.inject(client, kind, node)
        seen = faults.wait_for_takeover(client, fault.at_wall, snap, 10.0)
        if kind == "freeze":
            faults.repair(client, "freeze", node)
        if seen.observed:
            detection, takeover = seen.detection_ms, seen.takeover_ms
    rows = traffic_rows(wait_traffic(client, seconds))
    client.forget_active()
    after = _sessions(client)
    return {
        "detection_ms": round(detection, 2),
        "takeover_ms": round(takeover, 2),
        "gap_max_ms": max(r["max_gap_ms"] for r in rows),
        "gap_p99_ms": max(r["p99_gap_ms"] for r in rows),
        "arrival_gap_max_ms": max(r["max_arrival_gap_ms"] for r in rows),
        "lost": sum(r["lost"] for r in rows),
        "sent": sum(r["sent"] for r in rows),
        "sessions_flapped": len(before - after),
    }


def _heal(client: LabClient, subscribers: int, timeout_s: float = 60.0) -> None:
    """Wait until both CPs run (one active, the standby in sync) and every DP is connected;
    redial anything a previous round cut off."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        views = client.cp_statuses()
        roles = sorted(v.role for v in views)
        if roles == ["active", "standby"]:
            active = next(v.status for v in views if v.role == "active")
            standby = next(v.status for v in views if v.role == "standby")
            if (
                active.peer_connected
                and active.replication_lag == 0
                and standby.sessions == active.sessions
                and all(d.connected for d in active.dps)
            ):
                if active.sessions < subscribers:
                    dial_and_wait(client, timeout_s=60)
                    continue
                return
        time.sleep(0.2)
    raise RuntimeError("the lab did not heal")


def _serving_dp(client: LabClient) -> str:
    status = client.management().GetStatus(common_pb2.Empty(), timeout=5)
    return str(sorted({g.dp for g in status.groups})[0])


def _sessions(client: LabClient) -> set[tuple[str, str, int]]:
    pages = client.management().ListSessions(management_pb2.SessionQuery(), timeout=30)
    return {(s.username, s.ipv4, s.pppoe_session_id) for p in pages for s in p.sessions}


def _summary(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": len(rows)}
    for key in ("detection_ms", "takeover_ms", "gap_max_ms", "gap_p99_ms", "arrival_gap_max_ms"):
        values = sorted(r[key] for r in rows if r[key] >= 0)
        out[key] = _dist(values)
    out["lost"] = sum(r["lost"] for r in rows)
    out["sent"] = sum(r["sent"] for r in rows)
    out["sessions_flapped"] = sum(r["sessions_flapped"] for r in rows)
    out["not_observed"] = sum(1 for r in rows if r["detection_ms"] < 0)
    return out


def _dist(values: list[float]) -> dict[str, float]:
    if not values:
        return {}

    def pct(p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))]

    return {
        "min": round(values[0], 2),
        "p50": round(statistics.median(values), 2),
        "p99": round(pct(0.99), 2),
        "max": round(values[-1], 2),
    }
