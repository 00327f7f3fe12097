"""``vnf demo``: the main job end to end on the embedded default.

Bring up the default lab (one site, a CP, two active DP workers + one standby, a core router
with a server host, an emulator), dial every subscriber as fast as the lab allows, run
bidirectional sequence-numbered traffic, tear down (which ends every session and writes the
accounting stops), then report from what the nodes measured and what the store holds.
"""

from __future__ import annotations

import contextlib
import pathlib
import shutil
import time
from collections.abc import Callable
from typing import Any

from control_plane.adapters.store import Store
from vnf.api import common_pb2
from vnf.console.format import render
from vnf.emulator.traffic import distribution
from vnf.errors import NotFound
from vnf.lab.adapters import lifecycle
from vnf.lab.adapters.clients import LabClient
from vnf.lab.adapters.operations import TRAFFIC_COLUMNS, dial_and_wait, run_traffic, traffic_rows
from vnf.lab.adapters.state import StateStore, data_root
from vnf.lab.topology import parse_topology

LAB = "demo"
Progress = Callable[[str], None]


def demo_topology(subscribers: int, modems: int = 100) -> dict[str, Any]:
    return {
        "name": LAB,
        "sites": [
            {
                "name": "site1",
                "subscribers": {"pppoe": subscribers},
                "modems": {"count": modems},
                "dial": {"autostart": False},
            }
        ],
    }


def run_demo(
    subscribers: int,
    duration_s: float,
    pps: int,
    keep: bool,
    progress: Progress,
    modems: int = 100,
) -> dict[str, Any]:
    store = StateStore()
    if LAB in store.labs():
        progress("removing the previous demo lab")
        with contextlib.suppress(NotFound):
            lifecycle.down(LAB)
    data_dir = data_root() / LAB
    if (data_dir / "logs").exists():
        shutil.rmtree(data_dir)  # the previous demo's own logs and store
    raw = demo_topology(subscribers, modems)
    topology = parse_topology(raw)
    progress(
        f"step 1/4: bring up lab {LAB} ({subscribers} PPPoE subscribers, {modems} cable "
        "modems, 2+1 DP workers)"
    )
    started = time.monotonic()
    state = lifecycle.up(topology, raw, "", progress)
    report: dict[str, Any] = {"lab": LAB, "bring_up_s": round(time.monotonic() - started, 2)}
    db_path = ""
    try:
        with LabClient(store, LAB) as client:
            progress("step 2/4: dial every subscriber, power on every modem")
            outcome = dial_and_wait(client, timeout_s=120.0, progress=progress)
            setup = client.management().GetSetupReport(common_pb2.Empty(), timeout=10)
            report["sessions"] = _sessions_report(outcome, setup)
            report["modems"] = {
                "total": sum(s.modems for s in outcome.statuses),
                "online": sum(s.modems_up for s in outcome.statuses),
            }
            progress(f"step 3/4: {duration_s:g} s of traffic both ways")
            reports = run_traffic(client, duration_s, pps, 128, 0, progress)
            report["traffic"] = traffic_rows(reports)
            cp = client.nodes("cp")[0]
            db_path = str(pathlib.Path(state.data_dir) / f"{cp.name}.db")
            status = client.management().GetStatus(common_pb2.Empty(), timeout=10)
            report["placement"] = {g.dp: 0 for g in status.groups}
            for g in status.groups:
                report["placement"][g.dp] += g.sessions
    finally:
        if not keep:
            progress("step 4/4: tear down (sessions end, accounting stops are written)")
            lifecycle.down(LAB)
    if db_path and not keep:
        ro = Store(db_path, readonly=True)
        try:
            report["accounting"] = ro.accounting_count()
        finally:
            ro.close()
        report["store"] = db_path
    return report


def _sessions_report(outcome: Any, setup: Any) -> dict[str, Any]:
    cp_ms = distribution(list(setup.setup_ms))
    span = setup.last_established_mono - setup.first_padi_mono
    rate = round(setup.established / span, 1) if span > 0 else 0.0
    return {
        "total": outcome.total,
        "up": outcome.up,
        "failed": outcome.failed,
        "failures": outcome.failures,
        "established_on_cp": setup.established,
        # BNG Blaster's figures: setup time from the first PADI to the last session established,
        # setup rate = sessions / setup time, MIN/AVG/MAX over setup rounds (one round here).
        "setup_time_ms": round(span * 1000.0, 1),
        "setup_rate": rate,
        "setup_rate_min": rate,
        "setup_rate_avg": rate,
        "setup_rate_max": rate,
        "setup_ms_cp": _dist(cp_ms),
        # Client side, per emulator: first PADI sent → IPCP up.
        "setup_ms_client": [_dist(s.setup_ms) for s in outcome.statuses],
    }


def _dist(d: Any) -> dict[str, float]:
    return {
        "count": d.count,
        "min": round(d.min, 2),
        "avg": round(d.avg, 2),
        "p50": round(d.p50, 2),
        "p99": round(d.p99, 2),
        "max": round(d.max, 2),
    }


def format_report(report: dict[str, Any]) -> str:
    s = report.get("sessions", {})
    lines = [
        "",
        f"vnf demo report (lab {report['lab']}, up in {report['bring_up_s']} s)",
        "",
        f"sessions up        {s.get('up', 0)}/{s.get('total', 0)}"
        + (f"  failed {s['failed']} {s['failures']}" if s.get("failed") else ""),
        f"setup time         {s.get('setup_time_ms', 0)} ms"
        " (first PADI → last session established)",
        f"setup rate         {s.get('setup_rate', 0)} CPS (MIN: {s.get('setup_rate_min', 0)}"
        f" AVG: {s.get('setup_rate_avg', 0)} MAX: {s.get('setup_rate_max', 0)})",
        "per session (CP)   PADI → accounting start committed: "
        + _dist_text(s.get("setup_ms_cp", {})),
        *(
            "per session (emu)  PADI sent → IPCP up: " + _dist_text(d)
            for d in s.get("setup_ms_client", [])
        ),
        f"cable modems       {report.get('modems', {}).get('online', 0)}"
        f"/{report.get('modems', {}).get('total', 0)} online (with their CPE addressed;"
        " included in the sessions above)",
        "placement          "
        + ", ".join(f"{dp} {n}" for dp, n in sorted(report.get("placement", {}).items())),
        "",
        "traffic (UDP, sequence-numbered, subscribers ⇄ server):",
        render(report.get("traffic", []), TRAFFIC_COLUMNS, "table"),
        "",
    ]
    accounting = report.get("accounting")
    if accounting is not None:
        lines.append(
            "accounting written "
            + ", ".join(f"{accounting.get(k, 0)} {k}" for k in ("start", "interim", "stop"))
            + f"  ({report.get('store', '')}; vnf accounting --db <file>)"
        )
    return "\n".join(lines)


def _dist_text(d: dict[str, float]) -> str:
    if not d:
        return "-"
    return f"min {d['min']} / avg {d['avg']} / p99 {d['p99']} / max {d['max']} ms"
