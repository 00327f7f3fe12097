"""Lab operations shared by the CLI, the demo and the benchmarks: dial and wait, run traffic."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from vnf.api import common_pb2, emulator_pb2
from vnf.lab.adapters.clients import LabClient

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


@dataclass
class DialOutcome:
    total: int
    up: int
    failed: int
    failures: dict[str, int] = field(default_factory=dict)
    statuses: list[Any] = field(default_factory=list)
    waited_s: float = 0.0


def dial_and_wait(
    client: LabClient,
    rate: float = 0.0,
    max_outstanding: int = 0,
    timeout_s: float = 120.0,
    progress: Progress = _quiet,
    count: int = 0,
    per_site: dict[str, tuple[float, int]] | None = None,
) -> DialOutcome:
    """Dial every emulator's idle, down or failed subscribers; wait until none is queued or
    connecting any more (or timeout). ``up``/``failed`` count every subscriber, not only the
    ones this call dialed.

    ``per_site`` maps a site to its own (rate, max outstanding); when given, only those sites'
    emulators dial.
    """
    emulators = [n for n in client.nodes("emulator") if per_site is None or n.site in per_site]
    total = 0
    for node in emulators:
        site_rate, site_outstanding = (per_site or {}).get(node.site, (rate, max_outstanding))
        request = emulator_pb2.DialRequest(
            count=count, rate=site_rate, max_outstanding=site_outstanding
        )
        total += client.emulator(node).Dial(request, timeout=10).started
    progress(f"dialing {total} subscribers")
    started = time.monotonic()
    end = started + timeout_s
    last = ""
    statuses: list[Any] = []
    while True:
        statuses = [client.emulator(n).GetStatus(common_pb2.Empty(), timeout=10) for n in emulators]
        up = sum(s.up for s in statuses)
        failed = sum(s.failed for s in statuses)
        line = f"sessions up {up}/{total}, failed {failed}"
        if line != last:
            progress(line)
            last = line
        if not any(s.connecting or s.queued for s in statuses):
            break  # every dialed subscriber is up or has failed
        if time.monotonic() > end:
            progress(f"gave up waiting after {timeout_s:.0f} s")
            break
        time.sleep(0.1)
    failures: dict[str, int] = {}
    for s in statuses:
        for reason, n in s.failures.items():
            failures[reason] = failures.get(reason, 0) + n
    if failures:
        progress("failures: " + ", ".join(f"{k} {v}" for k, v in sorted(failures.items())))
    return DialOutcome(total, up, failed, failures, statuses, time.monotonic() - started)


def run_traffic(
    client: LabClient,
    duration_s: float,
    pps: int,
    size: int,
    max_sessions: int = 0,
    progress: Progress = _quiet,
    kind: str = "",
) -> list[Any]:
    """Start traffic on every emulator and wait for the runs (and their drain) to finish."""
    start_traffic(client, duration_s, pps, size, max_sessions, progress, kind)
    return wait_traffic(client, duration_s)


def start_traffic(
    client: LabClient,
    duration_s: float,
    pps: int,
    size: int,
    max_sessions: int = 0,
    progress: Progress = _quiet,
    kind: str = "",
) -> int:
    """Start traffic on every emulator (only on ``kind``'s sessions when given); returns the
    number of sessions carrying it."""
    flows = 0
    for node in client.nodes("emulator"):
        request = emulator_pb2.TrafficRequest(
            duration_s=duration_s,
            pps_per_session=pps,
            frame_size=size,
            max_sessions=max_sessions,
            kind=kind,
        )
        flows += client.emulator(node).StartTraffic(request, timeout=10).flows
    progress(f"traffic: {flows} sessions x {pps} pps x 2 directions for {duration_s:g} s")
    return flows


def wait_traffic(client: LabClient, duration_s: float) -> list[Any]:
    """Wait until every emulator's run (and its drain) has finished; their reports."""
    emulators = client.nodes("emulator")
    end = time.monotonic() + duration_s + 30
    while True:
        reports = [
            client.emulator(n).GetTrafficReport(common_pb2.Empty(), timeout=10) for n in emulators
        ]
        if not any(r.running for r in reports) or time.monotonic() > end:
            return reports
        time.sleep(0.2)


def traffic_rows(reports: list[Any]) -> list[dict[str, Any]]:
    """One row per direction, merged over emulators."""
    merged: dict[str, dict[str, Any]] = {}
    for report in reports:
        for d in report.directions:
            row = merged.setdefault(
                d.direction,
                {
                    "direction": d.direction,
                    "flows": 0,
                    "sent": 0,
                    "received": 0,
                    "lost": 0,
                    "reordered": 0,
                    "duplicates": 0,
                    "latency_avg_ms": 0.0,
                    "latency_p99_ms": 0.0,
                    "latency_max_ms": 0.0,
                    "max_gap_ms": 0.0,
                    "p99_gap_ms": 0.0,
                    "max_arrival_gap_ms": 0.0,
                },
            )
            for key in ("flows", "sent", "received", "lost", "reordered", "duplicates"):
                row[key] += getattr(d, key)
            row["latency_avg_ms"] = round(d.latency_ms.avg, 3)
            row["latency_p99_ms"] = round(max(row["latency_p99_ms"], d.latency_ms.p99), 3)
            row["latency_max_ms"] = round(max(row["latency_max_ms"], d.latency_ms.max), 3)
            row["max_gap_ms"] = round(max(row["max_gap_ms"], d.max_gap_ms), 3)
            # Exact for one emulator; over several sites, the worst site's p99 (a bound).
            row["p99_gap_ms"] = round(max(row["p99_gap_ms"], d.flow_gap_ms.p99), 3)
            row["max_arrival_gap_ms"] = round(
                max(row["max_arrival_gap_ms"], d.max_arrival_gap_ms), 3
            )
    for row in merged.values():
        row["loss_pct"] = round(100.0 * row["lost"] / row["sent"], 3) if row["sent"] else 0.0
    return list(merged.values())


TRAFFIC_COLUMNS = [
    ("direction", "direction"),
    ("flows", "flows"),
    ("sent", "sent"),
    ("received", "received"),
    ("lost", "lost"),
    ("loss_pct", "loss %"),
    ("reordered", "reordered"),
    ("latency_avg_ms", "latency avg ms"),
    ("latency_p99_ms", "p99 ms"),
    ("latency_max_ms", "max ms"),
]
