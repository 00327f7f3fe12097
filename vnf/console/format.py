"""Tables in the accel-cmd layout, JSON and CSV; human-readable units; the rows of
``vnf lab status`` and the report of ``vnf fail``.

accel-cmd prints ``show sessions`` as columns separated by `` | `` under a dashed rule made of
``-`` and ``+``; engineers grep and awk it, so we keep that exact shape.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
from collections.abc import Sequence
from typing import Any

from vnf.model.addresses import mac_to_str

Row = dict[str, Any]
Column = tuple[str, str]  # (key, header)

OUTPUTS = ("table", "json", "csv")


def render(rows: Sequence[Row], columns: Sequence[Column], output: str) -> str:
    if output == "json":
        return json.dumps(list(rows), indent=2, default=str)
    if output == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([key for key, _ in columns])
        for row in rows:
            writer.writerow([row.get(key, "") for key, _ in columns])
        return buf.getvalue().rstrip("\n")
    return table(rows, columns)


def table(rows: Sequence[Row], columns: Sequence[Column]) -> str:
    cells = [[_cell(row.get(key, "")) for key, _ in columns] for row in rows]
    headers = [header for _, header in columns]
    widths = [max([len(h), *(len(c[i]) for c in cells)]) for i, h in enumerate(headers)]
    lines = [" " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("-" + "-+-".join("-" * w for w in widths) + "-")
    for row_cells in cells:
        lines.append(" " + " | ".join(c.ljust(w) for c, w in zip(row_cells, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def uptime(seconds: float) -> str:
    """accel-cmd style uptime: ``HH:MM:SS`` or ``Nd.HH:MM:SS``."""
    total = int(max(0.0, seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}d.{text}" if days else text


# -- `vnf lab status` sections -----------------------------------------------------------------

NODE_COLUMNS = [
    ("node", "node"),
    ("kind", "kind"),
    ("role", "role"),
    ("site", "site"),
    ("state", "state"),
    ("health", "health"),
    ("pid", "pid"),
    ("address", "grpc"),
    ("metrics", "metrics"),
]
CP_COLUMNS = [
    ("cp", "cp"),
    ("role", "role"),
    ("epoch", "epoch"),
    ("sessions", "sessions"),
    ("peer", "peer"),
    ("peer_connected", "peer connected"),
    ("replication_seq", "replication seq"),
    ("replication_lag", "replication lag"),
    ("takeovers", "takeovers"),
]
GROUP_COLUMNS = [
    ("group", "group"),
    ("site", "site"),
    ("dp", "serving dp"),
    ("virtual_mac", "virtual mac"),
    ("pool", "pool"),
    ("sessions", "sessions"),
    ("free", "free addresses"),
]
DP_COLUMNS = [
    ("dp", "dp"),
    ("site", "site"),
    ("role", "role"),
    ("connected", "connected"),
    ("sessions", "sessions"),
    ("heartbeat_age_s", "heartbeat age s"),
]
FAULT_COLUMNS = [
    ("fault", "active fault"),
    ("node", "node"),
    ("peer", "peer"),
    ("pid", "pid"),
    ("age_s", "for s"),
    ("detail", "detail"),
]
GAP_COLUMNS = [
    ("direction", "direction"),
    ("flows", "flows"),
    ("sent", "sent"),
    ("received", "received"),
    ("lost", "lost"),
    ("loss_pct", "loss %"),
    ("max_gap_ms", "max gap ms"),
    ("p99_gap_ms", "p99 flow gap ms"),
    ("max_arrival_gap_ms", "max arrival gap ms"),
]


def cp_row(view: Any) -> Row:
    """One CP of the pair from its GetStatus (``view.status`` None: it did not answer)."""
    s = view.status
    if s is None:
        return {"cp": view.node.name, "role": f"unreachable ({view.error})"}
    return {
        "cp": view.node.name,
        "role": s.role,
        "epoch": s.epoch,
        "sessions": s.sessions,
        "peer": s.peer or "-",
        "peer_connected": ("yes" if s.peer_connected else "no") if s.peer else "-",
        "replication_seq": s.replication_seq,
        "replication_lag": s.replication_lag,
        "takeovers": len(s.takeovers),
    }


def placement_rows(cp_status: Any) -> tuple[list[Row], list[Row]]:
    """Groups → serving DP, and the DPs with their roles, as one CP (the active) sees them."""
    if cp_status is None:
        return [], []
    groups = [
        {
            "group": g.group_id,
            "site": g.site,
            "dp": g.dp or "-",
            "virtual_mac": mac_to_str(g.virtual_mac),
            "pool": g.pool,
            "sessions": g.sessions,
            "free": g.free_addresses,
        }
        for g in cp_status.groups
    ]
    dps = [
        {
            "dp": d.dp_id,
            "site": d.site,
            "role": d.role,
            "connected": "yes" if d.connected else "no",
            "sessions": d.sessions,
            "heartbeat_age_s": round(d.last_heartbeat_age_s, 3),
        }
        for d in cp_status.dps
    ]
    return groups, dps


def fault_rows(faults: Sequence[Row], now_wall: float) -> list[Row]:
    return [
        {
            "fault": str(f.get("kind", "")),
            "node": f.get("node", ""),
            "peer": f.get("peer", "") or "-",
            "pid": f.get("pid", 0) or "",
            "age_s": f"{max(0.0, now_wall - float(f.get('at_wall', now_wall))):.1f}",
            "detail": f.get("detail", ""),
        }
        for f in faults
    ]


# -- `vnf fail` --------------------------------------------------------------------------------


def clock(wall: float) -> str:
    """``HH:MM:SS.mmm`` local time of a wall-clock stamp."""
    return datetime.datetime.fromtimestamp(wall).strftime("%H:%M:%S.%f")[:-3]


def fail_report(outcome: Any) -> str:
    """What a fault did (a ``vnf.lab.adapters.faults.FailOutcome``), as lines."""
    f = outcome.fault
    verb = {"kill": "killed", "freeze": "froze", "link": "cut"}.get(f.kind, f.kind)
    what = f"{f.node} <-> {f.peer}" if f.peer else f.node
    lines = [f"{verb} {what} at {clock(f.at_wall)}: {f.detail}"]
    t = outcome.takeover
    if t is not None and t.observed:
        lines.append(
            f"takeover {t.kind} {t.from_node} -> {t.to_node}: detection {t.detection_ms:.1f} ms, "
            f"takeover {t.takeover_ms:.1f} ms, epoch {t.epoch}"
        )
        lines.append(
            f"sessions kept: {t.sessions_after} of {t.sessions_before} on {t.active_cp} "
            f"({t.carried} carried over, {t.groups} groups)"
        )
    elif t is not None:
        lines.append(t.summary)
    if outcome.traffic:
        lines.append(
            f"traffic: {outcome.traffic_s:g} s, fault injected {outcome.injected_after_s:.1f} s in"
        )
        lines.append(table([vars(r) for r in outcome.traffic], GAP_COLUMNS))
    return "\n".join(lines)
