"""Tables in the accel-cmd layout, JSON and CSV; human-readable units.

accel-cmd prints ``show sessions`` as columns separated by `` | `` under a dashed rule made of
``-`` and ``+``; engineers grep and awk it, so we keep that exact shape.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

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
