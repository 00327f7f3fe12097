"""CLI presentation: accel-cmd tables, JSON, CSV, units."""

from __future__ import annotations

import json

from vnf.console.format import human_bytes, render, uptime

ROWS = [{"username": "alice", "ip": "100.64.0.2"}, {"username": "bob", "ip": "100.64.0.3"}]
COLUMNS = [("username", "username"), ("ip", "ip")]


def test_accel_cmd_table_layout() -> None:
    lines = render(ROWS, COLUMNS, "table").splitlines()
    assert lines[0] == " username | ip"
    assert lines[1] == "----------+------------"
    assert lines[2] == " alice    | 100.64.0.2"


def test_json_and_csv() -> None:
    assert json.loads(render(ROWS, COLUMNS, "json"))[1]["username"] == "bob"
    assert render(ROWS, COLUMNS, "csv").splitlines() == [
        "username,ip",
        "alice,100.64.0.2",
        "bob,100.64.0.3",
    ]


def test_units() -> None:
    assert human_bytes(512) == "512 B"
    assert human_bytes(3 * 1024 * 1024) == "3.0 MiB"
    assert uptime(3723) == "01:02:03"
    assert uptime(90061) == "1d.01:01:01"
