"""Orchestrator reconcile: start order, restart with backoff, crash loops left failed."""

from __future__ import annotations

from orchestrator.model import Kind, NodeSpec, stop_sequence
from orchestrator.reconcile import Observed, reconcile

NODES = [
    NodeSpec("emu", Kind.EMULATOR, "", "s", "ns-e", "198.19.0.5"),
    NodeSpec("dp1", Kind.DP, "active", "s", "ns-d", "198.19.0.4"),
    NodeSpec("cp", Kind.CP, "active", "", "ns-c", "198.19.0.3"),
    NodeSpec("core", Kind.ROUTER, "", "", "ns-r", "198.19.0.2"),
    NodeSpec("srv1", Kind.SERVER, "", "", "ns-s", ""),
]


def test_first_start_in_dependency_order_and_servers_have_no_process() -> None:
    actions = reconcile(NODES, {}, now=0.0)
    assert [a.node.name for a in actions] == ["core", "cp", "dp1", "emu"]
    assert not any(a.restart for a in actions)


def test_running_nodes_are_left_alone() -> None:
    observed = {n.name: Observed(running=True) for n in NODES}
    assert reconcile(NODES, observed, now=10.0) == []


def test_restart_waits_for_backoff_and_stops_after_a_crash_loop() -> None:
    observed = {n.name: Observed(running=True) for n in NODES}
    dp = observed["dp1"]
    dp.running, dp.exit_code, dp.exited_at = False, 1, 100.0
    dp.recent_failures = [100.0]
    assert reconcile(NODES, observed, now=100.5) == []  # backoff 1 s after one failure
    (action,) = reconcile(NODES, observed, now=101.1)
    assert action.node.name == "dp1" and action.restart
    dp.recent_failures = [100.0, 101.0, 102.0, 103.0, 104.0]
    dp.exited_at = 104.0
    assert reconcile(NODES, observed, now=500.0 - 300.0 + 104.0 - 0.1) == []


def test_stopped_on_purpose_is_not_restarted() -> None:
    observed = {n.name: Observed(running=True) for n in NODES}
    observed["cp"] = Observed(running=False, exit_code=0, stopped_on_purpose=True)
    assert reconcile(NODES, observed, now=1000.0) == []


def test_stop_order_puts_the_control_plane_first() -> None:
    stages = stop_sequence(NODES)
    assert [[n.name for n in stage] for stage in stages] == [
        ["cp"],
        ["emu"],
        ["dp1"],
        ["core"],
        ["srv1"],
    ][:4]
